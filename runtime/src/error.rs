//! The one thing every module's error must say for the gRPC layer: which CRI status code
//! it maps to. Each module keeps its own `thiserror` enum with the context it knows
//! (file, field, digest, container id); [`server`](crate::server) turns them into
//! `tonic::Status` with [`Kind::code`] and the error's full message.

/// What kind of failure an error is, in the terms the CRI client acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A request field is missing or malformed.
    InvalidArgument,
    /// The image, pod or container does not exist.
    NotFound,
    /// A name or id is already taken.
    AlreadyExists,
    /// The object is in the wrong state for the request (e.g. start a running container).
    FailedPrecondition,
    /// A registry or other remote could not be reached or refused us.
    Unavailable,
    /// A time limit passed.
    DeadlineExceeded,
    /// Anything else: the host, a tool, a bug.
    Internal,
}

impl Kind {
    /// The gRPC status code for this kind.
    pub fn code(self) -> tonic::Code {
        match self {
            Kind::InvalidArgument => tonic::Code::InvalidArgument,
            Kind::NotFound => tonic::Code::NotFound,
            Kind::AlreadyExists => tonic::Code::AlreadyExists,
            Kind::FailedPrecondition => tonic::Code::FailedPrecondition,
            Kind::Unavailable => tonic::Code::Unavailable,
            Kind::DeadlineExceeded => tonic::Code::DeadlineExceeded,
            Kind::Internal => tonic::Code::Internal,
        }
    }
}

/// Implemented by every module's error type.
pub trait ErrorKind: std::error::Error {
    /// The CRI status kind of this error.
    fn kind(&self) -> Kind;
}

/// Turns any module error into a gRPC status carrying its whole message chain.
pub fn to_status<E: ErrorKind>(err: &E) -> tonic::Status {
    let mut message = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    tonic::Status::new(err.kind().code(), message)
}
