//! What the daemon and `berth-monitor` agree on: the monitor's command line
//! ([`MonitorArgs`]), its readiness line ([`READY`], [`FAILED`]), the spec annotations it
//! reads, and the control-socket requests with the daemon's client for them. It is its
//! own module, depending on neither side, so that [`crate::container`] (which starts
//! monitors and talks to them) and [`crate::monitor`] (which uses the container's paths
//! and the OCI runtime) do not import each other.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

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
    /// What to execute for it, when not `runtime` itself (the daemon's sealed copy).
    pub runtime_exec: Option<PathBuf>,
    /// The OCI runtime's `--root`.
    pub runtime_root: PathBuf,
    /// The CRI log path; `None` discards the output.
    pub log_path: Option<PathBuf>,
}

impl MonitorArgs {
    /// The command-line arguments that reproduce these (for the daemon starting `berth-monitor`).
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
        if let Some(exec) = &self.runtime_exec {
            args.extend(["--runtime-exec".into(), exec.clone().into()]);
        }
        if let Some(log) = &self.log_path {
            args.extend(["--log-path".into(), log.clone().into()]);
        }
        args
    }
}

/// The request line.
pub const REOPEN: &str = "reopen";
/// The attach request line.
pub const ATTACH: &str = "attach";
/// How long either side waits for the other.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// Client: asks the monitor listening on `socket` to reopen its log; `Ok` once it has.
pub fn request_reopen(socket: &Path) -> Result<(), String> {
    let mut stream = crate::sockpath::connect(socket)
        .map_err(|e| format!("connecting to {}: {e}", socket.display()))?;
    let _ = stream.set_read_timeout(Some(TIMEOUT));
    let _ = stream.set_write_timeout(Some(TIMEOUT));
    stream
        .write_all(format!("{REOPEN}\n").as_bytes())
        .map_err(|e| format!("writing to {}: {e}", socket.display()))?;
    let mut answer = String::new();
    BufReader::new(stream)
        .read_line(&mut answer)
        .map_err(|e| format!("reading from {}: {e}", socket.display()))?;
    match answer.trim_end() {
        "ok" => Ok(()),
        "" => Err("the monitor closed the connection".to_string()),
        other => Err(other.to_string()),
    }
}
