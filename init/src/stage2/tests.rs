//! Stage 2 against the recording fake: the mount plan and its order, STATE growing on a
//! real GPT image standing in for `/dev/vda`, the fallbacks, the console lines, shutdown.

use std::path::{Path, PathBuf};

use berth_image::plan::{Plan, Role, Sizes};

use super::engine::{Machine, StateBacking};
use super::mounts::{NOSUID_NODEV, NOSUID_NODEV_NOEXEC, STATE_MOUNT};
use super::*;
use crate::sys::fake::{Call, Fake};
use crate::sys::{Mount, MountFlags};

const RELEASE: &str = "6.1.0-28-cloud-amd64";
const MIB: u64 = 1 << 20;

/// A booted-from-stage-1 machine: `/`, `/proc`, `/sys`, `/dev` mounted, a module index,
/// config folders (one bad line each), and with `disk` a GPT disk with STATE at vda6.
fn machine(disk: bool, grow_by: u64) -> Fake {
    let f = Fake::new();
    f.write(
        "/proc/self/mountinfo",
        "22 1 254:0 / / ro - ext4 /dev/mapper/root ro\n\
         23 22 0:5 / /dev rw,nosuid - devtmpfs devtmpfs rw\n\
         24 22 0:6 / /proc rw - proc proc rw\n\
         25 22 0:7 / /sys rw - sysfs sysfs rw\n",
    );
    f.write("/proc/cmdline", "roothash=00 berth.debug\n");
    f.write("/etc/passwd", "root:x:0:0:root:/root:/bin/sh\n");
    f.write("/proc/sys/kernel/osrelease", format!("{RELEASE}\n"));
    f.write(
        "/proc/sys/kernel/random/uuid",
        "3f2504e0-4f89-11d3-9a0c-0305e82c3301\n",
    );
    f.write(
        "/sys/fs/cgroup/cgroup.controllers",
        "cpuset cpu io memory pids\n",
    );
    let modules = format!("/usr/lib/modules/{RELEASE}");
    f.write(
        format!("{modules}/modules.dep"),
        "kernel/fs/overlayfs/overlay.ko:\n\
         kernel/net/bridge/br_netfilter.ko: kernel/net/bridge/bridge.ko\n\
         kernel/net/bridge/bridge.ko:\n",
    );
    for m in [
        "fs/overlayfs/overlay",
        "net/bridge/br_netfilter",
        "net/bridge/bridge",
    ] {
        f.write(format!("{modules}/kernel/{m}.ko"), b"\x7fELF");
    }
    f.write(
        "/usr/lib/modules-load.d/berth.conf",
        "overlay\nbr_netfilter\nno such!\n",
    );
    f.write(
        "/usr/lib/sysctl.d/50-berth.conf",
        "net.ipv4.ip_forward = 1\n-net.bogus.key = 1\nnot a setting\n",
    );
    f.write("/proc/sys/net/ipv4/ip_forward", "0\n");
    f.write(
        "/usr/lib/tmpfiles.d/berth.conf",
        "d /run/berth/x 0700 - -\nq /bad\n",
    );
    if disk {
        attach_disk(&f, grow_by);
    }
    f
}

