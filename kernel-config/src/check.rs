//! Holds a kernel's `.config` against a fragment of required options. `CONFIG_X=y` in the
//! fragment must be built in; `CONFIG_X=m` is satisfied by built in or module. Every
//! missing option is reported at once, so one build tells the whole story.

use std::collections::BTreeMap;
use std::fmt;

/// How an option is set in a kernel config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setting {
    BuiltIn,
    Module,
}

/// One unmet requirement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unmet {
    pub option: String,
    pub wanted: Setting,
    pub found: Option<Setting>,
}

impl fmt::Display for Unmet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let wanted = match self.wanted {
            Setting::BuiltIn => "built in (=y)",
            Setting::Module => "built in or a module (=y or =m)",
        };
        match self.found {
            None => write!(f, "{} must be {wanted} but is not set", self.option),
            Some(_) => write!(f, "{} must be {wanted} but is a module (=m)", self.option),
        }
    }
}

/// Errors in the fragment itself.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error("required.config line {line}: {text:?} is not `CONFIG_NAME=y` or `CONFIG_NAME=m`")]
    BadFragmentLine { line: usize, text: String },
    #[error("the kernel config lacks {} required option(s):\n  {}", .0.len(), .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n  "))]
    Unmet(Vec<Unmet>),
}

/// Parses a kernel `.config`: `CONFIG_X=y|m` lines (anything else is ignored, as
/// `# CONFIG_X is not set` and string/number options are never requirements here).
pub fn parse_config(text: &str) -> BTreeMap<String, Setting> {
    text.lines()
        .filter_map(|line| {
            let (name, value) = line.trim().split_once('=')?;
            let setting = match value {
                "y" => Setting::BuiltIn,
                "m" => Setting::Module,
                _ => return None,
            };
            name.starts_with("CONFIG_")
                .then(|| (name.to_string(), setting))
        })
        .collect()
}

/// Checks `config` (a kernel's `.config`) against `fragment`.
pub fn check(config: &str, fragment: &str) -> Result<(), CheckError> {
    let have = parse_config(config);
    let mut unmet = Vec::new();
    for (index, raw) in fragment.lines().enumerate() {
        let text = raw.trim();
        if text.is_empty() || text.starts_with('#') {
            continue;
        }
        let wanted = match text.split_once('=') {
            Some((name, "y")) if name.starts_with("CONFIG_") => (name, Setting::BuiltIn),
            Some((name, "m")) if name.starts_with("CONFIG_") => (name, Setting::Module),
            _ => {
                return Err(CheckError::BadFragmentLine {
                    line: index + 1,
                    text: text.to_string(),
                })
            }
        };
        let found = have.get(wanted.0).copied();
        let ok = matches!(
            (wanted.1, found),
            (_, Some(Setting::BuiltIn)) | (Setting::Module, Some(Setting::Module))
        );
        if !ok {
            unmet.push(Unmet {
                option: wanted.0.to_string(),
                wanted: wanted.1,
                found,
            });
        }
    }
    if unmet.is_empty() {
        Ok(())
    } else {
        Err(CheckError::Unmet(unmet))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_satisfies_module_but_not_the_reverse() {
        let config = "CONFIG_A=y\nCONFIG_B=m\n# CONFIG_C is not set\nCONFIG_D=\"text\"\n";
        assert!(check(config, "CONFIG_A=m\nCONFIG_B=m\n# comment\n\n").is_ok());
        let err = check(config, "CONFIG_A=y\nCONFIG_B=y\nCONFIG_C=m\nCONFIG_D=y").unwrap_err();
        let text = err.to_string();
        assert!(text.contains("3 required option(s)"), "{text}");
        assert!(
            text.contains("CONFIG_B must be built in (=y) but is a module (=m)"),
            "{text}"
        );
        assert!(
            text.contains("CONFIG_C must be built in or a module (=y or =m) but is not set"),
            "{text}"
        );
        assert!(text.contains("CONFIG_D must be built in"), "{text}");
        assert!(!text.contains("CONFIG_A"), "{text}");
    }

    #[test]
    fn bad_fragment_lines_are_named() {
        let err = check("", "CONFIG_A=y\nCONFIG_B=q\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("line 2") && err.contains("CONFIG_B=q"),
            "{err}"
        );
    }

    #[test]
    fn the_shipped_fragment_parses() {
        // Every line is well formed: against an empty config, all are unmet, none bad.
        match check("", crate::REQUIRED) {
            Err(CheckError::Unmet(list)) => assert!(list.len() > 30),
            other => panic!("{other:?}"),
        }
    }
}
