//! The [`Source`] over real journal files, through `berth-journal`: the node's
//! directories (`/var/log/journal`, `/run/log/journal`), a `-D` directory, or `--file`s.

use std::path::PathBuf;

use berth_journal::{DirEntries, Reader};

use crate::entry::Entry;
use crate::{Boot, Source};

/// The journal directories journalctl reads on a node: persistent, then volatile.
pub const NODE_DIRECTORIES: [&str; 2] = ["/var/log/journal", "/run/log/journal"];

/// Where entries are read from.
pub enum Files {
    Directories(Vec<PathBuf>),
    Files(Vec<PathBuf>),
}

fn convert(e: berth_journal::Entry) -> Entry {
    Entry {
        cursor: e.cursor(),
        realtime: e.realtime,
        monotonic: e.monotonic,
        boot_id: e.boot_id.to_string(),
        seqnum: e.seqnum,
        fields: e.fields,
    }
}

impl Files {
    fn directories(&self) -> &[PathBuf] {
        match self {
            Files::Directories(d) => d,
            Files::Files(_) => &[],
        }
    }
}

impl Source for Files {
    fn entries(&mut self, warnings: &mut Vec<String>) -> Result<Vec<Entry>, String> {
        let mut out = Vec::new();
        match self {
            Files::Directories(dirs) => {
                for dir in dirs.iter().filter(|d| d.is_dir()) {
                    let entries = DirEntries::open(dir, false).map_err(|e| e.to_string())?;
                    let mut entries = entries;
                    out.extend(entries.by_ref().map(convert));
                    warnings.extend(entries.errors().iter().map(|e| e.to_string()));
                }
            }
            Files::Files(files) => {
                for file in files.iter() {
                    let reader = Reader::open(file).map_err(|e| e.to_string())?;
                    for e in reader.entries() {
                        match e {
                            Ok(e) => out.push(convert(e)),
                            Err(e) => {
                                warnings.push(e.to_string());
                                break;
                            }
                        }
                    }
                }
            }
        }
        // Several directories or files: one order, by time then sequence number.
        out.sort_by_key(|e| (e.realtime, e.seqnum));
        Ok(out)
    }

    fn entries_with_any(
        &mut self,
        any: &[(String, Vec<u8>)],
        warnings: &mut Vec<String>,
    ) -> Result<Vec<Entry>, String> {
        let Files::Directories(dirs) = self else {
            return self.entries(warnings);
        };
        let mut out = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        for dir in dirs.iter().filter(|d| d.is_dir()) {
            for (field, value) in any {
                let mut entries =
                    DirEntries::open_matching(dir, &[(field.as_str(), value.as_slice())], false)
                        .map_err(|e| e.to_string())?;
                for e in entries.by_ref() {
                    if seen.insert(e.cursor()) {
                        out.push(convert(e));
                    }
                }
                warnings.extend(entries.errors().iter().map(|e| e.to_string()));
            }
        }
        out.sort_by_key(|e| (e.realtime, e.seqnum));
        Ok(out)
    }

    fn boots(&mut self, warnings: &mut Vec<String>) -> Result<Vec<Boot>, String> {
        let Files::Directories(dirs) = self else {
            return Ok(crate::boots(&self.entries(warnings)?));
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
