//! The kernel command line, the contract between the image builder and stage 1:
//!
//! ```text
//! console=ttyS0 roothash=<64 hex> [berth.verity=panic|restart] [berth.failure=halt|reboot] [berth.debug]
//! ```
//!
//! * `roothash=` (required): the dm-verity root hash of the root filesystem. It is the one
//!   value stage 1 trusts; the root and verity partitions are found by the UUIDs derived
//!   from it (`berth_image::plan::uuids_from_root_hash`).
//! * `berth.verity=`: what the kernel does when a block fails verification: `panic`
//!   (default, `panic_on_corruption`) or `restart` (`restart_on_corruption`).
//! * `berth.failure=`: what stage 1 does when it cannot boot, after printing why: `halt`
//!   (default; powers the machine off, so a VM ends and a cloud instance shows as stopped)
//!   or `reboot`. `poweroff` is accepted as a synonym of `halt`.
//! * `berth.debug` (or `berth.debug=1`): extra `berth: stage1 …` lines (each module, each
//!   disk examined).
//!
//! Words are split as the kernel splits them (double quotes group spaces); a repeated
//! parameter takes its last value, as in the kernel; unknown parameters are ignored. An
//! invalid value of a Berth parameter is an error rather than a fallback to a default, so
//! that a typo in a security setting stops the boot instead of weakening it.

use std::fmt;
use std::str::FromStr;

/// A dm-verity (sha256) root hash.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct RootHash(pub [u8; 32]);

impl FromStr for RootHash {
    type Err = CmdlineError;

    fn from_str(s: &str) -> Result<Self, CmdlineError> {
        let invalid = || CmdlineError::InvalidRootHash {
            value: s.to_owned(),
        };
        if s.len() != 64 {
            return Err(invalid());
        }
        let mut bytes = [0; 32];
        hex::decode_to_slice(s, &mut bytes).map_err(|_| invalid())?;
        Ok(RootHash(bytes))
    }
}

impl fmt::Display for RootHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for RootHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RootHash({self})")
    }
}

/// What the kernel does with a block that fails verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum VerityMode {
    #[default]
    Panic,
    Restart,
}

impl VerityMode {
    /// The `berth.verity=` value.
    pub fn as_str(self) -> &'static str {
        match self {
            VerityMode::Panic => "panic",
            VerityMode::Restart => "restart",
        }
    }

    /// The dm-verity table option.
    pub fn table_option(self) -> &'static str {
        match self {
            VerityMode::Panic => "panic_on_corruption",
            VerityMode::Restart => "restart_on_corruption",
        }
    }
}

/// What stage 1 does after it printed why it cannot boot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FailureAction {
    /// `sync`, then `reboot(RB_POWER_OFF)`; `RB_HALT_SYSTEM` if power-off fails.
    #[default]
    Halt,
    /// `sync`, then `reboot(RB_AUTOBOOT)`.
    Reboot,
}

impl FailureAction {
    /// The `berth.failure=` value.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureAction::Halt => "halt",
            FailureAction::Reboot => "reboot",
        }
    }

    /// The `berth.failure=` value of `cmdline`, or the default when it is absent or invalid:
    /// used on the failure path itself, so it must not fail.
    pub fn from_cmdline(cmdline: &str) -> FailureAction {
        let mut action = FailureAction::default();
        for word in split(cmdline) {
            if let Some(value) = word.strip_prefix("berth.failure=") {
                action = parse_failure(value).unwrap_or(action);
            }
        }
        action
    }
}

/// The validated Berth part of a kernel command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cmdline {
    pub root_hash: RootHash,
    pub verity: VerityMode,
    pub failure: FailureAction,
    pub debug: bool,
}

/// A command line stage 1 cannot boot with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CmdlineError {
    #[error("no roothash= on the kernel command line")]
    MissingRootHash,
    #[error("roothash={value:?} is not 64 hexadecimal digits (a sha256 root hash)")]
    InvalidRootHash { value: String },
    #[error("{name}={value:?} is not one of {allowed}")]
    InvalidValue {
        name: &'static str,
        value: String,
        allowed: &'static str,
    },
}

impl Cmdline {
    /// Parses `/proc/cmdline`.
    pub fn parse(text: &str) -> Result<Cmdline, CmdlineError> {
        // Last value wins, so collect first and validate after.
        let mut root_hash = None;
        let mut verity = None;
        let mut failure = None;
        let mut debug = None;
        for word in split(text) {
            let (name, value) = match word.split_once('=') {
                Some((name, value)) => (name.to_owned(), Some(value.to_owned())),
                None => (word, None),
            };
            match name.as_str() {
                "roothash" => root_hash = Some(value.unwrap_or_default()),
                "berth.verity" => verity = Some(value),
                "berth.failure" => failure = Some(value),
                "berth.debug" => debug = Some(value),
                _ => {}
            }
        }
        let invalid = |name, value: Option<String>, allowed| CmdlineError::InvalidValue {
            name,
            value: value.unwrap_or_default(),
            allowed,
        };
        let verity = match verity {
            None => VerityMode::default(),
            Some(value) => match value.as_deref() {
                Some("panic") => VerityMode::Panic,
                Some("restart") => VerityMode::Restart,
                _ => return Err(invalid("berth.verity", value, "panic, restart")),
            },
        };
        let failure = match failure {
            None => FailureAction::default(),
            Some(value) => match value.as_deref().and_then(parse_failure) {
                Some(action) => action,
                None => return Err(invalid("berth.failure", value, "halt, poweroff, reboot")),
            },
        };
        let debug = match debug {
            None => false,
            Some(value) => match value.as_deref() {
                None | Some("1" | "yes" | "true" | "on") => true,
                Some("0" | "no" | "false" | "off") => false,
                _ => return Err(invalid("berth.debug", value, "1, 0 (or no value)")),
            },
        };
        Ok(Cmdline {
            root_hash: root_hash.ok_or(CmdlineError::MissingRootHash)?.parse()?,
            verity,
            failure,
            debug,
        })
    }
}

