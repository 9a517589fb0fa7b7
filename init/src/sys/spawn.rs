//! Starting a program as the session leader of a terminal: the debug variant's root shell
//! on the serial console. PID 1 blocks every signal (it reads them from a signalfd), and a
//! child inherits the mask, so the child clears it and restores default dispositions
//! before `exec`: a shell that cannot be interrupted with Ctrl-C is no shell.

use std::fs::OpenOptions;
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

use nix::sys::signal::{self, SigHandler, SigSet, SigmaskHow, Signal};

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
