//! Stage 2's part of the kernel command line. Stage 1 refuses a bad command line; stage 2
//! runs on a root stage 1 already accepted, so here a bad value is reported and the
//! default used: nothing on the command line may keep the node from booting.
//!
//! * `berth.debug`: the root shell on the serial console (the debug variant sets it).
//! * `berth.hostname=NAME`: the host name; it wins over the cloud's (`cloud.rs`) and the
//!   default `berth-<first 8 of the machine-id>`.
//! * `berth.state=tmpfs`: do not use the STATE partition (a tmpfs in its place);
//!   `berth.state=reformat`: re-make a STATE that fails to mount even after `e2fsck`
//!   (see `repair.rs`); `berth.state=wipe`: re-make STATE on this boot without trying it,
//!   a factory reset (on every boot that has it: give it for one boot, from the boot
//!   menu's editor, not in a loader entry); `berth.state=auto`: the default.

use crate::cmdline::split;

/// What to do with STATE.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StateMode {
    #[default]
    Auto,
    Tmpfs,
    /// Re-make STATE when it cannot be mounted or repaired.
    Reformat,
    /// Re-make STATE unconditionally.
    Wipe,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Options {
    pub debug: bool,
    pub hostname: Option<String>,
    pub state: StateMode,
    /// Values that were ignored, for the console.
    pub problems: Vec<String>,
}

impl Options {
    pub fn parse(cmdline: &str) -> Options {
        let mut options = Options::default();
        for word in split(cmdline) {
            let (name, value) = match word.split_once('=') {
                Some((n, v)) => (n.to_owned(), Some(v.to_owned())),
                None => (word.clone(), None),
            };
            match (name.as_str(), value.as_deref()) {
                ("berth.debug", None | Some("1" | "yes" | "true" | "on")) => options.debug = true,
                ("berth.debug", Some(_)) => options.debug = false,
                ("berth.hostname", Some(v)) if valid_hostname(v) => {
                    options.hostname = Some(v.to_owned())
                }
                ("berth.state", Some("tmpfs")) => options.state = StateMode::Tmpfs,
                ("berth.state", Some("reformat")) => options.state = StateMode::Reformat,
                ("berth.state", Some("wipe")) => options.state = StateMode::Wipe,
                ("berth.state", Some("auto")) => options.state = StateMode::Auto,
                ("berth.hostname" | "berth.state", _) => options.problems.push(word),
                _ => {}
            }
        }
        options
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_from_the_command_line() {
        let o = Options::parse("console=ttyS0 roothash=00 berth.debug berth.hostname=node-1");
        assert!(o.debug);
        assert_eq!(o.hostname.as_deref(), Some("node-1"));
        assert_eq!(o.state, StateMode::Auto);
        let o = Options::parse("berth.hostname=-bad berth.state=maybe berth.state=tmpfs");
        assert_eq!(o.hostname, None);
        assert_eq!(o.state, StateMode::Tmpfs);
        assert_eq!(o.problems, ["berth.hostname=-bad", "berth.state=maybe"]);
        assert!(!Options::parse("berth.debug=0").debug);
        assert_eq!(
            Options::parse("berth.state=reformat").state,
            StateMode::Reformat
        );
        assert_eq!(Options::parse("berth.state=wipe").state, StateMode::Wipe);
    }

    #[test]
    fn host_names_follow_rfc_1123() {
        for good in ["node-1", "a", "n1.example.com", "0node", &"a".repeat(63)] {
            assert!(valid_hostname(good), "{good}");
        }
        let long = format!("{}.{}", "a".repeat(40), "b".repeat(30));
        for bad in [
            "",
            "-a",
            "a-",
            "a..b",
            ".a",
            "a.",
            "a_b",
            "a b",
            "nöde",
            &"a".repeat(64),
            &long,
        ] {
            assert!(!valid_hostname(bad), "{bad}");
        }
    }
}
