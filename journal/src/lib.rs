//! The systemd journal file format, so that Berth's logs can be copied off a node and read
//! by the stock `journalctl` of any systemd machine, and Berth's own `journalctl` reads
//! journald's files.
//!
//! - [`Writer`] creates and appends to one journal file (keyed hash, uncompressed, the
//!   variant systemd 252 verifies cleanly), ONLINE while open and OFFLINE after [`Writer::sync`].
//! - [`Reader`] iterates one file's entries in order and stops at damage with a typed
//!   error naming the offset and object.
//! - [`JournalDir`] keeps `DIR/<machine-id>/system.journal` with journald's rotation and
//!   archive names, a size budget, vacuuming, damaged-file handling and the boot list.
//! - [`Reader::matching_offsets`] and [`Reader::field_values`] answer `FIELD=value` matches
//!   and `--list-boots` through the file's hash tables, as journalctl does.
//! - [`DirEntries`] reads all files of a directory in journalctl's order; [`list_files`],
//!   [`list_boots`], [`disk_usage`], [`vacuum_by_size`], [`vacuum_by_time`] serve the CLI.
//!
//! The specification is <https://systemd.io/JOURNAL_FILE_FORMAT> and systemd's
//! `journal-def.h`; no code is shared with systemd. No `unsafe`, no async runtime: the
//! crate is meant for a static PID 1 or a small collector.

pub mod dir;
pub mod error;
pub mod files;
pub mod format;
pub mod hash;
pub mod id128;
pub mod lookup;
pub mod merge;
mod objects;
pub mod reader;
pub mod writer;

pub use dir::{DirConfig, JournalDir, Limits};
pub use error::JournalError;
pub use files::{
    disk_usage, list_boots, list_files, vacuum_by_size, vacuum_by_time, BootInfo, FileKind,
    JournalFileInfo,
};
pub use id128::Id128;
pub use lookup::FieldValue;
pub use merge::{compare_entries, DirEntries};
pub use reader::{Entries, Entry, Reader};
pub use writer::{EntryTime, Writer, WriterOptions};
