//! The record the monitor writes when the container's init exits, and that the daemon
//! reads for ContainerStatus: it is the only source of the exit code once the OCI
//! runtime has forgotten the process, so it is written atomically.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::{fsutil, ContainerError};

/// How the container's init ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitStatus {
    /// The exit code, or 128 + the signal number if a signal killed it.
    pub exit_code: i32,
    /// When the monitor saw it exit, in nanoseconds since the epoch.
    pub finished_at_nanos: i64,
    /// The cgroup recorded an OOM kill.
    #[serde(default)]
    pub oom_killed: bool,
}

impl ExitStatus {
    /// Writes the record atomically.
    pub fn write(&self, path: &Path) -> Result<(), ContainerError> {
        let json = serde_json::to_vec(self).map_err(|source| ContainerError::Json {
            path: path.to_path_buf(),
            source,
        })?;
        fsutil::atomic_write(path, &json)
    }

    /// Reads the record; `None` if the container has not exited.
    pub fn read(path: &Path) -> Result<Option<Self>, ContainerError> {
        match std::fs::read(path) {
            Ok(bytes) => {
                serde_json::from_slice(&bytes)
                    .map(Some)
                    .map_err(|source| ContainerError::Json {
                        path: path.to_path_buf(),
                        source,
                    })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(ContainerError::io("reading", path, e)),
        }
    }
}

/// Now, in nanoseconds since the epoch.
pub fn now_nanos() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_missing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("exit.json");
        assert_eq!(ExitStatus::read(&path).unwrap(), None);
        let status = ExitStatus {
            exit_code: 137,
            finished_at_nanos: now_nanos(),
            oom_killed: true,
        };
        status.write(&path).unwrap();
        assert_eq!(ExitStatus::read(&path).unwrap(), Some(status));
        std::fs::write(&path, "{").unwrap();
        assert!(ExitStatus::read(&path).is_err());
    }
}
