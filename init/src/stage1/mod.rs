//! Stage 1: from the initramfs to the verified root.
//!
//! Mount `/proc`, `/sys`, `/dev`; read the command line; load `STAGE1_MODULES` (of the
//! storage drivers, those of the devices present: [`drivers`]); wait
//! for the disk whose partitions the root hash names; check the verity superblock and top
//! hash block; create the dm-verity device `root`; mount it read-only at [`SYSROOT`]; move
//! `/dev`, `/proc`, `/sys` into it; switch root; queue the reads of the programs the boot
//! runs first (`steps::PREFETCH`); return [`Outcome::Switched`], and this same process
//! goes on as stage 2. Each milestone is one `berth: stage1 …` line. Any failure prints
//! `berth: FAILED <what>: <why>` and powers off (or reboots, `berth.failure=reboot`):
//! stage 1 never returns to a half-booted system, never panics, and never exits (PID 1
//! exiting panics the kernel).
//!
//! No `execve` of the root's `/sbin/init` between the stages: it is the same program (the
//! builder puts one binary in both places and builds each slot's initramfs with its root),
//! and executing it again cost the boot a quarter of a second under TCG, before stage 2's
//! first line: its 2.7 MB read through dm-verity, every page of it faulted in again, and
//! the code stage 1 had already run translated again by the emulator. The program PID 1
//! runs is then the initramfs's copy, which the boot trusts as it trusts the kernel and
//! the `roothash=` beside it in the loader entry; the first code from the verified root is
//! the first unit's. The copy's pages stay in memory (a deleted ramfs file) for PID 1's
//! life. The root's `/sbin/init` is still checked for before the switch, still stage 2
//! when executed as PID 1, and the `/usr/sbin/modprobe` the kernel runs.

pub mod drivers;
#[cfg(test)]
mod fixture;
mod steps;
#[cfg(test)]
mod tests;

use std::io;
use std::path::PathBuf;
use std::time::Duration;

use crate::console;
use crate::discover::DiscoverError;
use crate::module_loader::ModuleLoadError;
use crate::sys::{DevNum, DmError, PowerAction, Syscalls};
use crate::verity::VerityCheckError;
use berth_layout::cmdline::{CmdlineError, FailureAction};
use berth_layout::module_index::STAGE1_MODULES;

/// Where the verified root is mounted before it becomes `/`.
pub const SYSROOT: &str = "/sysroot";
/// The dm-verity device: `/dev/mapper/root`.
pub const DM_NAME: &str = "root";
/// How long to wait for the root disk.
pub const ROOT_WAIT: Duration = Duration::from_secs(30);
/// How much longer to wait once a disk with other root hashes has been seen.
pub const OTHER_ROOT_GRACE: Duration = Duration::from_secs(5);

