//! The life of one service (systemd's service.c in spirit), as a pure state machine:
//! events in (start, stop, a process exited, READY=1, a timer fired), actions out (spawn
//! this command, signal that process or the cgroup, arm a timer). The engine does the
//! actions through the `Syscalls` boundary; this module decides, so every rule of
//! systemd.service(5) and systemd.kill(5) here is tested with virtual time alone.
//!
//! Covered: `Type=` simple, exec, idle (active once started), forking (active when the
//! start command exits 0, main PID from `PIDFile=`), oneshot (active, or inactive without
//! `RemainAfterExit=`, once every `ExecStart=` exited), notify and notify-reload (active on
//! `READY=1`); `ExecStartPre`/`StartPost`/`Stop`/`StopPost` in order, `-` prefixes;
//! `TimeoutStartSec`/`TimeoutStopSec`, SIGTERM then SIGKILL per `KillMode=`;
//! `Restart=` (all seven), `RestartSec=`, `RestartPreventExitStatus=`,
//! `RestartForceExitStatus=`, `SuccessExitStatus=`; `TimeoutStartFailureMode=`, `TimeoutStopFailureMode=` and
//! `TimeoutAbortSec=` ([`stop`]); a stuck `ExecStopPost=` signalled by itself under
//! `KillMode=process` and `mixed` ([`final_signals`]); the start rate limit;
//! `RuntimeMaxSec=` (the one timer, armed while running); `WatchdogSec=` (a second
//! timer of its own, armed from start-post on, reset by `WATCHDOG=1`, changed by
//! `WATCHDOG_USEC=`, whose expiry sends `WatchdogSignal=` and fails the run with result
//! `watchdog`); `ExecReload=` and notify-reload's `ReloadSignal=` and reset-failed
//! ([`control`]).

use std::time::Duration;

use super::exec::ExecCommand;
use super::exec_record::ExecRecord;
use super::service::{KillMode, Restart, Service, ServiceType, TimeoutFailureMode};

#[path = "lifecycle_types.rs"]
mod types;
pub use types::{Action, Active, CommandSet, DrainEnd, Event, Exit, Failure, KillTarget, Phase};

const SIGKILL: i32 = 9;
const SIGHUP: i32 = 1;
/// Signals that end a service "cleanly" (systemd.service(5) "SuccessExitStatus=").
const CLEAN_SIGNALS: [i32; 4] = [1, 2, 13, 15];

/// The state of one service's run.
#[derive(Debug, Clone)]
pub struct ServiceRun {
    pub active: Active,
    pub phase: Phase,
    pub main_pid: Option<u32>,
    /// The last main process, also once it exited (systemd's `ExecMainPID`).
    pub exec_main_pid: Option<u32>,
    /// How that main process ended (systemd's `ExecMainCode`/`ExecMainStatus`).
    pub main_exit: Option<Exit>,
    /// The process of a Pre/Post/Stop command (or forking's start command).
    pub control_pid: Option<u32>,
    /// The command being run, within its set.
    current: Option<(CommandSet, usize)>,
    pub result: Option<Failure>,
    pub last_exit: Option<Exit>,
    /// Start times within the start limit window.
    starts: Vec<Duration>,
    /// A stop was asked for: no restart.
    stop_requested: bool,
    pub restarts: u32,
    /// `WATCHDOG_USEC=` of this run, which replaces `WatchdogSec=`.
    watchdog_override: Option<Duration>,
    /// Whether the watchdog timer is armed.
    watchdog_armed: bool,
    /// How the last reload ended (`None` before any, or while one runs).
    pub reload_result: Option<Failure>,
    /// The main process ended while `ExecReload=` ran: acted on once the reload is done.
    main_ended_in_reload: bool,
    /// When `RuntimeMaxSec=` ends this run (a reload's timeout replaces its timer).
    runtime_deadline: Option<Duration>,
    /// The time of the event being handled.
    clock: Duration,
    /// `ExecStopPost=` ran out of time: the final drain begins where
    /// `TimeoutStopFailureMode=` says (systemd's final-sigterm, -watchdog or -sigkill).
    pub stop_post_timed_out: bool,
    /// The process of each command run since the start began, one per command.
    pub exec_records: Vec<ExecRecord>,
}

