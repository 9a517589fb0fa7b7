//! A service's sandbox (systemd.exec(5) "Sandboxing"), applied by the child between `fork`
//! and `exec`: UTS and network namespaces of its own (`ProtectHostname=`,
//! `PrivateNetwork=`, whose `lo` it brings up), its own mount namespace,
//! made a slave of the host's so nothing propagates back, the mounts of a plan computed by
//! PID 1 beforehand (`ProtectSystem=`, `ProtectHome=`, `PrivateTmp=`, `ProtectKernel*=`,
//! `ReadOnlyPaths=`/`ReadWritePaths=`), then the capabilities dropped from the bounding
//! set (`CapabilityBoundingSet=`, and those `ProtectKernelModules=`/`Logs=` take).
//!
//! The plan ([`Sandbox`]) is plain data, so the engine's tests check it over the fake;
//! [`Sandbox::prepare`] turns it into C strings before the fork, and
//! [`PreparedSandbox::apply_in_child`] makes only `unshare`, `mount` and `prctl` calls,
//! which are async-signal-safe and allocate nothing. A failure names the mount by its
//! index, which [`Sandbox::describe_mount`] turns back into the setting that asked for it.

use std::ffi::{CString, NulError};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::mount::MsFlags;
use nix::sched::CloneFlags;

use super::child_report::{at, ChildFailure, Step, NO_INDEX};

/// One step of the mount plan, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountOp {
    /// `mount --bind source target` (`--rbind` when recursive).
    Bind {
        source: PathBuf,
        target: PathBuf,
        recursive: bool,
    },
    /// A new tmpfs at `target` with `flags` and `options` (`mode=0755`).
    Tmpfs {
        target: PathBuf,
        flags: MsFlags,
        options: String,
    },
    /// `MS_REMOUNT|MS_BIND|MS_RDONLY` of the mount at `target`, keeping its `flags`
    /// (nosuid, nodev, noexec, atime: the kernel refuses to clear locked ones).
    ReadOnly { target: PathBuf, flags: MsFlags },
}

/// What a service's child does to itself before `exec`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sandbox {
    /// Empty: no mount namespace of its own.
    pub mounts: Vec<MountOp>,
    /// The capabilities kept in the bounding set (bit n for capability n); `None` leaves
    /// the bounding set as it is.
    pub bounding_set: Option<u64>,
    /// `ProtectHostname=`: a UTS namespace of its own.
    pub new_uts: bool,
    /// `PrivateNetwork=`: a network namespace of its own, its loopback link up.
    pub new_net: bool,
    /// Which setting named each path (`/srv/a` → `ReadWritePaths=/srv/a`), for messages:
    /// a mount is credited to the deepest path at or above its target.
    pub origins: Vec<(PathBuf, String)>,
}

impl MountOp {
    fn target(&self) -> &Path {
        match self {
            MountOp::Bind { target, .. }
            | MountOp::Tmpfs { target, .. }
            | MountOp::ReadOnly { target, .. } => target,
        }
    }

    fn verb(&self) -> &'static str {
        match self {
            MountOp::Bind { .. } => "bind mount",
            MountOp::Tmpfs { .. } => "tmpfs mount",
            MountOp::ReadOnly { .. } => "read-only remount",
        }
    }
}

enum PreparedOp {
    Mount {
        source: Option<CString>,
        target: CString,
        fstype: Option<CString>,
        flags: MsFlags,
        data: Option<CString>,
    },
}

/// A [`Sandbox`] as the child applies it.
pub struct PreparedSandbox {
    ops: Vec<PreparedOp>,
    new_uts: bool,
    new_net: bool,
    /// Capabilities to drop, by number.
    drop: Vec<i32>,
}

fn c_path(p: &Path) -> Result<CString, NulError> {
    CString::new(p.as_os_str().as_bytes())
}

impl Sandbox {
    /// Mount `index` in the words of the setting that asked for it
    /// (`ReadWritePaths=/srv/a: bind mount`, `ProtectSystem=strict: read-only remount /usr`).
    pub fn describe_mount(&self, index: usize) -> String {
        let Some(op) = self.mounts.get(index) else {
            return format!("mount {index}");
        };
        let target = op.target();
        let origin = self
            .origins
            .iter()
            .filter(|(p, _)| target.starts_with(p))
            .max_by_key(|(p, _)| p.components().count());
        match origin {
            Some((p, setting)) if p == target => format!("{setting}: {}", op.verb()),
            Some((_, setting)) => format!("{setting}: {} {}", op.verb(), target.display()),
            None => format!("{} {}", op.verb(), target.display()),
        }
    }

    /// The C strings of the plan, and the capabilities to drop up to `last_cap`
    /// (`/proc/sys/kernel/cap_last_cap`).
    pub fn prepare(&self, last_cap: u32) -> Result<PreparedSandbox, NulError> {
        let mut ops = Vec::new();
        for op in &self.mounts {
            ops.push(match op {
                MountOp::Bind {
                    source,
                    target,
                    recursive,
                } => PreparedOp::Mount {
                    source: Some(c_path(source)?),
                    target: c_path(target)?,
                    fstype: None,
                    flags: if *recursive {
                        MsFlags::MS_BIND | MsFlags::MS_REC
                    } else {
                        MsFlags::MS_BIND
                    },
                    data: None,
                },
                MountOp::Tmpfs {
                    target,
                    flags,
                    options,
                } => PreparedOp::Mount {
                    source: Some(CString::new("tmpfs")?),
                    target: c_path(target)?,
                    fstype: Some(CString::new("tmpfs")?),
                    flags: *flags,
                    data: Some(CString::new(options.as_bytes())?),
                },
                MountOp::ReadOnly { target, flags } => PreparedOp::Mount {
                    source: None,
                    target: c_path(target)?,
                    fstype: None,
                    flags: MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY | *flags,
                    data: None,
                },
            });
        }
        let drop = match self.bounding_set {
            Some(keep) => (0..=last_cap.min(63))
                .filter(|c| keep & (1 << c) == 0)
                .map(|c| c as i32)
                .collect(),
            None => Vec::new(),
        };
        Ok(PreparedSandbox {
            ops,
            new_uts: self.new_uts,
            new_net: self.new_net,
            drop,
        })
    }
}

