//! The daemon's configuration: a TOML file (`/etc/berth/runtime.toml` in the image) whose
//! every key has a default, so the daemon runs with no file at all. Command-line flags
//! (`--socket`, `--root`, `--state`) override the file. Unknown keys are errors that name
//! the key and the line, so a typo never silently falls back to a default.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{ErrorKind, Kind};

/// Where the image keeps the configuration file.
pub const DEFAULT_CONFIG: &str = "/etc/berth/runtime.toml";
/// The CRI socket in the image (named in `/etc/crictl.yaml`).
pub const DEFAULT_SOCKET: &str = "/run/berth/cri.sock";
/// Persistent runtime state on STATE.
pub const DEFAULT_ROOT: &str = "/var/lib/berth/runtime";
/// Runtime state that must not survive a reboot.
pub const DEFAULT_STATE: &str = "/run/berth/runtime";

/// A configuration error.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file named with `--config` cannot be read.
    #[error("cannot read {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML for this schema.
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message, with line and column.
        message: String,
    },
    /// A value is out of range.
    #[error("{path}: {field}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The key.
        field: String,
        /// What is wrong.
        message: String,
    },
}

impl ErrorKind for ConfigError {
    fn kind(&self) -> Kind {
        Kind::InvalidArgument
    }
}

/// One OCI runtime binary, selected by RuntimeClass handler name.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct OciRuntimeConfig {
    /// The binary (crun, runc or anything with their command line).
    pub path: PathBuf,
}

/// CNI plugin locations.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct CniSection {
    /// Network configurations (`*.conflist`, `*.conf`); the lexically first wins.
    pub conf_dir: PathBuf,
    /// Folders searched for plugin binaries, in order.
    pub bin_dirs: Vec<PathBuf>,
}

impl Default for CniSection {
    fn default() -> Self {
        Self {
            conf_dir: PathBuf::from("/etc/cni/net.d"),
            bin_dirs: vec![PathBuf::from("/usr/lib/cni"), PathBuf::from("/opt/cni/bin")],
        }
    }
}

/// The whole configuration.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// The CRI socket.
    pub socket: PathBuf,
    /// Persistent state: content store, layers, metadata.
    pub root: PathBuf,
    /// Runtime state: bundles, namespaces, monitor files.
    pub state: PathBuf,
    /// The sandbox (pause) image: reported pinned so the kubelet's image GC keeps it.
    pub sandbox_image: String,
    /// Handler used when a pod names none.
    pub default_runtime: String,
    /// OCI runtimes by handler name; `crun` and `runc` exist unless the file overrides them.
    pub runtimes: BTreeMap<String, OciRuntimeConfig>,
    /// CNI locations.
    pub cni: CniSection,
    /// containerd-style registry hosts folder (`<dir>/<host>/hosts.toml`).
    pub registry_config_dir: PathBuf,
    /// cgroupfs parent of every pod's cgroup (the subtree PID 1 delegates).
    pub cgroup_parent: String,
    /// The per-container monitor binary; empty means `berth-monitor` beside the daemon.
    pub monitor_path: PathBuf,
    /// The streaming server's address (Exec, Attach, PortForward URLs); loopback by
    /// default so that nothing listens beyond the node, like containerd's.
    pub stream_server_address: std::net::IpAddr,
    /// Its port; 0 picks a free one at start.
    pub stream_server_port: u16,
    /// Also serve CRI over plain TCP on this address, as containerd's `[grpc]
    /// tcp_address`: unauthenticated and unencrypted, so unset by default and meant for
    /// a test or debug node whose port only a test harness can reach (`"0.0.0.0:10011"`).
    pub tcp_address: Option<std::net::SocketAddr>,
}

impl Default for Config {
    fn default() -> Self {
        let mut runtimes = BTreeMap::new();
        runtimes.insert(
            "crun".to_owned(),
            OciRuntimeConfig {
                path: PathBuf::from("/usr/bin/crun"),
            },
        );
        runtimes.insert(
            "runc".to_owned(),
            OciRuntimeConfig {
                path: PathBuf::from("/usr/sbin/runc"),
            },
        );
        Self {
            socket: PathBuf::from(DEFAULT_SOCKET),
            root: PathBuf::from(DEFAULT_ROOT),
            state: PathBuf::from(DEFAULT_STATE),
            sandbox_image: "registry.k8s.io/pause:3.10".to_owned(),
            default_runtime: "crun".to_owned(),
            runtimes,
            cni: CniSection::default(),
            registry_config_dir: PathBuf::from("/etc/berth/certs.d"),
            cgroup_parent: "/berth".to_owned(),
            monitor_path: PathBuf::new(),
            stream_server_address: std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
            stream_server_port: 0,
            tcp_address: None,
        }
    }
}

