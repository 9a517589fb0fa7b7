//! efivarfs over the fake: mounted (read-only, nosuid, nodev, noexec,
//! its module loaded first) on an EFI boot, left out on a BIOS boot.

use std::path::Path;

use super::engine::Machine;
use super::mounts::{self, EFIVARS, EFIVARS_FLAGS};
use super::tests::machine;
use crate::sys::fake::{Call, Fake};
use crate::sys::{MountFlags, Syscalls};
use berth_layout::cmdline::BootOptions;

fn api(f: &Fake) -> Vec<Call> {
    let mut m = Machine::new(f, BootOptions::default());
    mounts::api(&mut m).unwrap();
    mounts::efivarfs(&mut m).unwrap();
    f.calls()
}

fn efivarfs_mount(calls: &[Call]) -> Option<usize> {
    calls
        .iter()
        .position(|c| matches!(c, Call::Mount(m) if m.fstype == "efivarfs"))
}

#[test]
fn an_efi_boot_gets_efivarfs_read_only_after_its_module() {
    let f = machine(false, 0);
    let release = f
        .read_to_string(Path::new("/proc/sys/kernel/osrelease"))
        .unwrap();
    let modules = format!("/usr/lib/modules/{}", release.trim());
    let dep = f
        .read_to_string(Path::new(&format!("{modules}/modules.dep")))
        .unwrap();
    f.write(
        format!("{modules}/modules.dep"),
        format!("{dep}kernel/fs/efivarfs/efivarfs.ko:\n"),
    );
    f.write(
        format!("{modules}/kernel/fs/efivarfs/efivarfs.ko"),
        b"\x7fELF",
    );
    f.write("/sys/firmware/efi/fw_platform_size", "64\n");
    let calls = api(&f);
    let at = efivarfs_mount(&calls).expect("efivarfs mounted");
    let Call::Mount(mount) = &calls[at] else {
        unreachable!()
    };
    assert_eq!(
        (mount.source.as_str(), mount.target.as_str(), mount.flags),
        ("efivarfs", EFIVARS, EFIVARS_FLAGS)
    );
    assert_eq!(
        mount.flags,
        MountFlags {
            read_only: true,
            nosuid: true,
            nodev: true,
            noexec: true
        }
    );
    let module = calls
        .iter()
        .position(|c| matches!(c, Call::LoadModule(p) if p.ends_with("efivarfs.ko")));
    assert!(module.expect("efivarfs loaded") < at);
}

#[test]
fn a_bios_boot_has_no_efivarfs() {
    let f = machine(false, 0);
    assert_eq!(efivarfs_mount(&api(&f)), None);
}
