//! Stage 2's part of the kernel command line. Stage 1 refuses a bad command line; stage 2
//! runs on a root stage 1 already accepted, so here a bad value is reported and the
//! default used: nothing on the command line may keep the node from booting.
//!
//! * `berth.debug`: the root shell on the serial console (the debug variant sets it).
//! * `berth.hostname=NAME`: the host name (default `berth-<first 8 of the machine-id>`).
//! * `berth.state=tmpfs`: do not use the STATE partition (a tmpfs in its place);
//!   `berth.state=reformat`: re-make a STATE that fails to mount (see `state.rs`).

use crate::cmdline::split;

/// What to do with STATE.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StateMode {
    #[default]
    Auto,
    Tmpfs,
    Reformat,
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
                ("berth.state", Some("auto")) => options.state = StateMode::Auto,
                ("berth.hostname" | "berth.state", _) => options.problems.push(word),
                _ => {}
            }
        }
        options
    }
}

/// A host name the kernel and DNS accept: 1 to 64 of `[A-Za-z0-9-.]`, no leading `-`/`.`.
pub fn valid_hostname(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && !name.starts_with(['-', '.'])
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
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
    }
}
