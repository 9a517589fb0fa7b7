//! The collector's real sink: systemd journal files through `berth-journal`, persistent
//! under `/var/log/journal/<machine-id>/` when that folder is on a disk (STATE), volatile
//! under `/run/log/journal/<machine-id>/` when it is missing or on a tmpfs (journald's
//! `Storage=auto`). After each batch the entries are written to the file (so `journalctl`
//! and a `sync` see them); the file is made durable and marked clean at most every
//! [`DURABLE_INTERVAL`], when a message of priority crit or worse arrives (as journald
//! does), and when the collector stops.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use berth_journal::{DirConfig, EntryTime, Id128, JournalDir};

use crate::entry::{Entry, EntrySink, SinkError};

/// At most this long between fsyncs of the active file (journald's SyncIntervalSec= is
/// five minutes; a node killed by its cloud loses less with a shorter one).
pub const DURABLE_INTERVAL: Duration = Duration::from_secs(5);

/// Where the journal goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Storage {
    Persistent(PathBuf),
    Volatile(PathBuf),
}

impl Storage {
    /// journald's `Storage=auto`: persistent when `persistent` exists on a file system
    /// that is not a tmpfs, else volatile.
    pub fn auto(persistent: &Path, volatile: &Path) -> Storage {
        match nix::sys::statfs::statfs(persistent) {
            Ok(fs) if fs.filesystem_type() != nix::sys::statfs::TMPFS_MAGIC => {
                Storage::Persistent(persistent.to_owned())
            }
            _ => Storage::Volatile(volatile.to_owned()),
        }
    }

    pub fn root(&self) -> &Path {
        match self {
            Storage::Persistent(p) | Storage::Volatile(p) => p,
        }
    }
}

pub struct JournalSink {
    dir: Option<JournalDir>,
    path: String,
    last_durable: Instant,
    urgent: bool,
}

fn other(path: &str, e: impl std::fmt::Display) -> SinkError {
    SinkError::Other {
        path: path.to_owned(),
        reason: e.to_string(),
    }
}

impl JournalSink {
    /// Opens (or creates) the machine's journal folder under `storage`; a file left
    /// half-written by a power loss is set aside there and a new one started.
    pub fn open(
        storage: &Storage,
        machine_id: &str,
    ) -> Result<(JournalSink, Vec<PathBuf>), SinkError> {
        let root = storage.root();
        let path = root.display().to_string();
        std::fs::create_dir_all(root).map_err(|source| SinkError::Open {
            path: path.clone(),
            source,
        })?;
        let id = Id128::parse(machine_id.trim()).map_err(|e| other(&path, e))?;
        let dir = JournalDir::open(root, id, &DirConfig::default()).map_err(|e| other(&path, e))?;
        let set_aside = dir.set_aside().to_vec();
        Ok((
            JournalSink {
                path: dir.active_path().display().to_string(),
                dir: Some(dir),
                last_durable: Instant::now(),
                urgent: false,
            },
            set_aside,
        ))
    }
}

impl EntrySink for JournalSink {
    fn append(&mut self, entry: &Entry) -> Result<(), SinkError> {
        let dir = self
            .dir
            .as_mut()
            .ok_or_else(|| other(&self.path, "closed"))?;
        let time = EntryTime {
            realtime: entry.realtime_usec,
            monotonic: entry.monotonic_usec,
            boot_id: Id128(entry.boot_id.0),
        };
        // The writer adds `_BOOT_ID=` from the entry's time itself.
        let fields: Vec<(&str, &[u8])> = entry
            .fields
            .iter()
            .filter(|f| f.name != "_BOOT_ID")
            .map(|f| (f.name.as_ref(), f.value.as_slice()))
            .collect();
        if entry
            .get("PRIORITY")
            .is_some_and(|p| matches!(p, b"0" | b"1" | b"2"))
        {
            self.urgent = true;
        }
        dir.append(time, &fields)
            .map_err(|e| other(&self.path, e))?;
        Ok(())
    }

    fn sync(&mut self) -> Result<(), SinkError> {
        let dir = self
            .dir
            .as_mut()
            .ok_or_else(|| other(&self.path, "closed"))?;
        if self.urgent || self.last_durable.elapsed() >= DURABLE_INTERVAL {
            dir.sync().map_err(|e| other(&self.path, e))?;
            dir.enforce_budget().map_err(|e| other(&self.path, e))?;
            self.last_durable = Instant::now();
            self.urgent = false;
        } else {
            dir.flush().map_err(|e| other(&self.path, e))?;
        }
        Ok(())
    }
}

impl Drop for JournalSink {
    /// The collector stops: the file is made durable and closed clean (OFFLINE).
    fn drop(&mut self) {
        if let Some(dir) = self.dir.take() {
            if let Err(e) = dir.close() {
                crate::say!("berth-journald: closing {}: {e}", self.path);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::Id128 as EntryId;

    #[test]
    fn entries_land_in_a_journal_file_the_reader_reads() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let storage = Storage::Persistent(tmp.path().join("journal"));
        let machine = "3d1219c7c4c5404aaa1f6d2a48adfda4";
        let (mut sink, set_aside) = JournalSink::open(&storage, machine).expect("open");
        assert!(set_aside.is_empty());
        let boot = EntryId([7; 16]);
        for i in 0..3u64 {
            let mut e = Entry::new(1_700_000_000_000_000 + i, 1000 + i, boot);
            e.push("_BOOT_ID", boot.to_string());
            e.push("MESSAGE", format!("line {i}"));
            e.push("_SYSTEMD_UNIT", "a.service");
            sink.append(&e).expect("append");
        }
        sink.sync().expect("sync");
        drop(sink);
        let entries: Vec<_> = berth_journal::DirEntries::open(storage.root(), false)
            .expect("read")
            .collect();
        assert_eq!(entries.len(), 3);
        assert_eq!(entries[2].field("MESSAGE"), Some(&b"line 2"[..]));
        let boot_ids = entries[0]
            .fields
            .iter()
            .filter(|(n, _)| n == "_BOOT_ID")
            .count();
        assert_eq!(boot_ids, 1, "one _BOOT_ID per entry");
    }

    #[test]
    fn a_tmpfs_or_missing_folder_means_volatile() {
        let storage = Storage::auto(Path::new("/nonexistent/journal"), Path::new("/run/x"));
        assert_eq!(storage, Storage::Volatile("/run/x".into()));
        let tmp = tempfile::tempdir().expect("tempdir");
        if let Ok(fs) = nix::sys::statfs::statfs(tmp.path()) {
            let auto = Storage::auto(tmp.path(), Path::new("/run/x"));
            let tmpfs = fs.filesystem_type() == nix::sys::statfs::TMPFS_MAGIC;
            assert_eq!(matches!(auto, Storage::Volatile(_)), tmpfs);
        }
    }
}
