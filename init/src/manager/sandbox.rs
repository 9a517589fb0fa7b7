//! A service's sandbox plan (systemd.exec(5) "Sandboxing"), computed by PID 1 before it
//! forks: which paths become read-only, writable, empty or private, as systemd 252's
//! namespace.c orders them, turned into the mounts the child makes ([`Sandbox`]).
//!
//! Paths are sorted (a parent before what is below it); one path named twice keeps the
//! strongest setting (inaccessible, then private /tmp, read-only, writable, tmpfs). A
//! path that is not a mount point yet is bound onto itself so it can change alone. Then
//! every mount at or below a read-only path is remounted read-only with its own flags,
//! except what lies under a writable path named below it (`ReadWritePaths=`, the private
//! /tmp, `RuntimeDirectory=` and its siblings, and `/dev`, `/proc`, `/sys` with
//! `ProtectSystem=strict`). Paths that do not
//! exist are skipped where systemd skips them (`ProtectSystem=`, `ProtectHome=`, a `-`
//! prefix); otherwise they fail the start.

use std::path::{Path, PathBuf};

use nix::mount::MsFlags;

use crate::sys::sandbox::{MountOp, Sandbox};
use crate::unit::capability;
use crate::unit::service::{ProtectHome, ProtectSystem, Service};

/// The empty, mode 0000 file PID 1 binds (read-only) over a file a sandbox hides, as
/// systemd binds `/run/systemd/inaccessible/reg`: a tmpfs cannot cover a file.
pub const INACCESSIBLE_FILE: &str = "/run/berth/inaccessible";

#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    Inaccessible,
    /// A file (or device node) covered by [`INACCESSIBLE_FILE`].
    InaccessibleFile,
    /// Bound from this private folder.
    PrivateTmp(PathBuf),
    ReadOnly,
    ReadWrite,
    Tmpfs,
    /// `RuntimeDirectory=` and its siblings: writable unless named otherwise.
    ReadWriteImplicit,
}

impl Kind {
    /// systemd's precedence when one path is named twice: the lower wins.
    fn rank(&self) -> u8 {
        match self {
            Kind::Inaccessible | Kind::InaccessibleFile => 0,
            Kind::PrivateTmp(_) => 1,
            Kind::ReadOnly => 2,
            Kind::ReadWrite => 3,
            Kind::Tmpfs => 4,
            Kind::ReadWriteImplicit => 5,
        }
    }

    fn writable(&self) -> bool {
        matches!(
            self,
            Kind::ReadWrite | Kind::ReadWriteImplicit | Kind::PrivateTmp(_)
        )
    }
}

struct Entry {
    path: PathBuf,
    kind: Kind,
    ignore_missing: bool,
    /// The setting that named the path, for messages (`ReadWritePaths=/srv/a`).
    setting: String,
}

/// One mount of the table: where, and its per-mount flags.
type MountPoint = (PathBuf, MsFlags);

/// The flags a read-only remount must keep.
const KEPT: [(&str, MsFlags); 7] = [
    ("nosuid", MsFlags::MS_NOSUID),
    ("nodev", MsFlags::MS_NODEV),
    ("noexec", MsFlags::MS_NOEXEC),
    ("noatime", MsFlags::MS_NOATIME),
    ("nodiratime", MsFlags::MS_NODIRATIME),
    ("relatime", MsFlags::MS_RELATIME),
    ("strictatime", MsFlags::MS_STRICTATIME),
];

/// Mount points and per-mount flags from `/proc/self/mountinfo` (proc(5): the mount point
/// is field 5, octal-escaped; the per-mount options field 6), in mount order.
pub fn mount_table(mountinfo: &str) -> Vec<MountPoint> {
    mountinfo
        .lines()
        .filter_map(|line| {
            let mut fields = line.split(' ');
            let point = fields.nth(4)?;
            let options = fields.next()?;
            let flags = options
                .split(',')
                .filter_map(|o| KEPT.iter().find(|(n, _)| *n == o).map(|(_, f)| *f))
                .fold(MsFlags::empty(), |a, f| a | f);
            Some((PathBuf::from(unescape(point)), flags))
        })
        .collect()
}

