//! Where a container's files live. Both the daemon and the monitor derive every path
//! from the same two roots and the id, so a restarted daemon finds the monitor's pid,
//! control socket and exit file without any other record.

use std::path::{Path, PathBuf};

use super::ContainerError;

/// The files of one container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerPaths {
    /// The container id.
    pub id: String,
    /// OCI bundle directory: `state/containers/<id>`.
    pub bundle: PathBuf,
    /// `bundle/config.json`.
    pub config: PathBuf,
    /// The overlay mountpoint: `bundle/rootfs`.
    pub rootfs: PathBuf,
    /// Overlay upper and work directories live here: `root/containers/<id>`.
    pub layer_dir: PathBuf,
    /// `layer_dir/upper`.
    pub upper: PathBuf,
    /// `layer_dir/work`.
    pub work: PathBuf,
    /// The monitor's exit record (JSON, written atomically when the container exits).
    pub exit_file: PathBuf,
    /// The monitor's pid and process start time.
    pub monitor_pid_file: PathBuf,
    /// The container init's pid (written by the OCI runtime).
    pub pid_file: PathBuf,
    /// The monitor's control socket (log reopening).
    pub ctl_socket: PathBuf,
    /// The monitor's own stderr.
    pub monitor_log: PathBuf,
    /// The OCI runtime's log (its error messages).
    pub runtime_log: PathBuf,
    /// When the container was started (nanoseconds since the epoch).
    pub started_file: PathBuf,
}

impl ContainerPaths {
    /// The paths of container `id` under the persistent `root` and the runtime `state`
    /// directories. The id must be a plain file name.
    pub fn new(root: &Path, state: &Path, id: &str) -> Result<Self, ContainerError> {
        validate_id(id)?;
        let bundle = state.join("containers").join(id);
        let layer_dir = root.join("containers").join(id);
        Ok(ContainerPaths {
            id: id.to_string(),
            config: bundle.join("config.json"),
            rootfs: bundle.join("rootfs"),
            upper: layer_dir.join("upper"),
            work: layer_dir.join("work"),
            exit_file: bundle.join("exit.json"),
            monitor_pid_file: bundle.join("monitor.pid"),
            pid_file: bundle.join("init.pid"),
            ctl_socket: bundle.join("ctl"),
            monitor_log: bundle.join("monitor.log"),
            runtime_log: bundle.join("runtime.log"),
            started_file: bundle.join("started"),
            bundle,
            layer_dir,
        })
    }

    /// The paths of the container whose bundle directory is `bundle` (the monitor only
    /// knows the bundle).
    pub fn from_bundle(bundle: &Path, id: &str) -> Self {
        ContainerPaths {
            id: id.to_string(),
            config: bundle.join("config.json"),
            rootfs: bundle.join("rootfs"),
            layer_dir: PathBuf::new(),
            upper: PathBuf::new(),
            work: PathBuf::new(),
            exit_file: bundle.join("exit.json"),
            monitor_pid_file: bundle.join("monitor.pid"),
            pid_file: bundle.join("init.pid"),
            ctl_socket: bundle.join("ctl"),
            monitor_log: bundle.join("monitor.log"),
            runtime_log: bundle.join("runtime.log"),
            started_file: bundle.join("started"),
            bundle: bundle.to_path_buf(),
        }
    }
}

/// Container ids become directory and OCI runtime names: letters, digits, `-`, `_`, `.`,
/// not starting with `.`, at most 128 bytes.
pub fn validate_id(id: &str) -> Result<(), ContainerError> {
    let ok = !id.is_empty()
        && id.len() <= 128
        && !id.starts_with('.')
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
    if ok {
        Ok(())
    } else {
        Err(ContainerError::invalid(
            "container_id",
            format!("{id:?} is not a valid container id"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_derive_from_roots_and_id() {
        let p = ContainerPaths::new(Path::new("/r"), Path::new("/s"), "abc").unwrap();
        assert_eq!(p.bundle, Path::new("/s/containers/abc"));
        assert_eq!(p.rootfs, Path::new("/s/containers/abc/rootfs"));
        assert_eq!(p.upper, Path::new("/r/containers/abc/upper"));
        assert_eq!(
            ContainerPaths::from_bundle(&p.bundle, "abc").exit_file,
            p.exit_file
        );
    }

    #[test]
    fn bad_ids_are_refused() {
        for id in ["", "..", "a/b", ".x", "a b"] {
            assert!(validate_id(id).is_err(), "{id:?}");
        }
        assert!(validate_id("0123abcdef-x_y.z").is_ok());
    }
}
