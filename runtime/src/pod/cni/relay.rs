//! The I/O of one CNI plugin call: its stdin written, its stdout and stderr read and its
//! exit awaited in one `poll` loop on the calling thread (the exit through a pidfd), so a
//! plugin that ignores stdin or floods stdout cannot block the call, and a call starts
//! no helper thread: on a busy node each new thread is one more wait for a CPU on the pod
//! start path, and a pod start makes several plugin calls.

use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

/// How long stderr may stay open after the plugin exited and closed stdout (a child of
/// it holding stderr): its message is only a hint, not worth waiting the full time limit.
const STDERR_GRACE: Duration = Duration::from_secs(1);

/// The plugin's side of one call: what is left to write to its stdin, its stdout and
/// stderr while open, and its pidfd until it has exited.
pub(super) struct Pipes<'a> {
    stdin: Option<OwnedFd>,
    input: &'a [u8],
    stdout: Option<OwnedFd>,
    stderr: Option<OwnedFd>,
    pidfd: Option<OwnedFd>,
    out: Vec<u8>,
    err: Vec<u8>,
}

impl<'a> Pipes<'a> {
    /// Takes the child's pipes (stdin non-blocking, so a plugin that reads slowly or not
    /// at all cannot stall the loop) and opens its pidfd.
    pub(super) fn of(child: &mut std::process::Child, input: &'a [u8]) -> std::io::Result<Self> {
        let pid = i32::try_from(child.id())
            .ok()
            .and_then(rustix::process::Pid::from_raw)
            .ok_or_else(|| std::io::Error::other("the plugin has no valid pid"))?;
        // The child is not reaped until `run` waits for it, so the pid is still its.
        let pidfd = rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty())?;
        let stdin = child.stdin.take().map(OwnedFd::from);
        if let Some(fd) = &stdin {
            let flags = OFlag::from_bits_truncate(fcntl(fd, FcntlArg::F_GETFL)?);
            fcntl(fd, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
        }
        Ok(Pipes {
            // Nothing to write: closing stdin at once gives the plugin its EOF.
            stdin: stdin.filter(|_| !input.is_empty()),
            input,
            stdout: child.stdout.take().map(OwnedFd::from),
            stderr: child.stderr.take().map(OwnedFd::from),
            pidfd: Some(pidfd),
            out: Vec::new(),
            err: Vec::new(),
        })
    }

    /// Feeds stdin and collects stdout and stderr until the plugin has exited and closed
    /// stdout (stderr gets [`STDERR_GRACE`] more). `None` when `deadline` passed first.
    pub(super) fn relay(
        mut self,
        deadline: Instant,
    ) -> std::io::Result<Option<(Vec<u8>, Vec<u8>)>> {
        let mut stderr_deadline = deadline;
        loop {
            let done = self.stdout.is_none() && self.pidfd.is_none();
            if done {
                if self.stderr.is_none() {
                    return Ok(Some((self.out, self.err)));
                }
                stderr_deadline = stderr_deadline.min(Instant::now() + STDERR_GRACE);
            }
            let now = Instant::now();
            let until = if done { stderr_deadline } else { deadline };
            if now >= until {
                return Ok(done.then_some((self.out, self.err)));
            }
            // Rounded up to the next millisecond, so the last one is not spent spinning.
            let timeout = PollTimeout::try_from(until - now + Duration::from_millis(1))
                .unwrap_or(PollTimeout::MAX);
            let ready = {
                let mut fds = Vec::with_capacity(4);
                let mut which = Vec::with_capacity(4);
                for (slot, fd, events) in [
                    (Slot::Stdin, &self.stdin, PollFlags::POLLOUT),
                    (Slot::Stdout, &self.stdout, PollFlags::POLLIN),
                    (Slot::Stderr, &self.stderr, PollFlags::POLLIN),
                    (Slot::Exit, &self.pidfd, PollFlags::POLLIN),
                ] {
                    if let Some(fd) = fd {
                        fds.push(PollFd::new(fd.as_fd(), events));
                        which.push(slot);
                    }
                }
                match poll(&mut fds, timeout) {
                    Ok(_) => {}
                    Err(Errno::EINTR) => continue,
                    Err(e) => return Err(e.into()),
                }
                fds.iter()
                    .zip(which)
                    .filter(|(fd, _)| fd.revents().is_some_and(|r| !r.is_empty()))
                    .map(|(_, slot)| slot)
                    .collect::<Vec<_>>()
            };
            for slot in ready {
                match slot {
                    Slot::Stdin => self.feed(),
                    Slot::Stdout => read_some(&mut self.stdout, &mut self.out)?,
                    Slot::Stderr => read_some(&mut self.stderr, &mut self.err)?,
                    Slot::Exit => self.pidfd = None,
                }
            }
        }
    }

    /// Writes what the pipe takes; closes stdin when all is written or the plugin stopped
    /// reading (EPIPE: it may exit without reading, harmlessly).
    fn feed(&mut self) {
        let Some(fd) = &self.stdin else { return };
        match nix::unistd::write(fd, self.input) {
            Ok(n) => self.input = &self.input[n..],
            Err(Errno::EAGAIN | Errno::EINTR) => return,
            Err(_) => self.input = &[],
        }
        if self.input.is_empty() {
            self.stdin = None;
        }
    }
}

/// A descriptor the relay loop polls.
#[derive(Debug, Clone, Copy)]
enum Slot {
    Stdin,
    Stdout,
    Stderr,
    Exit,
}

/// Reads what `pipe` has into `buf`; closes it at end of file.
fn read_some(pipe: &mut Option<OwnedFd>, buf: &mut Vec<u8>) -> std::io::Result<()> {
    let Some(fd) = pipe else { return Ok(()) };
    let mut chunk = [0u8; 16 * 1024];
    match nix::unistd::read(fd, &mut chunk) {
        Ok(0) => *pipe = None,
        Ok(n) => buf.extend_from_slice(&chunk[..n]),
        Err(Errno::EAGAIN | Errno::EINTR) => {}
        Err(e) => return Err(e.into()),
    }
    Ok(())
}
