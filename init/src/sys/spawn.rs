//! Starting programs from PID 1: the debug variant's root shell as the session leader of
//! the serial console, and helpers (`e2fsck`, `mke2fs`) run to their end under a time
//! limit. PID 1 blocks every signal (it reads them from a signalfd), and a child inherits
//! the mask, so the child clears it and restores default dispositions before `exec`: a
//! shell that cannot be interrupted with Ctrl-C is no shell, and a helper that ignores
//! SIGTERM is no helper.
//!
//! PID 1 must never wait forever: a helper that outlives its limit is killed with its
//! whole process group, and one that does not even die then (stuck in the kernel on a
//! dead disk) is left to the event loop's reaper rather than waited for.

use std::fs::OpenOptions;
use std::io::{self, Read};
use std::os::fd::AsFd;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{self, SigHandler, SigSet, SigmaskHow, Signal};
use nix::unistd::Pid;

use super::{Ended, Ran};

/// The environment of helpers: nothing of PID 1's.
const HELPER_ENV: [(&str, &str); 2] = [("PATH", "/usr/sbin:/usr/bin"), ("LANG", "C")];
/// How much of a helper's output is kept (the end of it).
const OUTPUT_KEPT: usize = 64 * 1024;
/// How long to wait for a killed helper to be reapable.
const KILL_GRACE: Duration = Duration::from_secs(5);
/// How often a running helper is looked at.
const TICK: Duration = Duration::from_millis(50);

/// Spawns `program args` with `tty` as its standard streams and controlling terminal, in a
/// new session, with an empty signal mask and default signal dispositions; returns its PID.
pub fn spawn_on_tty(
    program: &Path,
    args: &[&str],
    tty: &Path,
    env: &[(&str, &str)],
) -> io::Result<u32> {
    // O_NOCTTY: the terminal must become the child's, never PID 1's.
    let terminal = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(nix::libc::O_NOCTTY)
        .open(tty)?;
    let mut command = Command::new(program);
    command
        .args(args)
        .env_clear()
        .envs(env.iter().copied())
        .current_dir("/")
        .stdin(Stdio::from(terminal.try_clone()?))
        .stdout(Stdio::from(terminal.try_clone()?))
        .stderr(Stdio::from(terminal));
    // SAFETY: PID 1 is single-threaded, so the forked child holds no lock another thread
    // could own; `child_setup` only makes async-signal-safe system calls and allocates
    // nothing.
    unsafe { command.pre_exec(child_setup) };
    let child = command.spawn()?;
    // PID 1 reaps every child itself (waitpid(-1)); dropping `Child` neither waits nor kills.
    Ok(child.id())
}

/// Runs in the child between `fork` and `exec`.
fn child_setup() -> io::Result<()> {
    nix::unistd::setsid()?;
    // SAFETY: descriptor 0 is the terminal; TIOCSCTTY takes an int by value.
    let rc = unsafe { nix::libc::ioctl(0, nix::libc::TIOCSCTTY, 1) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    reset_signals()
}

/// Runs in a helper between `fork` and `exec`: its own session (so that a time-out kills
/// its children too), default signals.
fn helper_setup() -> io::Result<()> {
    nix::unistd::setsid()?;
    reset_signals()
}

/// An empty signal mask and default dispositions; async-signal-safe.
fn reset_signals() -> io::Result<()> {
    signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None)?;
    for sig in Signal::iterator() {
        if matches!(sig, Signal::SIGKILL | Signal::SIGSTOP) {
            continue;
        }
        // SAFETY: SIG_DFL installs no handler code.
        let _ = unsafe { signal::signal(sig, SigHandler::SigDfl) };
    }
    Ok(())
}

/// Runs `program args` to its end with no terminal (standard input `/dev/null`, standard
/// output and error captured together), in a new session, with [`HELPER_ENV`]; kills its
/// process group if it outlives `limit`.
pub fn run_with_limit(program: &Path, args: &[&str], limit: Duration) -> io::Result<Ran> {
    let deadline = Instant::now() + limit;
    let (reader, writer) = io::pipe()?;
    let mut command = Command::new(program);
    command
        .args(args)
        .env_clear()
        .envs(HELPER_ENV)
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(writer.try_clone()?)
        .stderr(writer);
    // SAFETY: as in `spawn_on_tty`: PID 1 is single-threaded and `helper_setup` only makes
    // async-signal-safe system calls.
    unsafe { command.pre_exec(helper_setup) };
    let mut child = command.spawn()?;
    // The command holds write ends of the pipe: the end of output is when only the
    // child's (and its children's) are left and they close.
    drop(command);
    let mut output = Vec::new();
    let mut open = true;
    let ended = loop {
        if open {
            open = read_some(&reader, &mut output, TICK)?;
        } else {
            std::thread::sleep(TICK.min(deadline.saturating_duration_since(Instant::now())));
        }
        if let Some(status) = child.try_wait()? {
            // What is still in the pipe, without waiting for a grandchild to close it.
            while open && Instant::now() < deadline && poll_readable(&reader, Duration::ZERO)? {
                open = read_some(&reader, &mut output, Duration::ZERO)?;
            }
            break ended(status);
        }
        if Instant::now() >= deadline {
            kill_group(&mut child);
            break Ended::TimedOut;
        }
    };
    Ok(Ran {
        ended,
        output: String::from_utf8_lossy(&output).into_owned(),
    })
}

