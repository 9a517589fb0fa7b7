//! Which entries journalctl shows: `FIELD=VALUE` matches (the same field ORed, different
//! fields ANDed, `+` between groups ORs whole groups, as journalctl(1) says), `-u` units
//! (globs; a unit's own lines and PID 1's lines about it), `-t` identifiers (exact), `-k` (kernel
//! transport), the boot, `--since`/`--until`, `-p` priority ranges and `-g` patterns.

use std::collections::BTreeMap;

use crate::entry::Entry;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    #[error("Failed to add match '{0}': Invalid argument")]
    Match(String),
    #[error("Unknown log level {0}")]
    Priority(String),
    #[error("Bad pattern \"{pattern}\": {why}")]
    Pattern { pattern: String, why: String },
}

/// Field matches: a list of groups; an entry passes when any group passes; a group passes
/// when, for every field it names, the entry has one of the values named.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Matches {
    groups: Vec<BTreeMap<String, Vec<Vec<u8>>>>,
}

impl Matches {
    /// From the positional arguments (`_PID=1`, `+`, `SYSLOG_IDENTIFIER=x`).
    pub fn parse(args: &[String]) -> Result<Matches, FilterError> {
        let mut m = Matches::default();
        let mut group = BTreeMap::new();
        for arg in args {
            if arg == "+" {
                if !group.is_empty() {
                    m.groups.push(std::mem::take(&mut group));
                }
                continue;
            }
            let (field, value) = arg
                .split_once('=')
                .filter(|(f, _)| valid_field(f))
                .ok_or_else(|| FilterError::Match(arg.clone()))?;
            group
                .entry(field.to_owned())
                .or_insert_with(Vec::new)
                .push(value.as_bytes().to_vec());
        }
        if !group.is_empty() {
            m.groups.push(group);
        }
        Ok(m)
    }

    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    pub fn accepts(&self, e: &Entry) -> bool {
        self.groups.is_empty()
            || self.groups.iter().any(|g| {
                g.iter().all(|(field, values)| {
                    e.fields
                        .iter()
                        .any(|(n, v)| n == field && values.iter().any(|want| want == v))
                })
            })
    }
}

/// systemd's field names: upper-case letters, digits and `_`, not starting with a digit.
fn valid_field(f: &str) -> bool {
    !f.is_empty()
        && f.len() <= 64
        && !f.starts_with(|c: char| c.is_ascii_digit())
        && f.bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
}

/// `-p`: `err`, `3`, `warning..err` or `0..4`; a single level means 0 up to it.
pub fn priority_range(text: &str) -> Result<(u8, u8), FilterError> {
    let level = |t: &str| -> Result<u8, FilterError> {
        const NAMES: [&str; 8] = [
            "emerg", "alert", "crit", "err", "warning", "notice", "info", "debug",
        ];
        NAMES
            .iter()
            .position(|n| *n == t)
            .map(|i| i as u8)
            .or_else(|| t.parse::<u8>().ok().filter(|p| *p < 8))
            .ok_or_else(|| FilterError::Priority(t.to_owned()))
    };
    match text.split_once("..") {
        Some((a, b)) => {
            let (a, b) = (level(a)?, level(b)?);
            Ok((a.min(b), a.max(b)))
        }
        None => Ok((0, level(text)?)),
    }
}

/// `-u` patterns: shell globs (`*`, `?`, `[...]`), as journalctl takes them.
pub fn glob(pattern: &str, name: &str) -> bool {
    fn go(p: &[u8], n: &[u8]) -> bool {
        match p.split_first() {
            None => n.is_empty(),
            Some((b'*', rest)) => (0..=n.len()).any(|i| go(rest, &n[i..])),
            Some((b'?', rest)) => !n.is_empty() && go(rest, &n[1..]),
            Some((b'[', rest)) => {
                let Some(close) = rest.iter().position(|c| *c == b']') else {
                    return n.first() == Some(&b'[') && go(rest, &n[1..]);
                };
                let (set, after) = (&rest[..close], &rest[close + 1..]);
                let Some((&c, tail)) = n.split_first() else {
                    return false;
                };
                let (negate, set) = match set.split_first() {
                    Some((b'!' | b'^', s)) => (true, s),
                    _ => (false, set),
                };
                let mut hit = false;
                let mut i = 0;
                while i < set.len() {
                    if i + 2 < set.len() && set[i + 1] == b'-' {
                        hit |= set[i] <= c && c <= set[i + 2];
                        i += 3;
                    } else {
                        hit |= set[i] == c;
                        i += 1;
                    }
                }
                hit != negate && go(after, tail)
            }
            Some((c, rest)) => n.first() == Some(c) && go(rest, &n[1..]),
        }
    }
    go(pattern.as_bytes(), name.as_bytes())
}

/// systemctl's and journalctl's rule: a unit name without a type is a service.
pub fn unit_name(name: &str) -> String {
    let has_type = name.rsplit_once('.').is_some_and(|(_, t)| {
        matches!(
            t,
            "service"
                | "socket"
                | "target"
                | "device"
                | "mount"
                | "automount"
                | "swap"
                | "timer"
                | "path"
                | "slice"
                | "scope"
        )
    });
    if has_type || name.contains(['*', '?', '[']) {
        name.to_owned()
    } else {
        format!("{name}.service")
    }
}

