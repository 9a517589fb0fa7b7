//! The container's mount list: the standard filesystems (/proc, /dev, /sys ...), the pod's
//! /etc files, and the request's bind mounts with their propagation. A request mount
//! replaces a standard mount or pod file at the same destination, like containerd.

use std::path::{Path, PathBuf};

use oci_spec::runtime::Mount;

use super::request::{MountAccess, MountRequest, Propagation};
use super::spec::SandboxFiles;
use super::ContainerError;

/// What the mount list depends on besides the request.
pub struct MountContext<'a> {
    pub privileged: bool,
    pub readonly_rootfs: bool,
    /// The container shares the host's IPC namespace (so it sees the host's /dev/shm).
    pub host_ipc: bool,
    pub sandbox_files: &'a SandboxFiles,
}

/// The mounts, and the rootfs propagation the request's mounts need (`rshared` for a
/// bidirectional mount, `rslave` for host-to-container).
pub fn build(
    requests: &[MountRequest],
    ctx: &MountContext,
) -> Result<(Vec<Mount>, Option<String>), ContainerError> {
    let requested = request_mounts(requests)?;
    let taken = |dest: &Path| requested.iter().any(|m| m.destination() == dest);
    let mut mounts: Vec<Mount> = standard(ctx)
        .into_iter()
        .filter(|m| !taken(m.destination()))
        .collect();
    let rw = if ctx.readonly_rootfs { "ro" } else { "rw" };
    let files = ctx.sandbox_files;
    for (dest, source) in [
        ("/etc/hosts", &files.hosts),
        ("/etc/hostname", &files.hostname),
        ("/etc/resolv.conf", &files.resolv_conf),
    ] {
        if let Some(source) = source {
            if !taken(Path::new(dest)) {
                mounts.push(mount(dest, "bind", source, &["rbind", "rprivate", rw]));
            }
        }
    }
    let mut requested = requested;
    // Parents before children: /a before /a/b, whatever the request's order.
    requested.sort_by_key(|m| m.destination().components().count());
    mounts.extend(requested);

    let propagation = match requests.iter().map(|m| m.propagation).max() {
        Some(Propagation::Bidirectional) => Some("rshared".to_string()),
        Some(Propagation::HostToContainer) => Some("rslave".to_string()),
        Some(Propagation::Private) | None => None,
    };
    Ok((mounts, propagation))
}

fn mount(dest: &str, typ: &str, source: impl Into<PathBuf>, options: &[&str]) -> Mount {
    let mut m = Mount::default();
    m.set_destination(PathBuf::from(dest));
    m.set_typ(Some(typ.to_string()));
    m.set_source(Some(source.into()));
    m.set_options(Some(options.iter().map(|s| s.to_string()).collect()));
    m
}

/// /proc, /dev, /dev/pts, /dev/shm, /dev/mqueue, /sys and /sys/fs/cgroup.
fn standard(ctx: &MountContext) -> Vec<Mount> {
    let sys_mode = if ctx.privileged { "rw" } else { "ro" };
    let shm = if ctx.host_ipc {
        mount("/dev/shm", "bind", "/dev/shm", &["rbind", "rprivate", "rw"])
    } else if let Some(pod_shm) = &ctx.sandbox_files.shm {
        mount(
            "/dev/shm",
            "bind",
            pod_shm.clone(),
            &["rbind", "rprivate", "rw", "nosuid", "nodev", "noexec"],
        )
    } else {
        mount(
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
        )
    };
    vec![
        mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"]),
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        ),
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        ),
        shm,
        mount(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        ),
        mount(
            "/sys",
            "sysfs",
            "sysfs",
            &["nosuid", "noexec", "nodev", sys_mode],
        ),
        mount(
            "/sys/fs/cgroup",
            "cgroup",
            "cgroup",
            &["nosuid", "noexec", "nodev", "relatime", sys_mode],
        ),
    ]
}

