//! The journal files of a directory, as `journalctl --directory` sees them: listing with
//! their kind and time span, disk usage, vacuuming by size and by age, and the boots they
//! hold (`--list-boots`).
//!
//! These work on a directory root without a writer, so the CLI can run them while the
//! collector writes: only archived and damaged files are ever deleted, never an active
//! `*.journal` that is still named as such.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::error::JournalError;
use crate::id128::Id128;
use crate::reader::Reader;

/// What a file in a journal directory is, from its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// `NAME.journal`: being written (or was, until a crash).
    Active,
    /// `NAME@SEQNUMID-SEQNUM-REALTIME.journal`: rotated and closed.
    Archived,
    /// `NAME@REALTIME-RANDOM.journal~`: set aside as damaged.
    Damaged,
}

/// One journal file of a directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalFileInfo {
    pub path: PathBuf,
    pub kind: FileKind,
    /// Bytes allocated on disk (what counts against the budget; hash tables are sparse).
    pub disk_bytes: u64,
    /// Realtime (µs) the file's name or header gives for its start: the vacuum order.
    pub head_realtime: u64,
    /// Realtime (µs) of its last entry, from the header when readable.
    pub tail_realtime: Option<u64>,
}

/// The kind of `name` and the realtime its name encodes, or `None` if it is not a
/// journal file name.
pub fn classify(name: &str) -> Option<(FileKind, Option<u64>)> {
    if let Some(stem) = name.strip_suffix(".journal~") {
        let t = stem
            .rsplit_once('@')
            .and_then(|(_, tail)| tail.split('-').next())
            .and_then(|h| u64::from_str_radix(h, 16).ok());
        return Some((FileKind::Damaged, t));
    }
    let stem = name.strip_suffix(".journal")?;
    match stem.rsplit_once('@') {
        None => Some((FileKind::Active, None)),
        Some((_, tail)) => {
            let t = tail
                .rsplit('-')
                .next()
                .and_then(|h| u64::from_str_radix(h, 16).ok());
            Some((FileKind::Archived, t))
        }
    }
}

