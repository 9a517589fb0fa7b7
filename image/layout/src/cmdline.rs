//! The kernel command line, the contract between the image builder (which renders it into
//! the loader entries) and PID 1 (stage 1 and stage 2 parse it):
//!
//! ```text
//! console=ttyS0 roothash=<64 hex> berth.verity=panic|restart [berth.failure=halt|reboot]
//!     [berth.hostname=NAME] [berth.state=auto|tmpfs|reformat|wipe] [berth.verbose] [berth.debug]
//! ```
//!
//! * `roothash=` (required): the dm-verity root hash of the root filesystem. It is the one
//!   value stage 1 trusts; the root and verity partitions are found by the UUIDs derived
//!   from it ([`crate::partition::uuids_from_root_hash`]).
//! * `berth.verity=`: what the kernel does when a block fails verification: `panic`
//!   (default, `panic_on_corruption`) or `restart` (`restart_on_corruption`).
//! * `berth.failure=`: what stage 1 does when it cannot boot, after printing why: `halt`
//!   (default; powers the machine off, so a VM ends and a cloud instance shows as stopped)
//!   or `reboot`. `poweroff` is accepted as a synonym of `halt`.
//! * `berth.hostname=NAME`: the host name; it wins over the cloud's and the default.
//! * `berth.state=`: what stage 2 does with STATE: `auto` (default), `tmpfs` (a tmpfs in its
//!   place), `reformat` (re-make it when it cannot be mounted or repaired), `wipe` (re-make
//!   it on this boot: a factory reset; give it for one boot, not in a loader entry).
//! * `berth.verbose` (or `=1`): extra `berth: stage1 …` lines (each module, each disk).
//! * `berth.debug` (or `=1`): the root shell on the serial console, which only the debug
//!   variant has (its loader entry sets this and `berth.verbose`).
//!
//! Words are split as the kernel splits them (double quotes group spaces); a repeated
//! parameter takes its last value, as in the kernel; unknown parameters are ignored.
//!
//! Two readers with two policies, one grammar: stage 1 ([`Cmdline::parse`]) refuses an
//! invalid `roothash=`, `berth.verity=`, `berth.failure=` or `berth.verbose`, so that a typo
//! in a security setting stops the boot instead of weakening it; stage 2
//! ([`BootOptions::parse_lenient`]) runs on a root stage 1 accepted, so it reports a bad
//! value and uses the default: nothing on the command line may keep the node from booting.

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

impl FromStr for VerityMode {
    type Err = CmdlineError;

    fn from_str(value: &str) -> Result<Self, CmdlineError> {
        match value {
            "panic" => Ok(VerityMode::Panic),
            "restart" => Ok(VerityMode::Restart),
            _ => Err(invalid(VERITY, value, "panic, restart")),
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
        Params::scan(cmdline)
            .failure
            .and_then(|value| value?.parse().ok())
            .unwrap_or_default()
    }
}

impl FromStr for FailureAction {
    type Err = CmdlineError;

    fn from_str(value: &str) -> Result<Self, CmdlineError> {
        match value {
            "halt" | "poweroff" => Ok(FailureAction::Halt),
            "reboot" => Ok(FailureAction::Reboot),
            _ => Err(invalid(FAILURE, value, "halt, poweroff, reboot")),
        }
    }
}

/// What stage 2 does with STATE.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StateMode {
    #[default]
    Auto,
    /// A tmpfs in place of STATE.
    Tmpfs,
    /// Re-make STATE when it cannot be mounted or repaired.
    Reformat,
    /// Re-make STATE unconditionally.
    Wipe,
}

impl StateMode {
    /// The `berth.state=` value.
    pub fn as_str(self) -> &'static str {
        match self {
            StateMode::Auto => "auto",
            StateMode::Tmpfs => "tmpfs",
            StateMode::Reformat => "reformat",
            StateMode::Wipe => "wipe",
        }
    }
}

impl FromStr for StateMode {
    type Err = CmdlineError;