/// One failed step; [`Stage1Error::what`] names it on the console.
#[derive(Debug, thiserror::Error)]
pub enum Stage1Error {
    #[error("cannot create directory {path}")]
    Mkdir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot mount {fstype} on {target}")]
    Mount {
        fstype: String,
        target: String,
        #[source]
        source: io::Error,
    },
    #[error("cannot read {path}")]
    Read {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(transparent)]
    Cmdline(#[from] CmdlineError),
    #[error(transparent)]
    Modules(#[from] ModuleLoadError),
    #[error(transparent)]
    Discover(Box<DiscoverError>),
    #[error(transparent)]
    Verity(Box<VerityCheckError>),
    #[error("cannot create the dm-verity device {name}")]
    Dm {
        name: String,
        #[source]
        source: DmError,
    },
    #[error("cannot create device node {path} ({dev})")]
    Mknod {
        path: PathBuf,
        dev: DevNum,
        #[source]
        source: io::Error,
    },
    #[error("{path} is missing in the verified root")]
    NoInit { path: PathBuf },
    #[error("cannot move mount {from} to {to}")]
    MoveMount {
        from: PathBuf,
        to: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot switch root to {path}")]
    SwitchRoot {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

// Boxed: these two carry reports, and every step returns a `Stage1Error`.
impl From<DiscoverError> for Stage1Error {
    fn from(e: DiscoverError) -> Self {
        Stage1Error::Discover(Box::new(e))
    }
}

impl From<VerityCheckError> for Stage1Error {
    fn from(e: VerityCheckError) -> Self {
        Stage1Error::Verity(Box::new(e))
    }
}

impl Stage1Error {
    /// The `<what>` of `berth: FAILED <what>: <why>`.
    pub fn what(&self) -> &'static str {
        match self {
            Stage1Error::Mkdir { .. } | Stage1Error::Mount { .. } => "mount",
            Stage1Error::Read { what, .. } => what,
            Stage1Error::Cmdline(_) => "cmdline",
            Stage1Error::Modules(_) => "modules",
            Stage1Error::Discover(_) => "root",
            Stage1Error::Verity(_) => "verity",
            Stage1Error::Dm { .. } | Stage1Error::Mknod { .. } => "device-mapper",
            Stage1Error::NoInit { .. }
            | Stage1Error::MoveMount { .. }
            | Stage1Error::SwitchRoot { .. } => "switch-root",
        }
    }
}

/// How stage 1 ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The verified root is `/`: the caller goes on as stage 2 ([`crate::stage2::run`]).
    Switched,
    /// A step failed, was reported and the machine stopped; with the real kernel this
    /// returns only if even halting failed, and the caller must then idle forever.
    Stopped,
}

/// Runs stage 1.
pub fn run(sys: &dyn Syscalls) -> Outcome {
    let mut failure = FailureAction::default();
    match boot(sys, &mut failure) {
        Ok(()) => Outcome::Switched,
        Err(error) => {
            sys.log(&console::failure_line(error.what(), &error));
            stop(sys, failure);
            Outcome::Stopped
        }
    }
}

/// The boot proper. `failure` is set as soon as the command line is read.
pub fn boot(sys: &dyn Syscalls, failure: &mut FailureAction) -> Result<(), Stage1Error> {
    // Mounted first so that this line has a /dev/console to go to.
    steps::mount_api_filesystems(sys)?;
    sys.log("berth: stage1 started");
    let cmdline = steps::read_cmdline(sys, failure)?;
    if cmdline.options.verbose {
        sys.log(&format!(
            "berth: stage1 cmdline roothash={} berth.verity={} berth.failure={}",
            cmdline.root_hash,
            cmdline.options.verity.as_str(),
            cmdline.options.failure.as_str()
        ));
    }
    let loaded = steps::load_modules(sys, STAGE1_MODULES, cmdline.options.verbose)?;
    sys.log(&format!("berth: stage1 modules loaded ({loaded})"));

    let found = steps::find_root(sys, &cmdline)?;
    sys.log(&format!(
        "berth: stage1 found root {} verity {}",
        found.root.path().display(),
        found.verity.path().display()
    ));
    let mapper = steps::create_verity(sys, &found, &cmdline)?;
    sys.log(&format!(
        "berth: stage1 verity device ready {}",
        mapper.display()
    ));
    steps::mount_root(sys, &mapper)?;
    sys.log(&format!(
        "berth: stage1 root mounted read-only at {SYSROOT}"
    ));

    steps::move_api_filesystems(sys)?;
    sys.log("berth: switch-root");
    let sysroot = PathBuf::from(SYSROOT);
    sys.switch_root(&sysroot)
        .map_err(|source| Stage1Error::SwitchRoot {
            path: sysroot,
            source,
        })?;
    steps::prefetch(sys);
    Ok(())
}

/// Syncs and powers off (halts if that fails) or reboots, saying so first.
pub fn stop(sys: &dyn Syscalls, failure: FailureAction) {
    let actions: &[PowerAction] = match failure {
        FailureAction::Halt => &[PowerAction::PowerOff, PowerAction::Halt],
        FailureAction::Reboot => &[PowerAction::Reboot, PowerAction::PowerOff],
    };
    sys.sync();
    for action in actions {
        sys.log(&format!("berth: stopping: {action}"));
        match sys.reboot(*action) {
            Ok(()) => return,
            Err(e) => sys.log(&format!("berth: FAILED {action}: {e}")),
        }
    }
}
