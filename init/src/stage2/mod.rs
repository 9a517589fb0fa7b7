//! Stage 2: PID 1 in the verified root, one event loop driving a job engine.
//!
//! It says `berth: stage2 started`, blocks every signal and reads them from a signalfd
//! (so nothing runs in a signal handler), turns Ctrl-Alt-Del into SIGINT
//! (`RB_DISABLE_CAD`), and starts the service manager ([`units`]) on early boot's target:
//! built-in units ([`early`]) for the design's mount table, STATE, machine identity,
//! modules, sysctl, tmpfiles, whose steps the loop runs one per turn (modules, sysctl
//! and coldplug in forked children, [`forked`], whose exits end them). Once the steps the
//! manager needs are done ([`early::MANAGER_NEEDS`]) the notify and control sockets are
//! bound, the unit files loaded and `default.target` started, while the remaining steps
//! go on (ordering decides which units start before they end); `berth: early-boot done`
//! once early boot's target is reached, `berth: ready` once `default.target` is. The loop polls the signalfd and the sd_notify
//! socket with a timeout for the next timer: SIGCHLD reaps every exited child (orphans
//! are reparented to PID 1) and hands unit processes to the manager; the shutdown signals
//! of sysvinit/busybox and systemd stop every unit in reverse order, then run the
//! shutdown jobs ([`shutdown::SHUTDOWN`]). With `berth.debug`, the root shell on the
//! serial console is a unit like any other ([`units`] enables it). The control socket
//! ([`crate::control`], what `systemctl` talks to) is polled in the same loop.

pub mod cgroup_watch;
pub mod cloud;
pub mod coldplug;
pub mod confd;
pub mod early;
pub mod engine;
pub mod forked;
pub mod helper;
pub mod identity;
pub mod mounts;
pub mod notify;
pub mod repair;
pub mod shutdown;
pub mod state;
pub mod tmpfiles;
pub mod units;

use std::collections::VecDeque;
use std::os::fd::AsFd;
use std::path::Path;
use std::time::Duration;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};

use crate::manager::{Manager, NOTIFY_SOCKET};
use crate::sys::{PowerAction, Syscalls};
use crate::unit::lifecycle::Exit;
use crate::unit::name::UnitName;
use berth_layout::cmdline::BootOptions;
use engine::Machine;
use notify::NotifySocket;

use crate::control::socket::ControlSocket;
use crate::control::CONTROL_SOCKET;

/// The loop's sockets besides the signalfd; each is optional (a failed bind was said).
struct Sockets {
    notify: Option<NotifySocket>,
    control: Option<ControlSocket>,
}

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

/// Runs early boot and then the loop until shutdown; returns only if stopping the machine
/// failed (the caller idles then).
pub fn run(sys: &dyn Syscalls) {
    let started = sys.now();
    let root = sys
        .read_to_string(Path::new("/proc/self/mountinfo"))
        .ok()
        .and_then(|text| describe_root(&text))
        .unwrap_or_else(|| "unknown".into());
    sys.log(&format!("berth: stage2 started (/ is {root})"));
    // Block first: a signal that arrives during early boot waits in the signalfd.
    let signals = signal_fd();
    if let Err(e) = &signals {
        sys.log(&format!(
            "berth: FAILED signals: cannot set up a signalfd: {e}"
        ));
    }
    if let Err(e) = nix::sys::reboot::set_cad_enabled(false) {
        sys.log(&format!("berth: FAILED ctrl-alt-del: cannot disable: {e}"));
    }
    let cmdline = sys
        .read_to_string(Path::new("/proc/cmdline"))
        .unwrap_or_default();
    let (options, problems) = BootOptions::parse_lenient(&cmdline);
    for problem in &problems {
        sys.log(&format!("berth: FAILED cmdline: ignored {problem}"));
    }
    let mut machine = Machine::new(sys, options);
    let mut manager = units::manager(&machine);
    manager.boot_times.userspace = Some(started);
    early::start(&mut manager);
    match signals {
        Ok(signals) => event_loop(&mut machine, &mut manager, &signals, started),
        Err(_) => {
            early::run_due(&mut machine, &mut manager);
            say_early_done(&machine, &manager, started);
            drop(start_units(&machine, &mut manager));
            machine.action = PowerAction::PowerOff;
            shutdown(&mut machine, "no signalfd");
        }
    }
}

/// Early boot's target is reached: said with its time and failures.
fn say_early_done(m: &Machine, manager: &Manager, started: Duration) {
    let took = m.sys.now().saturating_sub(started);
    m.log(&format!(
        "berth: early-boot done in {}.{:03}s ({} failed)",
        took.as_secs(),
        took.subsec_millis(),
        early::failed(manager)
    ));
}

