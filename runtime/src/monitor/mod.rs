//! The per-container monitor (`berth-monitor`): one small synchronous process per
//! container that runs the OCI runtime's `create`, becomes the parent of the container's
//! init (child subreaper), writes its stdout and stderr to the CRI log, reopens the log
//! when asked, and records the exit status. It lives in its own session with its stdio
//! detached from the daemon, so a restarted (or killed) daemon finds its containers
//! still running and their exit codes on disk.
//!
//! Start-up is in two steps so that the daemon never has to reap the long-lived process:
//! the daemon runs the monitor in *launch* mode, which starts the *detached* monitor and
//! exits as soon as that reports readiness on a pipe ([`READY`] or [`FAILED`] line).

pub mod attach;
mod ctl;
pub mod log;
mod run;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, ExitCode, Stdio};

pub use crate::monitor_protocol::{
    request_reopen, MonitorArgs, ANNOTATION_STDIN, ANNOTATION_STDIN_ONCE, ATTACH, FAILED, READY,
};
pub use run::run_detached;

/// Launch mode: starts `self_exe --detached …` with its stderr in the bundle's
/// `monitor.log`, relays its readiness line to our stdout and exits (0 when the
/// container was created).
pub fn launch(args: &MonitorArgs, self_exe: &std::path::Path) -> ExitCode {
    let paths = crate::container::ContainerPaths::from_bundle(&args.bundle, &args.id);
    let report = |line: &str| {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    };
    let stderr = match std::fs::OpenOptions::new()
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
    let child = Command::new(self_exe)
        .arg("--detached")
        .args(args.to_args())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            report(&format!("{FAILED} starting {}: {e}", self_exe.display()));
            return ExitCode::FAILURE;
        }
    };
    let mut line = String::new();
    if let Some(out) = child.stdout.take() {
        let _ = BufReader::new(out).read_line(&mut line);
    }
    let line = line.trim_end();
    if line.starts_with(READY) {
        // The detached monitor goes on; its parent (us) exits and it is re-parented.
        report(line);
        ExitCode::SUCCESS
    } else {
        let _ = child.wait();
        if line.is_empty() {
            report(&format!(
                "{FAILED} the monitor exited without reporting; see {}",
                paths.monitor_log.display()
            ));
        } else {
            report(line);
        }
        ExitCode::FAILURE
    }
}
