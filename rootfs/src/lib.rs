//! Root tree assembly: turns pinned Debian packages, the workspace's binaries and the
//! `rootfs/overlay` folder into a staged root tree for the image writers.
//!
//! The pipeline, in the order `cargo xtask build` runs it:
//! [`lock`] reads the pins (`rootfs/packages.lock`), [`cache`] provides each pinned `.deb`
//! (fetched through [`apt`] with a private configuration only when missing), [`deb`]
//! extracts them in Rust, [`assemble`](mod@assemble) builds the whole tree and [`elf`]
//! checks that every program finds its shared libraries inside it. [`place`] holds the path rules shared by
//! every writer (no escapes, no writes through symlinks, merged `/usr`), [`prune`] what is
//! left out, [`cni`] the CNI plugins and default network kept, [`certs`] the CA bundle, [`layout`] the folders every root has, [`split`] stripped programs and their debug files, [`hash`] the sha256 helper.

pub mod apt;
pub mod assemble;
pub mod cache;
pub mod certs;
pub mod cni;
pub mod deb;
pub mod elf;
pub mod hash;
pub mod layout;
pub mod lock;
pub mod place;
pub mod prune;
pub mod split;

pub use apt::{Apt, AptError, AptSources};
pub use assemble::{assemble, Assembled, Binary, PackageRecord, RootfsError, RootfsInput};
pub use cache::{CacheError, DebCache};
pub use deb::{Control, DebError, Extracted};
pub use elf::{ElfError, ElfReport};
pub use lock::{LockError, LockedPackage, Lockfile};
pub use prune::Prune;

/// Owner overrides by path in the tree, as the image writers consume them.
pub use berth_image::tree::{Owner, Owners};