impl Default for ServiceRun {
    fn default() -> Self {
        ServiceRun {
            active: Active::Inactive,
            phase: Phase::Dead,
            main_pid: None,
            exec_main_pid: None,
            main_exit: None,
            control_pid: None,
            current: None,
            result: None,
            last_exit: None,
            starts: Vec::new(),
            stop_requested: false,
            restarts: 0,
            watchdog_override: None,
            watchdog_armed: false,
            reload_result: None,
            main_ended_in_reload: false,
            stop_post_timed_out: false,
            runtime_deadline: None,
            clock: Duration::ZERO,
            exec_records: Vec::new(),
        }
    }
}

/// The commands of `set` (`ExecStartPre=` ...).
pub fn command_list(svc: &Service, set: CommandSet) -> &[ExecCommand] {
    match set {
        CommandSet::StartPre => &svc.exec_start_pre,
        CommandSet::Start => &svc.exec_start,
        CommandSet::StartPost => &svc.exec_start_post,
        CommandSet::Stop => &svc.exec_stop,
        CommandSet::StopPost => &svc.exec_stop_post,
        CommandSet::Reload => &svc.exec_reload,
    }
}

fn commands(svc: &Service, set: CommandSet) -> usize {
    command_list(svc, set).len()
}

fn ignores_failure(svc: &Service, set: CommandSet, index: usize) -> bool {
    command_list(svc, set)
        .get(index)
        .is_some_and(|c| c.flags.ignore_failure)
}

/// Whether the service is started as soon as its main process is forked (`Type=simple`
/// and `idle`, systemd 252's `service_enter_start`), so that a main process that fails
/// before `execve` fails a started service; the other types wait for the program.
pub fn active_at_fork(svc: &Service) -> bool {
    matches!(svc.service_type, ServiceType::Simple | ServiceType::Idle)
}

/// Whether `how` counts as success for this service.
pub fn is_success(svc: &Service, how: Exit) -> bool {
    match how {
        Exit::Code(0) => true,
        Exit::Code(c) => svc.success_exit_status.contains(&c),
        Exit::Signal(s) => CLEAN_SIGNALS.contains(&s) || svc.success_exit_status.contains(&-s),
    }
}

/// The restart table of systemd.service(5), as 252's `service_shall_restart` applies
/// it: `how` is the main process's end, which `RestartPreventExitStatus=` (first) and
/// `RestartForceExitStatus=` (whatever `Restart=` says) look at.
pub fn should_restart(svc: &Service, failure: Option<Failure>, how: Option<Exit>) -> bool {
    if let Some(how) = how {
        let code = match how {
            Exit::Code(c) => c,
            Exit::Signal(s) => -s,
        };
        if svc.restart_prevent_exit_status.contains(&code) {
            return false;
        }
        if svc.restart_force_exit_status.contains(&code) {
            return true;
        }
    }
    let clean = failure.is_none();
    let unclean_signal = matches!(failure, Some(Failure::Signal));
    match svc.restart {
        Restart::No => false,
        Restart::Always => true,
        Restart::OnSuccess => clean,
        Restart::OnFailure => !clean && failure != Some(Failure::StartLimit),
        // systemd 252's service_shall_restart: any failure but an exit code (a signal,
        // timeout, watchdog, and also resources or protocol).
        Restart::OnAbnormal => !clean && failure != Some(Failure::ExitCode),
        Restart::OnAbort => unclean_signal,
        Restart::OnWatchdog => failure == Some(Failure::Watchdog),
    }
}

impl ServiceRun {
    fn set(&mut self, active: Active, phase: Phase) {
        self.active = active;
        self.phase = phase;
    }

