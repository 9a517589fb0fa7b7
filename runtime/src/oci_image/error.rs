//! The image side's one error type: every variant names what failed (reference, host,
//! digest, path) so a CRI client's message is enough to act on.

use std::io;
use std::path::PathBuf;

use crate::error::{ErrorKind, Kind};

/// What went wrong while pulling, storing, unpacking or looking up an image.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// The image reference does not parse.
    #[error("invalid image reference {reference:?}: {reason}")]
    InvalidReference { reference: String, reason: String },

    /// An id prefix matches more than one image.
    #[error("image id prefix {prefix:?} is ambiguous: it matches {count} images")]
    AmbiguousId { prefix: String, count: usize },

    /// No image in the store answers to this name or id.
    #[error("image {name:?} not found")]
    NotFound { name: String },

    /// Every registry host said the manifest does not exist.
    #[error("{reference}: manifest not found on {hosts}")]
    ManifestNotFound { reference: String, hosts: String },

    /// An index lists no manifest for linux/amd64.
    #[error("{reference}: the image index {digest} has no linux/amd64 manifest")]
    NoMatchingPlatform { reference: String, digest: String },

    /// A registry could not be reached (DNS, TCP, TLS, timeouts).
    #[error("registry {host} unreachable ({url})")]
    Unreachable {
        host: String,
        url: String,
        #[source]
        source: Box<ureq::Error>,
    },

    /// A registry answered with an error status.
    #[error("registry {host} answered HTTP {status} for {url}{detail}")]
    RegistryStatus {
        host: String,
        url: String,
        status: u16,
        detail: String,
    },

    /// A registry sent something that is not a valid manifest, index, config or token.
    #[error("registry {host} sent a bad {what}: {reason}")]
    BadResponse {
        host: String,
        what: String,
        reason: String,
    },

    /// A manifest or layer uses a media type this runtime does not handle.
    #[error("unsupported media type {media_type:?} for {digest}")]
    UnsupportedMediaType { media_type: String, digest: String },

    /// A blob's content does not hash to its digest.
    #[error("blob {expected} failed verification: its content hashes to {actual}")]
    DigestMismatch { expected: String, actual: String },

    /// A blob ended before its announced size, or went past it.
    #[error("blob {digest} has the wrong size: got {got} bytes, the manifest says {expected}")]
    SizeMismatch {
        digest: String,
        got: u64,
        expected: u64,
    },

    /// Reading a blob failed part way (the connection closed early, a disk error).
    #[error("blob {digest}: reading it failed after {got} bytes")]
    BlobRead {
        digest: String,
        got: u64,
        #[source]
        source: io::Error,
    },

    /// The uncompressed layer does not match the config's diff id.
    #[error("layer {blob} unpacks to {actual}, but the image config says {expected}")]
    DiffIdMismatch {
        blob: String,
        expected: String,
        actual: String,
    },

    /// A layer tar entry tries to escape its layer or create something it must not.
    #[error("layer {layer}: refusing entry {entry:?}: {reason}")]
    UnsafeEntry {
        layer: String,
        entry: String,
        reason: String,
    },

    /// A layer tar is malformed.
    #[error("layer {layer}: bad tar stream")]
    BadLayer {
        layer: String,
        #[source]
        source: io::Error,
    },

    /// A `hosts.toml` file is malformed.
    #[error("registry config {path}: {reason}")]
    HostsConfig { path: PathBuf, reason: String },

    /// A stored image record is unreadable.
    #[error("image record {path}: {reason}")]
    Record { path: PathBuf, reason: String },

    /// A filesystem operation failed.
    #[error("{op} {path}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl ImageError {
    /// Shorthand for [`ImageError::Io`].
    pub fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        ImageError::Io {
            op,
            path: path.into(),
            source,
        }
    }
}

impl ErrorKind for ImageError {
    fn kind(&self) -> Kind {
        match self {
            ImageError::InvalidReference { .. }
            | ImageError::AmbiguousId { .. }
            | ImageError::HostsConfig { .. } => Kind::InvalidArgument,
            ImageError::NotFound { .. }
            | ImageError::ManifestNotFound { .. }
            | ImageError::NoMatchingPlatform { .. } => Kind::NotFound,
            ImageError::Unreachable { .. }
            | ImageError::RegistryStatus { .. }
            | ImageError::BlobRead { .. } => Kind::Unavailable,
            ImageError::BadResponse { .. }
            | ImageError::UnsupportedMediaType { .. }
            | ImageError::DigestMismatch { .. }
            | ImageError::SizeMismatch { .. }
            | ImageError::DiffIdMismatch { .. }
            | ImageError::UnsafeEntry { .. }
            | ImageError::BadLayer { .. }
            | ImageError::Record { .. }
            | ImageError::Io { .. } => Kind::Internal,
        }
    }
}