fn read_dir(dir: &Path) -> Result<Vec<std::fs::DirEntry>, JournalError> {
    let rd = std::fs::read_dir(dir).map_err(|source| JournalError::ReadDir {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut out = Vec::new();
    for e in rd {
        out.push(e.map_err(|source| JournalError::ReadDir {
            path: dir.to_path_buf(),
            source,
        })?);
    }
    Ok(out)
}

/// The journal files in `root` and in its machine-id subdirectories (the layout
/// `journalctl -D` reads), oldest first.
pub fn list_files(root: &Path) -> Result<Vec<JournalFileInfo>, JournalError> {
    let mut dirs = vec![root.to_path_buf()];
    for e in read_dir(root)? {
        let name = e.file_name();
        let is_dir = e.file_type().is_ok_and(|t| t.is_dir());
        if is_dir
            && name
                .to_str()
                .is_some_and(|n| Id128::parse(n).is_ok() && n.len() == 32)
        {
            dirs.push(e.path());
        }
    }
    let mut files = Vec::new();
    for dir in dirs {
        for e in read_dir(&dir)? {
            let Some(name) = e.file_name().to_str().map(str::to_string) else {
                continue;
            };
            let Some((kind, name_time)) = classify(&name) else {
                continue;
            };
            let Ok(meta) = e.metadata() else { continue };
            if !meta.is_file() {
                continue;
            }
            let header = Reader::open(&e.path()).ok().map(|r| r.header().clone());
            let head_realtime = name_time
                .or(header
                    .as_ref()
                    .map(|h| h.head_entry_realtime)
                    .filter(|&t| t != 0))
                .unwrap_or_else(|| {
                    u64::try_from(meta.mtime())
                        .unwrap_or(0)
                        .saturating_mul(1_000_000)
                });
            files.push(JournalFileInfo {
                path: e.path(),
                kind,
                disk_bytes: meta.blocks() * 512,
                head_realtime,
                tail_realtime: header.map(|h| h.tail_entry_realtime).filter(|&t| t != 0),
            });
        }
    }
    files.sort_by(|a, b| (a.head_realtime, &a.path).cmp(&(b.head_realtime, &b.path)));
    Ok(files)
}

/// Bytes all journal files under `root` occupy (`journalctl --disk-usage`).
pub fn disk_usage(root: &Path) -> Result<u64, JournalError> {
    Ok(list_files(root)?.iter().map(|f| f.disk_bytes).sum())
}

fn remove(path: &Path) -> Result<(), JournalError> {
    std::fs::remove_file(path).map_err(|source| JournalError::Remove {
        path: path.to_path_buf(),
        source,
    })
}

/// Deletes archived and damaged files, oldest first, until all files under `root` take
/// at most `max_bytes` (`--vacuum-size`). Returns the deleted paths.
pub fn vacuum_by_size(root: &Path, max_bytes: u64) -> Result<Vec<PathBuf>, JournalError> {
    vacuum_until(root, |usage, _| usage <= max_bytes)
}

/// Deletes archived and damaged files, oldest first, while `done(total_bytes,
/// archived_and_damaged_files)` is false.
pub(crate) fn vacuum_until(
    root: &Path,
    mut done: impl FnMut(u64, usize) -> bool,
) -> Result<Vec<PathBuf>, JournalError> {
    let files = list_files(root)?;
    let mut usage: u64 = files.iter().map(|f| f.disk_bytes).sum();
    let mut inactive = files.iter().filter(|f| f.kind != FileKind::Active).count();
    let mut deleted = Vec::new();
    for f in files.iter().filter(|f| f.kind != FileKind::Active) {
        if done(usage, inactive) {
            break;
        }
        inactive -= 1;
        remove(&f.path)?;
        usage -= f.disk_bytes;
        deleted.push(f.path.clone());
    }
    Ok(deleted)
}

/// Deletes archived and damaged files whose last entry is older than `before_realtime`
/// (µs since the epoch; `--vacuum-time`). Returns the deleted paths.
pub fn vacuum_by_time(root: &Path, before_realtime: u64) -> Result<Vec<PathBuf>, JournalError> {
    let mut deleted = Vec::new();
    for f in list_files(root)? {
        if f.kind == FileKind::Active {
            continue;
        }
        if f.tail_realtime.unwrap_or(f.head_realtime) < before_realtime {
            remove(&f.path)?;
            deleted.push(f.path);
        }
    }
    Ok(deleted)
}

/// One boot's span in the journal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootInfo {
    pub boot_id: Id128,
    pub first_realtime: u64,
    pub last_realtime: u64,
    pub entries: u64,
}

/// The boots of one file through its `_BOOT_ID=` values (a few reads per boot).
fn boots_by_index(r: &Reader) -> Result<Vec<BootInfo>, JournalError> {
    let mut out = Vec::new();
    for v in r.field_values("_BOOT_ID")? {
        let text = String::from_utf8_lossy(&v.value);
        let boot_id = Id128::parse(&text)?;
        let first = r.entry_at(v.first_entry, true)?;
        let last = r.entry_at(v.last_entry, true)?;
        if first.boot_id != boot_id || last.boot_id != boot_id {
            return Err(JournalError::BadObject {
                path: r.path().clone(),
                offset: v.first_entry,
                what: "entry",
                reason: format!("listed under _BOOT_ID={boot_id} but of another boot"),
            });
        }
        out.push(BootInfo {
            boot_id,
            first_realtime: first.realtime,
            last_realtime: last.realtime,
            entries: v.entries,
        });
    }
    Ok(out)
}

/// The boots in all files under `root`, oldest first (`--list-boots`), found through each
/// file's `_BOOT_ID=` index; a file whose index leads into damage is read entry by entry
/// up to the damage; a file that cannot be opened at all is left out.
pub fn list_boots(root: &Path) -> Result<Vec<BootInfo>, JournalError> {
    let mut boots: Vec<BootInfo> = Vec::new();
    let mut add = |boot_id: Id128, first: u64, last: u64, entries: u64| match boots
        .iter_mut()
        .find(|b| b.boot_id == boot_id)
    {
        Some(b) => {
            b.first_realtime = b.first_realtime.min(first);
            b.last_realtime = b.last_realtime.max(last);
            b.entries += entries;
        }
        None => boots.push(BootInfo {
            boot_id,
            first_realtime: first,
            last_realtime: last,
            entries,
        }),
    };
    for f in list_files(root)? {
        let Ok(r) = Reader::open(&f.path) else {
            continue;
        };
        match boots_by_index(&r) {
            Ok(found) => {
                for b in found {
                    add(b.boot_id, b.first_realtime, b.last_realtime, b.entries);
                }
            }
            // Damage the index leads into: read the entries up to it instead.
            Err(_) => {
                for e in r.entry_headers().map_while(Result::ok) {
                    add(e.boot_id, e.realtime, e.realtime, 1);
                }
            }
        }
    }
    boots.sort_by_key(|b| (b.first_realtime, b.boot_id));
    Ok(boots)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_classified_as_journald_names_them() {
        assert_eq!(classify("system.journal"), Some((FileKind::Active, None)));
        assert_eq!(
            classify(
                "system@0123456789abcdef0123456789abcdef-0000000000000001-00060a24181e4000.journal"
            ),
            Some((FileKind::Archived, Some(0x60a24181e4000)))
        );
        assert_eq!(
            classify("system@00060a24181e4000-1234567890abcdef.journal~"),
            Some((FileKind::Damaged, Some(0x60a24181e4000)))
        );
        assert_eq!(classify("system.journal.tmp"), None);
        assert_eq!(
            classify("user-1000@x.journal"),
            Some((FileKind::Archived, None))
        );
    }
}
