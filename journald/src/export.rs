//! A sink that writes systemd's Journal Export Format (`journalctl -o export`, documented
//! in systemd's JOURNAL_EXPORT_FORMATS): per entry `__REALTIME_TIMESTAMP=`,
//! `__MONOTONIC_TIMESTAMP=`, then `NAME=value` lines, or for a value that is not printable
//! single-line UTF-8 the binary form `NAME\n<le64 length><bytes>\n`; an empty line ends
//! the entry. `systemd-journal-remote` turns such a file into a journal file, so this is
//! both the collector's fallback output and the tests' window into what it collected.

use crate::entry::{Entry, EntrySink, SinkError};
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// Appends entries in export format to a file.
pub struct ExportSink {
    path: PathBuf,
    out: BufWriter<File>,
}

impl ExportSink {
    /// Opens (creating, appending to) `path`.
    pub fn open(path: &Path) -> Result<ExportSink, SinkError> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|source| SinkError::Open {
                path: path.display().to_string(),
                source,
            })?;
        Ok(ExportSink {
            path: path.to_path_buf(),
            out: BufWriter::with_capacity(64 * 1024, file),
        })
    }
}

impl EntrySink for ExportSink {
    fn append(&mut self, entry: &Entry) -> Result<(), SinkError> {
        write_entry(&mut self.out, entry).map_err(|source| SinkError::Write {
            path: self.path.display().to_string(),
            source,
        })
    }

    fn sync(&mut self) -> Result<(), SinkError> {
        let sync_error = |source| SinkError::Sync {
            path: self.path.display().to_string(),
            source,
        };
        self.out.flush().map_err(sync_error)?;
        self.out.get_ref().sync_data().map_err(sync_error)
    }
}

/// Writes `entry` in export format to `out`.
pub fn write_entry(out: &mut impl Write, entry: &Entry) -> std::io::Result<()> {
    write!(
        out,
        "__REALTIME_TIMESTAMP={}\n__MONOTONIC_TIMESTAMP={}\n",
        entry.realtime_usec, entry.monotonic_usec
    )?;
    for field in &entry.fields {
        out.write_all(field.name.as_bytes())?;
        if is_text(&field.value) {
            out.write_all(b"=")?;
            out.write_all(&field.value)?;
        } else {
            out.write_all(b"\n")?;
            out.write_all(&(field.value.len() as u64).to_le_bytes())?;
            out.write_all(&field.value)?;
        }
        out.write_all(b"\n")?;
    }
    out.write_all(b"\n")
}

/// Whether `value` can be written as `NAME=value`: UTF-8 without control characters
/// other than TAB (so no newline), as systemd's export writer decides.
fn is_text(value: &[u8]) -> bool {
    // Fast path: printable ASCII, the common case.
    if value
        .iter()
        .all(|b| (0x20..0x7f).contains(b) || *b == b'\t')
    {
        return true;
    }
    match std::str::from_utf8(value) {
        Ok(text) => !text.chars().any(|c| c.is_control() && c != '\t'),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::Id128;

    #[test]
    fn text_and_binary_fields() {
        let mut entry = Entry::new(1_700_000_000_000_000, 42, Id128([1; 16]));
        entry.push("MESSAGE", "hello\tworld");
        entry.push("BIN", b"a\nb".to_vec());
        let mut out = Vec::new();
        write_entry(&mut out, &entry).unwrap();
        let mut expected = b"__REALTIME_TIMESTAMP=1700000000000000\n__MONOTONIC_TIMESTAMP=42\n\
MESSAGE=hello\tworld\nBIN\n"
            .to_vec();
        expected.extend_from_slice(&[3, 0, 0, 0, 0, 0, 0, 0]);
        expected.extend_from_slice(b"a\nb\n\n");
        assert_eq!(out, expected);
    }

    #[test]
    fn invalid_utf8_is_binary() {
        assert!(!is_text(&[0xff, b'a']));
        assert!(!is_text(b"\x1b[0m"));
        assert!(is_text("é ü".as_bytes()));
    }
}
