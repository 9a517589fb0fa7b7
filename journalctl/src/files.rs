//! The [`Source`] over real journal files, through `berth-journal`: the node's
//! directories (`/var/log/journal`, `/run/log/journal`), a `-D` directory, or `--file`s.

use std::path::PathBuf;

use berth_journal::reader::Direction;
use berth_journal::Reader;

use crate::merge::Merge;
use crate::{Boot, Source, Stream};

/// The journal directories journalctl reads on a node: persistent, then volatile.
pub const NODE_DIRECTORIES: [&str; 2] = ["/var/log/journal", "/run/log/journal"];

/// An I/O error as systemd words it (`%m`): the system's text without Rust's
/// ` (os error N)`.
pub fn io_reason(e: &std::io::Error) -> String {
    let text = e.to_string();
    match text.find(" (os error ") {
        Some(i) => text[..i].to_owned(),
        None => text,
    }
}

/// Where entries are read from.
pub enum Files {
    Directories(Vec<PathBuf>),
    Files(Vec<PathBuf>),
}

impl Files {
    fn directories(&self) -> &[PathBuf] {
        match self {
            Files::Directories(d) => d,
            Files::Files(_) => &[],
        }
    }

    /// Every file to read, opened: a directory's files that cannot be opened are left
    /// out (as journalctl leaves them out); a `--file` that cannot be opened is an error.
    fn readers(&self) -> Result<Vec<Reader>, String> {
        let mut readers = Vec::new();
        match self {
            Files::Directories(dirs) => {
                for dir in dirs.iter().filter(|d| d.is_dir()) {
                    for f in berth_journal::list_files(dir).map_err(|e| e.to_string())? {
                        if let Ok(r) = Reader::open(&f.path) {
                            readers.push(r);
                        }
                    }
                }
            }
            Files::Files(files) => {
                for file in files {
                    std::fs::metadata(file)
                        .map_err(|e| format!("Failed to open files: {}", io_reason(&e)))?;
                    readers.push(Reader::open(file).map_err(|e| e.to_string())?);
                }
            }
        }
        Ok(readers)
    }
}

impl Source for Files {
    fn entries(&mut self, direction: Direction) -> Result<Stream<'_>, String> {
        let files = self
            .readers()?
            .into_iter()
            .map(|r| r.into_entries(direction, false))
            .collect();
        Ok(Box::new(Merge::new(files, direction)))
    }

    fn entries_with_any(
        &mut self,
        any: &[(String, Vec<u8>)],
        direction: Direction,
    ) -> Result<Stream<'_>, String> {
        let pairs: Vec<(&str, &[u8])> = any
            .iter()
            .map(|(f, v)| (f.as_str(), v.as_slice()))
            .collect();
        let mut files = Vec::new();
        for r in self.readers()? {
            // A file whose index leads into damage is read in full; the filter decides.
            files.push(match r.offsets_with_any(&pairs) {
                Ok(offsets) => r.into_entries_at(offsets, direction, false),
                Err(_) => r.into_entries(direction, false),
            });
        }
        Ok(Box::new(Merge::new(files, direction)))
    }

    fn boots(&mut self) -> Result<Vec<Boot>, String> {
        let Files::Directories(dirs) = self else {
            return Ok(crate::boots(self.entries(Direction::Forward)?));
        };
        let mut list: Vec<Boot> = Vec::new();
        for dir in dirs.iter().filter(|d| d.is_dir()) {
            for b in berth_journal::list_boots(dir).map_err(|e| e.to_string())? {
                let id = b.boot_id.to_string();
                match list.iter_mut().find(|x| x.id == id) {
                    Some(x) => {
                        x.first = x.first.min(b.first_realtime);
                        x.last = x.last.max(b.last_realtime);
                    }
                    None => list.push(Boot {
                        id,
                        first: b.first_realtime,
                        last: b.last_realtime,
                    }),
                }
            }
        }
        list.sort_by_key(|b| b.first);
        Ok(list)
    }

    fn disk_usage(&mut self) -> Result<u64, String> {
        let mut total = 0;
        for dir in self.directories().iter().filter(|d| d.is_dir()) {
            total += berth_journal::disk_usage(dir).map_err(|e| e.to_string())?;
        }
        if let Files::Files(files) = self {
            for f in files.iter() {
                total += std::fs::metadata(f)
                    .map(|m| std::os::unix::fs::MetadataExt::blocks(&m) * 512)
                    .map_err(|e| format!("{}: {e}", f.display()))?;
            }
        }
        Ok(total)
    }

    fn vacuum(&mut self, size: Option<u64>, max_age: Option<u64>) -> Result<Vec<String>, String> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_micros() as u64)
            .unwrap_or(0);
        let mut lines = Vec::new();
        for dir in self.directories().iter().filter(|d| d.is_dir()) {
            let mut deleted = Vec::new();
            if let Some(bytes) = size {
                deleted
                    .extend(berth_journal::vacuum_by_size(dir, bytes).map_err(|e| e.to_string())?);
            }
            if let Some(age) = max_age {
                deleted.extend(
                    berth_journal::vacuum_by_time(dir, now.saturating_sub(age))
                        .map_err(|e| e.to_string())?,
                );
            }
            lines.extend(
                deleted
                    .iter()
                    .map(|p| format!("Deleted archived journal {}.", p.display())),
            );
        }
        Ok(lines)
    }
}
