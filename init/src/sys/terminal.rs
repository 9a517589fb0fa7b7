//! A unit's terminal, taken by its child between `fork` and `execve` (systemd.exec(5)
//! `StandardInput=tty*`, `TTYPath=`, `TTYReset=`, `TTYVHangup=`), as systemd's
//! `acquire_terminal`: open it without making it PID 1's, hang up its earlier users if
//! asked (then even `tty-fail` gets it, as on systemd), make it the controlling terminal
//! of the child's new session (waiting for it, taking it, or failing when another session
//! has it), reset its line settings if asked, and put it on standard input (and on
//! standard output and error where they inherit it).
//!
//! Everything here but [`revert`] runs in the forked child: only async-signal-safe calls
//! on values prepared before the fork ([`PreparedTerminal::new`]); no allocation. When the
//! unit's run ends, PID 1 hangs the terminal up and resets it again ([`revert`], systemd's
//! `exec_context_revert_tty`), so the next user finds it sane and the ended run's
//! leftovers lose it.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::time::Duration;

use super::child_report::{ChildFailure, Step};

/// What to do when another session controls the terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TerminalMode {
    /// `tty`: wait until it is free.
    Wait,
    /// `tty-force`: take it.
    Force,
    /// `tty-fail`: fail.
    Fail,
}

/// The terminal a unit's command runs on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TerminalSpawn {
    pub path: PathBuf,
    pub mode: TerminalMode,
    pub reset: bool,
    pub vhangup: bool,
}

/// The sub-steps of [`Step::Stdin`], the record's index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum TerminalStep {
    Open = 0,
    Control = 1,
    Attach = 2,
}

impl TerminalStep {
    /// What the step does, for the error message.
    pub fn describe(index: u32) -> &'static str {
        match index {
            i if i == TerminalStep::Open as u32 => "open",
            i if i == TerminalStep::Control as u32 => {
                "make it the controlling terminal (TIOCSCTTY)"
            }
            _ => "attach to standard input",
        }
    }
}

/// How long a `tty` waits between tries for a terminal another session has.
const WAIT_STEP: Duration = Duration::from_millis(200);

/// [`TerminalSpawn`] with its path ready for `open(2)`, and which of standard output and
/// error inherit the terminal.
pub struct PreparedTerminal {
    path: CString,
    mode: TerminalMode,
    reset: bool,
    vhangup: bool,
    onto: [bool; 3],
}

fn fail(step: TerminalStep, e: io::Error) -> ChildFailure {
    ChildFailure::at(Step::Stdin, step as u32, &e)
}

impl PreparedTerminal {
    pub fn new(t: &TerminalSpawn, stdout: bool, stderr: bool) -> io::Result<Self> {
        let path = CString::new(t.path.as_os_str().as_bytes())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("TTYPath=: {e}")))?;
        Ok(PreparedTerminal {
            path,
            mode: t.mode,
            reset: t.reset,
            vhangup: t.vhangup,
            onto: [true, stdout, stderr],
        })
    }

    fn open(&self) -> Result<i32, ChildFailure> {
        // SAFETY: a NUL-terminated path prepared before the fork; open(2) is
        // async-signal-safe. O_NOCTTY: the terminal becomes the session's by TIOCSCTTY below.
        let fd = unsafe {
            nix::libc::open(
                self.path.as_ptr(),
                nix::libc::O_RDWR | nix::libc::O_NOCTTY | nix::libc::O_CLOEXEC,
            )
        };
        if fd < 0 {
            return Err(fail(TerminalStep::Open, io::Error::last_os_error()));
        }
        Ok(fd)
    }

    /// In the child, after `setsid`: the terminal on descriptors 0 (and 1, 2 as asked).
    pub fn attach_in_child(&self) -> Result<(), ChildFailure> {
        let mut fd = self.open()?;
        if self.vhangup {
            // Best effort, as systemd's `terminal_vhangup_fd`: without CAP_SYS_TTY_CONFIG
            // the earlier users keep it.
            // SAFETY: `fd` is open; TIOCVHANGUP takes no argument.
            if unsafe { nix::libc::ioctl(fd, nix::libc::TIOCVHANGUP, 0) } == 0 {
                // SAFETY: `fd` was opened above; the hang-up made it useless.
                unsafe { nix::libc::close(fd) };
                fd = self.open()?;
            }
        }
        let force = i32::from(self.mode == TerminalMode::Force);
        loop {
            // SAFETY: `fd` is open; TIOCSCTTY takes an int by value (1: steal it).
            let rc = unsafe { nix::libc::ioctl(fd, nix::libc::TIOCSCTTY, force) };
            if rc == 0 {
                break;
            }
            let e = io::Error::last_os_error();
            if self.mode != TerminalMode::Wait || e.raw_os_error() != Some(nix::libc::EPERM) {
                return Err(fail(TerminalStep::Control, e));
            }
            // Another session has it: try again shortly (the start's time-out ends this).
            let pause = nix::libc::timespec {
                tv_sec: 0,
                tv_nsec: WAIT_STEP.as_nanos() as nix::libc::c_long,
            };
            // SAFETY: nanosleep(2) reads a timespec on the stack; async-signal-safe.
            unsafe { nix::libc::nanosleep(&pause, std::ptr::null_mut()) };
        }
        if self.reset {
            reset(fd);
        }
        for (target, wanted) in self.onto.iter().enumerate() {
            // SAFETY: dup2(2) on open descriptors; async-signal-safe.
            if *wanted && unsafe { nix::libc::dup2(fd, target as i32) } < 0 {
                return Err(fail(TerminalStep::Attach, io::Error::last_os_error()));
            }
        }
        if fd > 2 {
            // SAFETY: `fd` was opened here and is not one of the standard descriptors.
            unsafe { nix::libc::close(fd) };
        }
        Ok(())
    }
}

