//! The one thing every module's error must say for the gRPC layer: what kind of failure
//! it is, in the terms a CRI client acts on. Each module keeps its own `thiserror` enum
//! with the context it knows (file, field, digest, container id); the gRPC layer
//! (`server/status.rs`) alone turns kinds into status codes, with the error's full
//! message ([`chain`]).

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

/// Implemented by every module's error type.
pub trait ErrorKind: std::error::Error {
    /// The CRI status kind of this error.
    fn kind(&self) -> Kind;
}

/// An error and its causes, `: `-separated, as the daemon logs and answers them.
pub fn chain(err: &dyn std::error::Error) -> String {
    let mut message = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}
