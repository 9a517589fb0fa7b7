//! The steps of stage 1, each a plain function over [`Syscalls`] so the tests can run
//! them against the recording fake.

use std::path::{Path, PathBuf};

use super::{Stage1Error, DM_NAME, OTHER_ROOT_GRACE, ROOT_WAIT, SYSROOT};
use crate::discover::{self, DiscoverError, FoundRoot};
use crate::module_loader::{Loaded, ModuleLoader};
use crate::sys::{Mount, MountFlags, Syscalls};
use crate::verity::{self, VerityCheckError};
use berth_layout::cmdline::{Cmdline, FailureAction};
use berth_layout::paths::{INITRAMFS_MODULES, STAGE2};

/// The kernel's API file systems, in mount order: `(fstype, target, flags, data)`.
/// `/dev` first: the initramfs may have no `/dev/console` of its own, and every line
/// stage 1 prints (a failure to mount the others included) goes there.
const API_FILESYSTEMS: [(&str, &str, MountFlags, &str); 3] = [
    (
        "devtmpfs",
        "/dev",
        MountFlags {
            read_only: false,
            nosuid: true,
            nodev: false,
            noexec: false,
        },
        "mode=0755",
    ),
    ("proc", "/proc", NOSUID_NODEV_NOEXEC, ""),
    ("sysfs", "/sys", NOSUID_NODEV_NOEXEC, ""),
];

const NOSUID_NODEV_NOEXEC: MountFlags = MountFlags {
    read_only: false,
    nosuid: true,
    nodev: true,
    noexec: true,
};

pub(super) fn mount_api_filesystems(sys: &dyn Syscalls) -> Result<(), Stage1Error> {
    for (fstype, target, flags, data) in API_FILESYSTEMS {
        mkdir(sys, Path::new(target))?;
        let mount = Mount {
            source: fstype.into(),
            target: target.into(),
            fstype: fstype.into(),
            flags,
            data: data.into(),
        };
        sys.mount(&mount).map_err(|source| Stage1Error::Mount {
            fstype: fstype.into(),
            target: target.into(),
            source,
        })?;
    }
    Ok(())
}

/// Reads `/proc/cmdline`; sets `failure` before validating the rest, so that a bad
/// command line still fails the way it asked.
pub(super) fn read_cmdline(
    sys: &dyn Syscalls,
    failure: &mut FailureAction,
) -> Result<Cmdline, Stage1Error> {
    let text = read(sys, Path::new("/proc/cmdline"), "cmdline")?;
    *failure = FailureAction::from_cmdline(&text);
    Ok(Cmdline::parse(&text)?)
}

/// Loads `wanted` and their dependencies from [`INITRAMFS_MODULES`], of the storage
/// drivers only those of present devices ([`super::drivers`]); returns how many module
/// files were inserted (built-in and already loaded ones are not counted).
pub(super) fn load_modules(
    sys: &dyn Syscalls,
    wanted: &[&str],
    verbose: bool,
) -> Result<usize, Stage1Error> {
    let loader = ModuleLoader::open(sys, Path::new(INITRAMFS_MODULES))?;
    let mut report = |name: &str, state: Loaded| {
        if verbose {
            sys.log(&format!("berth: stage1 module {name} {}", state.as_str()));
        }
    };
    Ok(super::drivers::load(sys, &loader, wanted, &mut report)?)
}

/// Waits for the partitions; a `roothash=` that matches no partition while root verity
/// partitions of other hashes exist is reported as the verity failure it is.
pub(super) fn find_root(sys: &dyn Syscalls, cmdline: &Cmdline) -> Result<FoundRoot, Stage1Error> {
    let waited = discover::wait_for_root(
        sys,
        &cmdline.root_hash,
        ROOT_WAIT,
        OTHER_ROOT_GRACE,
        cmdline.options.verbose,
    );
    match waited {
        Ok(found) => Ok(found),
        Err(DiscoverError::NotFound { others, .. }) if !others.is_empty() => {
            let open = |disk: &str| sys.open(&Path::new("/dev").join(disk));
            Err(VerityCheckError::NoPartitionsForRootHash {
                expected: cmdline.root_hash,
                found: verity::describe_others(&others, &open),
            }
            .into())
        }
        Err(e) => Err(e.into()),
    }
}

