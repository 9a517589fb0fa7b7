//! Booting a Berth disk under QEMU with UEFI, for VM tests and `cargo xtask run`.
//!
//! One harness serves every VM test so that they all boot the same machine, wait the same
//! way and leave the same evidence when they fail:
//!
//! ```no_run
//! use std::time::Duration;
//! # fn main() -> Result<(), berth_qemu::QemuError> {
//! let mut vm = berth_qemu::Qemu::builder()
//!     .disk("out/berth.raw")
//!     .memory_mib(1024)
//!     .name("boots_to_ready")
//!     .spawn()?;
//! vm.wait_for("berth: ready", Duration::from_secs(600))?;
//! vm.powerdown()?;
//! vm.wait_exit(Duration::from_secs(120))?;
//! # Ok(()) }
//! ```
//!
//! - [`accel`]: KVM only after a timed probe proves it works, TCG otherwise (a nested KVM
//!   that hangs must never hang a test); `BERTH_QEMU_ACCEL=kvm|tcg` forces one.
//! - [`firmware`]: OVMF's code read-only and a private copy of its variable store per VM.
//! - [`QemuBuilder`]: the machine (q35, the disk on virtio-blk, virtio-scsi or NVMe,
//!   virtio-net with port forwards) and its command line; snapshot mode by default, so
//!   tests never change the built image.
//! - [`Vm`]: the running QEMU with its serial console captured live and to a log file,
//!   timed waits for console text, typing on the console, commands in a console shell
//!   (`shell`), QMP, and a `Drop` that kills QEMU.
//!
//! Every failure is a [`QemuError`] naming what failed and, for waits, what the console
//! showed; missing host packages are named by their Debian names (`qemu-system-x86`, `ovmf`).

pub mod accel;
mod builder;
mod cmdline;
mod console;
mod error;
pub mod firmware;
mod qmp;
mod shell;
mod vm;

use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

pub use accel::{accel, accel_choice, Accel, AccelChoice, ACCEL_ENV};
pub use builder::QemuBuilder;
pub use cmdline::DiskBus;
pub use error::{QemuError, Result};
pub use firmware::Firmware;
pub use vm::Vm;

/// The QEMU binary looked up in `PATH` unless a builder names another.
pub const DEFAULT_QEMU: &str = "qemu-system-x86_64";

/// Entry point: `Qemu::builder()`.
pub struct Qemu;

impl Qemu {
    /// A builder with the defaults described on [`QemuBuilder`].
    pub fn builder() -> QemuBuilder {
        QemuBuilder::default()
    }
}

/// Why VM tests cannot run on this host (QEMU or OVMF missing), or `None` if they can.
/// VM tests skip with it through `berth_testkit::skip`, so a skip is stated, counted and,
/// under CI, refused.
pub fn skip_reason() -> Option<String> {
    let on_path = std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path).any(|dir| dir.join(DEFAULT_QEMU).is_file())
    });
    if !on_path {
        return Some(format!(
            "{DEFAULT_QEMU} is not on PATH: install the Debian package qemu-system-x86"
        ));
    }
    Firmware::find().err().map(|err| err.to_string())
}

/// Where named VMs keep their artifacts: `<cargo target dir>/test-artifacts`, found as the
/// nearest ancestor of the running executable holding cargo's `CACHEDIR.TAG`; else an
/// absolute `CARGO_TARGET_DIR`; else the system temp dir.
pub fn artifacts_root() -> PathBuf {
    let from_exe = std::env::current_exe().ok().and_then(|exe| {
        exe.ancestors()
            .find(|dir| dir.join("CACHEDIR.TAG").is_file())
            .map(Path::to_path_buf)
            // cargo writes no CACHEDIR.TAG into a target folder that existed before it:
            // then `<target>/<profile>/deps/<test binary>` gives the folder.
            .or_else(|| {
                let deps = exe.parent().filter(|d| d.ends_with("deps"))?;
                deps.parent()?.parent().map(Path::to_path_buf)
            })
    });
    let from_env = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .filter(|dir| dir.is_absolute());
    from_exe
        .or(from_env)
        .unwrap_or_else(std::env::temp_dir)
        .join("test-artifacts")
}

/// A TCP port that was free a moment ago on 127.0.0.1, for [`QemuBuilder::port_forward`].
/// Another process may take it before QEMU does; QEMU then fails to start, saying so.
pub fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind(("127.0.0.1", 0))?
        .local_addr()?
        .port())
}

/// A path as a QEMU option value: commas are doubled, as QEMU's option parser requires.
pub(crate) fn opt_path(path: &Path) -> OsString {
    let mut out = Vec::new();
    for &byte in path.as_os_str().as_bytes() {
        out.push(byte);
        if byte == b',' {
            out.push(b',');
        }
    }
    OsString::from_vec(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commas_in_paths_are_doubled() {
        assert_eq!(opt_path(Path::new("/a,b/c,,d")), "/a,,b/c,,,,d");
        assert_eq!(opt_path(Path::new("/plain")), "/plain");
    }

    #[test]
    fn artifacts_live_under_the_target_dir() {
        let root = artifacts_root();
        assert!(root.ends_with("test-artifacts"), "{}", root.display());
        // Under cargo test the binary is <target>/debug/deps/..., so the root is <target>.
        let target = root.parent().unwrap();
        assert!(target.join("debug").is_dir(), "{}", root.display());
    }

    #[test]
    fn free_port_is_nonzero() {
        assert_ne!(free_port().unwrap(), 0);
    }
}