    fn from_str(value: &str) -> Result<Self, CmdlineError> {
        match value {
            "auto" => Ok(StateMode::Auto),
            "tmpfs" => Ok(StateMode::Tmpfs),
            "reformat" => Ok(StateMode::Reformat),
            "wipe" => Ok(StateMode::Wipe),
            _ => Err(invalid(STATE, value, "auto, tmpfs, reformat, wipe")),
        }
    }
}

/// Every `berth.*` parameter: what the booted system does beyond finding its root.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BootOptions {
    pub verity: VerityMode,
    pub failure: FailureAction,
    /// A valid host name ([`valid_hostname`]).
    pub hostname: Option<String>,
    pub state: StateMode,
    /// More `berth: stage1 …` lines.
    pub verbose: bool,
    /// The debug variant's root shell on the serial console.
    pub debug_shell: bool,
}

/// The whole Berth part of a kernel command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cmdline {
    pub root_hash: RootHash,
    pub options: BootOptions,
}

/// A command line stage 1 cannot boot with, or a value stage 2 ignores.
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
    #[error("berth.hostname={value:?} is not a valid host name (RFC 1123)")]
    InvalidHostname { value: String },
}

const ROOTHASH: &str = "roothash";
const VERITY: &str = "berth.verity";
const FAILURE: &str = "berth.failure";
const HOSTNAME: &str = "berth.hostname";
const STATE: &str = "berth.state";
const VERBOSE: &str = "berth.verbose";
const DEBUG: &str = "berth.debug";

fn invalid(name: &'static str, value: &str, allowed: &'static str) -> CmdlineError {
    CmdlineError::InvalidValue {
        name,
        value: value.to_owned(),
        allowed,
    }
}

/// The last value of each Berth parameter: `None` when absent, `Some(None)` when given
/// without `=`.
#[derive(Default)]
struct Params {
    root_hash: Option<Option<String>>,
    verity: Option<Option<String>>,
    failure: Option<Option<String>>,
    hostname: Option<Option<String>>,
    state: Option<Option<String>>,
    verbose: Option<Option<String>>,
    debug: Option<Option<String>>,
}

impl Params {
    fn scan(text: &str) -> Params {
        let mut p = Params::default();
        for word in split(text) {
            let (name, value) = match word.split_once('=') {
                Some((name, value)) => (name.to_owned(), Some(value.to_owned())),
                None => (word, None),
            };
            let slot = match name.as_str() {
                ROOTHASH => &mut p.root_hash,
                VERITY => &mut p.verity,
                FAILURE => &mut p.failure,
                HOSTNAME => &mut p.hostname,
                STATE => &mut p.state,
                VERBOSE => &mut p.verbose,
                DEBUG => &mut p.debug,
                _ => continue,
            };
            *slot = Some(value);
        }
        p
    }
}

/// A value that is required to be given with `=`.
fn valued<T: FromStr<Err = CmdlineError> + Default>(
    name: &'static str,
    allowed: &'static str,
    value: Option<Option<String>>,
) -> Result<T, CmdlineError> {
    match value {
        None => Ok(T::default()),
        Some(None) => Err(invalid(name, "", allowed)),
        Some(Some(v)) => v.parse(),
    }
}

/// A flag: present without a value or with a true value.
fn flag(name: &'static str, value: Option<Option<String>>) -> Result<bool, CmdlineError> {
    match value.as_ref().map(Option::as_deref) {
        None => Ok(false),
        Some(None | Some("1" | "yes" | "true" | "on")) => Ok(true),
        Some(Some("0" | "no" | "false" | "off")) => Ok(false),
        Some(Some(v)) => Err(invalid(name, v, "1, 0 (or no value)")),
    }
}

fn hostname(value: Option<Option<String>>) -> Result<Option<String>, CmdlineError> {
    match value {
        None => Ok(None),
        Some(v) => {
            let v = v.unwrap_or_default();
            if valid_hostname(&v) {
                Ok(Some(v))
            } else {
                Err(CmdlineError::InvalidHostname { value: v })
            }
        }
    }
}

