//! Stage 1 against the recording fake: the plan, its order, the exact dm table line and
//! console lines, and the failure path of each kind of failure.

use std::path::PathBuf;
use std::time::Duration;

use berth_layout::partition::Role;

use super::fixture::{Fixture, MODULES};
use super::*;
use crate::sys::fake::Call;
use crate::sys::{Mount, MountFlags};

fn api_mount(fstype: &str, target: &str, flags: MountFlags, data: &str) -> Call {
    Call::Mount(Mount {
        source: fstype.into(),
        target: target.into(),
        fstype: fstype.into(),
        flags,
        data: data.into(),
    })
}

fn load(path: &str) -> Call {
    Call::LoadModule(PathBuf::from(format!("{MODULES}/kernel/drivers/{path}")))
}

fn table(m: &Fixture, option: &str) -> String {
    format!(
        "0 1600 verity 1 252:2 252:3 4096 4096 200 1 sha256 {} deadbeef 1 {option}",
        m.root_hash
    )
}

/// Runs stage 1 and returns the `berth: FAILED` line.
fn failed_line(m: &Fixture) -> String {
    assert_eq!(run(&m.fake), Outcome::Stopped);
    let logs = m.fake.logs();
    logs.into_iter()
        .find(|l| l.starts_with("berth: FAILED"))
        .unwrap_or_else(|| panic!("no failure in {:?}", m.fake.logs()))
}

fn assert_stopped(m: &Fixture, action: PowerAction) {
    let effects = m.fake.effects();
    let tail = &effects[effects.len() - 2..];
    assert_eq!(tail, [Call::Sync, Call::Reboot(action)], "{effects:#?}");
    assert!(!effects.iter().any(|c| matches!(c, Call::SwitchRoot(_))));
}

#[test]
fn boots_in_order() {
    let m = Fixture::new();
    assert_eq!(run(&m.fake), Outcome::Switched);
    let api = MountFlags {
        nosuid: true,
        nodev: true,
        noexec: true,
        read_only: false,
    };
    let dev = MountFlags {
        nosuid: true,
        ..MountFlags::default()
    };
    let expected = vec![
        api_mount("devtmpfs", "/dev", dev, "mode=0755"),
        api_mount("proc", "/proc", api, ""),
        api_mount("sysfs", "/sys", api, ""),
        load("block/virtio_blk.ko"),
        load("scsi/scsi_common.ko"),
        load("scsi/scsi_mod.ko"),
        load("scsi/virtio_scsi.ko"),
        load("scsi/sd_mod.ko"),
        load("md/dm-mod.ko"),
        Call::LoadModule(PathBuf::from(format!(
            "{MODULES}/kernel/lib/reed_solomon/reed_solomon.ko"
        ))),
        load("md/dm-bufio.ko"),
        load("md/dm-verity.ko"),
        Call::DmCreate {
            name: "root".into(),
            uuid: "CRYPT-VERITY-11111111111111111111111111111111-root".into(),
            table: table(&m, "panic_on_corruption"),
        },
        Call::Mknod("/dev/mapper/root".into(), m.fake.dm_dev),
        Call::Mount(Mount {
            source: "/dev/mapper/root".into(),
            target: "/sysroot".into(),
            fstype: "ext4".into(),
            flags: MountFlags {
                read_only: true,
                ..MountFlags::default()
            },
            data: String::new(),
        }),
        Call::MoveMount("/dev".into(), "/sysroot/dev".into()),
        Call::MoveMount("/proc".into(), "/sysroot/proc".into()),
        Call::MoveMount("/sys".into(), "/sysroot/sys".into()),
        Call::SwitchRoot("/sysroot".into()),
        Call::Prefetch("/usr/bin/berth-journald".into()),
        Call::Prefetch("/usr/bin/berth-runtime".into()),
    ];
    assert_eq!(m.fake.effects(), expected);
    assert_eq!(
        m.fake.logs(),
        [
            "berth: stage1 started",
            "berth: stage1 modules loaded (9)",
            "berth: stage1 found root /dev/vda2 verity /dev/vda3",
            "berth: stage1 verity device ready /dev/mapper/root",
            "berth: stage1 root mounted read-only at /sysroot",
            "berth: switch-root",
        ]
    );
}

