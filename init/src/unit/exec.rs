//! Command lines of `ExecStart=` and its siblings (systemd.service(5) "Command lines"):
//! the prefixes `-` `@` `:` `+` `!` `!!`, quoting, several commands separated by a lone
//! `;`, and, at start time, `$VAR` (split into words) and `${VAR}` (one word) from the
//! unit's environment.

use std::collections::BTreeMap;

use thiserror::Error;

use super::words::{self, Mode, WordError};

/// One command to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecCommand {
    /// Absolute path, or a bare name looked up in the fixed search path at start.
    pub path: String,
    /// `argv`, `argv[0]` included (the path, or the word after it with `@`).
    pub argv: Vec<String>,
    pub flags: ExecFlags,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExecFlags {
    /// `-`: a failure exit is recorded but not treated as a failure.
    pub ignore_failure: bool,
    /// `:`: no `$VAR` expansion.
    pub no_env_expand: bool,
    /// `+`: run with full privileges (no User=, sandboxing).
    pub full_privileges: bool,
    /// `!` / `!!`: User= applied, but capabilities kept (ambient).
    pub ambient: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ExecError {
    #[error(transparent)]
    Words(#[from] WordError),
    #[error("empty command after prefixes")]
    Empty,
    #[error("'{0}' is not an absolute path or a plain file name")]
    BadPath(String),
    #[error("'@' needs a word after the path for argv[0]")]
    MissingArgv0,
    #[error("'{0}' is not a command prefix")]
    BadPrefix(String),
}

/// Parses one `ExecStart=` value: every command of it (a lone `;` separates them).
pub fn parse(value: &str) -> Result<Vec<ExecCommand>, ExecError> {
    // Split keeping escapes, so that a lone `;` (a separator) is told from `\;` (a
    // literal `;` argument); then decode each word's C escapes.
    let raw = words::split(value, Mode::NAMES)?;
    let mut commands = Vec::new();
    let mut current: Vec<String> = Vec::new();
    for word in raw {
        match word.as_str() {
            ";" => {
                if !current.is_empty() {
                    commands.push(command(std::mem::take(&mut current))?);
                }
            }
            "\\;" => current.push(";".into()),
            _ => current.push(words::cunescape(&word)?),
        }
    }
    if !current.is_empty() {
        commands.push(command(current)?);
    }
    Ok(commands)
}

fn command(mut words: Vec<String>) -> Result<ExecCommand, ExecError> {
    let first = words.remove(0);
    let mut flags = ExecFlags::default();
    let mut argv0_next = false;
    let mut rest = first.as_str();
    loop {
        if let Some(r) = rest.strip_prefix("!!") {
            flags.ambient = true;
            rest = r;
        } else if let Some(r) = rest.strip_prefix('-') {
            flags.ignore_failure = true;
            rest = r;
        } else if let Some(r) = rest.strip_prefix('@') {
            argv0_next = true;
            rest = r;
        } else if let Some(r) = rest.strip_prefix(':') {
            flags.no_env_expand = true;
            rest = r;
        } else if let Some(r) = rest.strip_prefix('+') {
            flags.full_privileges = true;
            rest = r;
        } else if let Some(r) = rest.strip_prefix('!') {
            flags.ambient = true;
            rest = r;
        } else {
            break;
        }
    }
    if flags.full_privileges && flags.ambient {
        return Err(ExecError::BadPrefix(first));
    }
    let path = rest.to_owned();
    if path.is_empty() {
        return Err(ExecError::Empty);
    }
    if !path.starts_with('/') && path.contains('/') {
        return Err(ExecError::BadPath(path));
    }
    let argv = if argv0_next {
        if words.is_empty() {
            return Err(ExecError::MissingArgv0);
        }
        words
    } else {
        let mut argv = vec![path.clone()];
        argv.extend(words);
        argv
    };
    Ok(ExecCommand { path, argv, flags })
}

/// The folders a bare command name is looked up in (systemd's fixed system path).
pub const EXEC_SEARCH_PATH: [&str; 4] =
    ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin"];

/// Expands `$VAR` (split into words at whitespace; nothing if unset or empty) and `${VAR}`
/// (one word, empty if unset) in `argv[1..]` with `env`, as systemd does at start time.
/// `$$` is a literal `$`.
pub fn expand_argv(argv: &[String], env: &BTreeMap<String, String>) -> Vec<String> {
    let mut out = Vec::with_capacity(argv.len());
    for (i, arg) in argv.iter().enumerate() {
        if i == 0 {
            out.push(arg.clone());
            continue;
        }
        // A whole-word `$VAR` splits into words.
        if let Some(name) = arg.strip_prefix('$') {
            if is_env_name(name) {
                if let Some(value) = env.get(name) {
                    out.extend(value.split_whitespace().map(str::to_owned));
                }
                continue;
            }
        }
        out.push(expand_inline(arg, env));
    }
    out
}

/// An environment variable name: letters, digits and `_`, not starting with a digit.
pub fn is_env_name(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with(|c: char| c.is_ascii_digit())
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// `${VAR}` and `$VAR` inside a word, each replaced by its value as is.
fn expand_inline(arg: &str, env: &BTreeMap<String, String>) -> String {
    let mut out = String::with_capacity(arg.len());
    let mut rest = arg;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(a) = after.strip_prefix('$') {
            out.push('$');
            rest = a;
        } else if let Some(inner) = after.strip_prefix('{') {
            match inner.find('}') {
                Some(end) => {
                    out.push_str(env.get(&inner[..end]).map_or("", String::as_str));
                    rest = &inner[end + 1..];
                }
                None => {
                    out.push('$');
                    rest = after;
                }
            }
        } else {
            let len = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            if len == 0 || !is_env_name(&after[..len]) {
                out.push('$');
                rest = after;
            } else {
                out.push_str(env.get(&after[..len]).map_or("", String::as_str));
                rest = &after[len..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn one(v: &str) -> ExecCommand {
        let mut c = parse(v).expect("parses");
        assert_eq!(c.len(), 1);
        c.remove(0)
    }

    #[test]
    fn prefixes_and_argv0() {
        let c = one("-@/usr/bin/kubelet kubelet --v=2");
        assert!(c.flags.ignore_failure);
        assert_eq!(c.path, "/usr/bin/kubelet");
        assert_eq!(c.argv, ["kubelet", "--v=2"]);
        let c = one("+:/bin/echo $HOME");
        assert!(c.flags.full_privileges && c.flags.no_env_expand);
        assert_eq!(c.argv, ["/bin/echo", "$HOME"]);
        assert!(one("!!/bin/x").flags.ambient);
        assert_eq!(one("true").path, "true");
    }

    #[test]
    fn several_commands_and_escaped_semicolons() {
        let c = parse(r"/bin/a 1 ; /bin/b \; 2").expect("parses");
        assert_eq!(c.len(), 2);
        assert_eq!(c[1].argv, ["/bin/b", ";", "2"]);
    }

    #[test]
    fn bad_commands_are_named() {
        assert_eq!(parse("-"), Err(ExecError::Empty));
        assert_eq!(parse("bin/x"), Err(ExecError::BadPath("bin/x".into())));
        assert_eq!(parse("@/bin/x"), Err(ExecError::MissingArgv0));
        assert!(matches!(parse("+!/bin/x"), Err(ExecError::BadPrefix(_))));
        assert!(parse("\"/bin/x").is_err());
    }

    #[test]
    fn kubeadm_style_expansion() {
        let env: BTreeMap<String, String> = [
            (
                "KUBELET_KUBECONFIG_ARGS",
                "--kubeconfig=/etc/k.conf  --bootstrap=/b",
            ),
            ("KUBELET_EXTRA_ARGS", ""),
            ("X", "a b"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let c = one("/usr/bin/kubelet $KUBELET_KUBECONFIG_ARGS $KUBELET_EXTRA_ARGS $UNSET ${X} x=${X}y $$HOME");
        assert_eq!(
            expand_argv(&c.argv, &env),
            [
                "/usr/bin/kubelet",
                "--kubeconfig=/etc/k.conf",
                "--bootstrap=/b",
                "a b",
                "x=a by",
                "$HOME"
            ]
        );
    }

    proptest! {
        #[test]
        fn never_panics(s in "(?s).{0,120}") {
            if let Ok(cmds) = parse(&s) {
                for c in cmds {
                    prop_assert!(!c.argv.is_empty());
                    let _ = expand_argv(&c.argv, &BTreeMap::new());
                }
            }
        }
    }
}
