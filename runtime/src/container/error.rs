//! The container module's error: one variant per failed operation, with the id, path
//! or request field it concerns, mapped to a CRI status kind.

use std::path::PathBuf;

use crate::error::{ErrorKind, Kind};

/// Why a container operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    /// A request field is missing or malformed; `field` names it like
    /// `config.mounts[2].container_path`.
    #[error("{field}: {reason}")]
    InvalidArgument { field: String, reason: String },

    /// The container does not exist (in the OCI runtime and on disk).
    #[error("container {id} not found")]
    NotFound { id: String },

    /// The container is in the wrong state for the request.
    #[error("container {id}: {reason}")]
    FailedPrecondition { id: String, reason: String },

    /// A time limit passed (ExecSync, waiting for the monitor).
    #[error("container {id}: {what} timed out after {seconds}s")]
    Timeout {
        id: String,
        what: String,
        seconds: u64,
    },

    /// A file or directory operation failed.
    #[error("{action} {}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },

    /// A mount or unmount failed.
    #[error("{action} {}", target.display())]
    Mount {
        action: &'static str,
        target: PathBuf,
        source: nix::Error,
    },

    /// A JSON file (spec, state, seccomp profile, exit status) could not be read or written.
    #[error("JSON in {}", path.display())]
    Json {
        path: PathBuf,
        source: serde_json::Error,
    },

    /// The OCI spec could not be assembled.
    #[error("building the OCI spec of container {id}")]
    Spec {
        id: String,
        source: oci_spec::OciSpecError,
    },

    /// The OCI runtime binary could not be run.
    #[error("running {} {command}", runtime.display())]
    RuntimeSpawn {
        runtime: PathBuf,
        command: String,
        source: std::io::Error,
    },

    /// The OCI runtime ran and failed.
    #[error("{} {command} {id} failed: {message}", runtime.display())]
    Runtime {
        runtime: PathBuf,
        command: String,
        id: String,
        message: String,
    },

    /// The monitor could not be started or did not report the container as created.
    #[error("monitor of container {id}: {message}")]
    Monitor { id: String, message: String },

    /// A file of the image's root (its /etc/passwd, /etc/group) cannot be used: a link
    /// loop, a device or FIFO, a file too large.
    #[error("the image's files")]
    InRoot(#[from] super::inroot::InRootError),

    /// A signal could not be sent.
    #[error("sending {signal} to pid {pid}")]
    Signal {
        signal: String,
        pid: i32,
        source: nix::Error,
    },
}

impl ErrorKind for ContainerError {
    fn kind(&self) -> Kind {
        match self {
            ContainerError::InvalidArgument { .. } => Kind::InvalidArgument,
            ContainerError::NotFound { .. } => Kind::NotFound,
            ContainerError::FailedPrecondition { .. } => Kind::FailedPrecondition,
            ContainerError::Timeout { .. } => Kind::DeadlineExceeded,
            ContainerError::InRoot(_) => Kind::FailedPrecondition,
            _ => Kind::Internal,
        }
    }
}

impl ContainerError {
    /// An [`ContainerError::InvalidArgument`] for `field`.
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        ContainerError::InvalidArgument {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// An [`ContainerError::Io`] for `path`.
    pub fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        ContainerError::Io {
            action,
            path: path.into(),
            source,
        }
    }
}
