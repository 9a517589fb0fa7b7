//! The kernel that Berth boots: the options it must have ([`check`], against
//! `required.config`) and the scan of its `.ko` files into the module index ([`modinfo`]),
//! since Debian's kernel package ships `.ko` files but no `modules.dep`, and which of them
//! the root keeps ([`select`]), compressed ([`compress`]).
//!
//! The kernel itself is pinned like every package: `kernel-config/kernel.lock`, written by
//! `cargo xtask lock` from `image.toml`'s `[kernel]` section.

pub mod check;
pub mod compress;
pub mod modinfo;
pub mod select;

/// The options Berth requires, as a kernel config fragment.
pub const REQUIRED: &str = include_str!("../required.config");
