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
use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};

pub use ctl::{request_reopen, ATTACH};
pub use run::run_detached;

/// Spec annotation: keep the container's stdin open for Attach (CRI `stdin`).
pub const ANNOTATION_STDIN: &str = "io.berth.stdin";
/// Spec annotation: close the container's stdin when the first attach ends (`stdin_once`).
pub const ANNOTATION_STDIN_ONCE: &str = "io.berth.stdin-once";

/// First word of the readiness line: `created <init pid> <monitor pid>`.
pub const READY: &str = "created";
/// First word of the failure line: `error <message>`.
pub const FAILED: &str = "error";

/// What the monitor needs to know; the daemon passes it on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonitorArgs {
    pub id: String,
    /// The OCI bundle (state/containers/<id>); the monitor's files are derived from it.
    pub bundle: PathBuf,
    /// The OCI runtime binary.
    pub runtime: PathBuf,
    /// The OCI runtime's `--root`.
    pub runtime_root: PathBuf,
    /// The CRI log path; `None` discards the output.
    pub log_path: Option<PathBuf>,
}

impl MonitorArgs {
    /// The command-line arguments that reproduce these (for [`launch`] and the daemon).
    pub fn to_args(&self) -> Vec<std::ffi::OsString> {
        let mut args: Vec<std::ffi::OsString> = vec![
            "--id".into(),
            self.id.clone().into(),
            "--bundle".into(),
            self.bundle.clone().into(),
            "--runtime".into(),
            self.runtime.clone().into(),
            "--runtime-root".into(),
            self.runtime_root.clone().into(),
        ];
        if let Some(log) = &self.log_path {
            args.extend(["--log-path".into(), log.clone().into()]);
        }
        args
    }
}

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
