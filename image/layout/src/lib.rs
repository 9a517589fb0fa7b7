//! The contract between Berth's image builder and the system it boots, defined once.
//!
//! Everything the builder writes and PID 1 reads is here, so that the two sides cannot
//! drift apart: the partition plan with its labels, type GUIDs and UUID-from-root-hash rule
//! ([`partition`]) and the GPT that records it ([`gpt`]); the kernel command line as one
//! type the builder renders and stage 1 and stage 2 parse ([`cmdline`]); the kernel module
//! index with the one resolver both the initramfs builder and PID 1 use ([`module_index`]);
//! the dm-verity superblock and hash-device geometry ([`verity`]); and the paths inside the
//! image that both sides name ([`paths`]).
//!
//! PID 1 links this crate, so it stays small: no compression, crypto beyond sha256, or
//! filesystem writers (those live in `berth-image`, which the booted system never links).

pub mod cmdline;
pub mod confd;
pub mod gpt;
pub mod module_alias;
pub mod module_index;
pub mod partition;
pub mod paths;
pub mod verity;

pub use uuid::Uuid;