/// Writes a GPT disk with Berth's plan at `/dev/vda` (then grown by `grow_by`) and the
/// sysfs view of its STATE partition before the growth.
fn attach_disk(f: &Fake, grow_by: u64) {
    let sizes = Sizes {
        esp: 34 * MIB,
        root: 8 * MIB,
        verity: MIB,
        state: 16 * MIB,
    };
    let plan = Plan::new(&sizes, "berth", &[7; 32]);
    let path = f.host("/dev/vda");
    std::fs::create_dir_all(f.host("/dev")).unwrap();
    let mut file = std::fs::File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path)
        .unwrap();
    file.set_len(plan.disk_size).unwrap();
    berth_image::gpt::write(&mut file, &path, &plan).unwrap();
    file.set_len(plan.disk_size + grow_by).unwrap();
    let state = plan.get(Role::State);
    let dir = "/sys/block/vda/vda6";
    f.write(
        format!("{dir}/uevent"),
        "MAJOR=254\nMINOR=6\nDEVNAME=vda6\nDEVTYPE=partition\nPARTN=6\nPARTNAME=STATE\n",
    );
    f.write(format!("{dir}/partition"), "6\n");
    f.write(format!("{dir}/start"), format!("{}\n", state.first_lba()));
    f.write(format!("{dir}/size"), format!("{}\n", state.size / 512));
    f.write("/sys/block/vda/vda2/partition", "2\n");
    f.write("/sys/block/dm-0/slaves/vda2", "");
    // An ext4 superblock (4 KiB blocks) as big as the partition was before.
    let mut device = vec![0u8; 4096];
    let blocks = (state.size / 4096) as u32;
    device[1024 + 0x04..1024 + 0x08].copy_from_slice(&blocks.to_le_bytes());
    device[1024 + 0x18] = 2;
    device[1024 + 0x38..1024 + 0x3a].copy_from_slice(&0xef53u16.to_le_bytes());
    f.write("/dev/vda6", device);
}

fn mounts(f: &Fake) -> Vec<(String, String, MountFlags)> {
    f.calls()
        .into_iter()
        .filter_map(|c| match c {
            Call::Mount(Mount {
                target,
                fstype,
                flags,
                ..
            }) => Some((target, fstype, flags)),
            Call::Bind(_, target, flags) => {
                Some((target.display().to_string(), "bind".into(), flags))
            }
            _ => None,
        })
        .collect()
}

fn boot(f: &Fake) -> (usize, StateBacking, Option<String>) {
    let cmdline = f.read_to_string(Path::new("/proc/cmdline")).unwrap();
    let mut m = Machine::new(f, Options::parse(&cmdline));
    let failed = early_boot(&mut m);
    (failed, m.state, m.machine_id)
}

#[test]
fn early_boot_mounts_the_design_table_in_order() {
    let f = machine(true, 0);
    let (failed, state, id) = boot(&f);
    assert_eq!(failed, 0, "{:#?}", f.logs());
    assert_eq!(state, StateBacking::Partition(PathBuf::from("/dev/vda6")));
    assert_eq!(id.as_deref(), Some("3f2504e04f8911d39a0c0305e82c3301"));
    let exec = NOSUID_NODEV;
    let noexec = NOSUID_NODEV_NOEXEC;
    let dev = MountFlags {
        nodev: false,
        ..noexec
    };
    let got = mounts(&f);
    let want: Vec<(String, String, MountFlags)> = [
        ("/dev/pts", "devpts", dev),
        ("/dev/shm", "tmpfs", exec),
        ("/run", "tmpfs", exec),
        ("/sys/fs/cgroup", "cgroup2", noexec),
        ("/etc", "overlay", exec),
        (STATE_MOUNT, "ext4", noexec),
        ("/home", "bind", noexec),
        ("/var", "bind", noexec),
        ("/var/lib/berth", "bind", exec),
        ("/var/lib/kubelet", "bind", exec),
        ("/var/lib/toolbox", "bind", exec),
        ("/var/lib/cloud", "tmpfs", exec),
        ("/mnt/disks", "tmpfs", exec),
        ("/tmp", "tmpfs", noexec),
    ]
    .into_iter()
    .map(|(t, fs, fl)| (t.to_owned(), fs.to_owned(), fl))
    .collect();
    assert_eq!(got, want);
    let calls = f.calls();
    // overlayfs is loaded before /etc is mounted; the controllers are delegated.
    let overlay = calls
        .iter()
        .position(|c| matches!(c, Call::LoadModule(p) if p.ends_with("overlay.ko")));
    let etc = calls
        .iter()
        .position(|c| matches!(c, Call::Mount(m) if m.target == "/etc"));
    assert!(overlay.unwrap() < etc.unwrap());
    let subtree = calls
        .iter()
        .filter(|c| matches!(c, Call::Write(p, _) if p.ends_with("cgroup.subtree_control")))
        .count();
    assert_eq!(subtree, 5);
    assert!(calls.contains(&Call::Write(
        "/proc/sys/net/ipv4/ip_forward".into(),
        "1".into()
    )));
    assert!(calls.contains(&Call::Write(
        "/proc/sys/kernel/hostname".into(),
        "berth-3f2504e0".into()
    )));
    let logs = f.logs().join("\n");
    for line in [
        "berth: state new: made home var",
        "berth: machine-id 3f2504e04f8911d39a0c0305e82c3301 (new, kept on STATE)",
        "berth: hostname berth-3f2504e0",
        "berth: modules loaded: overlay br_netfilter",
        "berth: FAILED modules-load: /usr/lib/modules-load.d/berth.conf:3: \"no such!\" is not a module name",
        "berth: FAILED sysctl: /usr/lib/sysctl.d/50-berth.conf:3: expected `key = value`",
        "berth: FAILED tmpfiles: /usr/lib/tmpfiles.d/berth.conf:2: type \"q\" is not supported",
    ] {
        assert!(logs.contains(line), "no {line:?} in\n{logs}");
    }
    assert!(!logs.contains("grown"), "{logs}");
    // A second boot keeps the machine-id and makes no folders.
    let (_, _, again) = boot(&f);
    assert_eq!(again, id);
    assert!(f.logs().iter().filter(|l| l.contains("state new")).count() == 1);
    assert!(f.logs().iter().any(|l| l.ends_with("(kept on STATE)")));
}

