//! `Condition*=` and `Assert*=` (systemd.unit(5) "Conditions and Asserts"): a `!` negates,
//! a `|` makes a condition a trigger (at least one trigger must hold, and every
//! non-trigger must hold). Conditions are evaluated against a [`Facts`] source so the
//! same rules are tested on a temporary folder and run on `/`.

use std::path::{Path, PathBuf};

use thiserror::Error;

/// Which check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    PathExists,
    PathExistsGlob,
    PathIsDirectory,
    PathIsSymbolicLink,
    PathIsMountPoint,
    PathIsReadWrite,
    DirectoryNotEmpty,
    FileNotEmpty,
    FileIsExecutable,
    KernelCommandLine,
    Virtualization,
    FirstBoot,
    Capability,
    Host,
    Architecture,
    Null,
}

impl Check {
    /// The key's name without the `Condition`/`Assert` prefix.
    pub fn from_key(name: &str) -> Option<Check> {
        Some(match name {
            "PathExists" => Check::PathExists,
            "PathExistsGlob" => Check::PathExistsGlob,
            "PathIsDirectory" => Check::PathIsDirectory,
            "PathIsSymbolicLink" => Check::PathIsSymbolicLink,
            "PathIsMountPoint" => Check::PathIsMountPoint,
            "PathIsReadWrite" => Check::PathIsReadWrite,
            "DirectoryNotEmpty" => Check::DirectoryNotEmpty,
            "FileNotEmpty" => Check::FileNotEmpty,
            "FileIsExecutable" => Check::FileIsExecutable,
            "KernelCommandLine" => Check::KernelCommandLine,
            "Virtualization" => Check::Virtualization,
            "FirstBoot" => Check::FirstBoot,
            "Capability" => Check::Capability,
            "Host" => Check::Host,
            "Architecture" => Check::Architecture,
            "Null" => Check::Null,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    pub check: Check,
    pub negate: bool,
    pub trigger: bool,
    pub value: String,
    /// The key as written (`ConditionPathExists`), for status output.
    pub key: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ConditionError {
    #[error("'{0}' is not an absolute path")]
    NotAbsolute(String),
    #[error("empty value")]
    Empty,
}

/// Parses the value of `check`: `|` and `!` prefixes, then the argument.
pub fn parse(key: &str, check: Check, value: &str) -> Result<Condition, ConditionError> {
    let mut rest = value.trim();
    let trigger = match rest.strip_prefix('|') {
        Some(r) => {
            rest = r.trim_start();
            true
        }
        None => false,
    };
    let negate = match rest.strip_prefix('!') {
        Some(r) => {
            rest = r.trim_start();
            true
        }
        None => false,
    };
    if rest.is_empty() {
        return Err(ConditionError::Empty);
    }
    let path_check = !matches!(
        check,
        Check::KernelCommandLine
            | Check::Virtualization
            | Check::FirstBoot
            | Check::Capability
            | Check::Host
            | Check::Architecture
            | Check::Null
    );
    if path_check && !rest.starts_with('/') {
        return Err(ConditionError::NotAbsolute(rest.into()));
    }
    Ok(Condition {
        check,
        negate,
        trigger,
        value: rest.to_owned(),
        key: key.to_owned(),
    })
}

/// What conditions look at.
pub trait Facts {
    /// The machine's `/` (paths in conditions are below it).
    fn root(&self) -> &Path;
    fn kernel_command_line(&self) -> &str;
    /// `kvm`, `qemu`, `google`, `amazon`, `microsoft`... or `None` on bare metal.
    fn virtualization(&self) -> Option<&str>;
    fn first_boot(&self) -> bool;
    fn hostname(&self) -> &str;
    fn machine_id(&self) -> &str;
    /// Whether `path` (absolute, below [`Facts::root`]) is a mount point.
    fn is_mount_point(&self, path: &Path) -> bool;
    /// The service manager's capability bounding set; `None` when it cannot be read.
    fn capability_bounding_set(&self) -> Option<u64>;
}

fn below(facts: &dyn Facts, path: &str) -> PathBuf {
    facts.root().join(path.trim_start_matches('/'))
}

fn holds(c: &Condition, facts: &dyn Facts) -> bool {
    let v = c.value.as_str();
    match c.check {
        Check::PathExists => below(facts, v).symlink_metadata().is_ok() && below(facts, v).exists(),
        Check::PathExistsGlob => glob_exists(facts, v),
        Check::PathIsDirectory => below(facts, v).is_dir(),
        Check::PathIsSymbolicLink => below(facts, v)
            .symlink_metadata()
            .is_ok_and(|m| m.file_type().is_symlink()),
        Check::PathIsMountPoint => facts.is_mount_point(Path::new(v)),
        Check::PathIsReadWrite => below(facts, v)
            .metadata()
            .is_ok_and(|m| !m.permissions().readonly()),
        Check::DirectoryNotEmpty => {
            std::fs::read_dir(below(facts, v)).is_ok_and(|mut d| d.next().is_some())
        }
        Check::FileNotEmpty => below(facts, v)
            .metadata()
            .is_ok_and(|m| m.is_file() && m.len() > 0),
        Check::FileIsExecutable => {
            use std::os::unix::fs::PermissionsExt;
            below(facts, v)
                .metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        }
        Check::KernelCommandLine => kernel_command_line_has(facts.kernel_command_line(), v),
        Check::Virtualization => match v {
            "yes" | "true" | "1" => facts.virtualization().is_some(),
            "no" | "false" | "0" => facts.virtualization().is_none(),
            "vm" => facts.virtualization().is_some_and(|x| x != "container"),
            "container" => facts.virtualization() == Some("container"),
            name => facts.virtualization() == Some(name),
        },
        Check::FirstBoot => super::values::boolean(v).is_ok_and(|b| b == facts.first_boot()),
        // As systemd: an unknown capability, or a set that cannot be read, fails.
        Check::Capability => super::capability::number(v)
            .zip(facts.capability_bounding_set())
            .is_some_and(|(n, set)| set & (1u64 << n) != 0),
        Check::Host => v == facts.hostname() || v.eq_ignore_ascii_case(facts.machine_id()),
        Check::Architecture => matches!(v, "x86-64" | "native"),
        Check::Null => true,
    }
}

/// `foo` matches `foo` and `foo=anything`; `foo=bar` matches exactly.
fn kernel_command_line_has(cmdline: &str, want: &str) -> bool {
    cmdline.split_whitespace().any(|word| {
        if want.contains('=') {
            word == want
        } else {
            word == want || word.split_once('=').is_some_and(|(k, _)| k == want)
        }
    })
}

/// `*` and `?` in the last component only (enough for the units Debian ships).
fn glob_exists(facts: &dyn Facts, pattern: &str) -> bool {
    let (dir, name) = pattern.rsplit_once('/').unwrap_or(("", pattern));
    let Ok(entries) = std::fs::read_dir(below(facts, if dir.is_empty() { "/" } else { dir }))
    else {
        return false;
    };
    entries.flatten().any(|e| {
        e.file_name()
            .to_str()
            .is_some_and(|n| wildcard(name.as_bytes(), n.as_bytes()))
    })
}

fn wildcard(p: &[u8], s: &[u8]) -> bool {
    match (p.first(), s.first()) {
        (None, None) => true,
        (Some(b'*'), _) => wildcard(&p[1..], s) || (!s.is_empty() && wildcard(p, &s[1..])),
        (Some(b'?'), Some(_)) => wildcard(&p[1..], &s[1..]),
        (Some(a), Some(b)) if a == b => wildcard(&p[1..], &s[1..]),
        _ => false,
    }
}

/// The outcome of a unit's conditions: `Err(the first that failed)` for the status line.
pub fn evaluate<'a>(conditions: &'a [Condition], facts: &dyn Facts) -> Result<(), &'a Condition> {
    let mut triggers = conditions.iter().filter(|c| c.trigger).peekable();
    let has_triggers = triggers.peek().is_some();
    let mut first_trigger = None;
    let mut any_trigger = false;
    for c in conditions {
        let ok = holds(c, facts) != c.negate;
        if c.trigger {
            any_trigger |= ok;
            first_trigger.get_or_insert(c);
        } else if !ok {
            return Err(c);
        }
    }
    match (has_triggers, any_trigger, first_trigger) {
        (true, false, Some(c)) => Err(c),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct F {
        root: tempfile::TempDir,
        cmdline: String,
        virt: Option<String>,
        first: bool,
    }

    impl Facts for F {
        fn root(&self) -> &Path {
            self.root.path()
        }
        fn kernel_command_line(&self) -> &str {
            &self.cmdline
        }
        fn virtualization(&self) -> Option<&str> {
            self.virt.as_deref()
        }
        fn first_boot(&self) -> bool {
            self.first
        }
        fn hostname(&self) -> &str {
            "node1"
        }
        fn machine_id(&self) -> &str {
            "abc"
        }
        fn is_mount_point(&self, path: &Path) -> bool {
            path == Path::new("/")
        }
        fn capability_bounding_set(&self) -> Option<u64> {
            // Everything up to CAP_CHECKPOINT_RESTORE (40) but CAP_SYS_TIME (25).
            Some(((1u64 << 41) - 1) & !(1 << 25))
        }
    }

    fn facts() -> F {
        let root = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(root.path().join("etc/empty")).expect("mkdir");
        std::fs::create_dir_all(root.path().join("etc/full")).expect("mkdir");
        std::fs::write(root.path().join("etc/full/x"), "1").expect("write");
        std::fs::write(root.path().join("etc/zero"), "").expect("write");
        F {
            root,
            cmdline: "console=ttyS0 berth.debug quiet=1".into(),
            virt: Some("kvm".into()),
            first: true,
        }
    }

    fn c(key: &str, value: &str) -> Condition {
        let check = Check::from_key(key).expect("known");
        parse(key, check, value).expect("valid")
    }

    #[test]
    fn each_check_and_negation() {
        let f = facts();
        let yes = |k: &str, v: &str| evaluate(&[c(k, v)], &f).is_ok();
        assert!(yes("PathExists", "/etc/zero"));
        assert!(yes("PathExists", "!/etc/nope"));
        assert!(yes("PathIsDirectory", "/etc/empty"));
        assert!(yes("DirectoryNotEmpty", "/etc/full"));
        assert!(!yes("DirectoryNotEmpty", "/etc/empty"));
        assert!(!yes("FileNotEmpty", "/etc/zero"));
        assert!(yes("FileNotEmpty", "/etc/full/x"));
        assert!(yes("KernelCommandLine", "berth.debug"));
        assert!(yes("KernelCommandLine", "quiet"));
        assert!(!yes("KernelCommandLine", "quiet=2"));
        assert!(yes("Virtualization", "vm"));
        assert!(yes("Virtualization", "!container"));
        assert!(yes("FirstBoot", "yes"));
        assert!(yes("PathExistsGlob", "/etc/full/?"));
        assert!(yes("Capability", "CAP_NET_ADMIN"));
        assert!(!yes("Capability", "CAP_SYS_TIME"));
        assert!(yes("Capability", "!CAP_SYS_TIME"));
        assert!(!yes("Capability", "CAP_NOT_ONE"));
    }

    #[test]
    fn triggers_need_one_and_plain_conditions_need_all() {
        let f = facts();
        let set = [
            c("PathExists", "|/etc/nope"),
            c("PathExists", "|/etc/zero"),
            c("FirstBoot", "yes"),
        ];
        assert!(evaluate(&set, &f).is_ok());
        let set = [
            c("PathExists", "|/etc/nope"),
            c("PathExists", "|/etc/nope2"),
        ];
        assert_eq!(
            evaluate(&set, &f).map_err(|c| c.value.clone()),
            Err("/etc/nope".into())
        );
        let set = [c("PathExists", "|/etc/zero"), c("FirstBoot", "no")];
        assert!(evaluate(&set, &f).is_err());
    }

    #[test]
    fn bad_values_are_refused() {
        assert_eq!(
            parse("ConditionPathExists", Check::PathExists, "etc"),
            Err(ConditionError::NotAbsolute("etc".into()))
        );
        assert_eq!(
            parse("ConditionPathExists", Check::PathExists, "|!"),
            Err(ConditionError::Empty)
        );
    }
}
