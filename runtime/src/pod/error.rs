//! What can go wrong with a pod's namespaces, files and network, with the path, field or
//! plugin it concerns.

use std::path::PathBuf;
use std::time::Duration;

use crate::error::{ErrorKind, Kind};

/// A failure of the pod module.
#[derive(Debug, thiserror::Error)]
pub enum PodError {
    /// A request field is malformed; `field` is its path in the CRI request.
    #[error("{field}: {reason}")]
    InvalidField { field: String, reason: String },
    /// The pod's namespace files already exist.
    #[error("pod namespaces already exist at {path}")]
    AlreadyExists { path: PathBuf },
    /// A file operation on the pod's state failed.
    #[error("{op} {path}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A namespace, mount or hostname system call failed.
    #[error("{op} {path}")]
    Sys {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: nix::Error,
    },
    /// A pod sysctl could not be written in the pod's namespaces (unknown name, bad value).
    #[error("{}: {name}={value:?} cannot be set", crate::pod::sysctls::FIELD)]
    Sysctl {
        name: String,
        value: String,
        #[source]
        source: std::io::Error,
    },
    /// The init process holding the pod's PID namespace could not be started.
    #[error("pod PID namespace init for {path}: {reason}")]
    PidInit { path: PathBuf, reason: String },
    /// The thread that creates the namespaces could not be started or died.
    #[error("namespace thread for {path}: {reason}")]
    NamespaceThread { path: PathBuf, reason: String },
    /// No usable CNI network configuration (the `NetworkReady` reason).
    #[error("{0}")]
    NetworkNotReady(String),
    /// A CNI configuration file cannot be used.
    #[error("invalid CNI config {path}: {reason}")]
    CniConfig { path: PathBuf, reason: String },
    /// A plugin binary is in none of the plugin folders.
    #[error("plugin {plugin} not found in [{dirs}]")]
    PluginNotFound { plugin: String, dirs: String },
    /// A plugin ran and reported an error (CNI error JSON, or its output if it gave none).
    #[error("CNI plugin {plugin} {command} failed (code {code}): {msg}{}", details_suffix(.details))]
    Plugin {
        plugin: String,
        command: &'static str,
        code: u64,
        msg: String,
        details: String,
    },
    /// A plugin could not be started or its pipes failed.
    #[error("run CNI plugin {plugin} {command}")]
    PluginExec {
        plugin: String,
        command: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// A plugin did not finish in time and was killed.
    #[error("CNI plugin {plugin} {command} did not finish within {timeout:?}")]
    PluginTimeout {
        plugin: String,
        command: &'static str,
        timeout: Duration,
    },
    /// A plugin succeeded but its output is not a CNI result.
    #[error("CNI plugin {plugin} {command}: {reason}")]
    PluginOutput {
        plugin: String,
        command: &'static str,
        reason: String,
    },
    /// The cached ADD result of a pod cannot be read.
    #[error("CNI cache {path}: {reason}")]
    Cache { path: PathBuf, reason: String },
}

fn details_suffix(details: &str) -> String {
    if details.is_empty() {
        String::new()
    } else {
        format!(" ({details})")
    }
}

impl PodError {
    /// An invalid request field.
    pub(crate) fn field(field: impl Into<String>, reason: impl Into<String>) -> Self {
        PodError::InvalidField {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// A failed file operation.
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        PodError::Io {
            op,
            path: path.into(),
            source,
        }
    }
}

impl ErrorKind for PodError {
    fn kind(&self) -> Kind {
        match self {
            PodError::InvalidField { .. } | PodError::Sysctl { .. } => Kind::InvalidArgument,
            PodError::AlreadyExists { .. } => Kind::AlreadyExists,
            PodError::NetworkNotReady(_)
            | PodError::CniConfig { .. }
            | PodError::PluginNotFound { .. } => Kind::Unavailable,
            PodError::PluginTimeout { .. } => Kind::DeadlineExceeded,
            PodError::Io { .. }
            | PodError::Sys { .. }
            | PodError::NamespaceThread { .. }
            | PodError::PidInit { .. }
            | PodError::Plugin { .. }
            | PodError::PluginExec { .. }
            | PodError::PluginOutput { .. }
            | PodError::Cache { .. } => Kind::Internal,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plugin_error_message_names_plugin_and_details() {
        let e = PodError::Plugin {
            plugin: "bridge".into(),
            command: "ADD",
            code: 11,
            msg: "failed to allocate".into(),
            details: "range full".into(),
        };
        assert_eq!(
            e.to_string(),
            "CNI plugin bridge ADD failed (code 11): failed to allocate (range full)"
        );
        assert_eq!(e.kind(), Kind::Internal);
    }

    #[test]
    fn kinds() {
        assert_eq!(
            PodError::field("config.hostname", "too long").kind(),
            Kind::InvalidArgument
        );
        assert_eq!(
            PodError::NetworkNotReady("x".into()).kind(),
            Kind::Unavailable
        );
    }
}
