//! Crash-safe metadata: one JSON file per pod or container, written atomically (temp file,
//! fsync, rename, fsync of the folder), with an in-memory index loaded at start.
//!
//! A SIGKILL at any instant leaves each record either in its old or its new version, never
//! half-written; a stray temp file from an interrupted write is removed on the next start.
//! Records are few (hundreds) and small, so files beat an embedded database here: they can
//! be read with `cat` when a node misbehaves.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{ErrorKind, Kind};

/// A store failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The filesystem refused.
    #[error("{what} {path}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// Where.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A record on disk is not valid JSON for its type.
    #[error("corrupt record {path}")]
    Corrupt {
        /// The record file.
        path: PathBuf,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
}

impl ErrorKind for StoreError {
    fn kind(&self) -> Kind {
        Kind::Internal
    }
}

/// A folder of JSON records of one type, keyed by id.
pub struct Table<T> {
    dir: PathBuf,
    rows: Mutex<BTreeMap<String, T>>,
}

impl<T: Serialize + DeserializeOwned + Clone> Table<T> {
    /// Opens (creating) `dir` and loads every record in it. A record that cannot be read
    /// (damaged by a power loss or by hand) is said on stderr with its file and left out:
    /// the object it describes is no longer listed and its calls answer NotFound, while
    /// every other record stays usable; the file is kept for inspection.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        let (table, damaged) = Self::load(dir)?;
        for error in damaged {
            eprintln!(
                "berth-runtime: warning: {}; the record is left out (the file is kept)",
                crate::error::chain(&error)
            );
        }
        Ok(table)
    }

    /// [`Table::open`], returning the damaged records' errors instead of saying them.
    pub fn load(dir: &Path) -> Result<(Self, Vec<StoreError>), StoreError> {
        fs::create_dir_all(dir).map_err(|source| StoreError::Io {
            what: "cannot create",
            path: dir.to_owned(),
            source,
        })?;
        let entries = fs::read_dir(dir).map_err(|source| StoreError::Io {
            what: "cannot list",
            path: dir.to_owned(),
            source,
        })?;
        let mut rows = BTreeMap::new();
        let mut damaged = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|source| StoreError::Io {
                what: "cannot list",
                path: dir.to_owned(),
                source,
            })?;
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') && name.ends_with(".tmp") {
                // An interrupted write: the record it was replacing is still intact.
                let _ = fs::remove_file(&path);
                continue;
            }
            let Some(id) = name.strip_suffix(".json") else {
                continue;
            };
            let bytes = fs::read(&path).map_err(|source| StoreError::Io {
                what: "cannot read",
                path: path.clone(),
                source,
            })?;
            match serde_json::from_slice(&bytes) {
                Ok(row) => {
                    rows.insert(id.to_owned(), row);
                }
                Err(source) => damaged.push(StoreError::Corrupt { path, source }),
            }
        }
        let table = Self {
            dir: dir.to_owned(),
            rows: Mutex::new(rows),
        };
        Ok((table, damaged))
    }

    fn rows(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, T>> {
        // A panic while holding the lock cannot leave a half-updated map: every update
        // is a single insert or remove after the file is written.
        self.rows
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.json"))
    }

    /// Writes (creates or replaces) the record `id`, durably.
    pub fn put(&self, id: &str, row: &T) -> Result<(), StoreError> {
        self.write(id, row, true)
    }

    /// Writes the record `id` without fsync, still by an atomic rename: for a version
    /// that only has to outlive a crash of the daemon (the page cache keeps it), either
    /// a write-ahead record that [`Table::sync`] makes durable later, or one whose news
    /// only concerns what lives in memory or the state folder, which a power loss takes
    /// away too.
    pub fn put_provisional(&self, id: &str, row: &T) -> Result<(), StoreError> {
        self.write(id, row, false)
    }

    /// Makes the record `id` as last written durable (fsyncs its file and the folder),
    /// without writing it again: for a [`Table::put_provisional`] version whose fsyncs
    /// may overlap other work. The caller keeps other writers of `id` out meanwhile.
    pub fn sync(&self, id: &str) -> Result<(), StoreError> {
        let path = self.path(id);
        crate::atomic_file::sync(&path).map_err(|source| StoreError::Io {
            what: "cannot sync",
            path,
            source,
        })
    }

    /// Writes the record `id` durably but does not list it yet: for a record written
    /// while the object it describes is being made (its fsyncs then overlap that work),
    /// listed with [`Table::publish`] once the object exists, or dropped with
    /// [`Table::remove`] if making it failed. A daemon killed in between finds the record
    /// at its next start and lists it; the object is then seen as dead (or missing) and
    /// the kubelet removes it, which cleans up whatever part of it was made.
    pub fn persist(&self, id: &str, row: &T) -> Result<(), StoreError> {
        self.write_file(id, row, true)
    }

    /// Lists the record `id` written by [`Table::persist`].
    pub fn publish(&self, id: &str, row: &T) {
        self.rows().insert(id.to_owned(), row.clone());
    }

    fn write(&self, id: &str, row: &T, durable: bool) -> Result<(), StoreError> {
        // Held across the file write so that two writers of one id leave the same
        // version on disk and in memory.
        let mut rows = self.rows();
        self.write_file(id, row, durable)?;
        rows.insert(id.to_owned(), row.clone());
        Ok(())
    }

    fn write_file(&self, id: &str, row: &T, durable: bool) -> Result<(), StoreError> {
        let path = self.path(id);
        let bytes = serde_json::to_vec_pretty(row).map_err(|source| StoreError::Corrupt {
            path: path.clone(),
            source,
        })?;
        let written = if durable {
            crate::atomic_file::write(&path, &bytes)
        } else {
            crate::atomic_file::write_volatile(&path, &bytes)
        };
        written.map_err(|source| StoreError::Io {
            what: "cannot write",
            path,
            source,
        })
    }

    /// The record `id`.
    pub fn get(&self, id: &str) -> Option<T> {
        self.rows().get(id).cloned()
    }

    /// Every record, by id.
    pub fn all(&self) -> Vec<(String, T)> {
        self.rows()
            .iter()
            .map(|(id, row)| (id.clone(), row.clone()))
            .collect()
    }

    /// The ids starting with `prefix` (crictl accepts unique id prefixes).
    pub fn ids_with_prefix(&self, prefix: &str) -> Vec<String> {
        self.rows()
            .range(prefix.to_owned()..)
            .take_while(|(id, _)| id.starts_with(prefix))
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// Changes the record `id` with `f` and writes it; `None` if there is no such record.
    pub fn update(&self, id: &str, f: impl FnOnce(&mut T)) -> Result<Option<T>, StoreError> {
        let Some(mut row) = self.get(id) else {
            return Ok(None);
        };
        f(&mut row);
        self.put(id, &row)?;
        Ok(Some(row))
    }

    /// Removes the record `id`; removing a missing record succeeds.
    pub fn remove(&self, id: &str) -> Result<(), StoreError> {
        let path = self.path(id);
        let mut rows = self.rows();
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(StoreError::Io {
                    what: "cannot remove",
                    path,
                    source,
                })
            }
        }
        rows.remove(id);
        Ok(())
    }
}