/// `\040` and the other octal escapes of mountinfo.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let octal = b
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match (b[i], octal) {
            (b'\\', Some(d)) => {
                out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                i += 4;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The entries of a service's settings, `private_tmp` being the (target, private folder)
/// pairs PID 1 made for `PrivateTmp=`.
fn entries(svc: &Service, private_tmp: &[(PathBuf, PathBuf)]) -> Result<Vec<Entry>, String> {
    let mut out = Vec::new();
    // Entries that must exist, added after the fixed ones.
    let mut required = Vec::new();
    let mut fixed = |paths: &[&str], kind: Kind, setting: &str| {
        for p in paths {
            out.push(Entry {
                path: PathBuf::from(p),
                kind: kind.clone(),
                ignore_missing: true,
                setting: setting.into(),
            });
        }
    };
    let (yes, full, strict) = (
        "ProtectSystem=yes",
        "ProtectSystem=full",
        "ProtectSystem=strict",
    );
    match svc.protect_system {
        ProtectSystem::No => {}
        ProtectSystem::Yes => fixed(&["/usr", "/boot", "/efi"], Kind::ReadOnly, yes),
        ProtectSystem::Full => fixed(&["/usr", "/boot", "/efi", "/etc"], Kind::ReadOnly, full),
        ProtectSystem::Strict => {
            fixed(&["/"], Kind::ReadOnly, strict);
            fixed(&["/dev", "/proc", "/sys"], Kind::ReadWrite, strict);
        }
    }
    let homes = ["/home", "/root", "/run/user"];
    match svc.protect_home {
        ProtectHome::No => {}
        ProtectHome::Yes => fixed(&homes, Kind::Inaccessible, "ProtectHome=yes"),
        ProtectHome::ReadOnly => fixed(&homes, Kind::ReadOnly, "ProtectHome=read-only"),
        ProtectHome::Tmpfs => fixed(&homes, Kind::Tmpfs, "ProtectHome=tmpfs"),
    }
    // systemd 252's namespace.c tables.
    if svc.protect_kernel_tunables {
        let (ro, key) = (Kind::ReadOnly, "ProtectKernelTunables=yes");
        fixed(
            &[
                "/proc/acpi",
                "/proc/apm",
                "/proc/asound",
                "/proc/bus",
                "/proc/fs",
                "/proc/irq",
                "/proc/latency_stats",
                "/proc/mtrr",
                "/proc/scsi",
                "/proc/sys",
                "/proc/sysrq-trigger",
                "/proc/timer_list",
                "/sys/fs/bpf",
                "/sys/kernel/debug",
                "/sys/kernel/tracing",
            ],
            ro.clone(),
            key,
        );
        fixed(
            &["/proc/kallsyms", "/proc/kcore"],
            Kind::InaccessibleFile,
            key,
        );
        fixed(&["/sys/fs/selinux"], Kind::ReadWriteImplicit, key);
        for (path, kind) in [("/sys", ro), ("/sys/fs/cgroup", Kind::ReadWriteImplicit)] {
            required.push(Entry {
                path: PathBuf::from(path),
                kind,
                ignore_missing: false,
                setting: key.into(),
            });
        }
    }
    if svc.protect_kernel_modules {
        let key = "ProtectKernelModules=yes";
        fixed(
            &["/lib/modules", "/usr/lib/modules"],
            Kind::Inaccessible,
            key,
        );
    }
    if svc.protect_kernel_logs {
        let key = "ProtectKernelLogs=yes";
        fixed(&["/proc/kmsg", "/dev/kmsg"], Kind::InaccessibleFile, key);
    }
    out.append(&mut required);
    if svc.protect_control_groups {
        // systemd 252's protect_control_groups entry: one that must exist.
        out.push(Entry {
            path: PathBuf::from("/sys/fs/cgroup"),
            kind: Kind::ReadOnly,
            ignore_missing: false,
            setting: "ProtectControlGroups=yes".into(),
        });
    }
    for (list, kind, key) in [
        (&svc.read_only_paths, Kind::ReadOnly, "ReadOnlyPaths"),
        (&svc.read_write_paths, Kind::ReadWrite, "ReadWritePaths"),
    ] {
        for p in list {
            let (ignore_missing, rest) = match p.strip_prefix('-') {
                Some(r) => (true, r),
                None => (false, p.as_str()),
            };
            // `+`: relative to RootDirectory=, which Berth does not have: the path as is.
            let rest = rest.strip_prefix('+').unwrap_or(rest);
            if !rest.starts_with('/') {
                return Err(format!("{key}={p}: not an absolute path"));
            }
            let trimmed = rest.trim_end_matches('/');
            out.push(Entry {
                path: PathBuf::from(if trimmed.is_empty() { "/" } else { trimmed }),
                kind: kind.clone(),
                ignore_missing,
                setting: format!("{key}={p}"),
            });
        }
    }
    // systemd.exec(5): the folders PID 1 makes for the service stay writable under
    // ProtectSystem=strict (and any read-only path above them).
    let protects = out.iter().any(|e| !e.kind.writable());
    for (dirs, base, key) in [
        (&svc.runtime_directory, "/run", "RuntimeDirectory"),
        (&svc.state_directory, "/var/lib", "StateDirectory"),
        (&svc.cache_directory, "/var/cache", "CacheDirectory"),
        (&svc.logs_directory, "/var/log", "LogsDirectory"),
    ] {
        for name in dirs.names.iter().filter(|_| protects) {
            out.push(Entry {
                path: Path::new(base).join(name),
                kind: Kind::ReadWriteImplicit,
                ignore_missing: true,
                setting: format!("{key}={name}"),
            });
        }
    }
    for (target, source) in private_tmp {
        out.push(Entry {
            path: target.clone(),
            kind: Kind::PrivateTmp(source.clone()),
            ignore_missing: false,
            setting: "PrivateTmp=yes".into(),
        });
    }
    Ok(out)
}

/// Whether `svc` asks for mounts of its own (then the plan needs the mount table; the
/// implicitly writable folders alone need none).
pub fn wants_mounts(svc: &Service) -> bool {
    svc.protect_system != ProtectSystem::No
        || svc.protect_home != ProtectHome::No
        || svc.protect_control_groups
        || svc.protect_kernel_tunables
        || svc.protect_kernel_modules
        || svc.protect_kernel_logs
        || svc.private_tmp
        || !svc.read_only_paths.is_empty()
        || !svc.read_write_paths.is_empty()
}

/// The mount below which `path` lies (the deepest, the last mounted of equals).
fn containing<'t>(table: &'t [MountPoint], path: &Path) -> Option<&'t MountPoint> {
    table
        .iter()
        .filter(|(m, _)| path.starts_with(m))
        .max_by_key(|(m, _)| m.components().count())
}

