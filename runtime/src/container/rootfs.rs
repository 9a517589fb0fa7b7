//! The container's root filesystem: an overlay of the image's unpacked layers (read-only
//! lower directories) with a writable upper directory of its own. A read-only root is
//! the spec's business (`root.readonly`), not the overlay's.

use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};

use super::{procfs, ContainerError, ContainerPaths};

/// The kernel takes mount options of at most one page.
const MAX_OPTIONS: usize = 4096;

/// Makes the bind-mount targets of `spec` that are missing in the container's root. Only
/// needed with a user namespace: the OCI runtime then acts as the namespace's root, which
/// does not own the image's folders, so it cannot make `/etc/hosts` and the like itself.
/// Targets below /proc, /dev and /sys are on filesystems the runtime mounts itself.
pub fn prepare_mount_targets(
    rootfs: &Path,
    spec: &oci_spec::runtime::Spec,
) -> Result<(), ContainerError> {
    use super::inroot::{create_in_root, TargetKind};
    for m in spec.mounts().iter().flatten() {
        if m.typ().as_deref() != Some("bind") {
            continue;
        }
        let dest = m.destination();
        if ["/proc", "/dev", "/sys"]
            .iter()
            .any(|p| dest.starts_with(p))
        {
            continue;
        }
        let kind = match m.source() {
            Some(source) if !source.is_dir() => TargetKind::File,
            _ => TargetKind::Dir,
        };
        create_in_root(rootfs, dest, kind)?;
    }
    Ok(())
}

/// Mounts the overlay of `lowerdirs` (topmost layer first) at `paths.rootfs`, creating
/// the upper, work and mountpoint directories. Mounting an already mounted rootfs is a
/// no-op.
pub fn mount_rootfs(paths: &ContainerPaths, lowerdirs: &[PathBuf]) -> Result<(), ContainerError> {
    if lowerdirs.is_empty() {
        return Err(ContainerError::invalid("image", "no layers to mount"));
    }
    // A folder made now is no mountpoint: only a retried create reads the mount table,
    // which grows with every pod on the node.
    let made_before = paths.rootfs.exists();
    for dir in [&paths.upper, &paths.work, &paths.rootfs] {
        std::fs::create_dir_all(dir).map_err(|e| ContainerError::io("creating", dir, e))?;
    }
    if made_before && procfs::is_mountpoint(&paths.rootfs) {
        return Ok(());
    }
    let options = overlay_options(lowerdirs, &paths.upper, &paths.work)?;
    mount(
        Some("overlay"),
        &paths.rootfs,
        Some("overlay"),
        MsFlags::empty(),
        Some(options.as_str()),
    )
    .map_err(|source| ContainerError::Mount {
        action: "mounting the overlay at",
        target: paths.rootfs.clone(),
        source,
    })
}

/// `lowerdir=…,upperdir=…,workdir=…`, refusing paths the option syntax cannot carry.
fn overlay_options(
    lowerdirs: &[PathBuf],
    upper: &Path,
    work: &Path,
) -> Result<String, ContainerError> {
    let mut all: Vec<&Path> = lowerdirs.iter().map(PathBuf::as_path).collect();
    all.extend([upper, work]);
    for p in &all {
        let s = p.to_string_lossy();
        if s.contains([',', ':']) || !p.is_absolute() {
            return Err(ContainerError::invalid(
                "image layers",
                format!("{s:?} cannot be an overlay directory"),
            ));
        }
    }
    let lower: Vec<String> = lowerdirs
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let options = format!(
        "lowerdir={},upperdir={},workdir={}",
        lower.join(":"),
        upper.display(),
        work.display()
    );
    if options.len() >= MAX_OPTIONS {
        return Err(ContainerError::invalid(
            "image layers",
            format!("{} layers make overlay options too long", lowerdirs.len()),
        ));
    }
    Ok(options)
}

/// Unmounts the rootfs; not mounted (or already gone) is fine.
pub fn unmount_rootfs(paths: &ContainerPaths) -> Result<(), ContainerError> {
    while procfs::is_mountpoint(&paths.rootfs) {
        match umount2(&paths.rootfs, MntFlags::MNT_DETACH) {
            Ok(()) => {}
            Err(nix::Error::EINVAL) | Err(nix::Error::ENOENT) => break,
            Err(source) => {
                return Err(ContainerError::Mount {
                    action: "unmounting",
                    target: paths.rootfs.clone(),
                    source,
                })
            }
        }
    }
    Ok(())
}

/// Unmounts and removes the container's upper and work directories.
pub fn remove_layer(paths: &ContainerPaths) -> Result<(), ContainerError> {
    unmount_rootfs(paths)?;
    match std::fs::remove_dir_all(&paths.layer_dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(ContainerError::io("removing", &paths.layer_dir, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_list_lowers_top_first() {
        let lowers = [PathBuf::from("/l/top"), PathBuf::from("/l/base")];
        let o = overlay_options(&lowers, Path::new("/u"), Path::new("/w")).unwrap();
        assert_eq!(o, "lowerdir=/l/top:/l/base,upperdir=/u,workdir=/w");
        assert!(
            overlay_options(&[PathBuf::from("/a:b")], Path::new("/u"), Path::new("/w")).is_err()
        );
        assert!(
            overlay_options(&[PathBuf::from("rel")], Path::new("/u"), Path::new("/w")).is_err()
        );
        let many: Vec<PathBuf> = (0..200)
            .map(|i| PathBuf::from(format!("/var/lib/berth/runtime/layers/{i:040}")))
            .collect();
        assert!(overlay_options(&many, Path::new("/u"), Path::new("/w")).is_err());
    }

    #[test]
    fn unmounting_what_is_not_mounted_is_fine() {
        let dir = tempfile::tempdir().unwrap();
        let paths = ContainerPaths::new(dir.path(), dir.path(), "c").unwrap();
        unmount_rootfs(&paths).unwrap();
        remove_layer(&paths).unwrap();
    }
}
