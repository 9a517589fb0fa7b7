//! Disk usage for CRI `ImageFsInfo`: bytes and inodes under the image folders, counted by
//! walking them (hardlinked files once), and the mount point they live on.

use std::collections::HashSet;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::error::ImageError;

/// What `ImageFsInfo` reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FsUsage {
    /// The mount point of the filesystem holding the store.
    pub mountpoint: PathBuf,
    /// Bytes allocated (st_blocks × 512).
    pub used_bytes: u64,
    /// Files, directories and links.
    pub inodes_used: u64,
}

/// Sums allocated bytes and inodes under each of `dirs` (missing ones count nothing).
pub fn walk(dirs: &[PathBuf]) -> Result<(u64, u64), ImageError> {
    let mut seen = HashSet::new();
    let (mut bytes, mut inodes) = (0u64, 0u64);
    let mut stack: Vec<PathBuf> = dirs.to_vec();
    while let Some(path) = stack.pop() {
        let meta = match fs::symlink_metadata(&path) {
            Ok(m) => m,
            // Removed while we walk (a concurrent remove or unpack): not ours to count.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(ImageError::io("inspect", &path, e)),
        };
        if !seen.insert((meta.dev(), meta.ino())) {
            continue;
        }
        bytes += meta.blocks() * 512;
        inodes += 1;
        if meta.is_dir() {
            match fs::read_dir(&path) {
                Ok(entries) => stack.extend(entries.filter_map(|e| e.ok().map(|e| e.path()))),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(ImageError::io("read directory", &path, e)),
            }
        }
    }
    Ok((bytes, inodes))
}

/// The mount point holding `path`: the highest ancestor on the same device.
pub fn mountpoint(path: &Path) -> Result<PathBuf, ImageError> {
    let path = fs::canonicalize(path).map_err(|e| ImageError::io("resolve", path, e))?;
    let dev = fs::metadata(&path)
        .map_err(|e| ImageError::io("inspect", &path, e))?
        .dev();
    let mut mount = path.clone();
    for ancestor in path.ancestors().skip(1) {
        match fs::metadata(ancestor) {
            Ok(m) if m.dev() == dev => mount = ancestor.to_path_buf(),
            _ => break,
        }
    }
    Ok(mount)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_hardlinks_once_and_finds_a_mountpoint() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        fs::write(&a, vec![1u8; 10000]).unwrap();
        fs::hard_link(&a, dir.path().join("b")).unwrap();
        let (bytes, inodes) =
            walk(&[dir.path().to_path_buf(), dir.path().join("missing")]).unwrap();
        assert_eq!(inodes, 2);
        assert!(bytes >= 10000);
        let mp = mountpoint(dir.path()).unwrap();
        assert!(dir.path().canonicalize().unwrap().starts_with(&mp));
    }
}
