//! VM tests of the harness itself: OVMF booting an empty disk. No Berth image needed, so
//! they run wherever QEMU and OVMF are installed (and say why when they are not).
//!
//! With nothing bootable, OVMF's boot manager (`BdsDxe`) reports the failed disk and starts
//! its built-in UEFI shell, which gives a console to wait on and type into.

mod common;

use std::fs;
use std::time::Duration;

use berth_qemu::{Firmware, Qemu, QemuBuilder, QemuError};
use serde_json::json;

/// Generous: TCG on a loaded two-core machine, several VMs at once. Never a measurement.
const BOOT: Duration = Duration::from_secs(600);

fn small(disk: &std::path::Path) -> QemuBuilder {
    Qemu::builder().disk(disk).memory_mib(256).cpus(1)
}

/// Writes 64 KiB of 0xab at the start of the VM's disk through QEMU's block layer, as a
/// guest write would (and through the snapshot overlay when there is one).
fn write_through_qemu(vm: &mut berth_qemu::Vm) {
    let command = json!({
        "execute": "human-monitor-command",
        "arguments": { "command-line": "qemu-io disk0 \"write -P 0xab 0 64k\"" },
    });
    vm.qmp(&command).unwrap();
}

#[test]
fn empty_disk_boots_to_the_boot_manager_in_snapshot_mode() {
    skip_without_qemu!();
    let dir = tempfile::tempdir().unwrap();
    let disk = common::zeroed_disk(dir.path(), 64);
    let disk_hash = common::sha256(&disk);
    let system_vars = Firmware::find().unwrap().vars;
    let vars_hash = common::sha256(&system_vars);
    let name = "berth_qemu_empty_disk_boot";
    let artifacts = berth_qemu::artifacts_root().join(name);
    let _ = fs::remove_dir_all(&artifacts);

    let mut vm = small(&disk).name(name).spawn().unwrap();
    eprintln!("{}", vm.command_line());
    let vm_dir = vm.temp_dir().to_owned();
    assert!(vm.vars_path().starts_with(&vm_dir), "{:?}", vm.vars_path());
    assert_ne!(vm.vars_path(), system_vars);

    write_through_qemu(&mut vm);
    let line = vm.wait_for("BdsDxe", BOOT).unwrap();
    assert!(line.contains("BdsDxe"), "{line}");
    assert!(vm.console().contains(&line));
    let status = vm.quit().unwrap();
    eprintln!("QEMU after quit: {status}");
    drop(vm);

    assert_eq!(
        common::sha256(&disk),
        disk_hash,
        "snapshot mode wrote the image"
    );
    assert_eq!(
        common::sha256(&system_vars),
        vars_hash,
        "the system VARS changed"
    );
    assert!(!vm_dir.exists(), "the VM's temp dir outlived it");
    let kept = fs::read_to_string(artifacts.join("serial.log")).unwrap();
    assert!(kept.contains("BdsDxe"));
    assert!(artifacts.join("qemu.stderr").is_file());
    assert!(fs::read_to_string(artifacts.join("qemu.cmdline"))
        .unwrap()
        .contains("snapshot=on"));
}

#[test]
fn persistent_mode_writes_the_disk() {
    skip_without_qemu!();
    let dir = tempfile::tempdir().unwrap();
    let disk = common::zeroed_disk(dir.path(), 64);
    let log = dir.path().join("serial.log");

    let mut vm = small(&disk)
        .snapshot(false)
        .network(false)
        .serial_log(&log)
        .spawn()
        .unwrap();
    write_through_qemu(&mut vm);
    vm.wait_for("BdsDxe", BOOT).unwrap();
    vm.quit().unwrap();
    drop(vm);

    let bytes = fs::read(&disk).unwrap();
    assert!(bytes[..64 << 10].iter().all(|&b| b == 0xab));
    assert!(bytes[64 << 10..].iter().all(|&b| b == 0));
    assert!(fs::read_to_string(&log).unwrap().contains("BdsDxe"));
}

#[test]
fn a_string_that_never_comes_times_out_with_the_console_tail() {
    skip_without_qemu!();
    let dir = tempfile::tempdir().unwrap();
    let disk = common::zeroed_disk(dir.path(), 64);
    let host_port = berth_qemu::free_port().unwrap();

    let mut vm = small(&disk).port_forward(host_port, 22).spawn().unwrap();
    vm.wait_for("BdsDxe", BOOT).unwrap();
    let err = vm
        .wait_for("berth: this never appears", Duration::from_secs(3))
        .unwrap_err();
    match &err {
        QemuError::Timeout { tail, .. } => assert!(tail.contains("BdsDxe"), "{tail}"),
        other => panic!("expected a time-out, got {other}"),
    }
    assert!(err.to_string().contains("berth: this never appears"));

    let usernet = json!({
        "execute": "human-monitor-command",
        "arguments": { "command-line": "info usernet" },
    });
    let table = vm.qmp(&usernet).unwrap();
    assert!(
        table.as_str().unwrap().contains(&host_port.to_string()),
        "{table}"
    );
    let status = vm.qmp(&json!({ "execute": "query-status" })).unwrap();
    assert_eq!(status["status"], "running");
    // Firmware ignores the ACPI power button; the request is still accepted.
    vm.powerdown().unwrap();
    vm.quit().unwrap();
    assert!(matches!(
        vm.qmp(&json!({ "execute": "query-status" })),
        Err(QemuError::QmpClosed { .. })
    ));
}

#[test]
fn typing_on_the_console_and_qemu_exiting_during_a_wait() {
    skip_without_qemu!();
    let dir = tempfile::tempdir().unwrap();
    let disk = common::zeroed_disk(dir.path(), 64);

    let mut vm = small(&disk).network(false).spawn().unwrap();
    let prompt = vm.wait_for("Shell>", BOOT).unwrap();
    // Escapes removed; the rest of the line may not have arrived yet.
    assert!(prompt.starts_with("Shell>"), "{prompt:?}");
    // The UEFI shell's `reset -s` powers the machine off, which ends QEMU.
    vm.send("reset -s\r").unwrap();
    let err = vm.wait_for("berth: this never appears", BOOT).unwrap_err();
    match &err {
        QemuError::Exited { status, tail, .. } => {
            assert!(status.success(), "{err}");
            assert!(tail.contains("Reset with"), "{tail}");
        }
        other => panic!("expected QEMU to exit, got {other}"),
    }
    assert!(vm.wait_exit(Duration::from_secs(1)).unwrap().success());
    assert!(matches!(vm.send("x"), Err(QemuError::Send(_))));
}

#[test]
fn a_bad_qemu_argument_fails_the_start_with_qemus_message() {
    skip_without_qemu!();
    let dir = tempfile::tempdir().unwrap();
    let disk = common::zeroed_disk(dir.path(), 64);

    let err = small(&disk)
        .extra_args(["-no-such-option"])
        .spawn()
        .unwrap_err();
    match &err {
        QemuError::StartFailed { stderr, .. } => assert!(stderr.contains("no-such-option")),
        other => panic!("expected a start failure, got {other}"),
    }
}
