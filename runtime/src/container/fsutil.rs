//! File helpers the container code shares: crash-safe writes, and reading a file of an
//! image's rootfs without following its symlinks out of the rootfs.

use std::path::{Component, Path, PathBuf};

use super::ContainerError;

/// Writes `data` to `path` atomically (see [`crate::atomic_file`]).
pub fn atomic_write(path: &Path, data: &[u8]) -> Result<(), ContainerError> {
    crate::atomic_file::write(path, data).map_err(|e| ContainerError::io("writing", path, e))
}

/// Resolves `path` (absolute, as seen inside the container) under `root`, following
/// symlinks as the container would see them: an absolute link target or `..` never
/// leaves `root`. Returns the host path; the final file may not exist.
pub fn resolve_in_root(root: &Path, path: &Path) -> PathBuf {
    let mut resolved = PathBuf::new(); // relative to root
    let mut pending: Vec<PathBuf> = path
        .components()
        .rev()
        .map(|c| PathBuf::from(c.as_os_str()))
        .collect();
    let mut links = 0;
    while let Some(part) = pending.pop() {
        match part.components().next() {
            Some(Component::RootDir) | Some(Component::CurDir) | None => continue,
            Some(Component::ParentDir) => {
                resolved.pop();
                continue;
            }
            _ => {}
        }
        let candidate = resolved.join(&part);
        match std::fs::read_link(root.join(&candidate)) {
            Ok(target) if links < 40 => {
                links += 1;
                if target.is_absolute() {
                    resolved = PathBuf::new();
                }
                pending.extend(
                    target
                        .components()
                        .rev()
                        .map(|c| PathBuf::from(c.as_os_str())),
                );
            }
            _ => resolved = candidate,
        }
    }
    root.join(resolved)
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

    #[test]
    fn symlinks_stay_inside_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::create_dir_all(root.join("real")).unwrap();
        std::fs::write(root.join("real/passwd"), "x").unwrap();
        std::os::unix::fs::symlink("/real/passwd", root.join("etc/passwd")).unwrap();
        std::os::unix::fs::symlink("../../../../etc/shadow", root.join("etc/group")).unwrap();
        std::os::unix::fs::symlink("loop", root.join("etc/loop")).unwrap();
        assert_eq!(
            resolve_in_root(root, Path::new("/etc/passwd")),
            root.join("real/passwd")
        );
        assert_eq!(
            resolve_in_root(root, Path::new("/etc/group")),
            root.join("etc/shadow")
        );
        assert_eq!(resolve_in_root(root, Path::new("/../..")), root.join(""));
        assert!(resolve_in_root(root, Path::new("/etc/loop")).starts_with(root));
    }
}
