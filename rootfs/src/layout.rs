//! The folders every Berth root has before any package: the mount points of the design's
//! mount table. The root is read-only at run time, so PID 1 cannot create them; they must
//! be in the image. Modes are those of a Debian base system.

use std::path::Path;

use crate::place::{self, PlaceError};

/// (path in the root, mode). Parents come before children.
pub const MOUNT_POINTS: &[(&str, u32)] = &[
    ("dev", 0o755),
    ("proc", 0o555),
    ("sys", 0o555),
    ("run", 0o755),
    ("tmp", 0o1777),
    ("etc", 0o755),
    ("home", 0o755),
    ("root", 0o700),
    ("var", 0o755),
    ("mnt", 0o755),
    ("mnt/stateful_partition", 0o755),
    ("mnt/disks", 0o755),
];

/// Creates the mount points in `root`.
pub fn create(root: &Path) -> Result<(), PlaceError> {
    for (path, mode) in MOUNT_POINTS {
        place::make_dir(root, Path::new(path), Some(*mode))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn mount_points_exist_with_their_modes() {
        let dir = tempfile::tempdir().unwrap();
        create(dir.path()).unwrap();
        for (path, mode) in MOUNT_POINTS {
            let meta = std::fs::metadata(dir.path().join(path)).unwrap();
            assert!(meta.is_dir(), "{path}");
            assert_eq!(meta.permissions().mode() & 0o7777, *mode, "{path}");
        }
    }
}
