//! Which sink the writer thread opens, and what happens when it cannot. The writer opens
//! it first thing, while the readers already take entries into the queue (see
//! [`crate::daemon`]): on a first boot, creating `/var/log/journal/<machine-id>/` and its
//! file is the slow part of the collector's start, and READY=1 (which the container
//! runtime's unit waits for) need not wait for it.
//!
//! As systemd-journald (journald.conf(5), `Storage=`; its `system_journal_open`): journal
//! files go under the persistent folder when it can be used, else under the volatile one.
//! A persistent folder that exists but cannot be opened (a full or read-only STATE, a
//! damaged folder) is said on stderr, with its path and error, and the journal goes to
//! the volatile folder until the collector restarts. Only when the volatile folder (or,
//! with `--storage export`, the export file) cannot be opened either is the failure
//! fatal: the daemon stops non-zero, saying how many queued entries were not written, and
//! its unit's `Restart=always` starts it again (journald, whose runtime journal cannot be
//! opened, fails the same way, only before READY=1). "journal in DIR" and a file "set
//! aside" are said once the file is open.

use crate::entry::{EntrySink, SinkError};
use crate::export::ExportSink;
use crate::journal_sink::{JournalSink, Storage};
use crate::say::error_chain;
use std::path::PathBuf;

/// Where entries go, as the command line says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Plan {
    /// Journal Export Format appended to this file (tests, and a fallback by hand).
    Export(PathBuf),
    /// Journal files of the machine `machine_id` (32 hex digits).
    Journal {
        choice: Choice,
        persistent: PathBuf,
        volatile: PathBuf,
        machine_id: String,
    },
}

/// journald's `Storage=`, without `none`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Choice {
    /// Persistent when the persistent folder exists on a disk, else volatile.
    Auto,
    /// Persistent, the folder created if needed; volatile when it cannot be used.
    Persistent,
    Volatile,
}

impl Plan {
    /// Opens the sink, falling back from persistent to volatile storage (said on stderr);
    /// the error is the last storage's, with its path.
    pub fn open(&self) -> Result<Box<dyn EntrySink>, SinkError> {
        let (choice, persistent, volatile, machine_id) = match self {
            Plan::Export(path) => return open_export(path),
            Plan::Journal {
                choice,
                persistent,
                volatile,
                machine_id,
            } => (choice, persistent, volatile, machine_id),
        };
        let storage = match choice {
            Choice::Auto => Storage::auto(persistent, volatile),
            Choice::Persistent => Storage::Persistent(persistent.clone()),
            Choice::Volatile => Storage::Volatile(volatile.clone()),
        };
        match open_journal(&storage, machine_id) {
            Err(e) if matches!(storage, Storage::Persistent(_)) => {
                crate::say!(
                    "berth-journald: {}; the journal goes to volatile storage instead",
                    error_chain(&e)
                );
                open_journal(&Storage::Volatile(volatile.clone()), machine_id)
            }
            opened => opened,
        }
    }
}

fn open_export(path: &std::path::Path) -> Result<Box<dyn EntrySink>, SinkError> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|source| SinkError::Open {
            path: parent.display().to_string(),
            source,
        })?;
    }
    Ok(Box::new(ExportSink::open(path)?))
}

fn open_journal(storage: &Storage, machine_id: &str) -> Result<Box<dyn EntrySink>, SinkError> {
    let (sink, set_aside) = JournalSink::open(storage, machine_id)?;
    for path in set_aside {
        crate::say!(
            "berth-journald: {} was not closed cleanly (power loss?); set aside, a new file started",
            path.display()
        );
    }
    crate::say!("berth-journald: journal in {}", storage.root().display());
    Ok(Box::new(sink))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::{Entry, Id128};

    const MACHINE: &str = "3d1219c7c4c5404aaa1f6d2a48adfda4";

    fn journal(choice: Choice, persistent: PathBuf, volatile: PathBuf) -> Plan {
        Plan::Journal {
            choice,
            persistent,
            volatile,
            machine_id: MACHINE.into(),
        }
    }

    fn write_one(sink: &mut Box<dyn EntrySink>) {
        let mut e = Entry::new(1_700_000_000_000_000, 1, Id128([7; 16]));
        e.push("MESSAGE", "hello");
        sink.append(&e).expect("append");
        sink.sync().expect("sync");
    }

    fn entries_under(dir: &std::path::Path) -> usize {
        berth_journal::DirEntries::open(dir, false)
            .map(|entries| entries.count())
            .unwrap_or(0)
    }

    #[test]
    fn persistent_storage_is_created_when_asked() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let (var, run) = (tmp.path().join("var/journal"), tmp.path().join("run"));
        let mut sink = journal(Choice::Persistent, var.clone(), run.clone())
            .open()
            .expect("open");
        write_one(&mut sink);
        drop(sink);
        assert_eq!(entries_under(&var), 1);
        assert!(!run.exists());
    }

    #[test]
    fn an_unusable_persistent_folder_falls_back_to_volatile() {
        let tmp = tempfile::tempdir().expect("tempdir");
        // A file where the folder should be: no mkdir makes it usable, even as root.
        let var = tmp.path().join("var");
        std::fs::write(&var, "not a folder").expect("file");
        let run = tmp.path().join("run");
        let mut sink = journal(Choice::Persistent, var.join("journal"), run.clone())
            .open()
            .expect("volatile storage opens");
        write_one(&mut sink);
        drop(sink);
        assert_eq!(entries_under(&run), 1);
    }

    #[test]
    fn with_no_usable_folder_the_error_names_the_volatile_one() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let blocker = tmp.path().join("file");
        std::fs::write(&blocker, "not a folder").expect("file");
        let run = blocker.join("run");
        let plan = journal(Choice::Persistent, blocker.join("var"), run.clone());
        let Err(e) = plan.open() else {
            panic!("opened under a file");
        };
        let text = error_chain(&e);
        assert!(text.contains(&run.display().to_string()), "{text}");
        // Volatile asked for: no second try, the same error.
        let plan = journal(Choice::Volatile, tmp.path().join("var"), run);
        assert!(plan.open().is_err());
    }

    #[test]
    fn export_creates_its_folder() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let path = tmp.path().join("log/x.export");
        let mut sink = Plan::Export(path.clone()).open().expect("open");
        write_one(&mut sink);
        assert!(std::fs::read(&path)
            .expect("file")
            .starts_with(b"__REALTIME"));
        let bad = Plan::Export(path.join("under-a-file.export"));
        assert!(bad.open().is_err());
    }
}