#[test]
fn a_larger_disk_grows_state() {
    let f = machine(true, 64 * MIB);
    let (_, state, _) = boot(&f);
    assert!(matches!(state, StateBacking::Partition(_)));
    let resized: Vec<Call> = f
        .calls()
        .into_iter()
        .filter(|c| matches!(c, Call::ResizePartition(..)))
        .collect();
    let [Call::ResizePartition(disk, 6, _, length)] = resized.as_slice() else {
        panic!("{resized:?}");
    };
    assert_eq!(disk, Path::new("/dev/vda"));
    assert_eq!(*length, 80 * MIB);
    let logs = f.logs().join("\n");
    assert!(
        logs.contains("berth: state partition vda6 grown from 16 MiB to 80 MiB"),
        "{logs}"
    );
    assert!(
        logs.contains("berth: state filesystem grown from 16 MiB to 80 MiB"),
        "{logs}"
    );
    assert!(f
        .calls()
        .contains(&Call::ResizeExt4(STATE_MOUNT.into(), 80 * MIB / 4096)));
    let mut disk = std::fs::File::open(f.host("/dev/vda")).unwrap();
    let table = berth_image::gpt::read(&mut disk, Path::new("/dev/vda")).unwrap();
    assert!(table.warnings.is_empty(), "{:?}", table.warnings);
    assert_eq!(table.by_label("STATE").unwrap().size(512), 80 * MIB);
}

#[test]
fn no_state_means_a_tmpfs_said_loudly() {
    let f = machine(false, 0);
    let (failed, state, id) = boot(&f);
    assert_eq!(failed, 0);
    assert_eq!(state, StateBacking::Tmpfs);
    assert!(id.is_some());
    let logs = f.logs().join("\n");
    assert!(logs.contains("berth: FAILED state: no partition labelled STATE; STATE is a tmpfs, nothing written will persist"), "{logs}");
    assert!(
        logs.contains("(new, lost at shutdown (STATE is a tmpfs))"),
        "{logs}"
    );
    assert!(mounts(&f).contains(&(STATE_MOUNT.into(), "tmpfs".into(), NOSUID_NODEV_NOEXEC)));
}

#[test]
fn a_state_that_fails_to_mount_falls_back_and_boot_goes_on() {
    let f = machine(true, 0);
    f.failing_mounts
        .borrow_mut()
        .insert(format!("ext4 {STATE_MOUNT}"));
    f.failing_mounts.borrow_mut().insert("overlay /etc".into());
    let (failed, state, _) = boot(&f);
    assert_eq!(state, StateBacking::Tmpfs);
    assert_eq!(failed, 1, "only /etc fails as a job: {:#?}", f.logs());
    let logs = f.logs().join("\n");
    assert!(
        logs.contains("berth: FAILED state: cannot mount /dev/vda6 (ext4)"),
        "{logs}"
    );
    assert!(logs.contains("no fsck"), "{logs}");
    assert!(
        logs.contains("berth: FAILED etc: cannot mount overlay on /etc"),
        "{logs}"
    );
    // The binds and tmpfs mounts still happen.
    assert!(mounts(&f).iter().any(|(t, _, _)| t == "/tmp"));
}