impl PreparedSandbox {
    /// In the child, before it changes user: the UTS namespace, the mount namespace and
    /// its mounts, then the bounding set.
    pub fn apply_in_child(&self) -> Result<(), ChildFailure> {
        if self.new_uts {
            at(
                Step::Namespace,
                NO_INDEX,
                nix::sched::unshare(CloneFlags::CLONE_NEWUTS),
            )?;
        }
        if self.new_net {
            at(
                Step::Network,
                NO_INDEX,
                nix::sched::unshare(CloneFlags::CLONE_NEWNET),
            )?;
            at(Step::Network, NO_INDEX, loopback_up())?;
        }
        if !self.ops.is_empty() {
            at(
                Step::Namespace,
                NO_INDEX,
                nix::sched::unshare(CloneFlags::CLONE_NEWNS),
            )?;
            at(
                Step::Namespace,
                NO_INDEX,
                nix::mount::mount::<str, str, str, str>(
                    None,
                    "/",
                    None,
                    MsFlags::MS_SLAVE | MsFlags::MS_REC,
                    None,
                ),
            )?;
        }
        for (index, op) in self.ops.iter().enumerate() {
            let PreparedOp::Mount {
                source,
                target,
                fstype,
                flags,
                data,
            } = op;
            let done = nix::mount::mount(
                source.as_deref(),
                target.as_c_str(),
                fstype.as_deref(),
                *flags,
                data.as_deref(),
            );
            match done {
                // A mount the host itself covered over has no path here: nothing can be
                // written through it, nothing to remount.
                Err(nix::errno::Errno::ENOENT) if flags.contains(MsFlags::MS_REMOUNT) => {}
                other => at(Step::Namespace, index as u32, other)?,
            }
        }
        for cap in &self.drop {
            // SAFETY: PR_CAPBSET_DROP takes plain integers; nothing is read or written
            // through a pointer.
            let rc = unsafe { nix::libc::prctl(nix::libc::PR_CAPBSET_DROP, *cap, 0, 0, 0) };
            // EINVAL: a capability this kernel does not know; nothing to drop.
            if rc < 0 && nix::errno::Errno::last() != nix::errno::Errno::EINVAL {
                let e = io::Error::last_os_error();
                return Err(ChildFailure::at(Step::Capabilities, *cap as u32, &e));
            }
        }
        Ok(())
    }
}

/// The new network namespace's `lo` up (systemd's `loopback_setup`), by the
/// `SIOCSIFFLAGS` ioctl on a datagram socket: no netlink, nothing allocated.
fn loopback_up() -> io::Result<()> {
    // SAFETY: socket(2) takes plain integers; the descriptor is closed below.
    let fd = unsafe {
        nix::libc::socket(
            nix::libc::AF_INET,
            nix::libc::SOCK_DGRAM | nix::libc::SOCK_CLOEXEC,
            0,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: an all-zero ifreq is valid; the name is copied in below, NUL-terminated.
    let mut req: nix::libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *dst = *src as nix::libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS and SIOCSIFFLAGS read and write the ifreq on this stack; the
    // flags are the union's short member, as netdevice(7) has it.
    let result = unsafe {
        if nix::libc::ioctl(fd, nix::libc::SIOCGIFFLAGS, &mut req) < 0 {
            Err(io::Error::last_os_error())
        } else {
            req.ifr_ifru.ifru_flags |= (nix::libc::IFF_UP | nix::libc::IFF_RUNNING) as i16;
            if nix::libc::ioctl(fd, nix::libc::SIOCSIFFLAGS, &req) < 0 {
                Err(io::Error::last_os_error())
            } else {
                Ok(())
            }
        }
    };
    // SAFETY: `fd` was opened above and is closed once.
    unsafe { nix::libc::close(fd) };
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_only_remounts_keep_the_flags_and_caps_outside_the_set_are_dropped() {
        let s = Sandbox {
            mounts: vec![MountOp::ReadOnly {
                target: "/usr".into(),
                flags: MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
            }],
            bounding_set: Some(0b101),
            new_uts: false,
            new_net: false,
            origins: Vec::new(),
        };
        let p = s.prepare(4).expect("no NUL");
        let PreparedOp::Mount { flags, source, .. } = &p.ops[0];
        assert_eq!(
            *flags,
            MsFlags::MS_REMOUNT
                | MsFlags::MS_BIND
                | MsFlags::MS_RDONLY
                | MsFlags::MS_NOSUID
                | MsFlags::MS_NODEV
        );
        assert!(source.is_none());
        assert_eq!(p.drop, vec![1, 3, 4]);
        assert!(Sandbox::default()
            .prepare(40)
            .expect("empty")
            .drop
            .is_empty());
    }
}
