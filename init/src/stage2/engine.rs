//! The machine the boot and shutdown steps share, and the job list: shutdown's final
//! steps are an ordered list of named jobs over one [`Machine`]. (Early boot's steps are
//! built-in units of the service manager, [`super::early`].)
//!
//! A job that fails is reported as `berth: FAILED <job>: <why>` and the next job runs:
//! at boot, as in systemd, one broken piece must not leave the node unreachable. A job
//! that panics (a bug) is reported the same way; PID 1 goes on.

use std::cell::OnceCell;
use std::error::Error;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use crate::console;
use crate::module_loader::{ModuleLoadError, ModuleLoader};
use crate::sys::{PowerAction, Syscalls};
use berth_layout::cmdline::BootOptions;

/// What a job returns when it failed as a whole; partial failures are logged by the job.
pub type JobResult = Result<(), Box<dyn Error>>;

/// One step of boot or shutdown.
pub struct Job {
    /// `<what>` in the failure line.
    pub name: &'static str,
    pub run: fn(&mut Machine) -> JobResult,
}

/// Where STATE ended up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateBacking {
    /// Not mounted (yet).
    None,
    /// The STATE partition (`/dev/vda6`), mounted.
    Partition(PathBuf),
    /// A tmpfs in its place: nothing persists.
    Tmpfs,
}

/// What the jobs share.
pub struct Machine<'a> {
    pub sys: &'a dyn Syscalls,
    pub options: BootOptions,
    pub state: StateBacking,
    pub machine_id: Option<String>,
    /// Set before the shutdown jobs run.
    pub action: PowerAction,
    /// The machine-id was made this boot (`ConditionFirstBoot=`).
    pub first_boot: bool,
    /// STATE's step, waiting for a repair's helper to end.
    pub waiting: Option<super::state::Waiting>,
    /// Steps running in a forked child ([`super::forked`]).
    pub forked: Vec<super::forked::ForkedStep>,
    /// The running kernel's module index, read once for every step that loads modules
    /// (efivarfs, overlay, coldplug, modules-load) rather than once per step.
    modules: OnceCell<ModuleLoader>,
}

impl<'a> Machine<'a> {
    pub fn new(sys: &'a dyn Syscalls, options: BootOptions) -> Machine<'a> {
        Machine {
            sys,
            options,
            state: StateBacking::None,
            machine_id: None,
            action: PowerAction::PowerOff,
            first_boot: false,
            waiting: None,
            forked: Vec::new(),
            modules: OnceCell::new(),
        }
    }

    /// The module index of the root (`/usr/lib/modules/<release>`), read on first use; a
    /// failure to read it is returned to each step that asks, and read again next time.
    pub fn modules(&self) -> Result<&ModuleLoader, ModuleLoadError> {
        if let Some(loader) = self.modules.get() {
            return Ok(loader);
        }
        let loader = ModuleLoader::open(self.sys, Path::new(berth_layout::paths::MODULES))?;
        Ok(self.modules.get_or_init(|| loader))
    }

    pub fn log(&self, message: &str) {
        self.sys.log(message);
    }

    /// `berth: FAILED <what>: <why>` with the whole chain.
    pub fn fail(&self, what: &str, error: &dyn Error) {
        self.sys.log(&console::failure_line(what, error));
    }
}

/// Runs `jobs` in order; returns how many failed.
pub fn run(machine: &mut Machine, jobs: &[Job]) -> usize {
    let mut failed = 0;
    for job in jobs {
        let result = panic::catch_unwind(AssertUnwindSafe(|| (job.run)(machine)));
        match result {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                failed += 1;
                machine.fail(job.name, &*e);
            }
            Err(_) => {
                failed += 1;
                machine.log(&format!(
                    "berth: FAILED {}: internal error (panic)",
                    job.name
                ));
            }
        }
    }
    failed
}