/// A new random 64-hex-digit id, like containerd's.
pub fn new_id() -> Result<String, StoreError> {
    let mut bytes = [0u8; 32];
    let path = Path::new("/dev/urandom");
    File::open(path)
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes))
        .map_err(|source| StoreError::Io {
            what: "cannot read",
            path: path.to_owned(),
            source,
        })?;
    Ok(hex::encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Row {
        name: String,
        n: u32,
    }

    fn row(name: &str, n: u32) -> Row {
        Row {
            name: name.into(),
            n,
        }
    }

    #[test]
    fn records_survive_reopen_and_removal_is_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let table = Table::open(dir.path()).unwrap();
        table.put("abc1", &row("a", 1)).unwrap();
        table.put("abd2", &row("b", 2)).unwrap();
        table.update("abc1", |r| r.n = 5).unwrap();
        assert!(table.update("zzz", |r| r.n = 5).unwrap().is_none());
        let reopened: Table<Row> = Table::open(dir.path()).unwrap();
        assert_eq!(reopened.get("abc1"), Some(row("a", 5)));
        assert_eq!(reopened.ids_with_prefix("ab").len(), 2);
        assert_eq!(reopened.ids_with_prefix("abc"), vec!["abc1".to_owned()]);
        reopened.remove("abc1").unwrap();
        reopened.remove("abc1").unwrap();
        let again: Table<Row> = Table::open(dir.path()).unwrap();
        assert_eq!(again.all().len(), 1);
    }

    #[test]
    fn a_persisted_record_is_listed_when_published_or_after_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let table = Table::open(dir.path()).unwrap();
        table.persist("p", &row("made", 1)).unwrap();
        assert_eq!(table.get("p"), None, "not listed before publish");
        let reopened: Table<Row> = Table::open(dir.path()).unwrap();
        assert_eq!(reopened.get("p"), Some(row("made", 1)), "on disk already");
        table.publish("p", &row("made", 1));
        assert_eq!(table.get("p"), Some(row("made", 1)));
        table.persist("q", &row("failed", 2)).unwrap();
        table.remove("q").unwrap();
        let again: Table<Row> = Table::open(dir.path()).unwrap();
        assert_eq!(again.get("q"), None);
    }

    #[test]
    fn a_provisional_record_synced_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let table = Table::open(dir.path()).unwrap();
        assert!(table.sync("p").is_err(), "no such record");
        table.put_provisional("p", &row("ahead", 1)).unwrap();
        table.sync("p").unwrap();
        let reopened: Table<Row> = Table::open(dir.path()).unwrap();
        assert_eq!(reopened.get("p"), Some(row("ahead", 1)));
    }

    #[test]
    fn interrupted_write_leaves_the_old_record() {
        let dir = tempfile::tempdir().unwrap();
        let table = Table::open(dir.path()).unwrap();
        table.put("x", &row("old", 1)).unwrap();
        // What a SIGKILL between write and rename leaves behind.
        fs::write(dir.path().join(".x.json.tmp"), b"{\"name\":\"ne").unwrap();
        let reopened: Table<Row> = Table::open(dir.path()).unwrap();
        assert_eq!(reopened.get("x"), Some(row("old", 1)));
        assert!(!dir.path().join(".x.json.tmp").exists());
    }

    #[test]
    fn corrupt_record_is_left_out_with_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let table = Table::open(dir.path()).unwrap();
        table.put("good", &row("a", 1)).unwrap();
        fs::write(dir.path().join("bad.json"), b"{").unwrap();
        let (table, damaged) = Table::<Row>::load(dir.path()).unwrap();
        assert_eq!(damaged.len(), 1);
        let err = damaged[0].to_string();
        assert!(err.contains("bad.json"), "{err}");
        assert_eq!(table.get("good"), Some(row("a", 1)));
        assert_eq!(table.get("bad"), None);
        assert!(dir.path().join("bad.json").exists(), "kept for inspection");
        // open says the same on stderr and serves the rest.
        assert_eq!(Table::<Row>::open(dir.path()).unwrap().all().len(), 1);
    }

    #[test]
    fn ids_are_64_hex() {
        let id = new_id().unwrap();
        assert_eq!(id.len(), 64);
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(id, new_id().unwrap());
    }
}
