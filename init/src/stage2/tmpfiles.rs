//! A `tmpfiles.d` subset, applied once at boot after the mounts: the types Berth's own
//! defaults and typical node add-ons use.
//!
//! | type | effect |
//! | --- | --- |
//! | `d` | create a directory (and its parents), then set its mode and owner |
//! | `D` | as `d`, and empty it (at boot, as `systemd-tmpfiles --boot --remove` does) |
//! | `f` | create a file with the argument as content if it does not exist (`f+`: always write) |
//! | `L` | create a symbolic link to the argument if nothing is there |
//! | `z` | set the mode and owner of an existing path |
//!
//! Fields are `Type Path Mode User Group Age Argument`; `-` means the default (mode 0755
//! for directories, 0644 for files, owner root). The `!` modifier (boot only) is accepted;
//! users and groups are numbers or names from `/etc/passwd` and `/etc/group`. Other types,
//! globs and `%` specifiers are reported per line (`file:line`) and skipped; boot goes on.

use std::path::{Path, PathBuf};

use super::confd::{config_files, FileLineError, LineError};
use super::engine::{JobResult, Machine};
use crate::console;
use crate::sys::Syscalls;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Dir,
    EmptiedDir,
    File { always: bool },
    Link,
    Adjust,
}

/// A user or group: a number, or a name resolved when applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Id {
    Number(u32),
    Name(String),
}

/// One usable line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub line: usize,
    pub kind: Kind,
    pub path: PathBuf,
    pub mode: Option<u32>,
    pub user: Option<Id>,
    pub group: Option<Id>,
    pub argument: Option<String>,
}

fn id(field: &str) -> Option<Id> {
    match field {
        "-" => None,
        f => Some(
            f.parse()
                .map_or_else(|_| Id::Name(f.to_owned()), Id::Number),
        ),
    }
}

/// Parses a `tmpfiles.d` file.
pub fn parse(text: &str) -> Vec<Result<Entry, LineError>> {
    text.lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim()))
        .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'))
        .map(|(line, text)| parse_line(line, text))
        .collect()
}

fn parse_line(line: usize, text: &str) -> Result<Entry, LineError> {
    let error = |message: String| LineError { line, message };
    let fields: Vec<&str> = text
        .splitn(7, char::is_whitespace)
        .filter(|f| !f.is_empty())
        .collect();
    let (Some(kind), Some(path)) = (fields.first(), fields.get(1)) else {
        return Err(error(format!("expected `Type Path …`, got {text:?}")));
    };
    let modifiers: String = kind.chars().skip(1).collect();
    if modifiers.chars().any(|c| c != '!' && c != '+') {
        return Err(error(format!(
            "type {kind:?}: only the ! and + modifiers are supported"
        )));
    }
    let kind = match kind.chars().next() {
        Some('d') => Kind::Dir,
        Some('D') => Kind::EmptiedDir,
        Some('f') => Kind::File {
            always: modifiers.contains('+'),
        },
        Some('L') => Kind::Link,
        Some('z') => Kind::Adjust,
        _ => {
            return Err(error(format!(
                "type {kind:?} is not supported (d, D, f, L, z)"
            )))
        }
    };
    if !path.starts_with('/')
        || path.contains(['*', '?', '[', '%'])
        || path.split('/').any(|c| c == "..")
    {
        return Err(error(format!(
            "{path:?} is not an absolute path without globs, specifiers or .."
        )));
    }
    let field = |i: usize| fields.get(i).copied().unwrap_or("-");
    let mode = match field(2) {
        "-" => None,
        m => Some(
            u32::from_str_radix(m, 8)
                .ok()
                .filter(|v| *v <= 0o7777)
                .ok_or_else(|| error(format!("mode {m:?} is not octal (0000 to 7777)")))?,
        ),
    };
    let argument = fields
        .get(6)
        .map(|a| a.trim().to_owned())
        .filter(|a| a != "-");
    if kind == Kind::Link && argument.is_none() {
        return Err(error("L needs a target as its argument".into()));
    }
    Ok(Entry {
        line,
        kind,
        path: PathBuf::from(path),
        mode,
        user: id(field(3)),
        group: id(field(4)),
        argument,
    })
}

/// Looks `name` up in a passwd or group file (`name:x:ID:…`).
fn lookup(sys: &dyn Syscalls, file: &str, name: &str) -> Option<u32> {
    let text = sys.read_to_string(Path::new(file)).ok()?;
    text.lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.first() == Some(&name))
        .and_then(|f| f.get(2)?.parse().ok())
}

fn resolve(sys: &dyn Syscalls, id: &Option<Id>, file: &str) -> Result<u32, String> {
    match id {
        None => Ok(0),
        Some(Id::Number(n)) => Ok(*n),
        Some(Id::Name(name)) => {
            lookup(sys, file, name).ok_or_else(|| format!("{name:?} is not in {file}"))
        }
    }
}

