//! A helper program (`e2fsck`, `mke2fs`) that a built-in step runs as a child of PID 1
//! without waiting for it, so that the event loop goes on answering signals while a check
//! of a large disk takes minutes. The step starts it and returns; the loop's SIGCHLD
//! reaping hands its exit back ([`super::early::child_exited`]) and the step goes on.
//!
//! Its output goes to a file on `/run` (read when it has exited: no pipe for the loop to
//! drain). Its time limit is a timer of the loop: past it, the helper's process group is
//! killed (`SIGKILL`); one that does not die even then (stuck in the kernel on a dead
//! disk) is given up on after [`KILL_GRACE`] and reaped whenever it ends.

use std::io::{self, Read};
use std::path::Path;
use std::time::Duration;

use crate::sys::{Ended, Ran, Syscalls};

/// Where a helper's standard output and error go.
pub const OUTPUT: &str = "/run/berth/helper-output";
/// How much of a helper's output is kept (the end of it).
const OUTPUT_KEPT: usize = 64 * 1024;
/// How long a killed helper has to be reapable before it is given up on.
pub const KILL_GRACE: Duration = Duration::from_secs(5);
/// How often [`wait`] looks for the helper's exit.
const TICK: Duration = Duration::from_millis(50);

/// A helper that runs.
#[derive(Debug)]
pub struct Running {
    pub pid: u32,
    pub started: Duration,
    pub limit: Duration,
    /// When the timer fires: the limit, then (once killed) the end of [`KILL_GRACE`].
    pub deadline: Duration,
    pub killed: bool,
}

/// Starts `program args` with its time limit.
pub fn start(
    sys: &dyn Syscalls,
    program: &str,
    args: &[&str],
    limit: Duration,
) -> io::Result<Running> {
    let pid = sys.start_helper(Path::new(program), args, Path::new(OUTPUT), limit)?;
    let started = sys.now();
    Ok(Running {
        pid,
        started,
        limit,
        deadline: started + limit,
        killed: false,
    })
}

impl Running {
    /// How long it has run.
    pub fn took(&self, sys: &dyn Syscalls) -> Duration {
        sys.now().saturating_sub(self.started)
    }

    /// It exited (`how` as [`crate::sys::Reaped`] says it): what it printed and how it
    /// ended, a kill of ours being [`Ended::TimedOut`].
    pub fn ended(&self, sys: &dyn Syscalls, how: &str) -> Ran {
        let ended = match how.split_once(' ') {
            _ if self.killed => Ended::TimedOut,
            Some(("exit", code)) => Ended::Exit(code.parse().unwrap_or(-1)),
            Some(("signal", signal)) => Ended::Signal(
                crate::unit::values::signal(signal)
                    .ok()
                    .or_else(|| signal.parse().ok())
                    .unwrap_or(0),
            ),
            _ => Ended::Signal(0),
        };
        Ran {
            ended,
            output: output(sys),
        }
    }

    /// The timer: past the limit, kills the helper's process group; true once even the
    /// grace after the kill is over (the caller gives up on it: [`Ended::TimedOut`]).
    pub fn expire(&mut self, sys: &dyn Syscalls) -> bool {
        let now = sys.now();
        if now < self.deadline {
            return false;
        }
        if self.killed {
            return true;
        }
        let group = -i32::try_from(self.pid).unwrap_or(i32::MAX);
        let _ = sys.kill(group, nix::libc::SIGKILL);
        self.killed = true;
        self.deadline = now + KILL_GRACE;
        false
    }

    /// What a helper given up on ran to.
    pub fn given_up(&self, sys: &dyn Syscalls) -> Ran {
        Ran {
            ended: Ended::TimedOut,
            output: output(sys),
        }
    }
}

/// The end of what the helper printed.
fn output(sys: &dyn Syscalls) -> String {
    let mut bytes = Vec::new();
    if let Ok(mut file) = sys.open(Path::new(OUTPUT)) {
        let _ = file.read_to_end(&mut bytes);
    }
    let from = bytes.len().saturating_sub(OUTPUT_KEPT);
    String::from_utf8_lossy(&bytes[from..]).into_owned()
}

/// Waits for the helper here, with no event loop (stage 2 without a signalfd, and
/// [`super::early_boot`]): reaps until it is among the exited, or its timer gives up.
/// Early boot has started no other child, so nothing else is reaped here.
pub fn wait(sys: &dyn Syscalls, running: &mut Running) -> Ran {
    loop {
        let reaped = sys.reap();
        if let Some((_, how)) = reaped.exited.iter().find(|(pid, _)| *pid == running.pid) {
            return running.ended(sys, how);
        }
        if running.expire(sys) {
            return running.given_up(sys);
        }
        let left = running.deadline.saturating_sub(sys.now());
        sys.sleep(TICK.min(left).max(Duration::from_millis(1)));
    }
}
