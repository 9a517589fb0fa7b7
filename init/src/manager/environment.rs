//! What a unit's process starts with (systemd.exec(5) "Environment variables in spawned
//! processes", "Credentials"): the fixed base, `Environment=`, `EnvironmentFile=`,
//! `PassEnvironment=`, `UnsetEnvironment=`, the manager's own variables, and the user and
//! groups from `/etc/passwd` and `/etc/group`.

use std::collections::BTreeMap;
use std::path::Path;

use thiserror::Error;

use crate::sys::Syscalls;
use crate::unit::exec::is_env_name;
use crate::unit::service::Service;
use crate::unit::words::{self, Mode};

/// systemd's fixed PATH for system services.
pub const SERVICE_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin";

#[derive(Debug, Error, PartialEq, Eq)]
pub enum EnvError {
    #[error("cannot read environment file {path}: {why}")]
    File { path: String, why: String },
    #[error("{path}:{line}: {why}")]
    Line {
        path: String,
        line: usize,
        why: String,
    },
    #[error("user {0} not found in /etc/passwd")]
    NoUser(String),
    #[error("group {0} not found in /etc/group")]
    NoGroup(String),
}

/// Parses an `EnvironmentFile=`: `KEY=VALUE` lines, `#`/`;` comments, quoted values with
/// escapes, `\` continuation; a bad line names the file and line.
pub fn parse_environment_file(path: &str, text: &str) -> Result<Vec<(String, String)>, EnvError> {
    let mut out = Vec::new();
    let mut pending = String::new();
    let mut start = 0;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if pending.is_empty() {
            start = i + 1;
            if line.is_empty() || line.starts_with(['#', ';']) {
                continue;
            }
        }
        if let Some(body) = line.strip_suffix('\\') {
            pending.push_str(body);
            continue;
        }
        pending.push_str(line);
        let entry = std::mem::take(&mut pending);
        let entry = entry.strip_prefix("export ").unwrap_or(&entry);
        let bad = |why: &str| EnvError::Line {
            path: path.into(),
            line: start,
            why: why.into(),
        };
        let (key, value) = entry.split_once('=').ok_or_else(|| bad("missing '='"))?;
        let key = key.trim();
        if !is_env_name(key) {
            return Err(bad("not a variable name"));
        }
        let value = value.trim();
        let value = if value.starts_with(['"', '\'']) {
            let words = words::split(value, Mode::EXEC).map_err(|e| bad(&e.to_string()))?;
            words.join(" ")
        } else {
            value.to_owned()
        };
        out.push((key.to_owned(), value));
    }
    Ok(out)
}

/// A user from `/etc/passwd`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: String,
    pub shell: String,
}

/// Looks `name` (or a number) up in `/etc/passwd`.
pub fn user(sys: &dyn Syscalls, name: &str) -> Result<User, EnvError> {
    let text = sys
        .read_to_string(Path::new("/etc/passwd"))
        .unwrap_or_default();
    for line in text.lines() {
        let f: Vec<&str> = line.split(':').collect();
        if f.len() < 7 {
            continue;
        }
        if f[0] == name || f[2] == name {
            let (Ok(uid), Ok(gid)) = (f[2].parse(), f[3].parse()) else {
                continue;
            };
            return Ok(User {
                name: f[0].into(),
                uid,
                gid,
                home: f[5].into(),
                shell: f[6].into(),
            });
        }
    }
    Err(EnvError::NoUser(name.into()))
}

/// Looks a group name (or number) up in `/etc/group`.
pub fn group(sys: &dyn Syscalls, name: &str) -> Result<u32, EnvError> {
    if let Ok(n) = name.parse() {
        return Ok(n);
    }
    let text = sys
        .read_to_string(Path::new("/etc/group"))
        .unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() >= 3 && f[0] == name)
                .then(|| f[2].parse().ok())
                .flatten()
        })
        .next()
        .ok_or_else(|| EnvError::NoGroup(name.into()))
}

/// The environment of a unit's command, in systemd's order: base, then the manager's
/// variables, `Environment=`, `EnvironmentFile=` (later wins), `PassEnvironment=` from
/// PID 1's own, and `UnsetEnvironment=` last.
pub fn environment(
    sys: &dyn Syscalls,
    svc: &Service,
    manager_vars: &[(&str, String)],
    user: Option<&User>,
    own: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, EnvError> {
    let mut env = BTreeMap::new();
    env.insert("PATH".to_owned(), SERVICE_PATH.to_owned());
    if let Some(u) = user {
        env.insert("HOME".into(), u.home.clone());
        env.insert("USER".into(), u.name.clone());
        env.insert("LOGNAME".into(), u.name.clone());
        env.insert("SHELL".into(), u.shell.clone());
    }
    for (k, v) in manager_vars {
        env.insert((*k).to_owned(), v.clone());
    }
    for (k, v) in &svc.environment {
        env.insert(k.clone(), v.clone());
    }
    for (path, optional) in &svc.environment_files {
        match sys.read_to_string(Path::new(path)) {
            Ok(text) => {
                for (k, v) in parse_environment_file(path, &text)? {
                    env.insert(k, v);
                }
            }
            Err(_) if *optional => {}
            Err(e) => {
                return Err(EnvError::File {
                    path: path.clone(),
                    why: e.to_string(),
                })
            }
        }
    }
    for name in &svc.pass_environment {
        if let Some(v) = own.get(name) {
            env.insert(name.clone(), v.clone());
        }
    }
    for entry in &svc.unset_environment {
        match entry.split_once('=') {
            Some((k, v)) => {
                if env.get(k).is_some_and(|cur| cur == v) {
                    env.remove(k);
                }
            }
            None => {
                env.remove(entry);
            }
        }
    }
    Ok(env)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn environment_files() {
        let text = "# comment\n; also\nA=1\nexport B = \"two words\"\nC='x\\ny'\nD=a\\\nb\n\n";
        let got = parse_environment_file("/etc/default/x", text).expect("parses");
        assert_eq!(
            got,
            [
                ("A".into(), "1".into()),
                ("B".into(), "two words".into()),
                ("C".into(), "x\ny".into()),
                ("D".into(), "ab".into())
            ]
        );
        let err = parse_environment_file("/etc/default/x", "A=1\nnot a line\n").expect_err("bad");
        assert_eq!(err.to_string(), "/etc/default/x:2: missing '='");
    }

    proptest! {
        #[test]
        fn environment_file_parser_never_panics(s in "(?s).{0,200}") {
            let _ = parse_environment_file("/x", &s);
        }
    }
}
