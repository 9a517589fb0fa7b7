//! Stage 2, minimal for now: a correct PID 1 and nothing it does not do.
//!
//! It says `berth: stage2 started`, turns Ctrl-Alt-Del into a signal (`RB_DISABLE_CAD`:
//! the kernel then sends SIGINT instead of rebooting on the spot), blocks every signal and
//! reads them from a signalfd: SIGCHLD reaps every exited child (orphans are reparented to
//! PID 1), and the shutdown signals of sysvinit/busybox and systemd stop the machine after
//! asking every process to end. The early-boot jobs and the service manager grow from this
//! loop later. Children must unblock signals after `fork`: the mask is inherited.

use std::time::Duration;

use nix::errno::Errno;
use nix::sys::signal::{kill, SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::SignalFd;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use crate::sys::{PowerAction, Syscalls};

/// How long processes get between SIGTERM and SIGKILL at shutdown.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// What a signal to PID 1 asks for: busybox init's SIGTERM (reboot), SIGUSR1 (halt),
/// SIGUSR2 (power off); SIGINT is Ctrl-Alt-Del (reboot, as systemd's ctrl-alt-del.target);
/// systemd's SIGRTMIN+3/4/5 (halt, power off, reboot) for `systemctl`-style tools.
pub fn shutdown_action(signo: i32) -> Option<PowerAction> {
    let rtmin = nix::libc::SIGRTMIN();
    match signo {
        nix::libc::SIGTERM | nix::libc::SIGINT => Some(PowerAction::Reboot),
        nix::libc::SIGUSR2 => Some(PowerAction::PowerOff),
        nix::libc::SIGUSR1 => Some(PowerAction::Halt),
        s if s == rtmin + 3 => Some(PowerAction::Halt),
        s if s == rtmin + 4 => Some(PowerAction::PowerOff),
        s if s == rtmin + 5 => Some(PowerAction::Reboot),
        _ => None,
    }
}

/// Runs PID 1 until a shutdown signal; returns only if stopping the machine failed (the
/// caller idles then).
pub fn run(sys: &dyn Syscalls) {
    let root = sys
        .read_to_string(std::path::Path::new("/proc/self/mountinfo"))
        .ok()
        .and_then(|text| describe_root(&text))
        .unwrap_or_else(|| "unknown".into());
    sys.log(&format!("berth: stage2 started (/ is {root})"));
    if let Err(e) = nix::sys::reboot::set_cad_enabled(false) {
        sys.log(&format!("berth: FAILED ctrl-alt-del: cannot disable: {e}"));
    }
    let signals = match signal_fd() {
        Ok(fd) => fd,
        Err(e) => {
            sys.log(&format!(
                "berth: FAILED signals: cannot set up a signalfd: {e}"
            ));
            shutdown(sys, PowerAction::PowerOff, "no signalfd");
            return;
        }
    };
    loop {
        let info = match signals.read_signal() {
            Ok(Some(info)) => info,
            Ok(None) | Err(Errno::EINTR) => continue,
            Err(e) => {
                sys.log(&format!("berth: FAILED signals: {e}"));
                sys.sleep(Duration::from_secs(1));
                continue;
            }
        };
        let signo = info.ssi_signo as i32;
        if signo == nix::libc::SIGCHLD {
            reap();
        } else if let Some(action) = shutdown_action(signo) {
            shutdown(sys, action, &signal_name(signo));
            return;
        }
    }
}

/// What `/` is, from mountinfo: `/dev/dm-0 ext4 ro`. The last `/` mount wins (the one
/// stage 1 moved into place over the initramfs).
pub fn describe_root(mountinfo: &str) -> Option<String> {
    let line = mountinfo
        .lines()
        .filter(|l| l.split_whitespace().nth(4) == Some("/"))
        .last()?;
    let fields: Vec<&str> = line.split_whitespace().collect();
    let options = fields.get(5)?;
    let dash = fields.iter().position(|f| *f == "-")?;
    let (fstype, source) = (fields.get(dash + 1)?, fields.get(dash + 2)?);
    let mode = if options.split(',').any(|o| o == "ro") {
        "ro"
    } else {
        "rw"
    };
    Some(format!("{source} {fstype} {mode}"))
}

fn signal_fd() -> nix::Result<SignalFd> {
    let all = SigSet::all();
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&all), None)?;
    SignalFd::new(&all)
}

/// Reaps every child that has exited; returns whether any children remain.
fn reap() -> bool {
    loop {
        match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) => return true,
            Ok(_) => continue,
            Err(Errno::EINTR) => continue,
            Err(_) => return false,
        }
    }
}

/// SIGTERM to every process, SIGKILL to what is left after [`STOP_TIMEOUT`], sync, stop.
fn shutdown(sys: &dyn Syscalls, action: PowerAction, reason: &str) {
    sys.log(&format!("berth: shutdown {action} ({reason})"));
    let _ = kill(Pid::from_raw(-1), Signal::SIGTERM);
    let deadline = sys.now() + STOP_TIMEOUT;
    while reap() && sys.now() < deadline {
        sys.sleep(Duration::from_millis(50));
    }
    let _ = kill(Pid::from_raw(-1), Signal::SIGKILL);
    reap();
    sys.sync();
    sys.log(&format!("berth: shutdown complete, {action}"));
    if let Err(e) = sys.reboot(action) {
        sys.log(&format!("berth: FAILED {action}: {e}"));
        if let Err(e) = sys.reboot(PowerAction::Halt) {
            sys.log(&format!("berth: FAILED halt: {e}"));
        }
    }
}

fn signal_name(signo: i32) -> String {
    let rtmin = nix::libc::SIGRTMIN();
    match Signal::try_from(signo) {
        Ok(signal) => signal.as_str().to_owned(),
        Err(_) if signo >= rtmin => format!("SIGRTMIN+{}", signo - rtmin),
        Err(_) => format!("signal {signo}"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn root_is_described_from_mountinfo() {
        let text = "1 1 0:2 / / rw - rootfs rootfs rw\n\
                    22 1 254:0 / / ro,relatime shared:1 - ext4 /dev/dm-0 ro\n\
                    23 22 0:5 / /dev rw,nosuid - devtmpfs devtmpfs rw\n";
        assert_eq!(describe_root(text).as_deref(), Some("/dev/dm-0 ext4 ro"));
        assert_eq!(describe_root(""), None);
    }

    use super::*;

    #[test]
    fn shutdown_signals() {
        let rtmin = nix::libc::SIGRTMIN();
        assert_eq!(
            shutdown_action(nix::libc::SIGTERM),
            Some(PowerAction::Reboot)
        );
        assert_eq!(
            shutdown_action(nix::libc::SIGINT),
            Some(PowerAction::Reboot)
        );
        assert_eq!(
            shutdown_action(nix::libc::SIGUSR2),
            Some(PowerAction::PowerOff)
        );
        assert_eq!(shutdown_action(nix::libc::SIGUSR1), Some(PowerAction::Halt));
        assert_eq!(shutdown_action(rtmin + 4), Some(PowerAction::PowerOff));
        assert_eq!(shutdown_action(rtmin + 5), Some(PowerAction::Reboot));
        assert_eq!(shutdown_action(nix::libc::SIGHUP), None);
        assert_eq!(shutdown_action(nix::libc::SIGCHLD), None);
        assert_eq!(signal_name(nix::libc::SIGTERM), "SIGTERM");
        assert_eq!(signal_name(rtmin + 4), "SIGRTMIN+4");
    }
}