#[test]
fn options_reach_the_table_and_verbose_says_more() {
    let m = Fixture::new();
    m.cmdline(&format!(
        "roothash={} berth.verity=restart berth.verbose",
        m.root_hash
    ));
    m.fake
        .already_loaded
        .borrow_mut()
        .insert(format!("{MODULES}/kernel/drivers/md/dm-mod.ko").into());
    run(&m.fake);
    let dm = m.fake.effects().into_iter().find_map(|c| match c {
        Call::DmCreate { table, .. } => Some(table),
        _ => None,
    });
    assert_eq!(dm, Some(table(&m, "restart_on_corruption")));
    let logs = m.fake.logs();
    for line in [
        &format!(
            "berth: stage1 cmdline roothash={} berth.verity=restart berth.failure=halt",
            m.root_hash
        ),
        "berth: stage1 modules loaded (8)",
        "berth: stage1 module dm_mod already loaded",
        "berth: stage1 module ext4 built in",
        "berth: stage1 disk sr0: empty",
        &format!(
            "berth: stage1 verity table {}",
            table(&m, "restart_on_corruption")
        ),
    ] {
        assert!(logs.iter().any(|l| l == line), "{line:?} not in {logs:#?}");
    }
}

#[test]
fn waits_for_a_slow_disk() {
    let m = Fixture::without_disk();
    m.attach_disk_at(Duration::from_secs(7));
    assert_eq!(run(&m.fake), Outcome::Switched);
    assert!(m.fake.now() >= Duration::from_secs(7));
    assert!(m.fake.now() < Duration::from_secs(8));
}

#[test]
fn missing_disk_names_the_uuids_after_30_s() {
    let m = Fixture::without_disk();
    let (root, verity) = berth_layout::partition::uuids_from_root_hash(&m.root_hash.0);
    assert_eq!(
        failed_line(&m),
        format!(
            "berth: FAILED root: no disk has partitions {root} (root) and {verity} \
             (root verity) after 30 s; disks: sr0 (empty)"
        )
    );
    assert_stopped(&m, PowerAction::PowerOff);
    assert!(m
        .fake
        .logs()
        .contains(&"berth: stopping: power off".to_owned()));
}

#[test]
fn wrong_roothash_is_a_verity_failure() {
    let m = Fixture::new();
    let wrong = "ab".repeat(32);
    m.cmdline(&format!(
        "console=ttyS0 roothash={wrong} berth.failure=reboot"
    ));
    let line = failed_line(&m);
    let verity_uuid = m.plan.get(Role::VerityA).uuid;
    assert_eq!(
        line,
        format!(
            "berth: FAILED verity: root hash mismatch: no partitions with the UUIDs of \
             roothash={wrong}; the root verity partitions found: \
             vda partition 3 (ROOT-A-VERITY, {verity_uuid}): root hash {}; \
             vda partition 5 (ROOT-B-VERITY, {}): no verity superblock \
             (no verity superblock at offset {}: bad signature)",
            m.root_hash,
            m.plan.get(Role::VerityB).uuid,
            m.plan.get(Role::VerityB).offset,
        )
    );
    // Not the whole 30 s: a disk with other root hashes is there.
    assert!(m.fake.now() < Duration::from_secs(8), "{:?}", m.fake.now());
    assert_stopped(&m, PowerAction::Reboot);
}

#[test]
fn replaced_hash_tree_is_a_verity_failure() {
    let m = Fixture::new();
    m.corrupt(Role::VerityA, 4096 + 10, &[0x55]);
    let line = failed_line(&m);
    assert!(
        line.starts_with(&format!(
            "berth: FAILED verity: root hash mismatch: roothash={}, but the top hash block \
             of /dev/vda3 (ROOT-A-VERITY) hashes to ",
            m.root_hash
        )),
        "{line}"
    );
    assert!(!m
        .fake
        .effects()
        .iter()
        .any(|c| matches!(c, Call::DmCreate { .. })));
    assert_stopped(&m, PowerAction::PowerOff);
}

