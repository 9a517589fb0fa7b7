//! Starting early boot's helpers (`e2fsck`, `mke2fs`) from PID 1, in their own session,
//! never waited for here (PID 1 reaps them; `stage2::helper` holds their time limit).
//! PID 1 blocks every signal (it reads them from a signalfd), and a child inherits the
//! mask, so the child clears it and restores default dispositions before `exec`: a helper
//! that ignores SIGTERM is no helper. (Units' commands start in [`super::service_spawn`].)

use std::fs::OpenOptions;
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

use nix::sys::signal::{self, SigHandler, SigSet, SigmaskHow, Signal};
#[cfg(test)]
use nix::unistd::Pid;

/// The environment of helpers: nothing of PID 1's.
const HELPER_ENV: [(&str, &str); 2] = [("PATH", "/usr/sbin:/usr/bin"), ("LANG", "C")];

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

/// Starts `program args` with no terminal (standard input `/dev/null`, standard output
/// and error to the file `output`, created or truncated, mode 0600), in a new session,
/// with [`HELPER_ENV`]; returns its PID without waiting (PID 1 reaps it).
pub fn start_helper(program: &Path, args: &[&str], output: &Path) -> io::Result<u32> {
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .custom_flags(nix::libc::O_CLOEXEC)
        .open(output)?;
    let mut command = Command::new(program);
    command
        .args(args)
        .env_clear()
        .envs(HELPER_ENV)
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::from(file.try_clone()?))
        .stderr(Stdio::from(file));
    // SAFETY: PID 1 is single-threaded, so the forked child holds no lock another thread
    // could own; `helper_setup` only makes async-signal-safe system calls.
    unsafe { command.pre_exec(helper_setup) };
    let child = command.spawn()?;
    // Dropping `Child` neither waits nor kills: PID 1 reaps it (waitpid(-1)).
    Ok(child.id())
}

/// The exit status of a forked step that panicked (as Rust's test harness says it).
pub const EXIT_PANIC: i32 = 101;

/// Forks; the child runs `step` in its own session with default signals and leaves with
/// `_exit(step())`, never returning into the caller; the parent gets the child's PID
/// without waiting (PID 1 reaps it).
pub fn fork_step(step: &mut dyn FnMut() -> i32) -> io::Result<u32> {
    use nix::unistd::{fork, ForkResult};
    use std::panic::{self, AssertUnwindSafe};
    // SAFETY: PID 1 is single-threaded, so the child holds no lock another thread could
    // own and may allocate; it leaves with `_exit`, so no destructor of PID 1's state (its
    // sockets, the signalfd, buffered console output) runs twice.
    match unsafe { fork() }.map_err(io::Error::from)? {
        ForkResult::Parent { child } => Ok(child.as_raw().unsigned_abs()),
        ForkResult::Child => {
            let code = match helper_setup() {
                Ok(()) => panic::catch_unwind(AssertUnwindSafe(step)).unwrap_or(EXIT_PANIC),
                Err(_) => EXIT_PANIC,
            };
            // SAFETY: `_exit` ends this process at once; nothing of it is used after.
            unsafe { nix::libc::_exit(code) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::wait::{waitpid, WaitStatus};

    fn wait(pid: u32) -> WaitStatus {
        waitpid(Pid::from_raw(pid as i32), None).unwrap()
    }

    #[test]
    fn a_forked_step_exits_with_what_it_returns_with_signals_unblocked() {
        let pid = fork_step(&mut || {
            let mut mask = SigSet::empty();
            let blocked = signal::sigprocmask(SigmaskHow::SIG_BLOCK, None, Some(&mut mask));
            match blocked.is_ok() && !mask.contains(Signal::SIGTERM) {
                true => 7,
                false => 1,
            }
        })
        .unwrap();
        assert_eq!(wait(pid), WaitStatus::Exited(Pid::from_raw(pid as i32), 7));
        let pid = fork_step(&mut || panic!("a bug in a step")).unwrap();
        assert_eq!(
            wait(pid),
            WaitStatus::Exited(Pid::from_raw(pid as i32), EXIT_PANIC)
        );
    }

    #[test]
    fn helpers_start_with_their_output_in_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let pid = start_helper(
            Path::new("/bin/sh"),
            &["-c", "echo out; echo err >&2; exit 3"],
            &out,
        )
        .unwrap();
        assert!(matches!(wait(pid), WaitStatus::Exited(_, 3)));
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "out\nerr\n");
        let pid = start_helper(Path::new("/bin/sh"), &["-c", "kill -TERM $$"], &out).unwrap();
        assert!(matches!(
            wait(pid),
            WaitStatus::Signaled(_, Signal::SIGTERM, _)
        ));
        assert!(start_helper(Path::new("/nonexistent/e2fsck"), &[], &out).is_err());
    }

    #[test]
    fn a_helper_leads_its_own_process_group_so_a_kill_reaches_its_children() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let pid = start_helper(Path::new("/bin/sh"), &["-c", "sleep 30 & sleep 30"], &out).unwrap();
        signal::killpg(Pid::from_raw(pid as i32), Signal::SIGKILL).unwrap();
        assert!(matches!(
            wait(pid),
            WaitStatus::Signaled(_, Signal::SIGKILL, _)
        ));
    }
}