fn parse_failure(value: &str) -> Option<FailureAction> {
    match value {
        "halt" | "poweroff" => Some(FailureAction::Halt),
        "reboot" => Some(FailureAction::Reboot),
        _ => None,
    }
}

/// Splits a command line into words as the kernel's `next_arg` does: on whitespace, with
/// double quotes grouping (and removed).
pub fn split(text: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut quoted = false;
    for c in text.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                in_word = true;
            }
            c if c.is_whitespace() && !quoted => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            c => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(word);
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const HASH: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

    #[test]
    fn defaults() {
        let c = Cmdline::parse(&format!("console=ttyS0 roothash={HASH}\n")).unwrap();
        assert_eq!(c.root_hash.to_string(), HASH);
        assert_eq!(c.verity, VerityMode::Panic);
        assert_eq!(c.failure, FailureAction::Halt);
        assert!(!c.debug);
    }

    #[test]
    fn all_options_and_last_wins() {
        let text = format!(
            "BOOT_IMAGE=/vmlinuz roothash=00 roothash={} berth.verity=restart \
             berth.failure=reboot berth.debug quiet",
            HASH.to_uppercase()
        );
        let c = Cmdline::parse(&text).unwrap();
        assert_eq!(c.root_hash.to_string(), HASH);
        assert_eq!(c.verity, VerityMode::Restart);
        assert_eq!(c.verity.table_option(), "restart_on_corruption");
        assert_eq!(c.failure, FailureAction::Reboot);
        assert!(c.debug);
    }

    #[test]
    fn errors_name_the_value() {
        assert_eq!(
            Cmdline::parse("console=ttyS0"),
            Err(CmdlineError::MissingRootHash)
        );
        let e = Cmdline::parse("roothash=xyz").unwrap_err();
        assert_eq!(
            e.to_string(),
            "roothash=\"xyz\" is not 64 hexadecimal digits (a sha256 root hash)"
        );
        let e = Cmdline::parse(&format!("roothash={HASH} berth.verity=ignore")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "berth.verity=\"ignore\" is not one of panic, restart"
        );
        assert!(Cmdline::parse(&format!("roothash={HASH} berth.failure=")).is_err());
    }

    #[test]
    fn failure_action_survives_a_bad_command_line() {
        assert_eq!(
            FailureAction::from_cmdline("roothash=bad berth.failure=reboot"),
            FailureAction::Reboot
        );
        assert_eq!(
            FailureAction::from_cmdline("berth.failure=sometimes"),
            FailureAction::Halt
        );
    }

    #[test]
    fn quotes_group_words() {
        assert_eq!(
            split(" a \"b c\" d=\"e f\"g\n"),
            ["a", "b c", "d=e fg"].map(String::from)
        );
        assert!(split("  \n").is_empty());
    }

    fn cmdline() -> impl Strategy<Value = Cmdline> {
        (
            any::<[u8; 32]>(),
            any::<bool>(),
            any::<bool>(),
            any::<bool>(),
        )
            .prop_map(|(hash, restart, reboot, debug)| Cmdline {
                root_hash: RootHash(hash),
                verity: if restart {
                    VerityMode::Restart
                } else {
                    VerityMode::Panic
                },
                failure: if reboot {
                    FailureAction::Reboot
                } else {
                    FailureAction::Halt
                },
                debug,
            })
    }

    fn render(c: &Cmdline) -> Vec<String> {
        let mut words = vec![format!("roothash={}", c.root_hash)];
        if c.verity == VerityMode::Restart {
            words.push("berth.verity=restart".into());
        }
        if c.failure == FailureAction::Reboot {
            words.push("berth.failure=reboot".into());
        }
        if c.debug {
            words.push("berth.debug".into());
        }
        words
    }

    proptest! {
        #[test]
        fn round_trips_among_foreign_words(
            c in cmdline(),
            foreign in proptest::collection::vec("[a-z_.]{1,12}(=[a-zA-Z0-9,/]{0,12})?", 0..6),
            seed in any::<u64>(),
        ) {
            let mut words = render(&c);
            for (i, w) in foreign.iter().enumerate() {
                if w.starts_with("berth.") || w.starts_with("roothash") {
                    continue;
                }
                let at = (seed as usize).wrapping_add(i) % (words.len() + 1);
                words.insert(at, w.clone());
            }
            let text = words.join(" ");
            prop_assert_eq!(Cmdline::parse(&text), Ok(c.clone()));
            prop_assert_eq!(FailureAction::from_cmdline(&text), c.failure);
        }

        #[test]
        fn never_panics(text in "\\PC{0,200}") {
            let _ = Cmdline::parse(&text);
            let _ = FailureAction::from_cmdline(&text);
        }
    }
}