/// The steps the manager needs are done ([`early::MANAGER_NEEDS`]): the sockets bound,
/// and `default.target` started with what early boot settled.
fn start_units(m: &Machine, manager: &mut Manager) -> Sockets {
    let sys = m.sys;
    let notify = match NotifySocket::bind(Path::new(NOTIFY_SOCKET)) {
        Ok(n) => Some(n),
        Err(e) => {
            sys.log(&format!("berth: FAILED notify socket {NOTIFY_SOCKET}: {e}"));
            None
        }
    };
    let control = match ControlSocket::bind(Path::new(CONTROL_SOCKET)) {
        Ok(c) => Some(c),
        Err(e) => {
            sys.log(&format!(
                "berth: FAILED control socket {CONTROL_SOCKET}: {e}"
            ));
            None
        }
    };
    manager.boot_times.initrd = sys
        .read_to_string(Path::new("/proc/1/stat"))
        .ok()
        .and_then(|stat| crate::manager::boot_times::process_start(&stat));
    // The boot finishes when default.target is reached, not early boot's target.
    manager.boot_times.finish = None;
    units::start_default(m, manager);
    Sockets { notify, control }
}

/// How long shutdown waits for units to stop before the final steps take over (each unit
/// has its own TimeoutStopSec=; this bounds the whole).
const UNITS_STOP_LIMIT: Duration = Duration::from_secs(120);

/// `exit 3` / `signal SIGKILL` from [`crate::sys::Reaped`].
pub fn parse_exit(how: &str) -> Option<Exit> {
    let (kind, value) = how.split_once(' ')?;
    match kind {
        "exit" => value.parse().ok().map(Exit::Code),
        "signal" => crate::unit::values::signal(value).ok().map(Exit::Signal),
        _ => None,
    }
}

/// Runs early boot's units to their end, each step in turn (the event loop interleaves
/// them with its other work instead); returns how many failed.
pub fn early_boot(machine: &mut Machine) -> usize {
    let mut manager = units::manager(machine);
    early::start(&mut manager);
    early::run_due(machine, &mut manager);
    early::failed(&manager)
}

fn shutdown(machine: &mut Machine, reason: &str) {
    machine.log(&format!(
        "berth: shutdown started: {} ({reason})",
        machine.action
    ));
    engine::run(machine, &shutdown::SHUTDOWN);
}

