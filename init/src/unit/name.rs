//! Unit names (systemd.unit(5) "Description"): `prefix[@instance].type`, templates
//! (`getty@.service`) and instances (`getty@ttyS0.service`), and systemd's path-safe
//! escaping (`\x2d` for `-` in an instance, `systemd-escape(1)`), which `%I` undoes.

use std::fmt;

use thiserror::Error;

/// systemd's unit types. Berth runs the first seven; the others are names other units may
/// refer to (`After=dev-vda6.device`), which Berth recognises and says it ignores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum UnitType {
    Service,
    Socket,
    Target,
    Timer,
    Path,
    Mount,
    Slice,
    Device,
    Swap,
    Automount,
    Scope,
}

impl UnitType {
    pub const ALL: [UnitType; 11] = [
        UnitType::Service,
        UnitType::Socket,
        UnitType::Target,
        UnitType::Timer,
        UnitType::Path,
        UnitType::Mount,
        UnitType::Slice,
        UnitType::Device,
        UnitType::Swap,
        UnitType::Automount,
        UnitType::Scope,
    ];

    /// Whether Berth's service manager has units of this type.
    pub fn is_supported(self) -> bool {
        !matches!(
            self,
            UnitType::Device | UnitType::Swap | UnitType::Automount | UnitType::Scope
        )
    }

    /// The suffix without the dot, also the name of the type's own section.
    pub fn suffix(self) -> &'static str {
        match self {
            UnitType::Service => "service",
            UnitType::Socket => "socket",
            UnitType::Target => "target",
            UnitType::Timer => "timer",
            UnitType::Path => "path",
            UnitType::Mount => "mount",
            UnitType::Slice => "slice",
            UnitType::Device => "device",
            UnitType::Swap => "swap",
            UnitType::Automount => "automount",
            UnitType::Scope => "scope",
        }
    }

    /// `[Service]`, `[Socket]`...; targets have no section of their own.
    pub fn section(self) -> Option<&'static str> {
        match self {
            UnitType::Service => Some("Service"),
            UnitType::Socket => Some("Socket"),
            UnitType::Target => None,
            UnitType::Timer => Some("Timer"),
            UnitType::Path => Some("Path"),
            UnitType::Mount => Some("Mount"),
            UnitType::Slice => Some("Slice"),
            UnitType::Device => None,
            UnitType::Swap => Some("Swap"),
            UnitType::Automount => Some("Automount"),
            UnitType::Scope => Some("Scope"),
        }
    }
}

/// A name that is not a valid unit name.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum NameError {
    #[error("'{0}' is not a unit name: no known type suffix (.service, .target, ...)")]
    NoType(String),
    #[error("'{0}' is not a unit name: {1}")]
    Invalid(String, &'static str),
}

/// Longest unit name systemd accepts (UNIT_NAME_MAX).
pub const UNIT_NAME_MAX: usize = 255;

/// A valid unit name: a plain unit, a template (`foo@.service`) or an instance
/// (`foo@bar.service`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UnitName {
    name: String,
    unit_type: UnitType,
}

