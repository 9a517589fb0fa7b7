//! `modules-load.d` and `sysctl.d`: configuration folders in `/usr/lib` (verified, from
//! the image) and their `/run` and `/etc` twins (writable). As in systemd, files are
//! taken in the order of their names across the folders, and a file in `/etc` replaces
//! the one of the same name in `/run` and `/usr/lib` (an empty file or a link to
//! `/dev/null` masks it). A bad line is reported as `berth: FAILED <what>: file:line: why`
//! and the rest is applied.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use super::engine::{JobResult, Machine};
use crate::console;
use crate::sys::Syscalls;
use berth_layout::confd::{self, lines};
use berth_layout::paths::CONFD_BASES;

/// A line that could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError {
    pub line: usize,
    pub message: String,
}

/// A [`LineError`] with its file, for the console.
#[derive(Debug, thiserror::Error)]
#[error("{}:{}: {}", file.display(), error.line, error.message)]
pub struct FileLineError {
    pub file: PathBuf,
    pub error: LineError,
}

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

/// The `*.conf` files of `name` (`sysctl.d`), in the order to apply them.
pub fn config_files(sys: &dyn Syscalls, name: &str) -> Vec<PathBuf> {
    let mut files = BTreeMap::new();
    // Lowest precedence first; a later folder replaces a file of the same name.
    for base in CONFD_BASES {
        let dir = Path::new(base).join(name);
        for entry in sys.read_dir(&dir).unwrap_or_default() {
            if entry.ends_with(".conf") {
                files.insert(entry.clone(), dir.join(entry));
            }
        }
    }
    files.into_values().collect()
}

/// Module names of a `modules-load.d` file (the parser the builder checks the image with).
pub fn parse_modules_load(text: &str) -> Vec<Result<(usize, String), LineError>> {
    confd::module_names(text)
        .into_iter()
        .map(|parsed| {
            parsed.map_err(|e| LineError {
                line: e.line,
                message: e.to_string(),
            })
        })
        .collect()
}

/// One `sysctl.d` assignment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sysctl {
    pub line: usize,
    /// `net.ipv4.ip_forward`.
    pub key: String,
    pub value: String,
    /// A leading `-`: a key the kernel lacks is not an error.
    pub optional: bool,
}

impl Sysctl {
    /// `/proc/sys/net/ipv4/ip_forward`.
    pub fn path(&self) -> PathBuf {
        // With `/` separators, dots belong to the names (sysctl(8)'s rule).
        let relative = match self.key.contains('/') {
            true => self.key.clone(),
            false => self.key.replace('.', "/"),
        };
        Path::new("/proc/sys").join(relative)
    }
}

/// The assignments of a `sysctl.d` file.
pub fn parse_sysctl(text: &str) -> Vec<Result<Sysctl, LineError>> {
    lines(text)
        .map(|(line, text)| {
            let error = |message: String| LineError { line, message };
            let (key, value) = text
                .split_once('=')
                .ok_or_else(|| error(format!("expected `key = value`, got {text:?}")))?;
            let key = key.trim();
            let (optional, key) = match key.strip_prefix('-') {
                Some(rest) => (true, rest.trim()),
                None => (false, key),
            };
            let key_ok = !key.is_empty()
                && !key.starts_with(['.', '/'])
                && !key.contains("..")
                && key
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-/:".contains(&b));
            if !key_ok {
                return Err(error(format!(
                    "{key:?} is not a sysctl key (globs are not supported)"
                )));
            }
            Ok(Sysctl {
                line,
                key: key.to_owned(),
                value: value.trim().to_owned(),
                optional,
            })
        })
        .collect()
}

fn report(m: &Machine, what: &str, file: &Path, error: LineError) {
    let error = FileLineError {
        file: file.to_path_buf(),
        error,
    };
    m.log(&console::failure_line(what, &error));
}

/// Loads the modules named in `modules-load.d`, one line after another. Not side by
/// side as stage 1's chains are: here PID 1's own steps keep the second CPU busy, and a
/// third thread made the unit slower, not faster (images booted alternately under TCG,
/// median of three quiet boots each: `berth: modules loaded` 0.30 s after PID 1's start
/// one line at a time, 0.37 s with the lines side by side).
pub fn modules_load(m: &mut Machine) -> JobResult {
    let files = config_files(m.sys, "modules-load.d");
    let loader = m.modules()?;
    let mut names = Vec::new();
    for file in files {
        let text = match m.sys.read_to_string(&file) {
            Ok(text) => text,
            Err(e) => {
                m.log(&format!(
                    "berth: FAILED modules-load: cannot read {}: {e}",
                    file.display()
                ));
                continue;
            }
        };
        for parsed in parse_modules_load(&text) {
            let (line, name) = match parsed {
                Ok(found) => found,
                Err(e) => {
                    report(m, "modules-load", &file, e);
                    continue;
                }
            };
            match loader.load(m.sys, &[&name], &mut |_, _| {}) {
                Ok(_) => names.push(name),
                Err(e) => {
                    let message = console::chain(&e);
                    report(m, "modules-load", &file, LineError { line, message });
                }
            }
        }
    }
    m.log(&format!("berth: modules loaded: {}", names.join(" ")));
    Ok(())
}