/// When a unit's run ends (systemd 252's `exec_context_tty_reset` from
/// `exec_context_revert_tty`): `TTYVHangup=` hangs up whoever still has the terminal,
/// then `TTYReset=` resets its line settings. Opened without becoming PID 1's controlling
/// terminal and without waiting for a carrier. Both are best effort, as in systemd; only
/// a terminal that cannot be opened is an error.
pub fn revert(path: &std::path::Path, reset_line: bool, vhangup: bool) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::OpenOptionsExt;
    let tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(nix::libc::O_NOCTTY | nix::libc::O_NONBLOCK)
        .open(path)?;
    if vhangup {
        // SAFETY: `tty` is open; TIOCVHANGUP takes no argument.
        unsafe { nix::libc::ioctl(tty.as_raw_fd(), nix::libc::TIOCVHANGUP, 0) };
    }
    if reset_line {
        reset(tty.as_raw_fd());
    }
    Ok(())
}

/// systemd's `reset_terminal_fd`: a cooked, echoing line with the usual control
/// characters. Best effort, as there: a terminal that refuses keeps its settings.
fn reset(fd: i32) {
    use nix::libc::*;
    // SAFETY: a zeroed termios is a valid buffer for tcgetattr(3) to fill.
    let mut t: termios = unsafe { std::mem::zeroed() };
    // SAFETY: `fd` is open and `t` is a termios on the stack.
    if unsafe { tcgetattr(fd, &mut t) } < 0 {
        return;
    }
    t.c_iflag &= !(IGNBRK | BRKINT | ISTRIP | INLCR | IGNCR | IUCLC);
    t.c_iflag |= ICRNL | IMAXBEL | IUTF8;
    t.c_oflag |= ONLCR;
    t.c_cflag |= CREAD;
    t.c_lflag = ISIG | ICANON | IEXTEN | ECHO | ECHOE | ECHOK | ECHOCTL | ECHOPRT | ECHOKE;
    for (index, value) in [
        (VINTR, 0o3),
        (VQUIT, 0o34),
        (VERASE, 0o177),
        (VKILL, 0o25),
        (VEOF, 0o4),
        (VSTART, 0o21),
        (VSTOP, 0o23),
        (VSUSP, 0o32),
        (VLNEXT, 0o26),
        (VWERASE, 0o27),
        (VREPRINT, 0o22),
        (VEOL, 0),
        (VEOL2, 0),
        (VTIME, 0),
        (VMIN, 1),
    ] {
        t.c_cc[index] = value;
    }
    // SAFETY: `fd` is open and `t` a filled termios; both calls are async-signal-safe.
    unsafe {
        tcsetattr(fd, TCSANOW, &t);
        tcflush(fd, TCIOFLUSH);
    }
}
