//! Specifiers (systemd.unit(5) "Specifiers"): `%n`, `%i`, `%H`... in unit file values,
//! resolved against the unit's name and the machine. An unknown specifier is an error for
//! that assignment, as in systemd, rather than text passed on silently.

use thiserror::Error;

use super::name::{unescape, UnitName};

/// What the machine-dependent specifiers stand for. Values are read once per load.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Host {
    /// `%H`
    pub hostname: String,
    /// `%m`
    pub machine_id: String,
    /// `%b`
    pub boot_id: String,
    /// `%v`
    pub kernel_release: String,
    /// `%o` (`ID=` of os-release)
    pub os_id: String,
    /// `%w` (`VERSION_ID=` of os-release)
    pub os_version_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SpecifierError {
    #[error("unknown specifier '%{0}'")]
    Unknown(char),
    #[error("'%' at the end of the value")]
    Trailing,
}

/// After the last `-` of a prefix (`%j`).
fn last_component(prefix: &str) -> &str {
    prefix.rsplit('-').next().unwrap_or(prefix)
}

/// Replaces every specifier in `value` for unit `unit` on `host`.
pub fn expand(value: &str, unit: &UnitName, host: &Host) -> Result<String, SpecifierError> {
    if !value.contains('%') {
        return Ok(value.to_owned());
    }
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let spec = chars.next().ok_or(SpecifierError::Trailing)?;
        let instance = unit.instance().unwrap_or("");
        let stem = unit.stem();
        match spec {
            '%' => out.push('%'),
            'n' => out.push_str(unit.as_str()),
            'N' => out.push_str(stem),
            'p' => out.push_str(unit.prefix()),
            'P' => out.push_str(&unescape(unit.prefix())),
            'i' => out.push_str(instance),
            'I' => out.push_str(&unescape(instance)),
            'j' => out.push_str(last_component(unit.prefix())),
            'J' => out.push_str(&unescape(last_component(unit.prefix()))),
            'f' => {
                let part = if unit.is_instance() {
                    instance
                } else {
                    unit.prefix()
                };
                let path = unescape(part);
                if !path.starts_with('/') {
                    out.push('/');
                }
                out.push_str(&path);
            }
            'H' => out.push_str(&host.hostname),
            'l' => out.push_str(host.hostname.split('.').next().unwrap_or("")),
            'm' => out.push_str(&host.machine_id),
            'b' => out.push_str(&host.boot_id),
            'v' => out.push_str(&host.kernel_release),
            'o' => out.push_str(&host.os_id),
            'w' => out.push_str(&host.os_version_id),
            'a' => out.push_str("x86-64"),
            // The system manager's folders (systemd.unit(5), system mode).
            't' => out.push_str("/run"),
            'T' => out.push_str("/tmp"),
            'V' => out.push_str("/var/tmp"),
            'S' => out.push_str("/var/lib"),
            'C' => out.push_str("/var/cache"),
            'L' => out.push_str("/var/log"),
            'E' => out.push_str("/etc"),
            'h' => out.push_str("/root"),
            's' => out.push_str("/bin/sh"),
            'u' => out.push_str("root"),
            'U' | 'G' => out.push('0'),
            'g' => out.push_str("root"),
            other => return Err(SpecifierError::Unknown(other)),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn host() -> Host {
        Host {
            hostname: "node1.example".into(),
            machine_id: "0123456789abcdef0123456789abcdef".into(),
            boot_id: "b007".into(),
            kernel_release: "6.1.0-56-cloud-amd64".into(),
            os_id: "berth".into(),
            os_version_id: "0.1".into(),
        }
    }

    fn x(value: &str, unit: &str) -> String {
        let unit = UnitName::parse(unit).expect("valid name");
        expand(value, &unit, &host()).expect("expands")
    }

    #[test]
    fn the_common_specifiers() {
        let u = r"getty@tty\x2d1.service";
        assert_eq!(
            x("%n|%N|%p|%i|%I", u),
            r"getty@tty\x2d1.service|getty@tty\x2d1|getty|tty\x2d1|tty-1"
        );
        assert_eq!(
            x("%H %l %m %b %t %%", u),
            "node1.example node1 0123456789abcdef0123456789abcdef b007 /run %"
        );
        assert_eq!(x("%f", r"systemd-fsck@dev-vda6.service"), "/dev/vda6");
        assert_eq!(x("no specifiers", u), "no specifiers");
    }

    #[test]
    fn unknown_and_trailing_are_errors() {
        let u = UnitName::parse("a.service").expect("valid");
        assert_eq!(expand("%q", &u, &host()), Err(SpecifierError::Unknown('q')));
        assert_eq!(expand("100%", &u, &host()), Err(SpecifierError::Trailing));
    }

    proptest! {
        #[test]
        fn never_panics(s in "(?s).{0,80}") {
            let u = UnitName::parse("foo@bar.service").expect("valid");
            let _ = expand(&s, &u, &host());
        }
    }
}