/// Applies one entry.
pub fn apply(sys: &dyn Syscalls, entry: &Entry) -> Result<(), String> {
    let path = &entry.path;
    let shown = path.display();
    let uid = resolve(sys, &entry.user, "/etc/passwd")?;
    let gid = resolve(sys, &entry.group, "/etc/group")?;
    let owned = entry.user.is_some() || entry.group.is_some();
    let adjust = |default_mode: Option<u32>| -> Result<(), String> {
        if let Some(mode) = entry.mode.or(default_mode) {
            sys.chmod(path, mode)
                .map_err(|e| format!("cannot chmod {shown}: {e}"))?;
        }
        if owned {
            sys.chown(path, uid, gid)
                .map_err(|e| format!("cannot chown {shown}: {e}"))?;
        }
        Ok(())
    };
    match entry.kind {
        Kind::Dir | Kind::EmptiedDir => {
            let existed = sys.exists(path);
            for dir in path
                .ancestors()
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .skip(1)
            {
                sys.mkdir(dir)
                    .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
            }
            if existed && entry.kind == Kind::EmptiedDir {
                sys.remove_dir_contents(path)
                    .map_err(|e| format!("cannot empty {shown}: {e}"))?;
            }
            adjust(Some(0o755).filter(|_| !existed))
        }
        Kind::File { always } => {
            let existed = sys.exists(path);
            if !existed || always {
                let content = entry.argument.as_deref().unwrap_or("");
                sys.write_file(path, content.as_bytes())
                    .map_err(|e| format!("cannot write {shown}: {e}"))?;
            }
            adjust(Some(0o644).filter(|_| !existed))
        }
        Kind::Link => {
            let target = entry.argument.as_deref().unwrap_or_default();
            match sys.symlink(Path::new(target), path) {
                Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
                    Err(format!("cannot link {shown}: {e}"))
                }
                _ => Ok(()),
            }
        }
        Kind::Adjust if sys.exists(path) => adjust(None),
        Kind::Adjust => Ok(()),
    }
}

/// The `tmpfiles` job.
pub fn tmpfiles(m: &mut Machine) -> JobResult {
    let mut applied = 0;
    for file in config_files(m.sys, "tmpfiles.d") {
        let text = match m.sys.read_to_string(&file) {
            Ok(text) => text,
            Err(e) => {
                m.log(&format!(
                    "berth: FAILED tmpfiles: cannot read {}: {e}",
                    file.display()
                ));
                continue;
            }
        };
        for parsed in parse(&text) {
            let result = parsed.and_then(|entry| {
                apply(m.sys, &entry).map_err(|message| LineError {
                    line: entry.line,
                    message,
                })
            });
            match result {
                Ok(()) => applied += 1,
                Err(error) => {
                    let error = FileLineError {
                        file: file.clone(),
                        error,
                    };
                    m.log(&console::failure_line("tmpfiles", &error));
                }
            }
        }
    }
    m.log(&format!("berth: tmpfiles applied {applied} lines"));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn lines_of_every_supported_type() {
        let text = "# comment\n\
                    d /run/berth 0755 root root -\n\
                    D! /run/berth/tmp 1777 - - -\n\
                    f+ /etc/motd 0644 - - - hello world\n\
                    L /etc/mtab - - - - ../proc/self/mounts\n\
                    z /var/lib/kubelet 0750 0 0\n\
                    x /tmp/a\n\
                    d relative\n\
                    d /run/%m\n\
                    d /run/a 999\n\
                    L /etc/broken\n";
        let parsed = parse(text);
        let ok: Vec<&Entry> = parsed.iter().filter_map(|p| p.as_ref().ok()).collect();
        assert_eq!(ok.len(), 5);
        assert_eq!(ok[0].kind, Kind::Dir);
        assert_eq!(ok[0].user, Some(Id::Name("root".into())));
        assert_eq!(ok[1].kind, Kind::EmptiedDir);
        assert_eq!(ok[1].mode, Some(0o1777));
        assert_eq!(ok[2].kind, Kind::File { always: true });
        assert_eq!(ok[2].argument.as_deref(), Some("hello world"));
        assert_eq!(ok[3].argument.as_deref(), Some("../proc/self/mounts"));
        assert_eq!(ok[4].user, Some(Id::Number(0)));
        let lines: Vec<usize> = parsed
            .iter()
            .filter_map(|p| p.as_ref().err())
            .map(|e| e.line)
            .collect();
        assert_eq!(lines, [7, 8, 9, 10, 11]);
    }

    proptest! {
        #[test]
        fn parsing_never_panics(text in "\\PC{0,300}") {
            for entry in parse(&text).into_iter().flatten() {
                prop_assert!(entry.path.is_absolute());
            }
        }
    }
}
