//! Stopping a container: its stop signal, a wait for the exit record, then SIGKILL. Split
//! from the rest of the lifecycle because a stop right after a start needs care: the
//! init, PID 1 of its namespace, drops a signal it has no handler for yet.

use std::str::FromStr;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use super::exit::ExitStatus;
use super::lifecycle::{monitored_init, wait_exit, EXIT_RECORD_WAIT, POLL};
use super::{ContainerError, ContainerPaths, OciRuntime};

/// How long to wait for the exit record after SIGKILL.
const KILL_WAIT: Duration = Duration::from_secs(30);

/// A stop signal from the image config (`SIGTERM`, `TERM`, `15`) as a signal number.
pub fn parse_signal(name: &str) -> Result<i32, ContainerError> {
    if name.is_empty() {
        return Ok(Signal::SIGTERM as i32);
    }
    if let Ok(n) = name.parse::<i32>() {
        return Signal::try_from(n).map(|s| s as i32).map_err(|_| {
            ContainerError::invalid("stop_signal", format!("{name:?} is not a signal"))
        });
    }
    let upper = name.to_ascii_uppercase();
    let full = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    Signal::from_str(&full)
        .map(|s| s as i32)
        .map_err(|_| ContainerError::invalid("stop_signal", format!("{name:?} is not a signal")))
}

/// Stops the container: `stop_signal`, up to `timeout` for it to exit, then SIGKILL to
/// every process of it. A container that has already exited or is gone is fine.
pub fn stop(
    paths: &ContainerPaths,
    runtime: &OciRuntime,
    timeout: Duration,
    stop_signal: &str,
) -> Result<(), ContainerError> {
    let signal = parse_signal(stop_signal)?;
    if has_exited(paths, runtime)? {
        return Ok(());
    }
    if !timeout.is_zero() {
        let deadline = Instant::now() + timeout;
        let init = monitored_init(paths);
        let caught = init.and_then(|pid| super::procfs::catches_signal(pid, signal));
        if let Err(e) = runtime.kill(&paths.id, &signal.to_string(), false) {
            if !has_exited(paths, runtime)? {
                return Err(e);
            }
        }
        if let (Some(pid), Some(false)) = (init, caught) {
            resend_when_caught(paths, runtime, pid, signal, deadline)?;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if wait_exit(paths, runtime, left)? {
            return Ok(());
        }
    }
    if let Err(e) = runtime.kill(&paths.id, &(Signal::SIGKILL as i32).to_string(), true) {
        if !has_exited(paths, runtime)? {
            return Err(e);
        }
    }
    if wait_exit(paths, runtime, KILL_WAIT)? {
        Ok(())
    } else {
        Err(ContainerError::Timeout {
            id: paths.id.clone(),
            what: "waiting for the exit after SIGKILL".into(),
            seconds: KILL_WAIT.as_secs(),
        })
    }
}

/// The init, PID 1 of its namespace, drops a signal it has no handler for. One sent in
/// the instant between the exec of its program and the handler's installation (a stop
/// right after the start) is lost, and the stop would wait its whole timeout: send it
/// once more as soon as the handler is there. Returns when it was resent, the init has
/// exited, or `deadline` passed.
fn resend_when_caught(
    paths: &ContainerPaths,
    runtime: &OciRuntime,
    pid: i32,
    signal: i32,
    deadline: Instant,
) -> Result<(), ContainerError> {
    while Instant::now() < deadline {
        if ExitStatus::read(&paths.exit_file)?.is_some() {
            return Ok(());
        }
        match super::procfs::catches_signal(pid, signal) {
            None => return Ok(()),
            Some(true) => {
                // Failing here means the init exited meanwhile; the wait that follows
                // sees that.
                let _ = runtime.kill(&paths.id, &signal.to_string(), false);
                return Ok(());
            }
            Some(false) => std::thread::sleep(POLL),
        }
    }
    Ok(())
}

/// Whether the init has exited (exit record written) or the container is gone.
pub(super) fn has_exited(
    paths: &ContainerPaths,
    runtime: &OciRuntime,
) -> Result<bool, ContainerError> {
    if ExitStatus::read(&paths.exit_file)?.is_some() || !runtime.exists(&paths.id) {
        return Ok(true);
    }
    if let Some(init) = monitored_init(paths) {
        return Ok(!super::procfs::is_running(init) && wait_exit(paths, runtime, EXIT_RECORD_WAIT)?);
    }
    match runtime.state(&paths.id)? {
        None => Ok(true),
        Some(s) if s.status == "stopped" => wait_exit(paths, runtime, EXIT_RECORD_WAIT),
        Some(_) => Ok(false),
    }
}
