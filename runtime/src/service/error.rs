//! The service layer's one error type. It says what failed in the runtime's own terms
//! (a field, a pod, a container) or carries the module error that did, and tells its
//! [`Kind`]; the gRPC layer turns kinds into status codes in one place
//! (`server/status.rs`), so nothing below it knows about gRPC.

use crate::container::ContainerError;
use crate::error::{ErrorKind, Kind};
use crate::oci_image::ImageError;
use crate::pod::PodError;
use crate::store::StoreError;

/// Why a service call failed.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// A request field is missing or malformed; `field` is its CRI path
    /// (`config.metadata.name`).
    #[error("{field}: {reason}")]
    InvalidArgument { field: String, reason: String },

    /// The pod, container or image does not exist.
    #[error("{what} {id} not found{hint}")]
    NotFound {
        what: &'static str,
        id: String,
        /// Said after the id, e.g. `: pull it first`.
        hint: &'static str,
    },

    /// A name is already taken.
    #[error("{0}")]
    AlreadyExists(String),

    /// The object is in the wrong state for the call.
    #[error("{0}")]
    FailedPrecondition(String),

    #[error(transparent)]
    Pod(#[from] PodError),

    #[error(transparent)]
    Container(#[from] ContainerError),

    #[error(transparent)]
    Image(#[from] ImageError),

    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ServiceError {
    /// `InvalidArgument` naming `field`.
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        ServiceError::InvalidArgument {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// A pod sandbox that does not exist.
    pub fn pod_not_found(id: &str) -> Self {
        ServiceError::NotFound {
            what: "pod sandbox",
            id: id.to_owned(),
            hint: "",
        }
    }

    /// A container that does not exist.
    pub fn container_not_found(id: &str) -> Self {
        ServiceError::NotFound {
            what: "container",
            id: id.to_owned(),
            hint: "",
        }
    }
}

impl ErrorKind for ServiceError {
    fn kind(&self) -> Kind {
        match self {
            ServiceError::InvalidArgument { .. } => Kind::InvalidArgument,
            ServiceError::NotFound { .. } => Kind::NotFound,
            ServiceError::AlreadyExists(_) => Kind::AlreadyExists,
            ServiceError::FailedPrecondition(_) => Kind::FailedPrecondition,
            ServiceError::Pod(e) => e.kind(),
            ServiceError::Container(e) => e.kind(),
            ServiceError::Image(e) => e.kind(),
            ServiceError::Store(e) => e.kind(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_and_messages() {
        let e = ServiceError::invalid("config.metadata.name", "must not be empty");
        assert_eq!(e.kind(), Kind::InvalidArgument);
        assert_eq!(e.to_string(), "config.metadata.name: must not be empty");
        let e = ServiceError::pod_not_found("abc");
        assert_eq!(e.kind(), Kind::NotFound);
        assert_eq!(e.to_string(), "pod sandbox abc not found");
        let e = ServiceError::from(ContainerError::invalid("cmd", "empty"));
        assert_eq!(e.kind(), Kind::InvalidArgument);
        assert_eq!(e.to_string(), "cmd: empty");
    }
}
