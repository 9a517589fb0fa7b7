//! File helpers the container code shares: crash-safe writes. Files inside an image's
//! root are read through [`inroot`](super::inroot).

use std::path::Path;

use super::ContainerError;

/// Writes `data` to `path` atomically. Every container file lives in its bundle, in the
/// state folder, so without fsync (see [`crate::atomic_file::write_volatile`]).
pub fn atomic_write(path: &Path, data: &[u8]) -> Result<(), ContainerError> {
    crate::atomic_file::write_volatile(path, data)
        .map_err(|e| ContainerError::io("writing", path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        atomic_write(&path, b"one").unwrap();
        atomic_write(&path, b"two").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
