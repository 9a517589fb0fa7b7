//! The crate's one error type: every variant names the file and, for damage, the offset
//! and the object it found there, so that a report can say exactly where a file broke.

use std::io;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("open {path}")]
    Open { path: PathBuf, source: io::Error },
    #[error("read {path} at offset {offset}")]
    Read {
        path: PathBuf,
        offset: u64,
        source: io::Error,
    },
    #[error("write {path} at offset {offset}")]
    Write {
        path: PathBuf,
        offset: u64,
        source: io::Error,
    },
    #[error("sync {path}")]
    Sync { path: PathBuf, source: io::Error },
    #[error("read random bytes from /dev/urandom")]
    Random { source: io::Error },
    #[error("{text:?} is not a 128-bit id (32 hex digits)")]
    BadId128 { text: String },
    #[error("{path} is not a journal file (no LPKSHHRH signature)")]
    NotAJournal { path: PathBuf },
    #[error("{path}: bad header: {reason}")]
    BadHeader { path: PathBuf, reason: String },
    #[error("{path}: unsupported incompatible flags {flags:#x}")]
    UnsupportedFlags { path: PathBuf, flags: u32 },
    #[error("{path} cannot be appended to: {reason}")]
    NotAppendable { path: PathBuf, reason: String },
    #[error("{path} is a sound journal file this writer does not append to: {reason}")]
    Incompatible { path: PathBuf, reason: String },
    #[error("{path}: {what} object at offset {offset} lies beyond the end of the file ({file_size} bytes)")]
    Truncated {
        path: PathBuf,
        offset: u64,
        what: &'static str,
        file_size: u64,
    },
    #[error("{path}: bad {what} object at offset {offset}: {reason}")]
    BadObject {
        path: PathBuf,
        offset: u64,
        what: &'static str,
        reason: String,
    },
    #[error("{path}: data object at offset {offset} is compressed with {algorithm}, which this reader does not decompress")]
    Compressed {
        path: PathBuf,
        offset: u64,
        algorithm: &'static str,
    },
    #[error("{path}: data object at offset {offset}: decompression failed: {reason}")]
    Decompress {
        path: PathBuf,
        offset: u64,
        reason: String,
    },
    #[error("invalid journal field name {name:?} (A-Z, 0-9 and _, not starting with a digit, at most 64 bytes)")]
    InvalidField { name: String },
    #[error("{path}: the file would exceed the 4 GiB a journal file may hold")]
    FileFull { path: PathBuf },
    #[error("create directory {path}")]
    CreateDir { path: PathBuf, source: io::Error },
    #[error("list directory {path}")]
    ReadDir { path: PathBuf, source: io::Error },
    #[error("rename {from} to {to}")]
    Rename {
        from: PathBuf,
        to: PathBuf,
        source: io::Error,
    },
    #[error("remove {path}")]
    Remove { path: PathBuf, source: io::Error },
    #[error("statvfs {path}")]
    Statvfs { path: PathBuf, source: nix::Error },
}

impl JournalError {
    /// True for damage found in a file's content (as opposed to an I/O failure or a
    /// feature this reader lacks): the file is to be set aside, not retried.
    pub fn is_damage(&self) -> bool {
        matches!(
            self,
            Self::NotAJournal { .. }
                | Self::BadHeader { .. }
                | Self::Truncated { .. }
                | Self::BadObject { .. }
                | Self::Decompress { .. }
        )
    }
}
