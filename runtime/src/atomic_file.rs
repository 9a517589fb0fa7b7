//! The one crash-safe file replacement every part of the runtime uses: a temp file with a
//! name unique to this process and call in the same folder, then a rename. A reader, or
//! the daemon after a SIGKILL, sees the old file or the new one, never a torn one; a
//! stray `.<name>.<pid>.<n>.tmp` is all an interruption can leave.
//!
//! Two strengths, by the folder the file lives in. [`write`] (the root folder: records,
//! images) also fsyncs the file before the rename and the folder after it, so the new
//! file survives a power loss. [`write_volatile`] (the state folder: bundles, monitor and
//! exit files, pod files, CNI cache) skips both: the state folder must not survive a
//! reboot (`/run` is a tmpfs on a node), so a power loss takes it away whatever was synced,
//! and on a host whose state folder sits on a disk the two fsyncs per file were most of
//! the latency of RunPodSandbox and CreateContainer. [`sync`] turns a file written by
//! [`write_volatile`] into one written by [`write`], for a file that must exist at once but
//! whose fsyncs can overlap other work.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// Replaces `path` with `data` (mode 0644), durably: for files in the root folder.
pub fn write(path: &Path, data: &[u8]) -> std::io::Result<()> {
    replace(path, data, true)
}

/// Replaces `path` with `data` (mode 0644), atomically but without fsync: for files in
/// the state folder, which a reboot empties anyway.
pub fn write_volatile(path: &Path, data: &[u8]) -> std::io::Result<()> {
    replace(path, data, false)
}

/// Makes `path`, already written by [`write_volatile`], durable as [`write`] would have:
/// fsyncs the file, then its folder (which holds the rename). For a file that must exist
/// at once but only needs to survive a power loss a little later, so that its fsyncs
/// can overlap other work without the file being written twice.
pub fn sync(path: &Path) -> std::io::Result<()> {
    File::open(path)?.sync_all()?;
    sync_folder_of(path)
}

fn sync_folder_of(path: &Path) -> std::io::Result<()> {
    File::open(path.parent().unwrap_or(Path::new(".")))?.sync_all()
}

fn replace(path: &Path, data: &[u8], durable: bool) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let tmp = dir.join(format!(".{name}.{}.{n}.tmp", std::process::id()));
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .open(&tmp)?;
        file.write_all(data)?;
        if durable {
            file.sync_all()?;
        }
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    if durable {
        sync_folder_of(path)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    type Write = fn(&std::path::Path, &[u8]) -> std::io::Result<()>;
    const BOTH: [(&str, Write); 2] = [
        ("write", super::write),
        ("write_volatile", super::write_volatile),
    ];

    #[test]
    fn replaces_and_leaves_no_temp_files() {
        for (name, write) in BOTH {
            let dir = tempfile::tempdir().unwrap();
            let p = dir.path().join("f");
            write(&p, b"one").unwrap();
            write(&p, b"two").unwrap();
            assert_eq!(std::fs::read(&p).unwrap(), b"two", "{name}");
            assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "{name}");
        }
    }

    #[test]
    fn sync_keeps_the_file_and_fails_on_a_missing_one() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        super::write_volatile(&p, b"one").unwrap();
        super::sync(&p).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"one");
        let missing = dir.path().join("g");
        assert_eq!(
            super::sync(&missing).unwrap_err().kind(),
            std::io::ErrorKind::NotFound
        );
    }

    #[test]
    fn a_missing_folder_is_an_error_and_writes_nothing() {
        for (name, write) in BOTH {
            let dir = tempfile::tempdir().unwrap();
            assert!(write(&dir.path().join("no/f"), b"x").is_err(), "{name}");
            assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "{name}");
        }
    }
}