fn event_loop(m: &mut Machine, manager: &mut Manager, signals: &SignalFd, started: Duration) {
    let mut sockets = Sockets {
        notify: None,
        control: None,
    };
    let mut ready_said = false;
    // Early boot's steps run one per turn of the loop; the unit files are loaded once
    // the steps the manager needs are done, and early boot's end is said once.
    let mut units_started = false;
    let mut early_said = false;
    let mut steps: VecDeque<UnitName> = VecDeque::new();
    let mut watches = cgroup_watch::CgroupWatches::default();
    // Set once a shutdown signal came: units are being stopped until this deadline.
    let mut stopping: Option<(PowerAction, String, Duration)> = None;
    loop {
        steps.extend(manager.take_due_builtins());
        if stopping.is_some() {
            // Shutting down during early boot: the steps not run yet are cancelled.
            while let Some(unit) = steps.pop_front() {
                let why = "cancelled: the system is shutting down".to_owned();
                guarded(m, "built-in unit", || manager.builtin_done(&unit, Err(why)));
                steps.extend(manager.take_due_builtins());
            }
            early::cancel(m, manager);
        } else if let Some(unit) = steps.pop_front() {
            // A step that starts a helper returns at once: the unit stays activating until
            // the helper's exit comes through SIGCHLD below (`early::child_exited`).
            if let Some(result) = early::run_step(m, &unit, true) {
                guarded(m, "built-in unit", || manager.builtin_done(&unit, result));
            }
            steps.extend(manager.take_due_builtins());
        } else {
            early::expire(m, manager);
            steps.extend(manager.take_due_builtins());
        }
        if !units_started && stopping.is_none() && early::manager_may_start(manager) {
            units_started = true;
            sockets = start_units(m, manager);
            continue;
        }
        if units_started && !early_said && early::reached(manager) {
            early_said = true;
            say_early_done(m, manager, started);
        }
        guarded(m, "cgroup watch", || watches.update(m.sys, manager));
        manager.fire_timers();
        if early_said && !ready_said && manager.anchor_reached() {
            m.log("berth: ready");
            ready_said = true;
            // Start-up's garbage (expanded modules, parsed unit files) is free by now.
            m.sys.release_free_memory();
        }
        if let Some((action, why, deadline)) = &stopping {
            if !manager.busy() || m.sys.now() >= *deadline {
                if manager.busy() {
                    m.log("berth: FAILED shutdown: units still stopping, going on");
                }
                m.action = *action;
                let why = why.clone();
                // The sockets' open descriptors would keep /run busy at unmount.
                drop(sockets.notify.take());
                drop(sockets.control.take());
                manager.close_sockets();
                shutdown(m, &why);
                return;
            }
        }
        let next = [
            manager.next_deadline(),
            early::deadline(m),
            stopping.as_ref().map(|s| s.2),
            sockets.control.as_ref().and_then(|c| c.next_deadline()),
        ]
        .into_iter()
        .flatten()
        .min();
        let timeout = match next {
            // Another early-boot step is due: only look at what is already pending.
            _ if !steps.is_empty() && stopping.is_none() => PollTimeout::ZERO,
            Some(at) => {
                let ms = at.saturating_sub(m.sys.now()).as_millis().min(60_000);
                PollTimeout::try_from(ms as i32).unwrap_or(PollTimeout::MAX)
            }
            None => PollTimeout::NONE,
        };
        let mut fds = vec![PollFd::new(signals.as_fd(), PollFlags::POLLIN)];
        if let Some(n) = &sockets.notify {
            fds.push(PollFd::new(n.as_fd(), PollFlags::POLLIN));
        }
        if let Some(c) = &sockets.control {
            fds.extend(
                c.poll_fds()
                    .into_iter()
                    .map(|fd| PollFd::new(fd, PollFlags::POLLIN)),
            );
        }
        let cgroups = watches.fds();
        let first_cgroup = fds.len();
        fds.extend(
            cgroups
                .iter()
                .map(|(_, fd)| PollFd::new(*fd, PollFlags::POLLPRI)),
        );
        // Socket units whose service is not running: traffic starts it.
        let listening = manager.watched_sockets();
        let first_socket = fds.len();
        fds.extend(
            listening
                .iter()
                .map(|(_, fd)| PollFd::new(*fd, PollFlags::POLLIN)),
        );
        if let Err(e) = poll(&mut fds, timeout) {
            if e != nix::errno::Errno::EINTR {
                m.log(&format!("berth: FAILED poll: {e}"));
                m.sys.sleep(Duration::from_secs(1));
            }
            continue;
        }
        let fired = |from: usize| {
            fds[from..]
                .iter()
                .map(|fd| fd.revents().is_some_and(|r| !r.is_empty()))
                .collect::<Vec<bool>>()
        };
        let changed: Vec<UnitName> = cgroups
            .iter()
            .zip(fired(first_cgroup))
            .filter(|(_, f)| *f)
            .map(|((name, _), _)| name.clone())
            .collect();
        let mut traffic: Vec<UnitName> = listening
            .iter()
            .zip(fired(first_socket))
            .filter(|(_, f)| *f)
            .map(|((name, _), _)| name.clone())
            .collect();
        traffic.dedup();
        drop(fds);
        drop(cgroups);
        drop(listening);
        watches.fired(&changed);
        for socket in &traffic {
            guarded(m, "socket", || manager.socket_traffic(socket));
        }
        if let Some(n) = &sockets.notify {
            while let Some((pid, message)) = n.receive() {
                guarded(m, "notify", || manager.notify(pid, &message));
            }
        }
        let mut power = None;
        if let Some(c) = &mut sockets.control {
            let now = m.sys.now();
            c.serve(now, |request, uid| {
                let (reply, asked) = crate::control::handle::handle(manager, &request, uid);
                power = power.or(asked);
                reply
            });
        }
        if let Some(action) = power.filter(|_| stopping.is_none()) {
            m.log(&format!("berth: stopping units for {action} (systemctl)"));
            guarded(m, "stop units", || manager.stop_all());
            stopping = Some((action, "systemctl".into(), m.sys.now() + UNITS_STOP_LIMIT));
        }
        // Drain every pending signal.
        while let Ok(Some(info)) = signals.read_signal() {
            let signo = info.ssi_signo as i32;
            if signo == nix::libc::SIGCHLD {
                for (pid, how) in m.sys.reap().exited {
                    if early::child_exited(m, manager, pid, &how) {
                        steps.extend(manager.take_due_builtins());
                    } else if let Some(exit) = parse_exit(&how) {
                        guarded(m, "child exit", || manager.child_exited(pid, exit));
                    }
                }
            } else if let Some(action) = shutdown_action(signo) {
                if stopping.is_none() {
                    m.log(&format!(
                        "berth: stopping units for {action} ({})",
                        signal_name(signo)
                    ));
                    guarded(m, "stop units", || manager.stop_all());
                    let deadline = m.sys.now() + UNITS_STOP_LIMIT;
                    stopping = Some((action, signal_name(signo), deadline));
                }
            }
        }
    }
}

/// Runs one event handler; a panic in it (a bug) is reported and PID 1 goes on.
fn guarded(m: &Machine, what: &str, f: impl FnOnce()) {
    if let Err(panic) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        let why = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "panic".into());
        m.log(&format!("berth: FAILED {what}: {why}"));
    }
}

/// What `/` is, from mountinfo: `/dev/dm-0 ext4 ro`. The last `/` mount wins (the one
/// stage 1 moved into place over the initramfs).
pub fn describe_root(mountinfo: &str) -> Option<String> {
    let entry = mounts::parse_mountinfo(mountinfo)
        .into_iter()
        .rfind(|e| e.target == "/")?;
    let mode = match entry.options.split(',').any(|o| o == "ro") {
        true => "ro",
        false => "rw",
    };
    Some(format!("{} {} {mode}", entry.source, entry.fstype))
}

fn signal_fd() -> nix::Result<SignalFd> {
    let all = SigSet::all();
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&all), None)?;
    SignalFd::with_flags(&all, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
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
mod early_tests;
#[cfg(test)]
mod forked_tests;
#[cfg(test)]
mod helper_tests;
#[cfg(test)]
mod mounts_tests;
#[cfg(test)]
mod tests;
