//! The mount table of the design brief ("Mounts after boot"), as jobs.
//!
//! The root stays read-only; what must be written lives either on STATE (stateful: `/home`
//! and `/var` bound from it without exec, `/var/lib/{berth,kubelet,toolbox}` with exec, as
//! COS does for the places that hold binaries and container layers) or on a tmpfs
//! (stateless: `/etc` as an overlay whose upper layer is on `/run`, `/tmp`,
//! `/var/lib/cloud`, `/mnt/disks`). Every mount gets the fewest rights it needs: nosuid
//! and nodev everywhere but `/` and `/dev`, noexec where the table says so.
//! A mount that fails is reported and the rest go on.

use std::error::Error;
use std::path::Path;

use super::engine::{JobResult, Machine};
use crate::sys::{Mount, MountFlags};
use berth_layout::paths::STATE_MOUNT;

/// The upper and work folders of the `/etc` overlay, on the `/run` tmpfs.
pub const ETC_UPPER: &str = "/run/berth/etc/upper";
pub const ETC_WORK: &str = "/run/berth/etc/work";

pub const NOSUID_NODEV: MountFlags = MountFlags {
    read_only: false,
    nosuid: true,
    nodev: true,
    noexec: false,
};
pub const NOSUID_NODEV_NOEXEC: MountFlags = MountFlags {
    noexec: true,
    ..NOSUID_NODEV
};
const NOSUID_NOEXEC: MountFlags = MountFlags {
    nodev: false,
    ..NOSUID_NODEV_NOEXEC
};

/// Bind mounts of STATE folders: (folder on STATE, target, flags). Parents first.
pub const STATE_BINDS: [(&str, &str, MountFlags); 5] = [
    ("home", "/home", NOSUID_NODEV_NOEXEC),
    ("var", "/var", NOSUID_NODEV_NOEXEC),
    ("var/lib/berth", "/var/lib/berth", NOSUID_NODEV),
    ("var/lib/kubelet", "/var/lib/kubelet", NOSUID_NODEV),
    ("var/lib/toolbox", "/var/lib/toolbox", NOSUID_NODEV),
];

/// Stateless tmpfs mounts after STATE: (target, flags, options).
pub const TMPFS_MOUNTS: [(&str, MountFlags, &str); 3] = [
    ("/var/lib/cloud", NOSUID_NODEV, "mode=0755"),
    ("/mnt/disks", NOSUID_NODEV, "mode=0755"),
    ("/tmp", NOSUID_NODEV_NOEXEC, "mode=1777"),
];

/// Controllers PID 1 enables in the root cgroup's `cgroup.subtree_control`, so that a
/// delegated subtree (the runtime, the kubelet) can use them.
pub const CGROUP_CONTROLLERS: [&str; 6] = ["cpuset", "cpu", "io", "memory", "hugetlb", "pids"];

/// PID 1's cgroup below the root, systemd's name for it.
pub const INIT_SCOPE: &str = "init.scope";

/// One line of `/proc/self/mountinfo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountEntry {
    pub target: String,
    /// Per-mount options (`rw,nosuid,nodev`).
    pub options: String,
    pub fstype: String,
    pub source: String,
}

/// Parses mountinfo; lines it cannot read are skipped. Octal escapes (`\040`) are decoded.
pub fn parse_mountinfo(text: &str) -> Vec<MountEntry> {
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            let dash = fields.iter().position(|f| *f == "-")?;
            Some(MountEntry {
                target: unescape(fields.get(4)?),
                options: (*fields.get(5)?).to_owned(),
                fstype: (*fields.get(dash + 1)?).to_owned(),
                source: unescape(fields.get(dash + 2)?),
            })
        })
        .collect()
}

fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| bytes[i] == b'\\' && d.iter().all(|b| (b'0'..=b'7').contains(b)));
        match octal {
            Some(d) => {
                let value = d.iter().fold(0u32, |v, b| v * 8 + u32::from(b - b'0'));
                out.push(value as u8);
                i += 4;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Mounts `fstype` on `target`, creating the folder; reports a failure and returns it.
pub fn mount(
    m: &Machine,
    fstype: &str,
    target: &str,
    flags: MountFlags,
    data: &str,
) -> Result<(), Box<dyn Error>> {
    let _ = m.sys.mkdir(Path::new(target));
    let source = if fstype == "cgroup2" {
        "cgroup2"
    } else {
        fstype
    };
    m.sys
        .mount(&Mount {
            source: source.into(),
            target: target.into(),
            fstype: fstype.into(),
            flags,
            data: data.into(),
        })
        .map_err(|e| format!("cannot mount {fstype} on {target}: {e}").into())
}

fn mounted_targets(m: &Machine) -> Vec<String> {
    m.sys
        .read_to_string(Path::new("/proc/self/mountinfo"))
        .map(|text| {
            parse_mountinfo(&text)
                .into_iter()
                .map(|e| e.target)
                .collect()
        })
        .unwrap_or_default()
}

/// Where efivarfs goes: the EFI variables, among them systemd-boot's `LoaderTimeInitUSec`
/// and `LoaderTimeExecUSec` that `systemd-analyze time` reads.
pub const EFIVARS: &str = "/sys/firmware/efi/efivars";
/// efivarfs as systemd mounts it, and read-only: nothing in the image writes variables.
pub const EFIVARS_FLAGS: MountFlags = MountFlags {
    read_only: true,
    ..NOSUID_NODEV_NOEXEC
};

/// `/proc`, `/sys`, `/dev` (unless stage 1 moved them here), `/dev/pts`, `/dev/shm`,
/// `/run`, cgroup2 with its controllers enabled for delegation ([`efivarfs`] follows
/// later as a step of its own).
pub fn api(m: &mut Machine) -> JobResult {
    let present = mounted_targets(m);
    let plan: [(&str, &str, MountFlags, &str); 7] = [
        ("proc", "/proc", NOSUID_NODEV_NOEXEC, ""),
        ("sysfs", "/sys", NOSUID_NODEV_NOEXEC, ""),
        ("devtmpfs", "/dev", NOSUID_NOEXEC, "mode=0755"),
        (
            "devpts",
            "/dev/pts",
            NOSUID_NOEXEC,
            "gid=5,mode=0620,ptmxmode=000",
        ),
        ("tmpfs", "/dev/shm", NOSUID_NODEV, "mode=1777"),
        ("tmpfs", "/run", NOSUID_NODEV, "mode=0755"),
        (
            "cgroup2",
            "/sys/fs/cgroup",
            NOSUID_NODEV_NOEXEC,
            "nsdelegate",
        ),
    ];
    let mut failures = Vec::new();
    for (fstype, target, flags, data) in plan {
        if present.iter().any(|t| t == target) {
            continue;
        }
        if let Err(e) = mount(m, fstype, target, flags, data) {
            failures.push(e.to_string());
        }
    }
    for dir in ["/run/berth", "/run/lock"] {
        let _ = m.sys.mkdir(Path::new(dir));
    }
    if let Err(e) = enable_controllers(m) {
        failures.push(e.to_string());
    }
    if let Err(e) = enter_init_scope(m) {
        failures.push(e);
    }
    match failures.is_empty() {
        true => Ok(()),
        false => Err(failures.join("; ").into()),
    }
}

/// efivarfs on [`EFIVARS`] when the machine booted through EFI (`/sys/firmware/efi`
/// exists, as systemd checks), its module loaded first. A step of its own, after the
/// API mounts: mounting it reads the firmware's variables through EFI runtime calls
/// (slow under emulation), and only `systemd-analyze` reads them, so nothing that
/// serves the node waits for it.
pub fn efivarfs(m: &mut Machine) -> JobResult {
    if !m.sys.exists(Path::new("/sys/firmware/efi"))
        || mounted_targets(m).iter().any(|t| t == EFIVARS)
    {
        return Ok(());
    }
    m.modules()?.load(m.sys, &["efivarfs"], &mut |_, _| {})?;
    mount(m, "efivarfs", EFIVARS, EFIVARS_FLAGS, "")
}

/// Writes `+name` for each available controller of [`CGROUP_CONTROLLERS`] to the root's
/// `cgroup.subtree_control`, one at a time so that one refusal does not block the rest.
fn enable_controllers(m: &Machine) -> Result<(), String> {
    let root = Path::new("/sys/fs/cgroup");
    let available = m
        .sys
        .read_to_string(&root.join("cgroup.controllers"))
        .map_err(|e| format!("cannot read cgroup.controllers: {e}"))?;
    let mut refused = Vec::new();
    for name in CGROUP_CONTROLLERS {
        if !available.split_whitespace().any(|c| c == name) {
            continue;
        }
        let control = root.join("cgroup.subtree_control");
        if let Err(e) = m.sys.write_file(&control, format!("+{name}").as_bytes()) {
            refused.push(format!("{name} ({e})"));
        }
    }
    match refused.is_empty() {
        true => Ok(()),
        false => Err(format!(
            "cgroup controllers not enabled: {}",
            refused.join(", ")
        )),
    }
}

/// PID 1's own cgroup, `/init.scope`, as systemd's. Made here, in the first step, on
/// purpose: the first memory cgroup below the root turns on the kernel's
/// `memcg_kmem_enabled` static key, which rewrites the code of every page free in place;
/// under QEMU's TCG, vCPUs freeing pages while it is rewritten were seen to spin there
/// forever (both stuck in `free_pcp_prepare` with RCU stalls, the boot never done). Here
/// nothing of Berth's runs beside PID 1; later, the first unit's cgroup would be made
/// while the forked steps run on both CPUs.
fn enter_init_scope(m: &Machine) -> Result<(), String> {
    let scope = Path::new("/sys/fs/cgroup").join(INIT_SCOPE);
    m.sys
        .mkdir_mode(&scope, 0o755)
        .and_then(|()| m.sys.write_file(&scope.join("cgroup.procs"), b"0"))
        .map_err(|e| format!("cannot enter {}: {e}", scope.display()))
}

/// `/etc`: an overlay of the root's `/etc` with a tmpfs upper layer (on `/run`), so it is
/// writable and starts from the verified defaults on every boot.
pub fn etc(m: &mut Machine) -> JobResult {
    m.modules()?.load(m.sys, &["overlay"], &mut |_, _| {})?;
    for dir in ["/run/berth/etc", ETC_UPPER, ETC_WORK] {
        m.sys
            .mkdir(Path::new(dir))
            .map_err(|e| format!("cannot create {dir}: {e}"))?;
    }
    let data = format!("lowerdir=/etc,upperdir={ETC_UPPER},workdir={ETC_WORK}");
    mount(m, "overlay", "/etc", NOSUID_NODEV, &data)
}

/// `/home`, `/var` and the exec folders under `/var/lib`, bound from STATE.
pub fn state_binds(m: &mut Machine) -> JobResult {
    let mut failures = Vec::new();
    for (folder, target, flags) in STATE_BINDS {
        let source = Path::new(STATE_MOUNT).join(folder);
        if let Err(e) = m.sys.bind(&source, Path::new(target), flags) {
            failures.push(format!("cannot bind {} on {target}: {e}", source.display()));
        }
    }
    match failures.is_empty() {
        true => Ok(()),
        false => Err(failures.join("; ").into()),
    }
}

/// The stateless tmpfs mounts: `/var/lib/cloud`, `/mnt/disks`, `/tmp`.
pub fn stateless(m: &mut Machine) -> JobResult {
    let mut failures = Vec::new();
    for (target, flags, data) in TMPFS_MOUNTS {
        if let Err(e) = mount(m, "tmpfs", target, flags, data) {
            failures.push(e.to_string());
        }
    }
    match failures.is_empty() {
        true => Ok(()),
        false => Err(failures.join("; ").into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_lines_are_read() {
        let text = "22 1 254:0 / / ro,relatime shared:1 - ext4 /dev/mapper/root ro\n\
                    40 22 253:6 /var /var rw,nosuid,nodev,noexec - ext4 /dev/vda6 rw\n\
                    41 22 0:40 / /mnt/my\\040disk rw - tmpfs tmpfs rw\n\
                    garbage\n";
        let entries = parse_mountinfo(text);
        assert_eq!(entries.len(), 3);
        assert_eq!(entries[1].target, "/var");
        assert_eq!(entries[1].options, "rw,nosuid,nodev,noexec");
        assert_eq!(entries[1].fstype, "ext4");
        assert_eq!(entries[1].source, "/dev/vda6");
        assert_eq!(entries[2].target, "/mnt/my disk");
    }
}
