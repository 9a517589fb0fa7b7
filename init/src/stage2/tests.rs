//! Stage 2 against the recording fake: the mount plan and its order, STATE growing on a
//! real GPT image standing in for `/dev/vda`, the fallbacks, the console lines, shutdown.

use std::path::{Path, PathBuf};

use berth_layout::cmdline::BootOptions;
use berth_layout::partition::{Plan, Role, Sizes};

use super::engine::{Machine, StateBacking};
use super::mounts::{NOSUID_NODEV, NOSUID_NODEV_NOEXEC};
use super::*;
use crate::sys::fake::{Call, Fake};
use crate::sys::{Ended, Mount, MountFlags, Ran};
use berth_layout::paths::STATE_MOUNT;

const RELEASE: &str = "6.1.0-28-cloud-amd64";
const MIB: u64 = 1 << 20;

/// A booted-from-stage-1 machine: `/`, `/proc`, `/sys`, `/dev` mounted, a module index,
/// config folders (one bad line each), and with `disk` a GPT disk with STATE at vda6.
pub(super) fn machine(disk: bool, grow_by: u64) -> Fake {
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
    berth_layout::gpt::write(&mut file, &path, &plan).unwrap();
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
    let mut m = Machine::new(f, BootOptions::parse_lenient(&cmdline).0);
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
    // PID 1 enters /init.scope right after the controllers are enabled, in the first step.
    let enable = calls
        .iter()
        .rposition(|c| matches!(c, Call::Write(p, _) if p.ends_with("cgroup.subtree_control")));
    let enter = calls.iter().position(|c| {
        c == &Call::Write("/sys/fs/cgroup/init.scope/cgroup.procs".into(), "0".into())
    });
    assert!(enable.unwrap() < enter.unwrap() && enter.unwrap() < etc.unwrap());
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
        "berth: hostname berth-3f2504e0 (default, from the machine-id)",
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
    let table = berth_layout::gpt::read(&mut disk, Path::new("/dev/vda")).unwrap();
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
    assert!(logs.contains("e2fsck could not repair it"), "{logs}");
    assert!(logs.contains("cannot run it"), "{logs}");
    assert!(
        logs.contains("berth: FAILED berth-etc-overlay.service: cannot mount overlay on /etc"),
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
    let mut m = Machine::new(&f, BootOptions::default());
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

pub(super) fn exit(code: i32, output: &str) -> std::io::Result<Ran> {
    Ok(Ran {
        ended: Ended::Exit(code),
        output: output.into(),
    })
}

/// The helpers run, as `program args...`.
fn runs(f: &Fake) -> Vec<String> {
    f.calls()
        .into_iter()
        .filter_map(|c| match c {
            Call::Run(program, args, _) => {
                Some(format!("{} {}", program.display(), args.join(" ")))
            }
            _ => None,
        })
        .collect()
}

fn state_mounts(f: &Fake) -> Vec<String> {
    mounts(f)
        .into_iter()
        .filter(|(t, _, _)| t == STATE_MOUNT)
        .map(|(_, fs, _)| fs)
        .collect()
}

const PREEN: &str = "/usr/sbin/e2fsck -f -p /dev/vda6";
const YES: &str = "/usr/sbin/e2fsck -f -y /dev/vda6";
const MKFS: &str = "/usr/sbin/mke2fs -F -t ext4 -L STATE -m 0 -E nodiscard /dev/vda6";

#[test]
fn a_state_that_preen_repairs_is_mounted_after_it() {
    let f = machine(true, 0);
    f.failing_mounts_times
        .borrow_mut()
        .insert(format!("ext4 {STATE_MOUNT}"), 1);
    f.runs.borrow_mut().push_back(exit(
        1,
        "/dev/vda6: recovering journal\n/dev/vda6: 11/4096 files (0.0% non-contiguous), 1/16384 blocks\n",
    ));
    let (failed, state, _) = boot(&f);
    assert_eq!(failed, 0, "{:#?}", f.logs());
    assert_eq!(state, StateBacking::Partition(PathBuf::from("/dev/vda6")));
    assert_eq!(runs(&f), [PREEN]);
    assert_eq!(state_mounts(&f), ["ext4", "ext4"]);
    let logs = f.logs().join("\n");
    for line in [
        "berth: state: cannot mount /dev/vda6 (ext4): Invalid argument (os error 22); checking it with e2fsck",
        "berth: state: e2fsck -p repaired /dev/vda6 (exit 1, 0.0 s): /dev/vda6: 11/4096 files (0.0% non-contiguous), 1/16384 blocks",
        "berth: state mounted /dev/vda6 (16 MiB, repaired) on /mnt/stateful_partition",
    ] {
        assert!(logs.contains(line), "no {line:?} in\n{logs}");
    }
    assert!(!logs.contains("FAILED state"), "{logs}");
}

#[test]
fn what_preen_cannot_repair_goes_to_e2fsck_y() {
    let f = machine(true, 0);
    f.failing_mounts_times
        .borrow_mut()
        .insert(format!("ext4 {STATE_MOUNT}"), 1);
    f.runs.borrow_mut().extend([
        exit(4, "/dev/vda6: UNEXPECTED INCONSISTENCY; RUN fsck MANUALLY.\n\t(i.e., without -a or -p options)\n"),
        exit(1, "/dev/vda6: ***** FILE SYSTEM WAS MODIFIED *****\n"),
    ]);
    let (_, state, _) = boot(&f);
    assert_eq!(state, StateBacking::Partition(PathBuf::from("/dev/vda6")));
    // No mount between a preen that failed and -y: it would not help.
    assert_eq!(runs(&f), [PREEN, YES]);
    assert_eq!(state_mounts(&f), ["ext4", "ext4"]);
    let logs = f.logs().join("\n");
    assert!(logs.contains("berth: state: e2fsck -p could not repair /dev/vda6 (exit 4: errors left uncorrected, 0.0 s): /dev/vda6: UNEXPECTED INCONSISTENCY; RUN fsck MANUALLY.; trying e2fsck -y"), "{logs}");
    assert!(
        logs.contains("berth: state: e2fsck -y repaired /dev/vda6 (exit 1"),
        "{logs}"
    );
}

#[test]
fn a_clean_verdict_that_still_does_not_mount_goes_on_to_e2fsck_y() {
    let f = machine(true, 0);
    f.failing_mounts_times
        .borrow_mut()
        .insert(format!("ext4 {STATE_MOUNT}"), 2);
    f.runs.borrow_mut().extend([exit(0, ""), exit(2, "")]);
    let (_, state, _) = boot(&f);
    assert!(matches!(state, StateBacking::Partition(_)));
    assert_eq!(runs(&f), [PREEN, YES]);
    assert_eq!(state_mounts(&f), ["ext4", "ext4", "ext4"]);
    let logs = f.logs().join("\n");
    assert!(
        logs.contains("berth: state: still cannot mount /dev/vda6 after e2fsck -p"),
        "{logs}"
    );
    assert!(
        logs.contains("berth: state: e2fsck -y repaired /dev/vda6 (exit 2"),
        "{logs}"
    );
}

#[test]
fn beyond_repair_without_reformat_is_a_tmpfs_and_nothing_is_re_made() {
    let f = machine(true, 0);
    f.failing_mounts
        .borrow_mut()
        .insert(format!("ext4 {STATE_MOUNT}"));
    f.runs.borrow_mut().extend([
        exit(
            8,
            "e2fsck: Bad magic number in super-block while trying to open /dev/vda6\n",
        ),
        exit(
            8,
            "e2fsck: Bad magic number in super-block while trying to open /dev/vda6\n",
        ),
    ]);
    let (failed, state, _) = boot(&f);
    assert_eq!(failed, 0);
    assert_eq!(state, StateBacking::Tmpfs);
    assert_eq!(runs(&f), [PREEN, YES]);
    assert_eq!(state_mounts(&f), ["ext4", "tmpfs"]);
    let logs = f.logs().join("\n");
    assert!(logs.contains("berth: FAILED state repair: e2fsck -y /dev/vda6: exit 8: operational error (0.0 s): e2fsck: Bad magic number in super-block while trying to open /dev/vda6"), "{logs}");
    assert!(logs.contains("berth: FAILED state: cannot mount /dev/vda6 (ext4): Invalid argument (os error 22); e2fsck could not repair it (berth.state=reformat on the command line re-makes it, empty); STATE is a tmpfs, nothing written will persist"), "{logs}");
}

#[test]
fn beyond_repair_with_reformat_is_re_made_loudly() {
    let f = machine(true, 0);
    f.write("/proc/cmdline", "roothash=00 berth.state=reformat\n");
    f.failing_mounts_times
        .borrow_mut()
        .insert(format!("ext4 {STATE_MOUNT}"), 1);
    f.runs.borrow_mut().extend([
        exit(8, ""),
        Ok(Ran {
            ended: Ended::TimedOut,
            output: "Pass 1: Checking inodes\n".into(),
        }),
        exit(
            0,
            "Writing superblocks and filesystem accounting information: done\n",
        ),
    ]);
    let (failed, state, id) = boot(&f);
    assert_eq!(failed, 0, "{:#?}", f.logs());
    assert_eq!(state, StateBacking::Partition(PathBuf::from("/dev/vda6")));
    assert!(id.is_some());
    assert_eq!(runs(&f), [PREEN, YES, MKFS]);
    let limits: Vec<u64> = f
        .calls()
        .into_iter()
        .filter_map(|c| match c {
            Call::Run(_, _, limit) => Some(limit.as_secs()),
            _ => None,
        })
        .collect();
    assert_eq!(limits, [1200, 1200, 300]);
    // The hung e2fsck -y (the second helper) was killed with its process group.
    assert!(f.calls().contains(&Call::Kill(-1001, nix::libc::SIGKILL)));
    assert_eq!(state_mounts(&f), ["ext4", "ext4"]);
    let logs = f.logs().join("\n");
    for line in [
        "berth: FAILED state repair: e2fsck -y /dev/vda6: still running after 1200 s, killed (1200.0 s): Pass 1: Checking inodes",
        "berth: FAILED state: cannot mount /dev/vda6 (ext4): Invalid argument (os error 22); e2fsck could not repair it; berth.state=reformat: re-making STATE on /dev/vda6",
        "berth: state: re-made STATE on /dev/vda6 (berth.state=reformat, mke2fs 0.0 s): a new empty ext4, everything it held is gone",
        "berth: state new: made home var",
        "berth: state mounted /dev/vda6 (16 MiB, re-made) on /mnt/stateful_partition",
        "(new, kept on STATE)",
    ] {
        assert!(logs.contains(line), "no {line:?} in\n{logs}");
    }
}

#[test]
fn a_failed_re_make_falls_back_to_a_tmpfs() {
    let f = machine(true, 0);
    f.write("/proc/cmdline", "roothash=00 berth.state=reformat\n");
    f.failing_mounts
        .borrow_mut()
        .insert(format!("ext4 {STATE_MOUNT}"));
    f.runs.borrow_mut().extend([
        exit(8, ""),
        exit(8, ""),
        exit(1, "mke2fs: Device size reported to be zero.\n"),
    ]);
    let (_, state, _) = boot(&f);
    assert_eq!(state, StateBacking::Tmpfs);
    assert_eq!(runs(&f), [PREEN, YES, MKFS]);
    let logs = f.logs().join("\n");
    assert!(logs.contains("mke2fs /dev/vda6 failed: exit 1: mke2fs: Device size reported to be zero.; STATE is a tmpfs"), "{logs}");
    assert!(!logs.contains("re-made"), "{logs}");
}

#[test]
fn wipe_re_makes_state_without_trying_it() {
    let f = machine(true, 0);
    f.write("/proc/cmdline", "roothash=00 berth.state=wipe\n");
    f.runs.borrow_mut().push_back(exit(0, ""));
    let (_, state, _) = boot(&f);
    assert!(matches!(state, StateBacking::Partition(_)));
    assert_eq!(runs(&f), [MKFS]);
    assert_eq!(state_mounts(&f), ["ext4"]);
    let logs = f.logs().join("\n");
    assert!(
        logs.contains(
            "berth: state: berth.state=wipe on the command line: re-making STATE on /dev/vda6"
        ),
        "{logs}"
    );
    assert!(
        logs.contains("berth: state: re-made STATE on /dev/vda6 (berth.state=wipe"),
        "{logs}"
    );
}

#[test]
fn a_state_that_mounts_runs_no_helper() {
    let f = machine(true, 0);
    f.write("/proc/cmdline", "roothash=00 berth.state=reformat\n");
    boot(&f);
    assert!(runs(&f).is_empty());
}

/// The host name a boot with `cmdline` and SMBIOS `serial` chooses, and the logs.
fn hostname_with(cmdline: &str, serial: Option<&str>) -> (String, String) {
    let f = machine(true, 0);
    f.write("/proc/cmdline", cmdline);
    if let Some(serial) = serial {
        f.write("/sys/class/dmi/id/product_serial", serial);
    }
    boot(&f);
    let name = f
        .read_to_string(Path::new("/proc/sys/kernel/hostname"))
        .unwrap();
    (name, f.logs().join("\n"))
}

#[test]
fn the_host_name_comes_from_the_cmdline_then_the_cloud_then_the_machine_id() {
    let serial = Some("ds=nocloud;h=cloudy-node\n");
    let (name, logs) = hostname_with("berth.hostname=node-1", serial);
    assert_eq!(name, "node-1");
    assert!(
        logs.contains("berth: hostname node-1 (from berth.hostname=)"),
        "{logs}"
    );
    let (name, logs) = hostname_with("roothash=00", serial);
    assert_eq!(name, "cloudy-node");
    assert!(
        logs.contains("berth: hostname cloudy-node (from SMBIOS nocloud)"),
        "{logs}"
    );
    let (name, _) = hostname_with(
        "",
        Some("ds=nocloud;s=http://x/;local-hostname=n2.example.com"),
    );
    assert_eq!(name, "n2.example.com");
    let (name, logs) = hostname_with("", Some("VMware-56 4d 2a"));
    assert_eq!(name, "berth-3f2504e0");
    assert!(
        logs.contains("berth: hostname berth-3f2504e0 (default, from the machine-id)"),
        "{logs}"
    );
    assert!(!logs.contains("FAILED hostname"), "{logs}");
    let (name, _) = hostname_with("", None);
    assert_eq!(name, "berth-3f2504e0");
}

#[test]
fn a_cloud_host_name_that_is_garbage_is_reported_and_the_default_used() {
    let (name, logs) = hostname_with("", Some("ds=nocloud;h=bad_name!"));
    assert_eq!(name, "berth-3f2504e0");
    assert!(
        logs.contains("berth: FAILED hostname: the SMBIOS serial's nocloud host name \"bad_name!\" is not a valid host name"),
        "{logs}"
    );
    assert!(
        logs.contains("berth: hostname berth-3f2504e0 (default, from the machine-id)"),
        "{logs}"
    );
}
