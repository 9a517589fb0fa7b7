//! The classic `switch_root` (util-linux, busybox): free the initramfs, then make the new
//! root `/`.
//!
//! The initramfs is a ramfs/tmpfs that cannot be unmounted (it is the kernel's rootfs), so
//! its files would stay in memory for the life of the machine unless deleted; deleting
//! them first is what every switch_root does. The deletion never crosses into another
//! file system (the new root, and anything mounted on it, is on another device), and only
//! happens when `/` really is a ramfs or tmpfs, so a mistaken call on a disk root deletes
//! nothing. Deletion is best effort: what cannot be deleted costs memory, not the boot.

use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use nix::mount::MsFlags;
use nix::sys::statfs::{statfs, FsType, TMPFS_MAGIC};

/// `RAMFS_MAGIC` from `linux/magic.h` (not in libc).
const RAMFS_MAGIC: FsType = FsType(0x8584_58f6);

pub(super) fn switch_root(new_root: &Path) -> io::Result<()> {
    let root = std::fs::metadata("/")?;
    let target = std::fs::metadata(new_root)?;
    if root.dev() == target.dev() {
        return Err(io::Error::other(format!(
            "{} is not a mount point",
            new_root.display()
        )));
    }
    let fs_type = statfs("/")?.filesystem_type();
    if fs_type == RAMFS_MAGIC || fs_type == TMPFS_MAGIC {
        remove_tree_on_device(Path::new("/"), root.dev());
    }
    nix::unistd::chdir(new_root)?;
    nix::mount::mount(Some("."), "/", None::<&str>, MsFlags::MS_MOVE, None::<&str>)?;
    nix::unistd::chroot(".")?;
    nix::unistd::chdir("/")?;
    Ok(())
}

/// Deletes everything under `dir` that lives on device `dev`, leaving `dir` itself and
/// every directory on another device (a mount point) with its contents. Returns how many
/// entries could not be deleted.
pub fn remove_tree_on_device(dir: &Path, dev: u64) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 1;
    };
    let mut failed = 0;
    for entry in entries {
        let Ok(entry) = entry else {
            failed += 1;
            continue;
        };
        let path = entry.path();
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            failed += 1;
            continue;
        };
        if meta.dev() != dev {
            continue;
        }
        let removed = if meta.is_dir() {
            let inner = remove_tree_on_device(&path, dev);
            failed += inner;
            match std::fs::remove_dir(&path) {
                // A directory holding a mount point stays; already counted otherwise.
                Err(e) if e.kind() == io::ErrorKind::DirectoryNotEmpty => Ok(()),
                other => other,
            }
        } else {
            std::fs::remove_file(&path)
        };
        failed += usize::from(removed.is_err());
    }
    failed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removes_one_device_and_keeps_the_top() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("lib/modules/6.1/kernel")).unwrap();
        std::fs::write(root.join("init"), b"elf").unwrap();
        std::fs::write(root.join("lib/modules/6.1/modules.dep"), b"").unwrap();
        std::os::unix::fs::symlink("lib", root.join("usr-lib")).unwrap();
        let dev = std::fs::metadata(root).unwrap().dev();
        assert_eq!(remove_tree_on_device(root, dev), 0);
        assert!(root.exists());
        assert_eq!(std::fs::read_dir(root).unwrap().count(), 0);
    }

    #[test]
    fn leaves_other_devices_alone() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("file"), b"x").unwrap();
        // Pretend everything is on another device: nothing may go.
        let dev = std::fs::metadata(dir.path()).unwrap().dev() + 1;
        assert_eq!(remove_tree_on_device(dir.path(), dev), 0);
        assert!(dir.path().join("file").exists());
    }
}
