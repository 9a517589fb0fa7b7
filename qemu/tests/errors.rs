//! Start-up errors that need no QEMU run: each names what is missing and, for host
//! packages, the Debian package that provides it.

mod common;

use std::fs;

use berth_qemu::{Accel, Firmware, Qemu, QemuError};

#[test]
fn missing_firmware_names_the_ovmf_package() {
    let dir = tempfile::tempdir().unwrap();
    let disk = common::zeroed_disk(dir.path(), 1);
    let code = dir.path().join("nonexistent/OVMF_CODE_4M.fd");
    let err = Qemu::builder()
        .disk(&disk)
        .firmware(Firmware::new(&code, dir.path().join("OVMF_VARS_4M.fd")))
        .spawn()
        .unwrap_err();
    assert!(matches!(&err, QemuError::FirmwareMissing { path } if *path == code));
    let message = err.to_string();
    assert!(
        message.contains("ovmf") && message.contains("OVMF_CODE_4M.fd"),
        "{message}"
    );
}

#[test]
fn missing_qemu_names_the_qemu_package() {
    let dir = tempfile::tempdir().unwrap();
    let disk = common::zeroed_disk(dir.path(), 1);
    let (code, vars) = (dir.path().join("CODE.fd"), dir.path().join("VARS.fd"));
    fs::write(&code, b"").unwrap();
    fs::write(&vars, b"").unwrap();
    let err = Qemu::builder()
        .disk(&disk)
        .firmware(Firmware::new(code, vars))
        .accel(Accel::Tcg)
        .qemu_binary(dir.path().join("qemu-system-x86_64"))
        .spawn()
        .unwrap_err();
    assert!(matches!(err, QemuError::QemuNotFound { .. }), "{err}");
    assert!(err.to_string().contains("qemu-system-x86"), "{err}");
}

#[test]
fn missing_disk_is_named() {
    let err = Qemu::builder()
        .disk("/nonexistent/berth.raw")
        .spawn()
        .unwrap_err();
    assert!(err.to_string().contains("/nonexistent/berth.raw"), "{err}");
}
