//! Running apt with a private configuration, never the host's.
//!
//! The fetch stage must get the same bytes on an Ubuntu CI runner and a Debian laptop: so
//! apt reads only our sources list (Debian's archive, verified with
//! `debian-archive-keyring`), our state folder and our options. `APT_CONFIG` points at our
//! `apt.conf`, which also moves `Dir::Etc::parts` and `Dir::Etc::main` away from `/etc/apt`,
//! so no host option, pin, source or key takes part. The lock's sha256 proves the result.

use crate::lock::LockedPackage;
use std::fmt::Write as _;
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The keyring the sources are verified with.
pub const KEYRING: &str = "/usr/share/keyrings/debian-archive-keyring.gpg";

/// Where packages come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AptSources {
    pub mirror: String,
    pub security_mirror: String,
    pub suite: String,
}

impl Default for AptSources {
    fn default() -> AptSources {
        AptSources {
            mirror: "http://deb.debian.org/debian".into(),
            security_mirror: "http://deb.debian.org/debian-security".into(),
            suite: "bookworm".into(),
        }
    }
}

impl AptSources {
    /// The `sources.list` text: the suite, its updates and its security updates, `main` only.
    pub fn sources_list(&self) -> String {
        let (m, s, suite) = (&self.mirror, &self.security_mirror, &self.suite);
        let opt = format!("[signed-by={KEYRING}]");
        format!(
            "deb {opt} {m} {suite} main\n\
             deb {opt} {m} {suite}-updates main\n\
             deb {opt} {s} {suite}-security main\n"
        )
    }
}

/// Errors running apt.
#[derive(Debug, thiserror::Error)]
pub enum AptError {
    #[error("apt-get not found: install the Debian package `apt`")]
    AptMissing,
    #[error("{path} not found: install the Debian package `debian-archive-keyring`")]
    KeyringMissing { path: PathBuf },
    #[error("cannot set up apt's state folder {path}: {source}")]
    Setup {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot run `{command}`: {source}")]
    Spawn {
        command: String,
        #[source]
        source: io::Error,
    },
    #[error("`{command}` failed ({status}):\n{stderr}")]
    Failed {
        command: String,
        status: String,
        stderr: String,
    },
    #[error("the archive has no installable package named {}", names.join(", "))]
    NotInArchive { names: Vec<String> },
    #[error(
        "the pin {pin} is no longer served by the archive: \
         run `cargo xtask lock` to refresh the pins"
    )]
    PinNotServed { pin: String },
    #[error("unexpected output of `{command}`: {reason}")]
    Output { command: String, reason: String },
    #[error("invalid package name {name:?}")]
    BadName { name: String },
}

/// apt with a private state folder and configuration.
#[derive(Debug, Clone)]
pub struct Apt {
    state_dir: PathBuf,
    config: PathBuf,
}

impl Apt {
    /// Prepares `state_dir` (created if missing): `sources.list`, `lists/`,
    /// `archives/partial`, empty configuration folders and `apt.conf`.
    pub fn new(state_dir: &Path, sources: &AptSources) -> Result<Apt, AptError> {
        if !in_path("apt-get") {
            return Err(AptError::AptMissing);
        }
        if !Path::new(KEYRING).is_file() {
            return Err(AptError::KeyringMissing {
                path: KEYRING.into(),
            });
        }
        let setup = |path: &Path| {
            let path = path.to_path_buf();
            move |source| AptError::Setup { path, source }
        };
        let state = std::path::absolute(state_dir).map_err(setup(state_dir))?;
        for sub in [
            "lists/partial",
            "archives/partial",
            "apt.conf.d",
            "sources.list.d",
            "preferences.d",
            "trusted.gpg.d",
            "auth.conf.d",
            "log",
        ] {
            let dir = state.join(sub);
            fs::create_dir_all(&dir).map_err(setup(&dir))?;
        }
        let list = state.join("sources.list");
        fs::write(&list, sources.sources_list()).map_err(setup(&list))?;
        let config = state.join("apt.conf");
        let text = apt_conf(&options(&state)).ok_or_else(|| AptError::Setup {
            path: state.clone(),
            source: io::Error::new(io::ErrorKind::InvalidInput, "path contains a quote"),
        })?;
        fs::write(&config, text).map_err(setup(&config))?;
        Ok(Apt {
            state_dir: state,
            config,
        })
    }

    /// The state folder (absolute).
    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    /// Downloads the package indexes (`apt-get update`); any failed index is an error.
    pub fn update(&self) -> Result<(), AptError> {
        let out = self.run("apt-get", &["update", "--error-on=any"], None)?;
        self.check("apt-get update", &out)
    }

