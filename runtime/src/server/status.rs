//! The one place where the runtime's error kinds become gRPC status codes: every error
//! below the gRPC layer (the service layer's [`ServiceError`] and the module errors it
//! carries) says its [`Kind`], and the handlers answer with [`status`] or `?` through
//! the `From` impl here, with the error's whole message chain.

use crate::error::{chain, ErrorKind, Kind};
use crate::service::ServiceError;

/// The gRPC status code for an error kind.
pub fn code(kind: Kind) -> tonic::Code {
    match kind {
        Kind::InvalidArgument => tonic::Code::InvalidArgument,
        Kind::NotFound => tonic::Code::NotFound,
        Kind::AlreadyExists => tonic::Code::AlreadyExists,
        Kind::FailedPrecondition => tonic::Code::FailedPrecondition,
        Kind::Unavailable => tonic::Code::Unavailable,
        Kind::DeadlineExceeded => tonic::Code::DeadlineExceeded,
        Kind::Internal => tonic::Code::Internal,
    }
}

/// Any module error as a gRPC status carrying its whole message chain.
pub fn status<E: ErrorKind>(err: E) -> tonic::Status {
    tonic::Status::new(code(err.kind()), chain(&err))
}

impl From<ServiceError> for tonic::Status {
    fn from(err: ServiceError) -> Self {
        status(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_map_to_codes_and_keep_the_chain() {
        let s: tonic::Status = ServiceError::invalid("config.metadata", "is required").into();
        assert_eq!(s.code(), tonic::Code::InvalidArgument);
        assert_eq!(s.message(), "config.metadata: is required");
        let s: tonic::Status = ServiceError::pod_not_found("p1").into();
        assert_eq!(s.code(), tonic::Code::NotFound);
        let io = crate::pod::PodError::io(
            "remove",
            "/x",
            std::io::Error::from_raw_os_error(nix::libc::EBUSY),
        );
        let s: tonic::Status = ServiceError::from(io).into();
        assert_eq!(s.code(), tonic::Code::Internal);
        assert!(
            s.message().contains("/x") && s.message().contains("busy"),
            "{}",
            s.message()
        );
    }
}
