//! VM tests of the boot: the built disk boots under QEMU with OVMF through systemd-boot,
//! stage 1 sets up the dm-verity root and switches to stage 2; a root with a flipped byte
//! in a file read at boot, or a wrong `roothash=`, never reaches stage 2 and the console
//! says it was a verity failure. TCG is fine; QEMU is started by each test and killed when
//! the test ends. Run by `cargo xtask test` (ignored by a plain `cargo test`).

use std::fs;
use std::time::Duration;

use berth_image::manifest::BuildManifest;
use berth_qemu::{DiskBus, Qemu};
use berth_tests::*;

/// TCG on a busy two-core machine: generous, never asserted on.
const BOOT: Duration = Duration::from_secs(600);

#[test]
#[ignore = "boots VMs; run by `cargo xtask test`"]
fn boots_to_stage2_on_a_read_only_verity_root() {
    if vm_tests_skipped() {
        return;
    }
    let (disk, manifest) = shared_image();
    let manifest = BuildManifest::read(manifest).unwrap();
    let mut vm = Qemu::builder()
        .name("boots_to_stage2")
        .disk(disk)
        .snapshot(true)
        .spawn()
        .unwrap();
    eprintln!("accelerator: {}", vm.accel().as_str());
    vm.wait_for("berth: stage1 started", BOOT).unwrap();
    let found = whole_line(&mut vm, "berth: stage1 found root", BOOT).unwrap();
    assert!(found.contains("vda2") && found.contains("vda3"), "{found}");
    vm.wait_for("berth: switch-root", BOOT).unwrap();
    let line = whole_line(&mut vm, "berth: stage2 started", BOOT).unwrap();
    // Stage 2 reports what / is, from its own /proc/self/mountinfo.
    assert!(line.contains("(/ is /dev/mapper/root ext4 ro)"), "{line}");
    let console = vm.console();
    assert!(
        console.contains(&manifest.root_hash),
        "the command line carries the root hash"
    );
    assert!(!console.contains("berth: FAILED"), "{console}");
    // Every milestone line carries a timestamp.
    for l in console.lines().filter(|l| l.contains("berth: ")) {
        assert!(l.trim_start().starts_with('['), "no timestamp: {l}");
    }
}

/// The image boots from the disk controllers of the clouds it is built for, not only QEMU's
/// virtio-blk: GCE's virtio-scsi (`sda`) and the NVMe of AWS Nitro and GCE (`nvme0n1`).
/// Stage 1 loads the controller's modules from the initramfs, finds ROOT and its hash
/// tree by partition label, and stage 2 finds STATE on the same disk.
#[test]
#[ignore = "boots VMs; run by `cargo xtask test`"]
fn boots_from_virtio_scsi_and_nvme_disks() {
    if vm_tests_skipped() {
        return;
    }
    let (disk, _) = shared_image();
    for (bus, name, root, hash) in [
        (
            DiskBus::VirtioScsi,
            "boots_from_virtio_scsi",
            "sda2",
            "sda3",
        ),
        (DiskBus::Nvme, "boots_from_nvme", "nvme0n1p2", "nvme0n1p3"),
    ] {
        let mut vm = Qemu::builder()
            .name(name)
            .disk(disk)
            .disk_bus(bus)
            .snapshot(true)
            .spawn()
            .unwrap();
        let found = whole_line(&mut vm, "berth: stage1 found root", BOOT).unwrap();
        assert!(
            found.contains(root) && found.contains(hash),
            "{bus:?}: {found}"
        );
        let line = whole_line(&mut vm, "berth: stage2 started", BOOT).unwrap();
        assert!(
            line.contains("(/ is /dev/mapper/root ext4 ro)"),
            "{bus:?}: {line}"
        );
        vm.wait_for("berth: ready", BOOT).unwrap();
        let console = vm.console();
        assert!(!console.contains("berth: FAILED"), "{bus:?}: {console}");
    }
}

#[test]
#[ignore = "boots VMs; run by `cargo xtask test`"]
fn a_flipped_byte_in_the_journal_program_stops_the_boot_before_it_runs() {
    if vm_tests_skipped() {
        return;
    }
    let (disk, _) = shared_image();
    let dir = tempfile::tempdir().unwrap();
    let copy = sparse_copy(disk, dir.path());
    let root = table(&copy).unwrap().by_label("ROOT-A").unwrap().clone();
    // The first data block of the first program from the root that boot runs: the journal,
    // which stage 1 asks to be read ahead at the switch (PID 1 is the initramfs's copy).
    let spec = format!("{}?offset={}", copy.display(), root.offset(512));
    let out = tool(
        "debugfs",
        &["-R", "bmap /usr/bin/berth-journald 0", &spec],
        "e2fsprogs",
    )
    .unwrap();
    let block: u64 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    let at = root.offset(512) + block * 4096 + 64;
    flip_byte(&copy, at, 0x80).unwrap();

    let mut vm = Qemu::builder()
        .name("flipped_byte")
        .disk(&copy)
        .snapshot(true)
        .spawn()
        .unwrap();
    vm.wait_for("berth: switch-root", BOOT).unwrap();
    let started = "berth: started berth-journald.service";
    let (which, line) = vm
        .wait_for_any(&["Kernel panic", "berth: FAILED", started], BOOT)
        .unwrap();
    let console = vm.console();
    assert_ne!(which, 2, "a corrupted program ran: {line}");
    assert!(
        console.contains("verity"),
        "the console does not say it was verity:\n{console}"
    );
    assert!(!console.contains(started), "{console}");
    assert!(!console.contains("berth: ready"), "{console}");
}

#[test]
#[ignore = "boots VMs; run by `cargo xtask test`"]
fn a_wrong_roothash_never_reaches_stage2() {
    if vm_tests_skipped() {
        return;
    }
    let (disk, manifest) = shared_image();
    let manifest = BuildManifest::read(manifest).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let copy = sparse_copy(disk, dir.path());
    let esp = table(&copy)
        .unwrap()
        .by_label("EFI-SYSTEM")
        .unwrap()
        .offset(512);
    let image = format!("{}@@{esp}", copy.display());
    let entry = "::loader/entries/berth-a+3.conf";
    let out = tool("mcopy", &["-n", "-i", &image, entry, "-"], "mtools").unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let wrong: String = manifest.root_hash.chars().rev().collect();
    assert!(text.contains(&manifest.root_hash), "{text}");
    let local = dir.path().join("entry.conf");
    fs::write(&local, text.replace(&manifest.root_hash, &wrong)).unwrap();
    let out = tool(
        "mcopy",
        &["-o", "-n", "-i", &image, local.to_str().unwrap(), entry],
        "mtools",
    )
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let mut vm = Qemu::builder()
        .name("wrong_roothash")
        .disk(&copy)
        .snapshot(true)
        .spawn()
        .unwrap();
    vm.wait_for("berth: stage1 started", BOOT).unwrap();
    let (which, line) = vm
        .wait_for_any(
            &["berth: FAILED", "Kernel panic", "berth: stage2 started"],
            BOOT,
        )
        .unwrap();
    assert_eq!(which, 0, "expected stage 1 to refuse the root: {line}");
    let line = complete_line(&mut vm, "berth: FAILED", BOOT).unwrap();
    assert!(line.contains("verity"), "{line}");
    assert!(!vm.console().contains("berth: stage2 started"));
}