#[test]
fn broken_superblock_is_a_verity_failure() {
    let m = Fixture::new();
    m.corrupt(Role::VerityA, 0, b"garbage!");
    assert_eq!(
        failed_line(&m),
        format!(
            "berth: FAILED verity: /dev/vda3 (ROOT-A-VERITY) has no usable verity superblock: \
             no verity superblock at offset {}: bad signature",
            m.plan.get(Role::VerityA).offset
        )
    );
}

#[test]
fn bad_cmdline_fails_as_asked() {
    let m = Fixture::new();
    m.cmdline("console=ttyS0 berth.failure=reboot");
    assert_eq!(
        failed_line(&m),
        "berth: FAILED cmdline: no roothash= on the kernel command line"
    );
    assert_stopped(&m, PowerAction::Reboot);
}

#[test]
fn missing_module_file_and_unknown_module() {
    let m = Fixture::new();
    std::fs::remove_file(
        m.fake
            .host(format!("{MODULES}/kernel/drivers/md/dm-bufio.ko")),
    )
    .unwrap();
    let line = failed_line(&m);
    assert!(
        line.starts_with(&format!(
            "berth: FAILED modules: cannot load module {MODULES}/kernel/drivers/md/dm-bufio.ko: "
        )),
        "{line}"
    );

    let m = Fixture::new();
    m.fake.write(format!("{MODULES}/modules.builtin"), "");
    assert_eq!(
        failed_line(&m),
        "berth: FAILED modules: kernel 6.1.0-28-cloud-amd64: module virtio_pci is neither \
         in modules.dep nor built in (modules.builtin)"
    );

    let m = Fixture::new();
    std::fs::remove_file(m.fake.host(format!("{MODULES}/modules.dep"))).unwrap();
    assert!(failed_line(&m).starts_with(&format!(
        "berth: FAILED modules: cannot read {MODULES}/modules.dep (does the image have the \
         modules of this kernel?): "
    )));
}

#[test]
fn root_without_init_is_refused_before_switching() {
    let m = Fixture::new();
    std::fs::remove_file(m.fake.host("/sysroot/sbin/init")).unwrap();
    assert_eq!(
        failed_line(&m),
        "berth: FAILED switch-root: /sysroot/sbin/init is missing in the verified root"
    );
    assert!(!m
        .fake
        .effects()
        .iter()
        .any(|c| matches!(c, Call::MoveMount(..))));
}

#[test]
fn halts_when_power_off_fails() {
    let m = Fixture::without_disk();
    m.fake.reboot_failures.set(1);
    failed_line(&m);
    let effects = m.fake.effects();
    assert_eq!(
        effects[effects.len() - 3..],
        [
            Call::Sync,
            Call::Reboot(PowerAction::PowerOff),
            Call::Reboot(PowerAction::Halt)
        ]
    );
    assert!(m
        .fake
        .logs()
        .iter()
        .any(|l| l.starts_with("berth: FAILED power off: ")));
}

/// `modules.alias` as the builder writes it for the fixture's modules.
const MODULES_ALIAS: &str = "\
alias virtio:d00000002v* virtio_blk
alias virtio:d00000008v* virtio_scsi
alias scsi:t-0x00* sd_mod
alias devname:mapper/control dm_mod
";

fn with_aliases(virtio_device: &str) -> Fixture {
    let m = Fixture::new();
    m.fake
        .write(format!("{MODULES}/modules.alias"), MODULES_ALIAS);
    m.fake.write(
        "/sys/bus/pci/devices/0000:00:02.0/modalias",
        "pci:v00001AF4d00001042sv00001AF4sd00001100bc01sc00i00\n",
    );
    m.fake.write(
        "/sys/bus/virtio/devices/virtio0/modalias",
        format!("{virtio_device}\n"),
    );
    m
}