/// `result`'s value, or the default with the error kept in `problems`.
fn or_default<T: Default>(result: Result<T, CmdlineError>, problems: &mut Vec<CmdlineError>) -> T {
    result.unwrap_or_else(|e| {
        problems.push(e);
        T::default()
    })
}

impl BootOptions {
    /// Stage 2's reading: every invalid value is returned as a problem (in parameter
    /// order) and its default used.
    pub fn parse_lenient(text: &str) -> (BootOptions, Vec<CmdlineError>) {
        let p = Params::scan(text);
        let mut problems = Vec::new();
        let options = BootOptions {
            verity: or_default(valued(VERITY, "panic, restart", p.verity), &mut problems),
            failure: or_default(
                valued(FAILURE, "halt, poweroff, reboot", p.failure),
                &mut problems,
            ),
            hostname: or_default(hostname(p.hostname), &mut problems),
            state: or_default(
                valued(STATE, "auto, tmpfs, reformat, wipe", p.state),
                &mut problems,
            ),
            verbose: or_default(flag(VERBOSE, p.verbose), &mut problems),
            debug_shell: or_default(flag(DEBUG, p.debug), &mut problems),
        };
        (options, problems)
    }
}

impl Cmdline {
    /// Default options for `root_hash`.
    pub fn new(root_hash: RootHash) -> Cmdline {
        Cmdline {
            root_hash,
            options: BootOptions::default(),
        }
    }

    /// Stage 1's reading of `/proc/cmdline`: `roothash=` is required, and an invalid
    /// `berth.verity=`, `berth.failure=` or `berth.verbose` is an error. The parameters
    /// stage 1 does not use (`berth.hostname=`, `berth.state=`, `berth.debug`) take their
    /// default when invalid; stage 2 reports them.
    pub fn parse(text: &str) -> Result<Cmdline, CmdlineError> {
        let p = Params::scan(text);
        let verity = valued(VERITY, "panic, restart", p.verity)?;
        let failure = valued(FAILURE, "halt, poweroff, reboot", p.failure)?;
        let verbose = flag(VERBOSE, p.verbose)?;
        let root_hash = p
            .root_hash
            .ok_or(CmdlineError::MissingRootHash)?
            .unwrap_or_default()
            .parse()?;
        let mut ignored = Vec::new();
        Ok(Cmdline {
            root_hash,
            options: BootOptions {
                verity,
                failure,
                hostname: or_default(hostname(p.hostname), &mut ignored),
                state: or_default(
                    valued(STATE, "auto, tmpfs, reformat, wipe", p.state),
                    &mut ignored,
                ),
                verbose,
                debug_shell: or_default(flag(DEBUG, p.debug), &mut ignored),
            },
        })
    }

    /// The words the builder puts on the command line: `roothash=` and `berth.verity=`
    /// always, every other parameter only when it is not the default.
    pub fn words(&self) -> Vec<String> {
        let o = &self.options;
        let mut words = vec![
            format!("{ROOTHASH}={}", self.root_hash),
            format!("{VERITY}={}", o.verity.as_str()),
        ];
        if o.failure != FailureAction::default() {
            words.push(format!("{FAILURE}={}", o.failure.as_str()));
        }
        if let Some(name) = &o.hostname {
            words.push(format!("{HOSTNAME}={name}"));
        }
        if o.state != StateMode::default() {
            words.push(format!("{STATE}={}", o.state.as_str()));
        }
        if o.verbose {
            words.push(VERBOSE.to_owned());
        }
        if o.debug_shell {
            words.push(DEBUG.to_owned());
        }
        words
    }
}

impl fmt::Display for Cmdline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.words().join(" "))
    }
}

/// A host name the kernel and DNS accept (RFC 1123): at most 64 characters (the kernel's
/// limit), dot-separated labels of 1 to 63 letters, digits and `-`, none starting or
/// ending with `-`.
pub fn valid_hostname(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
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
mod tests;