/// Checks the verity partition, creates `/dev/mapper/root`; returns that path.
pub(super) fn create_verity(
    sys: &dyn Syscalls,
    found: &FoundRoot,
    cmdline: &Cmdline,
) -> Result<PathBuf, Stage1Error> {
    let disk_path = found.disk_path();
    let disk = sys
        .open(&disk_path)
        .map_err(|source| VerityCheckError::Open {
            path: disk_path,
            source,
        })?;
    let root = verity::check(&disk, found, &cmdline.root_hash, cmdline.options.verity)?;
    if cmdline.options.verbose {
        sys.log(&format!("berth: stage1 verity table {}", root.target));
    }
    let dev = sys
        .dm_create(DM_NAME, &root.dm_uuid, &root.target)
        .map_err(|source| Stage1Error::Dm {
            name: DM_NAME.into(),
            source,
        })?;
    let dir = Path::new("/dev/mapper");
    mkdir(sys, dir)?;
    let node = dir.join(DM_NAME);
    sys.mknod_block(&node, dev)
        .map_err(|source| Stage1Error::Mknod {
            path: node.clone(),
            dev,
            source,
        })?;
    Ok(node)
}

/// Mounts the verity device read-only at [`SYSROOT`] and checks that stage 2 is there.
pub(super) fn mount_root(sys: &dyn Syscalls, device: &Path) -> Result<(), Stage1Error> {
    mkdir(sys, Path::new(SYSROOT))?;
    let mount = Mount {
        source: device.display().to_string(),
        target: SYSROOT.into(),
        fstype: "ext4".into(),
        flags: MountFlags {
            read_only: true,
            ..MountFlags::default()
        },
        data: String::new(),
    };
    sys.mount(&mount).map_err(|source| Stage1Error::Mount {
        fstype: format!("ext4 (read-only) from {}", device.display()),
        target: SYSROOT.into(),
        source,
    })?;
    // Checked before the switch, while failing still leaves a working console behind.
    let init = Path::new(SYSROOT).join(STAGE2.trim_start_matches('/'));
    if !sys.exists(&init) {
        return Err(Stage1Error::NoInit { path: init });
    }
    Ok(())
}

/// The programs on the way to a serving CRI socket, relative to the root: the journal
/// (every unit starts after it) and the CRI runtime (8.5 MB). Not PID 1: stage 2 goes on
/// in this process ([`super::Outcome::Switched`]), so the root's copy is not read at boot.
pub const PREFETCH: [&str; 2] = ["usr/bin/berth-journald", "usr/bin/berth-runtime"];

/// Queues the reads of [`PREFETCH`], once the verified root is `/`. Left alone, each
/// program is read page fault by page fault as it runs, 128 KiB of read-around at a time,
/// each read waiting for dm-verity's hashing; asked for whole now, the reads and the
/// hashing go on in the kernel while stage 2 runs early boot. After `berth: switch-root`
/// on purpose: a corrupted block found by these reads stops the machine
/// (`berth.verity=panic`) after that line, as the program's own reads would. Best effort: a
/// program the root lacks (a variant without the runtime) is skipped.
pub(super) fn prefetch(sys: &dyn Syscalls) {
    for rel in PREFETCH {
        let _ = sys.prefetch(&Path::new("/").join(rel));
    }
}

/// Moves `/dev`, `/proc` and `/sys` into the new root, which must have the directories.
pub(super) fn move_api_filesystems(sys: &dyn Syscalls) -> Result<(), Stage1Error> {
    for (_, target, _, _) in API_FILESYSTEMS {
        let from = PathBuf::from(target);
        let to = Path::new(SYSROOT).join(target.trim_start_matches('/'));
        sys.move_mount(&from, &to)
            .map_err(|source| Stage1Error::MoveMount { from, to, source })?;
    }
    Ok(())
}

fn mkdir(sys: &dyn Syscalls, path: &Path) -> Result<(), Stage1Error> {
    sys.mkdir(path).map_err(|source| Stage1Error::Mkdir {
        path: path.to_path_buf(),
        source,
    })
}

fn read(sys: &dyn Syscalls, path: &Path, what: &'static str) -> Result<String, Stage1Error> {
    sys.read_to_string(path)
        .map_err(|source| Stage1Error::Read {
            what,
            path: path.to_path_buf(),
            source,
        })
}
