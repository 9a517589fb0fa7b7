//! Booting a Berth disk under QEMU with OVMF: accelerator probing, serial console capture,
//! waiting for console patterns, port forwards and clean shutdown.
//!
//! Nothing here yet: the harness arrives with the boot work. This crate exists so that the
//! workspace has the shape of `design.md`; it offers no API until it has something real.
