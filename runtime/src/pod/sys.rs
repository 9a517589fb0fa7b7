//! The system calls the pod module makes — unshare, sethostname, bind mounts, detaching
//! unmounts — behind small typed functions, so the namespace code reads as a plan and the
//! errors name the path. nix supplies safe bindings for all of them, so there is no
//! `unsafe` here.

use std::path::Path;

use nix::errno::Errno;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::CloneFlags;

use super::PodError;

/// Namespaces a pod may get of its own.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct NsSet {
    pub net: bool,
    pub ipc: bool,
    pub uts: bool,
}

/// Moves the calling thread (only it: these namespace kinds are per task) into new
/// namespaces of the kinds in `set`.
pub(crate) fn unshare_thread(set: NsSet, what: &Path) -> Result<(), PodError> {
    let mut flags = CloneFlags::empty();
    if set.net {
        flags |= CloneFlags::CLONE_NEWNET;
    }
    if set.ipc {
        flags |= CloneFlags::CLONE_NEWIPC;
    }
    if set.uts {
        flags |= CloneFlags::CLONE_NEWUTS;
    }
    nix::sched::unshare(flags).map_err(|source| PodError::Sys {
        op: "unshare namespaces for",
        path: what.to_path_buf(),
        source,
    })
}

/// Sets the hostname of the calling thread's UTS namespace.
pub(crate) fn set_hostname(name: &str, what: &Path) -> Result<(), PodError> {
    nix::unistd::sethostname(name).map_err(|source| PodError::Sys {
        op: "sethostname in",
        path: what.to_path_buf(),
        source,
    })
}

/// Bind-mounts `src` onto `dst` (which must exist).
pub(crate) fn bind(src: &Path, dst: &Path) -> Result<(), PodError> {
    mount(Some(src), dst, None::<&str>, MsFlags::MS_BIND, None::<&str>).map_err(|source| {
        PodError::Sys {
            op: "bind mount onto",
            path: dst.to_path_buf(),
            source,
        }
    })
}

/// Mounts a tmpfs at `dst` (nosuid, nodev, noexec) with the given data (`size=`, `mode=`).
pub(crate) fn mount_tmpfs(dst: &Path, data: &str) -> Result<(), PodError> {
    let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    mount(Some("shm"), dst, Some("tmpfs"), flags, Some(data)).map_err(|source| PodError::Sys {
        op: "mount tmpfs on",
        path: dst.to_path_buf(),
        source,
    })
}

/// Makes the mount at `path` shared, so unmounts below it propagate to copies of it in
/// mount namespaces created later (an OCI runtime's, a service's).
pub(crate) fn make_shared(path: &Path) -> Result<(), PodError> {
    mount(
        None::<&str>,
        path,
        None::<&str>,
        MsFlags::MS_SHARED,
        None::<&str>,
    )
    .map_err(|source| PodError::Sys {
        op: "make shared mount",
        path: path.to_path_buf(),
        source,
    })
}

/// Lazily unmounts `path`. Returns false if nothing was mounted there or the path is gone,
/// so callers can unmount idempotently.
pub(crate) fn detach(path: &Path) -> Result<bool, PodError> {
    match umount2(path, MntFlags::MNT_DETACH) {
        Ok(()) => Ok(true),
        Err(Errno::EINVAL | Errno::ENOENT) => Ok(false),
        Err(source) => Err(PodError::Sys {
            op: "unmount",
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Whether `path` is a live namespace file (a bind mount of an nsfs inode), as opposed to
/// a missing file or the empty placeholder left after an unmount.
pub(crate) fn is_namespace_file(path: &Path) -> bool {
    use nix::sys::statfs::{statfs, NSFS_MAGIC};
    statfs(path).is_ok_and(|s| s.filesystem_type() == NSFS_MAGIC)
}
