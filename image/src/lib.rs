//! Berth's disk formats, written once and tested against the reference tools.
//!
//! One module per format: [`fat`] the FAT32 EFI system partition, [`ext4`] the read-only
//! root, [`verity`] the dm-verity hash tree, [`cpio`] the initramfs archive; [`boot`] the
//! boot formats (loader entries, initramfs layout, derived identities); [`tree`] is the
//! file tree the filesystem writers consume, [`disk`] the assembly of a whole disk, and
//! [`spec`] the validated `image.toml`. What the booted system reads as well (the partition
//! plan and GPT, the kernel command line, the module index, the verity superblock) is in
//! `berth-layout`, which PID 1 links instead of this crate.

pub mod boot;
pub mod cpio;
pub mod disk;
pub mod ext4;
pub mod fat;
pub mod inspect;
pub mod manifest;
pub mod release;
pub mod spec;
pub mod tree;
pub mod verity;
