//! Crash-safe file replacement: a reader sees the old file or the new one, never a torn
//! one (temp file in the same folder, fsync, rename).

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use super::PodError;

/// Replaces `path` with `data` atomically (mode 0644).
pub(crate) fn write(path: &Path, data: &[u8]) -> Result<(), PodError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let tmp = dir.join(format!(".{name}.tmp-{}-{n}", std::process::id()));
    let result = write_new(&tmp, data).and_then(|()| {
        std::fs::rename(&tmp, path).map_err(|e| PodError::io("rename into", path, e))
    });
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
        return result;
    }
    if let Ok(d) = std::fs::File::open(dir) {
        // Best effort: the rename is already visible; this only orders it on disk.
        let _ = d.sync_all();
    }
    Ok(())
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

fn write_new(tmp: &Path, data: &[u8]) -> Result<(), PodError> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .open(tmp)
        .map_err(|e| PodError::io("create", tmp, e))?;
    f.write_all(data)
        .map_err(|e| PodError::io("write", tmp, e))?;
    f.sync_all().map_err(|e| PodError::io("fsync", tmp, e))
}

#[cfg(test)]
mod tests {
    #[test]
    fn replaces_and_leaves_no_temp_files() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        super::write(&p, b"one").unwrap();
        super::write(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