    /// Feeds one event; returns what to do, in order.
    pub fn handle(
        &mut self,
        svc: &Service,
        unit_limit: (Duration, u32),
        event: Event,
        now: Duration,
    ) -> Vec<Action> {
        let mut out = Vec::new();
        self.clock = now;
        self.dispatch(svc, unit_limit, event, now, &mut out);
        // The watchdog runs only while the service runs (start-post and running).
        if self.watchdog_armed && !matches!(self.phase, Phase::StartPost | Phase::Running) {
            self.watchdog_armed = false;
            out.push(Action::DisarmWatchdog);
        }
        out
    }

    /// The watchdog period of this run: `WATCHDOG_USEC=`, else `WatchdogSec=`.
    pub fn watchdog_period(&self, svc: &Service) -> Option<Duration> {
        self.watchdog_override
            .or(svc.watchdog)
            .filter(|d| !d.is_zero())
    }

    /// (Re)arms the watchdog with the period of this run, or disarms it when it has none.
    fn reset_watchdog(&mut self, svc: &Service, out: &mut Vec<Action>) {
        match self.watchdog_period(svc) {
            Some(period) => {
                self.watchdog_armed = true;
                out.push(Action::ArmWatchdog(period));
            }
            None if self.watchdog_armed => {
                self.watchdog_armed = false;
                out.push(Action::DisarmWatchdog);
            }
            None => {}
        }
    }

    fn dispatch(
        &mut self,
        svc: &Service,
        unit_limit: (Duration, u32),
        event: Event,
        now: Duration,
        out: &mut Vec<Action>,
    ) {
        match event {
            Event::Start => self.start(svc, unit_limit, now, out),
            Event::Stop => {
                self.stop_requested = true;
                self.begin_stop(svc, out);
            }
            Event::Spawned(Ok(pid)) => self.spawned(svc, pid, out),
            Event::Spawned(Err(())) => {
                self.result = Some(Failure::Resources);
                self.begin_stop_post(svc, out);
            }
            Event::Exited { pid, how } => self.exited(svc, pid, how, out),
            Event::ExitedBeforeExec { pid, status } => {
                self.exited_before_exec(svc, pid, status, out)
            }
            Event::Ready if self.phase == Phase::Reload => self.reload_done(svc, None, out),
            Event::Ready => {
                if self.phase == Phase::Start
                    && matches!(
                        svc.service_type,
                        ServiceType::Notify | ServiceType::NotifyReload
                    )
                {
                    out.push(Action::Disarm);
                    self.next_after_start(svc, out);
                }
            }
            Event::MainPid(pid) => {
                self.main_pid = Some(pid);
                self.exec_main_pid = Some(pid);
                if self.phase == Phase::Start && svc.service_type == ServiceType::Forking {
                    out.push(Action::Disarm);
                    self.next_after_start(svc, out);
                }
            }
            Event::Reload => self.reload(svc, out),
            Event::Reloading => self.reloading_notified(svc, out),
            Event::Timer => self.timer(svc, unit_limit, now, out),
            Event::WatchdogExpired => {
                self.watchdog_armed = false;
                if matches!(self.phase, Phase::StartPost | Phase::Running) {
                    // systemd.service(5): no ExecStop=, the watchdog signal straight away,
                    // then SIGKILL after TimeoutAbortSec= (which defaults to TimeoutStopSec=).
                    self.result = Some(Failure::Watchdog);
                    self.set(Active::Deactivating, Phase::Stop);
                    self.signal(svc, svc.watchdog_signal, Phase::StopWatchdog, out);
                }
            }
            Event::WatchdogPing => {
                if matches!(self.phase, Phase::StartPost | Phase::Running) {
                    self.reset_watchdog(svc, out);
                }
            }
            Event::CgroupEmpty => self.group_empty(svc, out),
            Event::WatchdogPeriod(period) => {
                self.watchdog_override = Some(period);
                if matches!(self.phase, Phase::StartPost | Phase::Running) {
                    self.reset_watchdog(svc, out);
                }
            }
        }
    }

