//! The container's mount list: the standard filesystems (/proc, /dev, /sys ...), the pod's
//! /etc files, and the CRI request's bind mounts with their propagation. A request mount
//! replaces a standard mount or pod file at the same destination, like containerd.

use std::path::{Path, PathBuf};

use oci_spec::runtime::Mount;

use super::spec::SandboxFiles;
use super::ContainerError;
use crate::proto::v1::{Mount as CriMount, MountPropagation};

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
    cri: &[CriMount],
    ctx: &MountContext,
) -> Result<(Vec<Mount>, Option<String>), ContainerError> {
    let requested = request_mounts(cri)?;
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

    let propagation =
        cri.iter()
            .map(|m| m.propagation)
            .max()
            .and_then(|p| match MountPropagation::try_from(p) {
                Ok(MountPropagation::PropagationBidirectional) => Some("rshared".to_string()),
                Ok(MountPropagation::PropagationHostToContainer) => Some("rslave".to_string()),
                _ => None,
            });
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

/// The request's bind mounts, validated.
fn request_mounts(cri: &[CriMount]) -> Result<Vec<Mount>, ContainerError> {
    let mut out = Vec::new();
    for (i, m) in cri.iter().enumerate() {
        let field = format!("config.mounts[{i}]");
        let dest = Path::new(&m.container_path);
        if !dest.is_absolute() {
            return Err(ContainerError::invalid(
                format!("{field}.container_path"),
                "must be absolute",
            ));
        }
        if m.image
            .as_ref()
            .is_some_and(|image| !image.image.is_empty())
        {
            return Err(ContainerError::invalid(
                format!("{field}.image"),
                "image volume mounts are not supported",
            ));
        }
        if !m.uid_mappings.is_empty() || !m.gid_mappings.is_empty() {
            return Err(ContainerError::invalid(
                format!("{field}.uid_mappings"),
                "id-mapped mounts are not supported",
            ));
        }
        let host = Path::new(&m.host_path);
        if !host.is_absolute() {
            return Err(ContainerError::invalid(
                format!("{field}.host_path"),
                "must be absolute",
            ));
        }
        // CRI: follow a symlinked host path and mount its target.
        let source = std::fs::canonicalize(host).map_err(|e| {
            ContainerError::invalid(
                format!("{field}.host_path"),
                format!("{}: {e}", host.display()),
            )
        })?;
        let propagation = match MountPropagation::try_from(m.propagation) {
            Ok(MountPropagation::PropagationPrivate) => "rprivate",
            Ok(MountPropagation::PropagationHostToContainer) => "rslave",
            Ok(MountPropagation::PropagationBidirectional) => "rshared",
            Err(_) => {
                return Err(ContainerError::invalid(
                    format!("{field}.propagation"),
                    format!("unknown value {}", m.propagation),
                ))
            }
        };
        let mut options = vec!["rbind", propagation, if m.readonly { "ro" } else { "rw" }];
        if m.recursive_read_only {
            if !m.readonly || propagation != "rprivate" {
                return Err(ContainerError::invalid(
                    format!("{field}.recursive_read_only"),
                    "needs readonly and private propagation",
                ));
            }
            options.push("rro");
        }
        let mut mount = mount(&m.container_path, "bind", source, &options);
        mount.set_destination(dest.to_path_buf());
        out.push(mount);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

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
            CriMount {
                container_path: "/data/sub".into(),
                host_path: "/tmp".into(),
                readonly: true,
                ..Default::default()
            },
            CriMount {
                container_path: "/data".into(),
                host_path: "/".into(),
                propagation: MountPropagation::PropagationHostToContainer as i32,
                ..Default::default()
            },
            CriMount {
                container_path: "/etc/resolv.conf".into(),
                host_path: "/etc/hostname".into(),
                ..Default::default()
            },
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
    fn bad_request_mounts_name_the_field() {
        let files = SandboxFiles::default();
        let m = |c: &str, h: &str| CriMount {
            container_path: c.into(),
            host_path: h.into(),
            ..Default::default()
        };
        let err = |cri: Vec<CriMount>| build(&cri, &ctx(&files)).unwrap_err().to_string();
        assert_eq!(
            err(vec![m("/ok", "/tmp"), m("/ok2", "/tmp"), m("rel", "/tmp")]),
            "config.mounts[2].container_path: must be absolute"
        );
        assert!(err(vec![m("/x", "/does/not/exist")])
            .starts_with("config.mounts[0].host_path: /does/not/exist"));
        assert!(err(vec![m("/x", "tmp")]).starts_with("config.mounts[0].host_path"));
        let rro = CriMount {
            recursive_read_only: true,
            ..m("/x", "/tmp")
        };
        assert!(err(vec![rro]).starts_with("config.mounts[0].recursive_read_only"));
        let bad_prop = CriMount {
            propagation: 7,
            ..m("/x", "/tmp")
        };
        assert!(err(vec![bad_prop]).starts_with("config.mounts[0].propagation"));
    }
}
