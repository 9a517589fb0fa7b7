//! The boot formats: what the builder puts on the ESP and into the initramfs, and the
//! identities it derives from the build's content. They are formats like GPT or ext4 (the
//! booted system and systemd-boot read them), so they live here, written once and tested,
//! and `xtask` only calls them.
//!
//! - [`loader`]: systemd-boot's `loader.conf`, one loader entry per slot with boot counting,
//!   and the list of ESP files.
//! - [`initramfs`]: the initramfs layout (stage 1 as `/init`, the modules it loads and
//!   their index) and its compression.
//! - [`identity`]: filesystem UUIDs, hash seeds, the verity salt and UUID, and the FAT
//!   volume id, each a pure function of the build's content, never of the clock.

pub mod identity;
pub mod initramfs;
pub mod loader;
