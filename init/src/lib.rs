//! Berth's PID 1, as a library so that its plan can be tested without root.
//!
//! One binary plays two roles ([`boot_stage`]): **stage 1** runs from the initramfs as `/init`,
//! finds the root and verity partitions from `roothash=` alone, loads the few kernel modules
//! that needs (`STAGE1_MODULES`), sets up the dm-verity device and switches root;
//! **stage 2** then runs in the same process (or as `/sbin/init` in the verified root,
//! when executed so) and stays PID 1 until shutdown.
//!
//! Everything that touches the kernel goes through one trait, [`sys::Syscalls`], with a
//! real implementation ([`sys::Linux`]) and a recording fake for the unit tests; `sys` is
//! the only module with `unsafe` (the device-mapper ioctls). What PID 1 shares with the
//! image builder (the kernel command line, the partition plan and GPT, the module index,
//! the verity superblock, in-image paths) is in `berth-layout`; the console contract is in
//! [`console`].

pub mod console;
pub mod control;
pub mod discover;
pub mod manager;
pub mod modprobe;
pub mod module_loader;
pub mod stage1;
pub mod stage2;
pub mod sys;
pub mod unit;
pub mod verity;

use berth_layout::paths::STAGE1;

/// Which part of the boot this process is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BootStage {
    Stage1,
    Stage2,
}

/// The boot-stage rule: stage 1 exactly when `argv[0]` is [`STAGE1`](berth_layout::paths::STAGE1) (`/init`), which is how
/// the kernel starts the initramfs's init; every other name (`/sbin/init`, `init`,
/// `berth-init`) is stage 2. Both stages also require PID 1, checked by the caller.
///
/// `argv[0]` rather than a marker file such as `/etc/initrd-release`: the initramfs needs
/// nothing but the binary at `/init`, and a missing marker cannot silently turn stage 1
/// into a stage 2 that waits forever.
pub fn boot_stage(argv0: &str) -> BootStage {
    if argv0 == STAGE1 {
        BootStage::Stage1
    } else {
        BootStage::Stage2
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_follows_argv0() {
        assert_eq!(boot_stage("/init"), BootStage::Stage1);
        assert_eq!(boot_stage("/sbin/init"), BootStage::Stage2);
        assert_eq!(boot_stage("init"), BootStage::Stage2);
        assert_eq!(boot_stage("/usr/sbin/init"), BootStage::Stage2);
    }
}