/// The request's bind mounts, their host paths resolved (a symlinked one is followed,
/// as CRI asks).
fn request_mounts(requests: &[MountRequest]) -> Result<Vec<Mount>, ContainerError> {
    let mut out = Vec::new();
    for (i, m) in requests.iter().enumerate() {
        let source = std::fs::canonicalize(&m.host_path).map_err(|e| {
            ContainerError::invalid(
                format!("config.mounts[{i}].host_path"),
                format!("{}: {e}", m.host_path.display()),
            )
        })?;
        let propagation = match m.propagation {
            Propagation::Private => "rprivate",
            Propagation::HostToContainer => "rslave",
            Propagation::Bidirectional => "rshared",
        };
        let mut options = vec!["rbind", propagation];
        match m.access {
            MountAccess::ReadWrite => options.push("rw"),
            MountAccess::ReadOnly => options.push("ro"),
            MountAccess::RecursiveReadOnly => options.extend(["ro", "rro"]),
        }
        let mut mount = mount("/", "bind", source, &options);
        mount.set_destination(m.container_path.clone());
        out.push(mount);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(container: &str, host: &str) -> MountRequest {
        MountRequest {
            container_path: container.into(),
            host_path: host.into(),
            access: MountAccess::ReadWrite,
            propagation: Propagation::Private,
        }
    }

    fn ctx(files: &SandboxFiles) -> MountContext<'_> {
        MountContext {
            privileged: false,
            readonly_rootfs: false,
            host_ipc: false,
            sandbox_files: files,
        }
    }

    fn find<'a>(mounts: &'a [Mount], dest: &str) -> Vec<&'a Mount> {
        mounts
            .iter()
            .filter(|m| m.destination() == Path::new(dest))
            .collect()
    }

    #[test]
    fn standard_mounts_pod_files_and_request_mounts() {
        let files = SandboxFiles {
            hosts: Some("/pod/hosts".into()),
            hostname: None,
            resolv_conf: Some("/pod/resolv.conf".into()),
            shm: None,
        };
        let cri = vec![
            MountRequest {
                access: MountAccess::ReadOnly,
                ..m("/data/sub", "/tmp")
            },
            MountRequest {
                propagation: Propagation::HostToContainer,
                ..m("/data", "/")
            },
            m("/etc/resolv.conf", "/etc/hostname"),
        ];
        let (mounts, propagation) = build(&cri, &ctx(&files)).unwrap();
        assert_eq!(propagation.as_deref(), Some("rslave"));
        for dest in [
            "/proc",
            "/dev",
            "/dev/pts",
            "/dev/shm",
            "/dev/mqueue",
            "/sys",
            "/sys/fs/cgroup",
            "/etc/hosts",
        ] {
            assert_eq!(find(&mounts, dest).len(), 1, "{dest}");
        }
        assert!(find(&mounts, "/etc/hostname").is_empty());
        let resolv = find(&mounts, "/etc/resolv.conf");
        assert_eq!(
            resolv.len(),
            1,
            "the request's mount replaces the pod's file"
        );
        assert_eq!(
            resolv[0].source().as_deref(),
            Some(Path::new("/etc/hostname"))
        );
        let data = mounts
            .iter()
            .position(|m| m.destination() == Path::new("/data"))
            .unwrap();
        let sub = mounts
            .iter()
            .position(|m| m.destination() == Path::new("/data/sub"))
            .unwrap();
        assert!(data < sub, "parents first");
        assert_eq!(
            mounts[sub].options().as_ref().unwrap(),
            &vec!["rbind".to_string(), "rprivate".into(), "ro".into()]
        );
        assert_eq!(mounts[data].options().as_ref().unwrap()[1], "rslave");
        assert!(find(&mounts, "/sys")[0]
            .options()
            .as_ref()
            .unwrap()
            .contains(&"ro".to_string()));
    }

    #[test]
    fn privileged_and_host_ipc_change_the_standard_mounts() {
        let files = SandboxFiles::default();
        let c = MountContext {
            privileged: true,
            readonly_rootfs: true,
            host_ipc: true,
            sandbox_files: &files,
        };
        let (mounts, _) = build(&[], &c).unwrap();
        assert!(find(&mounts, "/sys")[0]
            .options()
            .as_ref()
            .unwrap()
            .contains(&"rw".to_string()));
        assert_eq!(find(&mounts, "/dev/shm")[0].typ().as_deref(), Some("bind"));
    }

    #[test]
    fn a_missing_host_path_names_the_field() {
        let files = SandboxFiles::default();
        let err = build(
            &[m("/ok", "/tmp"), m("/x", "/does/not/exist")],
            &ctx(&files),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with("config.mounts[1].host_path: /does/not/exist"),
            "{err}"
        );
        let rro = MountRequest {
            access: MountAccess::RecursiveReadOnly,
            ..m("/x", "/tmp")
        };
        let (mounts, _) = build(&[rro], &ctx(&files)).unwrap();
        assert_eq!(
            find(&mounts, "/x")[0].options().as_ref().unwrap(),
            &vec![
                "rbind".to_string(),
                "rprivate".into(),
                "ro".into(),
                "rro".into()
            ]
        );
    }
}