impl Config {
    /// Reads `path`. A missing file is an error only when `required` (named with
    /// `--config`); the default path may be absent.
    pub fn load(path: &Path, required: bool) -> Result<Self, ConfigError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => {
                return Ok(Self::default())
            }
            Err(source) => {
                return Err(ConfigError::Read {
                    path: path.to_owned(),
                    source,
                })
            }
        };
        Self::parse(path, &text)
    }

    /// Parses and checks a configuration text; `path` is only for messages.
    pub fn parse(path: &Path, text: &str) -> Result<Self, ConfigError> {
        let mut config: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: e.to_string().trim_end().replace('\n', " "),
        })?;
        // `[runtimes.X]` adds to the built-in handlers rather than replacing them all.
        for (name, runtime) in Config::default().runtimes {
            config.runtimes.entry(name).or_insert(runtime);
        }
        config.check(path)?;
        Ok(config)
    }

    fn check(&self, path: &Path) -> Result<(), ConfigError> {
        let invalid = |field: &str, message: String| ConfigError::Invalid {
            path: path.to_owned(),
            field: field.to_owned(),
            message,
        };
        if !self.runtimes.contains_key(&self.default_runtime) {
            return Err(invalid(
                "default_runtime",
                format!(
                    "{:?} is not one of [runtimes]: {:?}",
                    self.default_runtime,
                    self.runtimes.keys().collect::<Vec<_>>()
                ),
            ));
        }
        for (field, dir) in [
            ("socket", &self.socket),
            ("root", &self.root),
            ("state", &self.state),
        ] {
            if !dir.is_absolute() {
                return Err(invalid(field, format!("{} is not absolute", dir.display())));
            }
        }
        if !self.cgroup_parent.starts_with('/') {
            return Err(invalid(
                "cgroup_parent",
                format!("{:?} must start with /", self.cgroup_parent),
            ));
        }
        Ok(())
    }

    /// Where the streaming server listens.
    pub fn stream_address(&self) -> std::net::SocketAddr {
        std::net::SocketAddr::new(self.stream_server_address, self.stream_server_port)
    }

    /// The OCI runtime for a RuntimeClass handler ("" = the default).
    pub fn runtime_for(&self, handler: &str) -> Option<(&str, &OciRuntimeConfig)> {
        let name = if handler.is_empty() {
            self.default_runtime.as_str()
        } else {
            handler
        };
        self.runtimes
            .get_key_value(name)
            .map(|(name, config)| (name.as_str(), config))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_is_the_defaults() {
        let config = Config::parse(Path::new("x.toml"), "").unwrap();
        assert_eq!(config, Config::default());
        assert_eq!(config.runtime_for("").unwrap().0, "crun");
        assert_eq!(config.runtime_for("runc").unwrap().0, "runc");
        assert!(config.runtime_for("kata").is_none());
    }

    #[test]
    fn missing_default_file_is_fine_missing_named_file_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("none.toml");
        assert_eq!(Config::load(&path, false).unwrap(), Config::default());
        let err = Config::load(&path, true).unwrap_err().to_string();
        assert!(err.contains("none.toml"), "{err}");
    }

    #[test]
    fn unknown_key_names_key_and_line() {
        let err = Config::parse(
            Path::new("r.toml"),
            "socket = \"/s\"\nsandbox_imag = \"x\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("r.toml"), "{err}");
        assert!(err.contains("sandbox_imag"), "{err}");
        assert!(err.contains("line 2"), "{err}");
    }

    #[test]
    fn default_runtime_must_exist() {
        let err = Config::parse(Path::new("r.toml"), "default_runtime = \"kata\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("default_runtime"), "{err}");
    }

    #[test]
    fn handlers_and_cni_override() {
        let config = Config::parse(
            Path::new("r.toml"),
            "default_runtime = \"runc\"\n[runtimes.runc]\npath = \"/opt/runc\"\n[cni]\nconf_dir = \"/c\"\n",
        )
        .unwrap();
        assert_eq!(
            config.runtime_for("").unwrap().1.path,
            Path::new("/opt/runc")
        );
        assert_eq!(config.cni.conf_dir, Path::new("/c"));
        assert_eq!(config.cni.bin_dirs, CniSection::default().bin_dirs);
    }

    #[test]
    fn streaming_on_loopback_unless_told() {
        let config = Config::default();
        assert_eq!(config.stream_address().to_string(), "127.0.0.1:0");
        let config = Config::parse(
            Path::new("r.toml"),
            "stream_server_address = \"::1\"\nstream_server_port = 10010\n",
        )
        .unwrap();
        assert_eq!(config.stream_address().to_string(), "[::1]:10010");
        let err = Config::parse(
            Path::new("r.toml"),
            "stream_server_address = \"localhost\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("stream_server_address"), "{err}");
    }

    #[test]
    fn tcp_address_is_off_unless_set_and_must_be_an_address_with_a_port() {
        assert_eq!(Config::default().tcp_address, None);
        let config =
            Config::parse(Path::new("r.toml"), "tcp_address = \"0.0.0.0:10011\"\n").unwrap();
        assert_eq!(
            config.tcp_address.map(|a| a.to_string()).as_deref(),
            Some("0.0.0.0:10011")
        );
        let err = Config::parse(Path::new("r.toml"), "tcp_address = \"0.0.0.0\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("r.toml") && err.contains("tcp_address"),
            "{err}"
        );
    }
}