/// Everything that decides whether an entry is shown.
#[derive(Debug, Default)]
pub struct Filter {
    pub matches: Matches,
    pub units: Vec<String>,
    pub identifiers: Vec<String>,
    pub kernel: bool,
    pub boot: Option<String>,
    pub since: Option<u64>,
    pub until: Option<u64>,
    pub priority: Option<(u8, u8)>,
    pub grep: Option<regex_lite::Regex>,
}

impl Filter {
    pub fn set_grep(&mut self, pattern: &str) -> Result<(), FilterError> {
        // journalctl's -g is case-insensitive when the pattern is all lower case.
        let insensitive = !pattern.chars().any(|c| c.is_uppercase());
        let full = if insensitive {
            format!("(?i){pattern}")
        } else {
            pattern.to_owned()
        };
        self.grep = Some(
            regex_lite::Regex::new(&full).map_err(|e| FilterError::Pattern {
                pattern: pattern.to_owned(),
                why: e.to_string(),
            })?,
        );
        Ok(())
    }

    pub fn accepts(&self, e: &Entry) -> bool {
        if let Some(boot) = &self.boot {
            if &e.boot_id != boot {
                return false;
            }
        }
        if self.since.is_some_and(|s| e.realtime < s) || self.until.is_some_and(|u| e.realtime > u)
        {
            return false;
        }
        if self.kernel && e.field("_TRANSPORT") != Some(b"kernel") {
            return false;
        }
        if let Some((lo, hi)) = self.priority {
            let p = e.priority();
            if p < lo || p > hi {
                return false;
            }
        }
        if !self.units.is_empty() && !self.units.iter().any(|u| about_unit(e, u)) {
            return false;
        }
        if !self.identifiers.is_empty() {
            let id = e.text("SYSLOG_IDENTIFIER").unwrap_or_default();
            if !self.identifiers.contains(&id) {
                return false;
            }
        }
        if let Some(re) = &self.grep {
            if !re.is_match(&e.text("MESSAGE").unwrap_or_default()) {
                return false;
            }
        }
        self.matches.accepts(e)
    }
}

/// `-u UNIT`: the unit's own lines, or PID 1's lines about it (`UNIT=`), as journalctl's
/// add_matches_for_unit does.
fn about_unit(e: &Entry, pattern: &str) -> bool {
    let is = |field: &str| e.text(field).is_some_and(|v| glob(pattern, &v));
    is("_SYSTEMD_UNIT")
        || is("OBJECT_SYSTEMD_UNIT")
        || is("COREDUMP_UNIT")
        || (e.field("_PID") == Some(b"1") && is("UNIT"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(fields: &[(&str, &str)]) -> Entry {
        Entry {
            fields: fields
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.as_bytes().to_vec()))
                .collect(),
            ..Entry::default()
        }
    }

    #[test]
    fn matches_or_within_a_field_and_across_groups() {
        let args: Vec<String> = ["_PID=1", "_PID=2", "SYSLOG_IDENTIFIER=a", "+", "_COMM=x"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        let m = Matches::parse(&args).expect("parse");
        assert!(m.accepts(&entry(&[("_PID", "2"), ("SYSLOG_IDENTIFIER", "a")])));
        assert!(!m.accepts(&entry(&[("_PID", "2"), ("SYSLOG_IDENTIFIER", "b")])));
        assert!(m.accepts(&entry(&[("_COMM", "x")])));
        assert!(Matches::parse(&["pid=1".to_owned()]).is_err());
        assert!(Matches::parse(&["/usr/bin/x".to_owned()]).is_err());
    }

    #[test]
    fn priorities() {
        assert_eq!(priority_range("err"), Ok((0, 3)));
        assert_eq!(priority_range("warning..err"), Ok((3, 4)));
        assert_eq!(priority_range("0..7"), Ok((0, 7)));
        assert!(priority_range("loud").is_err());
    }

    #[test]
    fn units_and_globs() {
        assert_eq!(unit_name("kubelet"), "kubelet.service");
        assert_eq!(unit_name("a.socket"), "a.socket");
        assert_eq!(unit_name("berth-*"), "berth-*");
        assert!(glob("berth-*.service", "berth-runtime.service"));
        assert!(glob("[a-c]?.service", "b1.service"));
        assert!(!glob("[!a-c]?.service", "b1.service"));
        let f = Filter {
            units: vec!["berth-*".into()],
            ..Filter::default()
        };
        assert!(f.accepts(&entry(&[("_SYSTEMD_UNIT", "berth-runtime.service")])));
        assert!(f.accepts(&entry(&[("_PID", "1"), ("UNIT", "berth-x.service")])));
        assert!(!f.accepts(&entry(&[("_PID", "7"), ("UNIT", "berth-x.service")])));
    }

    #[test]
    fn grep_is_case_insensitive_for_lower_case_patterns() {
        let mut f = Filter::default();
        f.set_grep("ready").expect("pattern");
        assert!(f.accepts(&entry(&[("MESSAGE", "CRI socket READY")])));
        f.set_grep("READY").expect("pattern");
        assert!(!f.accepts(&entry(&[("MESSAGE", "ready")])));
        assert!(f.set_grep("(").is_err());
    }

    proptest::proptest! {
        #[test]
        fn glob_never_panics(p in "[a-z*?\\[\\]!^-]{0,12}", n in "[a-z\\[]{0,12}") {
            let _ = glob(&p, &n);
        }
    }
}