#[test]
fn a_virtio_blk_disk_gets_its_driver_and_not_the_scsi_stack() {
    let m = with_aliases("virtio:d00000002v00001AF4");
    m.cmdline(&format!("roothash={} berth.verbose", m.root_hash));
    run(&m.fake);
    // The device-mapper chain starts first, beside the drivers (the fake runs it at once).
    assert_eq!(
        m.fake.loaded_modules(),
        [
            "dm-mod.ko",
            "reed_solomon.ko",
            "dm-bufio.ko",
            "dm-verity.ko",
            "virtio_blk.ko",
        ]
    );
    let logs = m.fake.logs();
    assert!(
        logs.contains(&"berth: stage1 modules loaded (5)".to_owned()),
        "{logs:?}"
    );
    // Reported as before: the drivers, then the rest.
    let reported: Vec<&String> = logs.iter().filter(|l| l.contains(" module ")).collect();
    assert!(reported[0].contains("virtio_blk loaded"), "{reported:?}");
    assert!(
        reported.last().unwrap().contains("dm_verity loaded"),
        "{reported:?}"
    );
    assert!(logs.contains(&"berth: switch-root".to_owned()), "{logs:?}");
}

#[test]
fn a_scsi_host_gets_its_driver_and_the_scsi_disk_driver() {
    let m = with_aliases("virtio:d00000008v00001AF4");
    // The SCSI bus, as scsi_mod registers it; its disks come later (asynchronous scan).
    std::fs::create_dir_all(m.fake.host("/sys/bus/scsi/devices")).unwrap();
    run(&m.fake);
    let loaded = m.fake.loaded_modules();
    assert_eq!(
        &loaded[4..8],
        [
            "scsi_common.ko",
            "scsi_mod.ko",
            "sd_mod.ko",
            "virtio_scsi.ko"
        ],
        "{loaded:?}"
    );
    assert!(!loaded.contains(&"virtio_blk.ko".to_owned()), "{loaded:?}");
    assert!(loaded.contains(&"dm-verity.ko".to_owned()), "{loaded:?}");
}

#[test]
fn without_modules_alias_every_module_is_loaded() {
    // The fixture's initramfs has no modules.alias: `boots_in_order` loads all nine.
    let m = Fixture::new();
    m.fake.write(
        "/sys/bus/virtio/devices/virtio0/modalias",
        "virtio:d00000002v00001AF4\n",
    );
    run(&m.fake);
    assert!(m
        .fake
        .loaded_modules()
        .contains(&"virtio_scsi.ko".to_owned()));
}

/// The units of early boot's userspace run programs that stage 1 prefetches: the runtime,
/// and the journal, which starts beside it (the runtime is ordered after the journal's
/// socket, which PID 1 makes, not after the journal). A unit that changed its
/// program, or an order that put another unit on the way, would lose the prefetch
/// silently; this says so instead.
#[test]
fn prefetch_holds_the_programs_of_the_units_before_the_cri_socket() {
    const JOURNAL: &str =
        include_str!("../../../rootfs/overlay/usr/lib/systemd/system/berth-journald.service");
    const RUNTIME: &str =
        include_str!("../../../rootfs/overlay/usr/lib/systemd/system/berth-runtime.service");
    let values = |text: &str, key: &str| -> Vec<String> {
        text.lines()
            .filter_map(|l| l.strip_prefix(key)?.strip_prefix('='))
            .flat_map(|v| v.split_whitespace().map(str::to_owned).collect::<Vec<_>>())
            .collect()
    };
    for (unit, text) in [
        ("berth-journald.service", JOURNAL),
        ("berth-runtime.service", RUNTIME),
    ] {
        let program = values(text, "ExecStart");
        let program = program.first().expect("ExecStart=");
        assert!(
            steps::PREFETCH.contains(&program.trim_start_matches('/')),
            "{unit} runs {program}, which stage 1 does not prefetch: {:?}",
            steps::PREFETCH
        );
    }
    // The services the runtime waits for are early boot's built-in steps (in PID 1 or its
    // forked children): none runs a program of its own.
    let services: Vec<String> = values(RUNTIME, "After")
        .into_iter()
        .filter(|u| u.ends_with(".service"))
        .collect();
    assert_eq!(
        services,
        [
            "systemd-tmpfiles-setup.service",
            "systemd-modules-load.service",
            "systemd-sysctl.service"
        ]
    );
    assert!(values(RUNTIME, "After").contains(&"systemd-journald.socket".to_owned()));
}