/// Applies `sysctl.d`.
pub fn sysctl(m: &mut Machine) -> JobResult {
    let mut applied = 0;
    for file in config_files(m.sys, "sysctl.d") {
        let text = match m.sys.read_to_string(&file) {
            Ok(text) => text,
            Err(e) => {
                m.log(&format!(
                    "berth: FAILED sysctl: cannot read {}: {e}",
                    file.display()
                ));
                continue;
            }
        };
        for parsed in parse_sysctl(&text) {
            let setting = match parsed {
                Ok(setting) => setting,
                Err(e) => {
                    report(m, "sysctl", &file, e);
                    continue;
                }
            };
            let path = setting.path();
            match m.sys.write_file(&path, setting.value.as_bytes()) {
                Ok(()) => applied += 1,
                Err(e) if setting.optional && e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    let message = format!("cannot set {} = {}: {e}", setting.key, setting.value);
                    report(
                        m,
                        "sysctl",
                        &file,
                        LineError {
                            line: setting.line,
                            message,
                        },
                    );
                }
            }
        }
    }
    m.log(&format!("berth: sysctl applied {applied} settings"));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn every_line_loads_and_failures_are_said_in_line_order() {
        use super::super::tests::machine;
        use crate::sys::fake::Call;
        use berth_layout::cmdline::BootOptions;
        let f = machine(false, 0);
        // Six lines, two of them unknown, two loading a module a line before loaded.
        f.write(
            "/usr/lib/modules-load.d/berth.conf",
            "bridge\nnosuch\noverlay\nbr_netfilter\noverlay\nalso_missing\n",
        );
        let mut m = Machine::new(&f, BootOptions::default());
        modules_load(&mut m).unwrap();
        let logs = f.logs();
        let said: Vec<&String> = logs.iter().filter(|l| l.contains("modules")).collect();
        assert_eq!(said.len(), 3, "{said:?}");
        assert!(
            said[0].contains("berth.conf:2: ") && said[0].contains("nosuch"),
            "{said:?}"
        );
        assert!(said[1].contains("berth.conf:6: ") && said[1].contains("also_missing"));
        assert_eq!(
            said[2],
            "berth: modules loaded: bridge overlay br_netfilter overlay"
        );
        let loads = f
            .calls()
            .into_iter()
            .filter(|c| matches!(c, Call::LoadModule(_)))
            .count();
        // The fake's /sys/module never gains them, so each line inserts its whole chain:
        // bridge; overlay; bridge and br_netfilter; overlay.
        assert_eq!(loads, 5);
    }

    #[test]
    fn modules_load_lines() {
        let parsed = parse_modules_load("# k8s\noverlay\n\n; x\nbr_netfilter\nbad name!\n");
        assert_eq!(parsed[0], Ok((2, "overlay".into())));
        assert_eq!(parsed[1], Ok((5, "br_netfilter".into())));
        assert_eq!(parsed[2].as_ref().unwrap_err().line, 6);
    }

    #[test]
    fn sysctl_lines() {
        let parsed = parse_sysctl(
            "net.ipv4.ip_forward = 1\n-net.bridge.bridge-nf-call-iptables=1\n\
             kernel/yama/ptrace_scope = 2\nno equals\nnet.*.x = 1\n",
        );
        let ok: Vec<&Sysctl> = parsed.iter().filter_map(|p| p.as_ref().ok()).collect();
        assert_eq!(ok[0].path(), Path::new("/proc/sys/net/ipv4/ip_forward"));
        assert_eq!(ok[0].value, "1");
        assert!(ok[1].optional);
        assert_eq!(
            ok[2].path(),
            Path::new("/proc/sys/kernel/yama/ptrace_scope")
        );
        let errors: Vec<usize> = parsed
            .iter()
            .filter_map(|p| p.as_ref().err())
            .map(|e| e.line)
            .collect();
        assert_eq!(errors, [4, 5]);
        let e = FileLineError {
            file: "/etc/sysctl.d/a.conf".into(),
            error: parsed[3].clone().unwrap_err(),
        };
        assert!(
            e.to_string()
                .starts_with("/etc/sysctl.d/a.conf:4: expected"),
            "{e}"
        );
    }

    proptest! {
        #[test]
        fn parsers_never_panic(text in "\\PC{0,300}") {
            for s in parse_sysctl(&text).into_iter().flatten() {
                prop_assert!(s.path().starts_with("/proc/sys"));
                prop_assert!(!s.key.contains(".."));
            }
            let _ = parse_modules_load(&text);
        }
    }
}
