//! A service's terminal (systemd.exec(5): `StandardInput=tty|tty-force|tty-fail`,
//! `TTYPath=`, `TTYReset=`, `TTYVHangup=`): an interactive program, such as the debug
//! variant's root shell on the serial console, runs as a unit with the terminal as its
//! controlling terminal and standard input, and its output (`inherit`, the default then)
//! on the same terminal.

use super::model::Ctx;
use super::syntax::Assignment;

/// `StandardInput=`: `/dev/null` or the terminal, and what to do when another session
/// already controls it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum StandardInput {
    #[default]
    Null,
    /// `tty`: wait until the terminal is free.
    Tty,
    /// `tty-force`: take it from the session that has it.
    TtyForce,
    /// `tty-fail`: fail the start if another session has it.
    TtyFail,
}

impl StandardInput {
    /// systemd's name, as `systemctl show` says it.
    pub fn name(self) -> &'static str {
        match self {
            StandardInput::Null => "null",
            StandardInput::Tty => "tty",
            StandardInput::TtyForce => "tty-force",
            StandardInput::TtyFail => "tty-fail",
        }
    }
}

/// The terminal settings of a service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Terminal {
    pub input: StandardInput,
    /// `TTYPath=`, `/dev/console` by default.
    pub path: String,
    /// `TTYReset=`: sane line settings before the program starts.
    pub reset: bool,
    /// `TTYVHangup=`: hang up the terminal's earlier users first.
    pub vhangup: bool,
}

impl Default for Terminal {
    fn default() -> Self {
        Terminal {
            input: StandardInput::Null,
            path: "/dev/console".into(),
            reset: false,
            vhangup: false,
        }
    }
}

impl Terminal {
    /// Whether standard input is the terminal (and `inherit` output goes there too).
    pub fn is_input(&self) -> bool {
        self.input != StandardInput::Null
    }

    /// Applies one of its keys; `false` for a key that is not one of them.
    pub(crate) fn apply(&mut self, ctx: &mut Ctx, a: &Assignment) -> bool {
        let v = a.value.as_str();
        match a.key.as_str() {
            "StandardInput" => match v {
                "" | "null" => self.input = StandardInput::Null,
                "tty" => self.input = StandardInput::Tty,
                "tty-force" => self.input = StandardInput::TtyForce,
                "tty-fail" => self.input = StandardInput::TtyFail,
                _ => ctx.warn(
                    a,
                    "unsupported standard input (null, tty, tty-force, tty-fail)",
                ),
            },
            "TTYPath" => match ctx.expand(a) {
                Some(p) if p.is_empty() => self.path = Terminal::default().path,
                Some(p) if p.starts_with("/dev/") => self.path = p,
                Some(_) => ctx.warn(a, "not a terminal below /dev"),
                None => {}
            },
            "TTYReset" => ctx.bool(a, &mut self.reset),
            "TTYVHangup" => ctx.bool(a, &mut self.vhangup),
            _ => return false,
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::unit::name::UnitName;
    use crate::unit::specifier::Host;
    use crate::unit::syntax::{self, Diagnostic};

    fn parse(text: &str) -> (Terminal, Vec<String>) {
        let name = UnitName::parse("a.service").expect("name");
        let host = Host::default();
        let mut warnings: Vec<Diagnostic> = Vec::new();
        let (doc, errors) = syntax::parse(std::path::Path::new("/a.service"), text);
        assert!(errors.is_empty(), "{errors:?}");
        let mut t = Terminal::default();
        for a in &doc.sections[0].assignments {
            let mut ctx = Ctx {
                unit: &name,
                host: &host,
                warnings: &mut warnings,
            };
            assert!(t.apply(&mut ctx, a), "{}", a.key);
        }
        (t, warnings.into_iter().map(|d| d.message).collect())
    }

    #[test]
    fn the_debug_shells_settings() {
        let (t, warnings) = parse(
            "[Service]\nStandardInput=tty-force\nTTYPath=/dev/ttyS0\nTTYReset=yes\nTTYVHangup=yes\n",
        );
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(
            t,
            Terminal {
                input: StandardInput::TtyForce,
                path: "/dev/ttyS0".into(),
                reset: true,
                vhangup: true,
            }
        );
        assert!(t.is_input());
    }

    #[test]
    fn bad_values_are_named_and_empty_ones_reset() {
        let (t, warnings) = parse(
            "[Service]\nStandardInput=tty\nStandardInput=socket\nTTYPath=/dev/tty1\n\
             TTYPath=tty1\nTTYReset=maybe\n",
        );
        assert_eq!(t.input, StandardInput::Tty);
        assert_eq!(t.path, "/dev/tty1");
        assert_eq!(warnings.len(), 3, "{warnings:?}");
        assert!(warnings[0].starts_with("StandardInput=socket: unsupported"));
        assert!(warnings[1].starts_with("TTYPath=tty1: not a terminal"));
        let (t, _) =
            parse("[Service]\nStandardInput=tty\nStandardInput=\nTTYPath=/dev/tty1\nTTYPath=\n");
        assert_eq!(t, Terminal::default());
    }
}