impl UnitName {
    pub fn parse(name: &str) -> Result<UnitName, NameError> {
        if name.len() > UNIT_NAME_MAX {
            return Err(NameError::Invalid(name.into(), "longer than 255 bytes"));
        }
        let (stem, suffix) = name
            .rsplit_once('.')
            .ok_or_else(|| NameError::NoType(name.into()))?;
        let unit_type = UnitType::ALL
            .into_iter()
            .find(|t| t.suffix() == suffix)
            .ok_or_else(|| NameError::NoType(name.into()))?;
        let (prefix, instance) = match stem.split_once('@') {
            Some((p, i)) => (p, Some(i)),
            None => (stem, None),
        };
        if prefix.is_empty() {
            return Err(NameError::Invalid(name.into(), "empty prefix"));
        }
        let valid = |s: &str| {
            s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b":-_.\\".contains(&b))
        };
        if !valid(prefix) {
            return Err(NameError::Invalid(
                name.into(),
                "invalid character in prefix",
            ));
        }
        if let Some(i) = instance {
            if i.contains('@')
                || !i
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b":-_.\\@".contains(&b))
            {
                return Err(NameError::Invalid(
                    name.into(),
                    "invalid character in instance",
                ));
            }
        }
        Ok(UnitName {
            name: name.to_owned(),
            unit_type,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.name
    }

    pub fn unit_type(&self) -> UnitType {
        self.unit_type
    }

    /// The name without the type suffix (`%N`).
    pub fn stem(&self) -> &str {
        let cut = self.name.len() - self.unit_type.suffix().len() - 1;
        &self.name[..cut]
    }

    /// Before the `@`, or the whole stem (`%p`).
    pub fn prefix(&self) -> &str {
        self.stem().split_once('@').map_or(self.stem(), |(p, _)| p)
    }

    /// After the `@`, empty for a template; `None` for a plain unit (`%i`).
    pub fn instance(&self) -> Option<&str> {
        self.stem().split_once('@').map(|(_, i)| i)
    }

    pub fn is_template(&self) -> bool {
        self.instance() == Some("")
    }

    pub fn is_instance(&self) -> bool {
        matches!(self.instance(), Some(i) if !i.is_empty())
    }

    /// `foo@.service` for `foo@bar.service`.
    pub fn template(&self) -> Option<UnitName> {
        self.is_instance().then(|| UnitName {
            name: format!("{}@.{}", self.prefix(), self.unit_type.suffix()),
            unit_type: self.unit_type,
        })
    }

    /// `foo@bar.service` from the template `foo@.service`.
    pub fn with_instance(&self, instance: &str) -> Result<UnitName, NameError> {
        UnitName::parse(&format!(
            "{}@{}.{}",
            self.prefix(),
            instance,
            self.unit_type.suffix()
        ))
    }

    /// The folder of drop-ins for this exact name (`foo.service.d`).
    pub fn dropin_dir(&self) -> String {
        format!("{}.d", self.name)
    }

    /// Drop-in folders that apply, most general first, as systemd walks them: the type
    /// (`service.d`), each `-`-separated prefix (`foo-.service.d` for `foo-bar.service`),
    /// the template (`foo@.service.d`), then the name itself.
    pub fn dropin_dirs(&self) -> Vec<String> {
        let suffix = self.unit_type.suffix();
        let mut dirs = vec![format!("{suffix}.d")];
        let prefix = self.prefix();
        for (i, _) in prefix.match_indices('-') {
            dirs.push(format!("{}-.{suffix}.d", &prefix[..i]));
        }
        if let Some(t) = self.template() {
            dirs.push(t.dropin_dir());
        }
        dirs.push(self.dropin_dir());
        dirs
    }
}

impl fmt::Display for UnitName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

/// Undoes systemd's escaping of a name part (`%I`, `%P`): `-` is `/`, `\xNN` a byte.
pub fn unescape(s: &str) -> String {
    let mut out = Vec::with_capacity(s.len());
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'-' => {
                out.push(b'/');
                i += 1;
            }
            b'\\' if i + 3 < b.len() && b[i + 1] == b'x' => {
                match std::str::from_utf8(&b[i + 2..i + 4])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                {
                    Some(v) => {
                        out.push(v);
                        i += 4;
                    }
                    None => {
                        out.push(b[i]);
                        i += 1;
                    }
                }
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn n(s: &str) -> UnitName {
        UnitName::parse(s).expect("valid")
    }

    #[test]
    fn parts_of_names() {
        let u = n("getty@ttyS0.service");
        assert_eq!(u.unit_type(), UnitType::Service);
        assert_eq!(
            (u.stem(), u.prefix(), u.instance()),
            ("getty@ttyS0", "getty", Some("ttyS0"))
        );
        assert_eq!(u.template().expect("instance").as_str(), "getty@.service");
        assert!(n("getty@.service").is_template());
        assert_eq!(n("multi-user.target").instance(), None);
        assert_eq!(
            n("getty@.service")
                .with_instance("tty1")
                .expect("valid")
                .as_str(),
            "getty@tty1.service"
        );
    }

    #[test]
    fn invalid_names_are_refused() {
        assert!(matches!(UnitName::parse("foo"), Err(NameError::NoType(_))));
        assert!(matches!(
            UnitName::parse("foo.frob"),
            Err(NameError::NoType(_))
        ));
        let device = UnitName::parse("dev-vda6.device").expect("valid");
        assert!(!device.unit_type().is_supported());
        assert!(UnitName::parse(".service").is_err());
        assert!(UnitName::parse("a b.service").is_err());
        assert!(UnitName::parse("a@b@c.service").is_err());
        assert!(UnitName::parse(&format!("{}.service", "a".repeat(250))).is_err());
    }

    #[test]
    fn dropin_dirs_from_general_to_specific() {
        assert_eq!(
            n("foo-bar-baz@x.service").dropin_dirs(),
            [
                "service.d",
                "foo-.service.d",
                "foo-bar-.service.d",
                "foo-bar-baz@.service.d",
                "foo-bar-baz@x.service.d"
            ]
        );
    }

    #[test]
    fn unescape_paths() {
        assert_eq!(
            unescape(r"dev-disk-by\x2dlabel-STATE"),
            "dev/disk/by-label/STATE"
        );
        assert_eq!(unescape(r"bad\x"), r"bad\x");
    }

    proptest! {
        #[test]
        fn parse_never_panics(s in "(?s).{0,80}") {
            if let Ok(u) = UnitName::parse(&s) {
                prop_assert_eq!(u.as_str(), s.as_str());
                let _ = (u.prefix(), u.instance(), u.dropin_dirs(), u.template());
            }
            let _ = unescape(&s);
        }
    }
}