    /// The candidate version of each name, with its pool file name, size and sha256, for
    /// `cargo xtask lock`. Needs [`Apt::update`] first.
    pub fn resolve(&self, names: &[String]) -> Result<Vec<LockedPackage>, AptError> {
        for name in names {
            if !valid_name(name) {
                return Err(AptError::BadName { name: name.clone() });
            }
        }
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let mut args = vec!["show", "--no-all-versions"];
        args.extend(names.iter().map(String::as_str));
        let out = self.run("apt-cache", &args, None)?;
        let command = "apt-cache show --no-all-versions";
        let stdout = String::from_utf8_lossy(&out.stdout);
        let mut found = Vec::new();
        for para in stdout.split("\n\n").filter(|p| !p.trim().is_empty()) {
            let pkg = parse_record(para).map_err(|reason| AptError::Output {
                command: command.into(),
                reason,
            })?;
            found.push(pkg);
        }
        let mut missing = Vec::new();
        let mut result = Vec::new();
        for name in names {
            match found.iter().find(|p| &p.name == name) {
                Some(p) if !result.contains(p) => result.push(p.clone()),
                Some(_) => {}
                None => missing.push(name.clone()),
            }
        }
        if !missing.is_empty() {
            return Err(AptError::NotInArchive { names: missing });
        }
        self.check(command, &out)?;
        Ok(result)
    }

    /// The packages the candidate version of `name` depends on (first alternative of each
    /// `Depends:` clause, without version constraints): how a metapackage such as
    /// `linux-image-cloud-amd64` is resolved to the versioned package it stands for.
    pub fn depends(&self, name: &str) -> Result<Vec<String>, AptError> {
        if !valid_name(name) {
            return Err(AptError::BadName { name: name.into() });
        }
        let out = self.run("apt-cache", &["show", "--no-all-versions", name], None)?;
        self.check("apt-cache show --no-all-versions", &out)?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        let Some(line) = stdout.lines().find_map(|l| l.strip_prefix("Depends:")) else {
            return Ok(Vec::new());
        };
        Ok(line
            .split(',')
            .filter_map(|clause| clause.split('|').next())
            .filter_map(|alt| alt.split_whitespace().next())
            .map(|n| n.split(':').next().unwrap_or(n).to_string())
            .collect())
    }

    /// Downloads the pinned `.deb` (`apt-get download name=version`) into `dest_dir` and
    /// returns its path. A pin the archive no longer serves is [`AptError::PinNotServed`].
    pub fn download(&self, pkg: &LockedPackage, dest_dir: &Path) -> Result<PathBuf, AptError> {
        let pin = pkg.pin();
        if pkg.validate().is_err() {
            return Err(AptError::BadName { name: pin });
        }
        let out = self.run("apt-get", &["download", &pin], Some(dest_dir))?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        let gone = stderr.lines().any(|l| {
            l.starts_with("E: ")
                && ((l.contains("Version '") && l.contains("was not found"))
                    || l.contains("Unable to locate package")
                    || l.contains("has no installation candidate"))
        });
        if gone {
            return Err(AptError::PinNotServed { pin });
        }
        let command = format!("apt-get download {pin}");
        self.check(&command, &out)?;
        let file = format!(
            "{}_{}_{}.deb",
            pkg.name,
            pkg.version.replace(':', "%3a"),
            pkg.architecture
        );
        let path = dest_dir.join(&file);
        if !path.is_file() {
            return Err(AptError::Output {
                command,
                reason: format!("{} was not written", path.display()),
            });
        }
        Ok(path)
    }

    fn run(&self, program: &str, args: &[&str], cwd: Option<&Path>) -> Result<Output, AptError> {
        let mut cmd = Command::new(program);
        for (key, value) in options(&self.state_dir) {
            cmd.arg("-o").arg(format!("{key}={value}"));
        }
        cmd.args(args)
            .env("APT_CONFIG", &self.config)
            .env("LC_ALL", "C")
            .env("LANGUAGE", "C")
            .env("DEBIAN_FRONTEND", "noninteractive");
        if let Some(dir) = cwd {
            cmd.current_dir(dir);
        }
        cmd.output().map_err(|source| {
            if source.kind() == io::ErrorKind::NotFound && cwd.is_none_or(Path::is_dir) {
                AptError::AptMissing
            } else {
                AptError::Spawn {
                    command: format!("{program} {}", args.join(" ")),
                    source,
                }
            }
        })
    }

    fn check(&self, command: &str, out: &Output) -> Result<(), AptError> {
        if out.status.success() {
            return Ok(());
        }
        Err(AptError::Failed {
            command: command.into(),
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim_end().to_string(),
        })
    }
}

