//! Early-boot steps that run in a forked child of PID 1 rather than in its own turn:
//! loading modules (modules-load, coldplug) and applying sysctls take hundreds of
//! milliseconds under emulation, and while a step runs in PID 1's turn its event loop
//! reads no `READY=1` and starts no unit. A forked child is a copy of PID 1 (the module
//! index already read included), so the step's code is the same; the kernel state it
//! changes (modules, `/proc/sys`) is the machine's. The loop reaps the child from
//! SIGCHLD ([`super::early::child_exited`]) and ends the unit with the child's result:
//! exit 0 is done; otherwise the reason the child wrote to [`result_path`] (its whole
//! error chain), or how it ended when it wrote none (killed, or a bug that panicked).
//!
//! A fork that fails (no memory for the copy) runs the step in PID 1's turn instead, as
//! before: slower, never skipped.
//!
//! A child has [`STEP_LIMIT`], systemd's `DefaultTimeoutStartSec=` (its
//! systemd-modules-load, -sysctl and udev units have no other): past it, the loop's timer
//! ([`super::early::expire`]) kills the child's process group and fails the unit, so a
//! module whose init hangs never holds boot. A child stuck in the kernel even then is
//! reaped whenever it ends; nothing waits for it.

use std::path::PathBuf;
use std::time::Duration;

use super::early::guard;
use super::engine::{JobResult, Machine};
use crate::sys::Syscalls;

/// Where the child of step `unit` writes why it failed.
pub fn result_path(unit: &str) -> PathBuf {
    PathBuf::from(format!("/run/berth/step-{unit}.failed"))
}

/// How long a forked step may run: systemd's `DefaultTimeoutStartSec=`.
pub const STEP_LIMIT: Duration = Duration::from_secs(90);

/// A step that runs in a forked child.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ForkedStep {
    pub pid: u32,
    pub unit: &'static str,
    /// When its time is up: [`STEP_LIMIT`] after the fork.
    pub deadline: Duration,
}

impl ForkedStep {
    /// Why its unit fails when its time is up.
    pub fn timed_out(&self) -> String {
        format!(
            "timed out after {} s; its process group was killed",
            STEP_LIMIT.as_secs()
        )
    }
}

/// How a forked step started.
pub enum Started {
    /// Its child runs: the step ends when the child is reaped.
    Child(u32),
    /// It could not fork: the step ran here, to this result.
    RanHere(Result<(), String>),
}

/// Runs step `unit` (`run`, a panic in it caught as [`guard`] does) in a forked child.
pub fn start(m: &mut Machine, unit: &'static str, run: fn(&mut Machine) -> JobResult) -> Started {
    let sys: &dyn Syscalls = m.sys;
    let forked = sys.fork_step(&mut || match guard(|| run(m)) {
        Ok(()) => 0,
        Err(why) => {
            let _ = m.sys.write_file(&result_path(unit), why.as_bytes());
            1
        }
    });
    match forked {
        Ok(pid) => {
            let deadline = m.sys.now() + STEP_LIMIT;
            m.forked.push(ForkedStep {
                pid,
                unit,
                deadline,
            });
            Started::Child(pid)
        }
        Err(e) => {
            m.log(&format!(
                "berth: {unit}: cannot fork ({e}): the step runs in PID 1"
            ));
            Started::RanHere(guard(|| run(m)))
        }
    }
}

/// The child of a step ended (`how` as [`crate::sys::Reaped`] says): its result.
pub fn result(sys: &dyn Syscalls, unit: &str, how: &str) -> Result<(), String> {
    if how == "exit 0" {
        return Ok(());
    }
    match sys.read_to_string(&result_path(unit)) {
        Ok(why) if !why.is_empty() => Err(why),
        _ => Err(format!("its process ended with {how}")),
    }
}