    fn start(
        &mut self,
        svc: &Service,
        (interval, burst): (Duration, u32),
        now: Duration,
        out: &mut Vec<Action>,
    ) {
        if matches!(self.active, Active::Active | Active::Activating) {
            return;
        }
        // The start rate limit: at most `burst` starts within `interval` (zero: no limit).
        if !interval.is_zero() {
            self.starts.retain(|t| now.saturating_sub(*t) < interval);
            if self.starts.len() >= burst as usize {
                self.result = Some(Failure::StartLimit);
                self.set(Active::Failed, Phase::Failed);
                return;
            }
            self.starts.push(now);
        }
        self.stop_requested = false;
        self.result = None;
        self.last_exit = None;
        self.main_pid = None;
        self.exec_main_pid = None;
        self.main_exit = None;
        self.exec_records.clear();
        self.stop_post_timed_out = false;
        self.runtime_deadline = None;
        self.watchdog_override = None;
        self.set(Active::Activating, Phase::StartPre);
        if let Some(t) = svc.timeout_start {
            out.push(Action::Arm(t));
        }
        self.run_from(svc, CommandSet::StartPre, 0, out);
    }

    /// Runs command `index` of `set`, or moves on when the set is done.
    fn run_from(&mut self, svc: &Service, set: CommandSet, index: usize, out: &mut Vec<Action>) {
        if index < commands(svc, set) {
            self.current = Some((set, index));
            out.push(Action::Spawn { set, index });
            return;
        }
        self.current = None;
        match set {
            CommandSet::StartPre => {
                self.phase = Phase::Start;
                if commands(svc, CommandSet::Start) == 0 {
                    // Only a oneshot may have no ExecStart= (with RemainAfterExit=).
                    self.next_after_start(svc, out);
                } else {
                    self.run_from(svc, CommandSet::Start, 0, out);
                }
            }
            CommandSet::Start => self.next_after_start(svc, out),
            CommandSet::StartPost => self.enter_running(svc, out),
            CommandSet::Stop => self.signal_remaining(svc, out),
            CommandSet::StopPost => self.finish(svc, out),
            CommandSet::Reload => self.reload_done(svc, None, out),
        }
    }

    fn spawned(&mut self, svc: &Service, pid: u32, out: &mut Vec<Action>) {
        self.record_spawn(pid);
        match self.current {
            Some((CommandSet::Start, _))
                if svc.service_type == ServiceType::Forking
                    || svc.service_type == ServiceType::Oneshot =>
            {
                self.control_pid = Some(pid);
                // A oneshot's start command is its main process for systemctl.
                if svc.service_type == ServiceType::Oneshot {
                    self.exec_main_pid = Some(pid);
                }
            }
            Some((CommandSet::Start, _)) => {
                self.main_pid = Some(pid);
                self.exec_main_pid = Some(pid);
                self.current = None;
                // simple, exec, idle: started is running; notify waits for READY=1.
                if !matches!(
                    svc.service_type,
                    ServiceType::Notify | ServiceType::NotifyReload
                ) {
                    self.next_after_start(svc, out);
                }
            }
            _ => self.control_pid = Some(pid),
        }
    }

    fn next_after_start(&mut self, svc: &Service, out: &mut Vec<Action>) {
        self.phase = Phase::StartPost;
        self.reset_watchdog(svc, out);
        self.run_from(svc, CommandSet::StartPost, 0, out);
    }
}

#[path = "lifecycle_exit.rs"]
mod exit;

#[path = "lifecycle_stop.rs"]
mod stop;

#[path = "lifecycle_final.rs"]
mod final_signals;

#[path = "lifecycle_timeout_log.rs"]
mod timeout_log;
pub use timeout_log::{state_timed_out, FINAL_SIGKILL_LEFT};

#[path = "lifecycle_control.rs"]
pub mod control;

#[cfg(test)]
#[path = "lifecycle_tests.rs"]
mod tests;