/// Waits up to `wait` for output and appends what there is to `output` (keeping its last
/// [`OUTPUT_KEPT`] bytes); returns false once the pipe is closed.
fn read_some(reader: &io::PipeReader, output: &mut Vec<u8>, wait: Duration) -> io::Result<bool> {
    if !poll_readable(reader, wait)? {
        return Ok(true);
    }
    let mut buf = [0u8; 4096];
    let n = match (&*reader).read(&mut buf) {
        Ok(n) => n,
        Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(true),
        Err(e) => return Err(e),
    };
    output.extend_from_slice(&buf[..n]);
    if output.len() > OUTPUT_KEPT {
        output.drain(..output.len() - OUTPUT_KEPT);
    }
    Ok(n > 0)
}

/// Whether the pipe has data or is closed, waiting up to `wait`.
fn poll_readable(reader: &io::PipeReader, wait: Duration) -> io::Result<bool> {
    let ms = i32::try_from(wait.as_millis()).unwrap_or(i32::MAX);
    let timeout = PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX);
    let mut fds = [PollFd::new(reader.as_fd(), PollFlags::POLLIN)];
    match poll(&mut fds, timeout) {
        Ok(n) => Ok(n > 0),
        Err(nix::errno::Errno::EINTR) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// SIGKILL to the helper's process group (it leads its own session), then a bounded wait
/// for it to be reapable.
fn kill_group(child: &mut Child) {
    let group = Pid::from_raw(i32::try_from(child.id()).unwrap_or(i32::MAX));
    if signal::killpg(group, Signal::SIGKILL).is_err() {
        let _ = child.kill();
    }
    let until = Instant::now() + KILL_GRACE;
    while Instant::now() < until {
        match child.try_wait() {
            Ok(None) => std::thread::sleep(TICK),
            // Reaped, or not ours to wait for any more; a child that never ends is
            // reaped by the event loop if it ever does.
            _ => return,
        }
    }
}

fn ended(status: ExitStatus) -> Ended {
    match (status.code(), status.signal()) {
        (Some(code), _) => Ended::Exit(code),
        (None, Some(signal)) => Ended::Signal(signal),
        (None, None) => Ended::Signal(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helpers_run_to_their_end_with_output_and_exit_code() {
        let sh = Path::new("/bin/sh");
        let ran = run_with_limit(
            sh,
            &["-c", "echo out; echo err >&2; exit 3"],
            Duration::from_secs(30),
        )
        .unwrap();
        assert_eq!(ran.ended, Ended::Exit(3));
        assert_eq!(ran.output, "out\nerr\n");
        let ran = run_with_limit(sh, &["-c", "kill -TERM $$"], Duration::from_secs(30)).unwrap();
        assert_eq!(ran.ended, Ended::Signal(nix::libc::SIGTERM));
        assert!(run_with_limit(
            Path::new("/nonexistent/e2fsck"),
            &[],
            Duration::from_secs(1)
        )
        .is_err());
    }

    #[test]
    fn a_helper_that_outlives_its_limit_is_killed_with_its_children() {
        let started = Instant::now();
        // The grandchild keeps the pipe open: the limit must still hold.
        let ran = run_with_limit(
            Path::new("/bin/sh"),
            &["-c", "echo started; sleep 30 & sleep 30"],
            Duration::from_millis(500),
        )
        .unwrap();
        assert_eq!(ran.ended, Ended::TimedOut);
        assert_eq!(ran.output, "started\n");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{:?}",
            started.elapsed()
        );
    }

    #[test]
    fn a_helper_that_exits_is_not_waited_for_because_of_a_grandchild() {
        let started = Instant::now();
        let ran = run_with_limit(
            Path::new("/bin/sh"),
            &["-c", "sleep 30 & echo bye"],
            Duration::from_secs(20),
        )
        .unwrap();
        assert_eq!(ran.ended, Ended::Exit(0));
        assert_eq!(ran.output, "bye\n");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{:?}",
            started.elapsed()
        );
    }
}