/// The sandbox of `svc`, `None` when it has none. `exists` answers for the host's paths;
/// `mountinfo` is PID 1's `/proc/self/mountinfo`, which the child's namespace copies.
pub fn plan(
    svc: &Service,
    private_tmp: &[(PathBuf, PathBuf)],
    exists: &dyn Fn(&Path) -> bool,
    mountinfo: &str,
) -> Result<Option<Sandbox>, String> {
    let mut list = Vec::new();
    for e in entries(svc, private_tmp)? {
        if exists(&e.path) {
            list.push(e);
        } else if !e.ignore_missing {
            return Err(format!("{}: no such file or directory", e.path.display()));
        }
    }
    list.sort_by(|a, b| a.path.cmp(&b.path).then(a.kind.rank().cmp(&b.kind.rank())));
    list.dedup_by(|later, first| later.path == first.path);

    let mut table = mount_table(mountinfo);
    let mut mounts = Vec::new();
    let tmpfs = |target: &Path, mode: &str, extra: MsFlags| MountOp::Tmpfs {
        target: target.to_path_buf(),
        flags: MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | extra,
        options: format!("mode={mode}"),
    };
    for e in &list {
        let inherited = |table: &[MountPoint], p: &Path| {
            containing(table, p).map_or(MsFlags::empty(), |(_, f)| *f)
        };
        let (op, flags) = match &e.kind {
            Kind::Inaccessible => (
                tmpfs(&e.path, "000", MsFlags::MS_NOEXEC),
                MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
            ),
            Kind::InaccessibleFile => (
                MountOp::Bind {
                    source: PathBuf::from(INACCESSIBLE_FILE),
                    target: e.path.clone(),
                    recursive: false,
                },
                MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
            ),
            Kind::Tmpfs => (
                tmpfs(&e.path, "0755", MsFlags::MS_STRICTATIME),
                MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_STRICTATIME,
            ),
            Kind::PrivateTmp(source) => (
                MountOp::Bind {
                    source: source.clone(),
                    target: e.path.clone(),
                    recursive: false,
                },
                inherited(&table, source),
            ),
            Kind::ReadOnly | Kind::ReadWrite | Kind::ReadWriteImplicit => {
                if table.iter().any(|(m, _)| *m == e.path) {
                    continue;
                }
                (
                    MountOp::Bind {
                        source: e.path.clone(),
                        target: e.path.clone(),
                        recursive: true,
                    },
                    inherited(&table, &e.path),
                )
            }
        };
        mounts.push(op);
        table.push((e.path.clone(), flags));
    }

    // The read-only pass, over the table as the child will have it (last mount wins).
    let mut points: Vec<MountPoint> = Vec::new();
    for (m, f) in table {
        points.retain(|(p, _)| *p != m);
        points.push((m, f));
    }
    points.sort_by(|a, b| a.0.cmp(&b.0));
    for (m, flags) in &points {
        // Below a new tmpfs or the private /tmp, the host's mounts are out of reach.
        let hidden = list.iter().any(|e| {
            matches!(
                e.kind,
                Kind::Inaccessible | Kind::Tmpfs | Kind::PrivateTmp(_)
            ) && *m != e.path
                && m.starts_with(&e.path)
        });
        // A covered file is read-only too: writes must not reach the shared empty file.
        let covered = list
            .iter()
            .any(|e| e.kind == Kind::InaccessibleFile && *m == e.path);
        let read_only = covered
            || !hidden
                && list.iter().any(|ro| {
                    ro.kind == Kind::ReadOnly
                        && m.starts_with(&ro.path)
                        && !list.iter().any(|w| {
                            w.kind.writable()
                                && w.path.starts_with(&ro.path)
                                && m.starts_with(&w.path)
                        })
                });
        if read_only {
            mounts.push(MountOp::ReadOnly {
                target: m.clone(),
                flags: *flags,
            });
        }
    }
    let mut bounding_set = svc
        .capability_bounding_set
        .as_deref()
        .map(capability::set_of);
    // ProtectKernelModules= and ProtectKernelLogs= take their capability from the set.
    // ProtectClock=: without systemd's seccomp filter, the capabilities that setting the
    // clocks and the RTC need are what keeps them unset.
    for (asked, name) in [
        (svc.protect_kernel_modules, "CAP_SYS_MODULE"),
        (svc.protect_kernel_logs, "CAP_SYSLOG"),
        (svc.protect_clock, "CAP_SYS_TIME"),
        (svc.protect_clock, "CAP_WAKE_ALARM"),
    ] {
        if asked {
            let cap = capability::set_of(&[name.to_owned()]);
            bounding_set = Some(bounding_set.unwrap_or(u64::MAX) & !cap);
        }
    }
    let namespaces_only = svc.protect_hostname || svc.private_network;
    if mounts.is_empty() && bounding_set.is_none() && !namespaces_only {
        return Ok(None);
    }
    Ok(Some(Sandbox {
        mounts,
        bounding_set,
        new_uts: svc.protect_hostname,
        new_net: svc.private_network,
        origins: list.into_iter().map(|e| (e.path, e.setting)).collect(),
    }))
}

#[cfg(test)]
#[path = "sandbox_tests.rs"]
mod tests;