/// The private configuration, as `(key, value)` pairs.
fn options(state: &Path) -> Vec<(&'static str, String)> {
    let p = |sub: &str| state.join(sub).display().to_string();
    let mut opts = vec![
        ("Dir::Etc::main", "/dev/null".to_string()),
        ("Dir::Etc::parts", p("apt.conf.d")),
        ("Dir::Etc::sourcelist", p("sources.list")),
        ("Dir::Etc::sourceparts", p("sources.list.d")),
        ("Dir::Etc::preferences", p("preferences")),
        ("Dir::Etc::preferencesparts", p("preferences.d")),
        ("Dir::Etc::trusted", p("trusted.gpg")),
        ("Dir::Etc::trustedparts", p("trusted.gpg.d")),
        ("Dir::Etc::netrc", p("auth.conf")),
        ("Dir::Etc::netrcparts", p("auth.conf.d")),
        ("Dir::State", p("")),
        ("Dir::State::lists", p("lists")),
        ("Dir::State::status", "/dev/null".to_string()),
        ("Dir::State::extended_states", p("extended_states")),
        ("Dir::Cache", p("")),
        ("Dir::Cache::archives", p("archives")),
        ("Dir::Log", p("log")),
        ("APT::Architecture", "amd64".to_string()),
        ("APT::Architectures", "amd64".to_string()),
        ("Acquire::Languages", "none".to_string()),
        ("Acquire::Retries", "3".to_string()),
    ];
    if running_as_root() {
        opts.push(("APT::Sandbox::User", "root".to_string()));
    }
    opts
}

fn apt_conf(opts: &[(&str, String)]) -> Option<String> {
    let mut text = String::from("// Berth's private apt configuration; generated.\n");
    for (key, value) in opts {
        if value.contains('"') {
            return None;
        }
        let _ = writeln!(text, "{key} \"{value}\";");
    }
    Some(text)
}

fn running_as_root() -> bool {
    fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

fn in_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
}

/// A Debian package name, so that it can never be read as an apt option.
fn valid_name(name: &str) -> bool {
    name.len() >= 2
        && name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+-.".contains(&b))
}

/// One `apt-cache show` record.
fn parse_record(para: &str) -> Result<LockedPackage, String> {
    let field = |name: &str| {
        para.lines()
            .filter(|l| !l.starts_with([' ', '\t']))
            .filter_map(|l| l.split_once(": "))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.trim().to_string())
            .ok_or_else(|| {
                format!(
                    "record without {name}: {}",
                    para.lines().next().unwrap_or("")
                )
            })
    };
    let size = field("Size")?;
    let pkg = LockedPackage {
        name: field("Package")?,
        version: field("Version")?,
        architecture: field("Architecture")?,
        filename: field("Filename")?,
        size: size.parse().map_err(|_| format!("bad Size {size:?}"))?,
        sha256: field("SHA256")?,
    };
    pkg.validate()
        .map_err(|e| format!("package {}: {e}", pkg.name))?;
    Ok(pkg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_and_config() {
        let list = AptSources::default().sources_list();
        assert!(list.contains(
            "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] \
             http://deb.debian.org/debian-security bookworm-security main"
        ));
        assert!(list.contains("http://deb.debian.org/debian bookworm-updates main"));
        let opts = options(Path::new("/s"));
        let get = |k: &str| {
            opts.iter()
                .find(|(key, _)| *key == k)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("Dir::State::status"), Some("/dev/null"));
        assert_eq!(get("Dir::Etc::sourcelist"), Some("/s/sources.list"));
        assert_eq!(get("Dir::State::lists"), Some("/s/lists"));
        assert!(apt_conf(&opts)
            .unwrap()
            .contains("Acquire::Languages \"none\";"));
        assert!(apt_conf(&[("A", "x\"y".into())]).is_none());
    }

    #[test]
    fn record_parsing() {
        let para = "Package: busybox-static\nVersion: 1:1.35.0-4+b3\nArchitecture: amd64\n\
                    Description: x\n Size: 1\nFilename: pool/main/b/busybox/busybox-static_1.35.0-4+b3_amd64.deb\n\
                    Size: 898124\nSHA256: "
            .to_string()
            + &"0f".repeat(32)
            + "\n";
        let p = parse_record(&para).unwrap();
        assert_eq!(p.size, 898124);
        assert_eq!(p.version, "1:1.35.0-4+b3");
        assert!(parse_record("Package: x\n").is_err());
        assert!(!valid_name("-oAPT::x=y"));
        assert!(valid_name("libc6"));
    }
}
