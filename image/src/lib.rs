//! Berth's disk formats, written once and tested against the reference tools.
//!
//! One module per format: [`gpt`] partition tables, [`fat`] the FAT32 EFI system partition,
//! [`ext4`] the read-only root, [`verity`] the dm-verity hash tree, [`cpio`] the initramfs
//! archive; [`boot`] the boot formats (loader entries, initramfs layout, derived
//! identities); [`tree`] is the file tree the filesystem writers consume, [`plan`] the partition
//! plan shared by the builder and stage 1, [`disk`] the assembly of a whole disk, and
//! [`spec`] the validated `image.toml`.

pub mod boot;
pub mod cpio;
pub mod disk;
pub mod ext4;
pub mod fat;
pub mod gpt;
pub mod inspect;
pub mod manifest;
pub mod plan;
pub mod release;
pub mod spec;
pub mod tree;
pub mod verity;
