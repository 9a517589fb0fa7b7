//! Berth's PID 1, as a library so that its plan can be tested without root and so that the
//! image builder can share its contracts.
//!
//! One binary plays two roles ([`role`]): **stage 1** runs from the initramfs as `/init`,
//! finds the root and verity partitions from `roothash=` alone, loads the few kernel modules
//! that needs ([`STAGE1_MODULES`]), sets up the dm-verity device and switches root;
//! **stage 2** is `/sbin/init` in the verified root and stays PID 1 until shutdown.
//!
//! Everything that touches the kernel goes through one trait, [`sys::Syscalls`], with a
//! real implementation ([`sys::Linux`]) and a recording fake for the unit tests; `sys` is
//! the only module with `unsafe` (the device-mapper ioctls). The kernel command line
//! contract is in [`cmdline`], the console contract in [`console`].

pub mod cmdline;
pub mod console;
pub mod discover;
pub mod manager;
pub mod modules;
pub mod stage1;
pub mod stage2;
pub mod sys;
pub mod unit;
pub mod verity;

/// Kernel modules stage 1 loads, in this order, unless the kernel has them built in
/// (`modules.builtin`) or already loaded; each is preceded by its dependencies from
/// `modules.dep`. Names follow the kernel: `-` and `_` are the same.
///
/// Disk drivers for every machine Berth targets (QEMU virtio-blk and virtio-scsi, GCE's
/// virtio-scsi, NVMe on AWS and GCE), ext4 with the crc32c its `metadata_csum` needs
/// (a soft dependency, so not in `modules.dep`), and device-mapper with the verity target
/// and its sha256. Every name must exist in the kernel, as a module or built in: the
/// builder should refuse a kernel that lacks one, and stage 1 fails if it finds neither.
pub const STAGE1_MODULES: &[&str] = &[
    "virtio_pci",
    "virtio_blk",
    "virtio_scsi",
    "sd_mod",
    "nvme",
    "crc32c_generic",
    "ext4",
    "sha256_generic",
    "dm-mod",
    "dm-verity",
];

/// Where the kernel runs stage 1 from (the initramfs, `rdinit=` default).
pub const STAGE1_PATH: &str = "/init";
/// Where stage 1 hands over in the verified root (`usr/sbin/init` through the merged-usr
/// `sbin -> usr/sbin` link).
pub const STAGE2_PATH: &str = "/sbin/init";

/// Which part of the boot this process is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Stage1,
    Stage2,
}

/// The role rule: stage 1 exactly when `argv[0]` is [`STAGE1_PATH`] (`/init`), which is how
/// the kernel starts the initramfs's init; every other name (`/sbin/init`, `init`,
/// `berth-init`) is stage 2. Both roles also require PID 1, checked by the caller.
///
/// `argv[0]` rather than a marker file such as `/etc/initrd-release`: the initramfs needs
/// nothing but the binary at `/init`, and a missing marker cannot silently turn stage 1
/// into a stage 2 that waits forever.
pub fn role(argv0: &str) -> Role {
    if argv0 == STAGE1_PATH {
        Role::Stage1
    } else {
        Role::Stage2
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_follows_argv0() {
        assert_eq!(role("/init"), Role::Stage1);
        assert_eq!(role("/sbin/init"), Role::Stage2);
        assert_eq!(role("init"), Role::Stage2);
        assert_eq!(role("/usr/sbin/init"), Role::Stage2);
    }

    #[test]
    fn stage1_modules_are_unique_after_normalizing() {
        let mut names: Vec<String> = STAGE1_MODULES
            .iter()
            .map(|m| modules::normalize(m))
            .collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), STAGE1_MODULES.len());
    }
}