#[test]
fn shutdown_phases_in_order_with_state_left_clean() {
    let f = Fake::new();
    f.write(
        "/proc/self/mountinfo",
        "22 1 254:0 / / ro - ext4 /dev/mapper/root ro\n\
         23 22 0:5 / /dev rw - devtmpfs devtmpfs rw\n\
         26 22 0:8 / /run rw - tmpfs tmpfs rw\n\
         27 22 254:6 / /mnt/stateful_partition rw - ext4 /dev/vda6 rw\n\
         28 22 254:6 /var /var rw - ext4 /dev/vda6 rw\n",
    );
    f.busy.borrow_mut().insert("/mnt/stateful_partition".into());
    let mut m = Machine::new(&f, Options::default());
    m.shell = Some(100);
    m.action = PowerAction::Reboot;
    let failed = engine::run(&mut m, &shutdown::SHUTDOWN);
    assert_eq!(failed, 0, "{:#?}", f.logs());
    let effects: Vec<Call> = f.effects();
    let term = nix::libc::SIGTERM;
    assert_eq!(
        effects,
        [
            Call::Kill(-1, term),
            Call::Kill(-1, nix::libc::SIGCONT),
            Call::Kill(100, nix::libc::SIGHUP),
            Call::Sync,
            Call::Unmount("/var".into()),
            Call::Unmount("/mnt/stateful_partition".into()),
            Call::RemountReadOnly("/mnt/stateful_partition".into()),
            Call::Unmount("/run".into()),
            Call::Sync,
            Call::Reboot(PowerAction::Reboot),
        ]
    );
    let logs = f.logs();
    let phases: Vec<&str> = logs
        .iter()
        .map(|l| l.split(':').nth(1).unwrap_or("").trim())
        .collect();
    assert_eq!(
        phases,
        [
            "shutdown stop",
            "shutdown kill",
            "shutdown sync",
            "shutdown unmount",
            "shutdown reboot"
        ]
    );
}

#[test]
fn root_is_described_from_mountinfo() {
    let text = "1 1 0:2 / / rw - rootfs rootfs rw\n\
                22 1 254:0 / / ro,relatime shared:1 - ext4 /dev/dm-0 ro\n\
                23 22 0:5 / /dev rw,nosuid - devtmpfs devtmpfs rw\n";
    assert_eq!(describe_root(text).as_deref(), Some("/dev/dm-0 ext4 ro"));
    assert_eq!(describe_root(""), None);
}

#[test]
fn shutdown_signals() {
    let rtmin = nix::libc::SIGRTMIN();
    assert_eq!(
        shutdown_action(nix::libc::SIGTERM),
        Some(PowerAction::Reboot)
    );
    assert_eq!(
        shutdown_action(nix::libc::SIGINT),
        Some(PowerAction::Reboot)
    );
    assert_eq!(
        shutdown_action(nix::libc::SIGUSR2),
        Some(PowerAction::PowerOff)
    );
    assert_eq!(shutdown_action(nix::libc::SIGUSR1), Some(PowerAction::Halt));
    assert_eq!(shutdown_action(rtmin + 3), Some(PowerAction::Halt));
    assert_eq!(shutdown_action(rtmin + 4), Some(PowerAction::PowerOff));
    assert_eq!(shutdown_action(rtmin + 5), Some(PowerAction::Reboot));
    assert_eq!(shutdown_action(nix::libc::SIGHUP), None);
    assert_eq!(shutdown_action(nix::libc::SIGCHLD), None);
    assert_eq!(signal_name(nix::libc::SIGTERM), "SIGTERM");
    assert_eq!(signal_name(rtmin + 4), "SIGRTMIN+4");
}
