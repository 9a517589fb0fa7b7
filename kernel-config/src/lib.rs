//! The kernel that Berth boots: its pin, the config fragment of options Berth needs, and
//! the checker that holds a kernel's config against that fragment.
//!
//! Nothing here yet: the kernel arrives with the boot work (issue "Boot: kernel,
//! initramfs ..."). This crate exists so that the workspace has the shape of
//! `design.md`; it offers no API until it has something real to offer.
