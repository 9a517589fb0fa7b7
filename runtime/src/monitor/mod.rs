//! The per-container monitor (`berth-monitor`): one small synchronous process per
//! container that runs the OCI runtime's `create`, becomes the parent of the container's
//! init (child subreaper), writes its stdout and stderr to the CRI log, reopens the log
//! when asked, and records the exit status. It lives in its own session with its stdio
//! detached from the daemon, so a restarted (or killed) daemon finds its containers
//! still running and their exit codes on disk.
//!
//! Start-up forks once, so that the daemon never has to reap the long-lived process and
//! no second program start is on the container create path: the daemon runs
//! `berth-monitor`, which forks before anything else; the parent exits at once (the
//! daemon reaps it) and the child, re-parented away from the daemon, creates the
//! container and reports readiness on the stdout it shares with the daemon ([`READY`] or
//! [`FAILED`] line), then closes it so the daemon's read ends.

pub mod attach;
mod ctl;
pub mod log;
mod run;

use std::io::Write;
use std::os::fd::AsFd;
use std::process::ExitCode;

pub use crate::monitor_protocol::{
    request_reopen, MonitorArgs, ANNOTATION_STDIN, ANNOTATION_STDIN_ONCE, ATTACH, FAILED, READY,
};
pub use run::run_detached;

/// Forks the monitor off: the parent returns at once (success unless the fork failed),
/// the child runs [`run_detached`] with its stderr in the bundle's `monitor.log` and
/// returns when the container has ended. Must be called while the process has one thread (first thing in
/// `main`).
pub fn detach(args: &MonitorArgs) -> ExitCode {
    let paths = crate::container::ContainerPaths::from_bundle(&args.bundle, &args.id);
    let report = |line: &str| {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    };
    let log = match std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&paths.monitor_log)
    {
        Ok(f) => f,
        Err(e) => {
            report(&format!(
                "{FAILED} opening {}: {e}",
                paths.monitor_log.display()
            ));
            return ExitCode::FAILURE;
        }
    };
    match crate::fork::fork_single_threaded() {
        Ok(crate::fork::Side::Parent { .. }) => ExitCode::SUCCESS,
        Ok(crate::fork::Side::Child) => {
            let _ = nix::unistd::dup2_stderr(log.as_fd());
            drop(log);
            run_detached(args)
        }
        Err(e) => {
            report(&format!("{FAILED} fork: {e}"));
            ExitCode::FAILURE
        }
    }
}
