//! Small crash-safety helpers: unique temporary names, atomic file replacement, and
//! directory fsync so a rename survives a power cut.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::error::ImageError;

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A name no other writer in this or another process uses: `<stem>.<pid>.<n><suffix>`.
pub fn unique_name(stem: &str, suffix: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{stem}.{}.{n}{suffix}", std::process::id())
}

/// fsyncs a directory so entries renamed into it are durable.
pub fn sync_dir(dir: &Path) -> Result<(), ImageError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| ImageError::io("fsync directory", dir, e))
}

/// Writes `bytes` to `path` atomically (see [`crate::atomic_file`]).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ImageError> {
    crate::atomic_file::write(path, bytes).map_err(|e| ImageError::io("write", path, e))
}

/// Creates `dir` and its parents.
pub fn create_dir_all(dir: &Path) -> Result<(), ImageError> {
    fs::create_dir_all(dir).map_err(|e| ImageError::io("create directory", dir, e))
}

/// Removes everything inside `dir` (not `dir` itself); a missing `dir` is fine.
pub fn empty_dir(dir: &Path) -> Result<(), ImageError> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(ImageError::io("read directory", dir, e)),
    };
    for entry in entries {
        let path: PathBuf = entry
            .map_err(|e| ImageError::io("read directory", dir, e))?
            .path();
        remove_any(&path)?;
    }
    Ok(())
}

/// Removes a file, symlink or directory tree without following symlinks; missing is fine.
pub fn remove_any(path: &Path) -> Result<(), ImageError> {
    let result = match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    };
    result.map_err(|e| ImageError::io("remove", path, e))
}
