//! The vocabulary of a service's life: its states (systemctl's ActiveState, SubState
//! and Result), the events the engine feeds in and the actions it is asked to do.

use std::time::Duration;

/// systemctl's ActiveState.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Active {
    Inactive,
    Activating,
    Active,
    Deactivating,
    Failed,
}

impl Active {
    pub fn as_str(self) -> &'static str {
        match self {
            Active::Inactive => "inactive",
            Active::Activating => "activating",
            Active::Active => "active",
            Active::Deactivating => "deactivating",
            Active::Failed => "failed",
        }
    }
}

/// Where in its life the service is (systemctl's SubState).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Dead,
    StartPre,
    Start,
    StartPost,
    Running,
    Exited,
    Stop,
    StopSigterm,
    /// The watchdog expired: `WatchdogSignal=` was sent (systemd's `stop-watchdog`).
    StopWatchdog,
    StopSigkill,
    StopPost,
    /// `ExecStopPost=` ran out of time: its process was sent `KillSignal=`, the
    /// abort's signal or SIGKILL by itself (`KillMode=process`, `mixed`).
    FinalSigterm,
    FinalWatchdog,
    FinalSigkill,
    AutoRestart,
    Failed,
    Reload,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Dead => "dead",
            Phase::StartPre => "start-pre",
            Phase::Start => "start",
            Phase::StartPost => "start-post",
            Phase::Running => "running",
            Phase::Exited => "exited",
            Phase::Stop => "stop",
            Phase::StopSigterm => "stop-sigterm",
            Phase::StopWatchdog => "stop-watchdog",
            Phase::StopSigkill => "stop-sigkill",
            Phase::StopPost => "stop-post",
            Phase::FinalSigterm => "final-sigterm",
            Phase::FinalWatchdog => "final-watchdog",
            Phase::FinalSigkill => "final-sigkill",
            Phase::AutoRestart => "auto-restart",
            Phase::Failed => "failed",
            Phase::Reload => "reload",
        }
    }
}

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Code(i32),
    Signal(i32),
}

/// Why a service failed (systemctl's Result).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    ExitCode,
    Signal,
    Timeout,
    Watchdog,
    StartLimit,
    Resources,
    Protocol,
}

impl Failure {
    pub fn as_str(self) -> &'static str {
        match self {
            Failure::ExitCode => "exit-code",
            Failure::Signal => "signal",
            Failure::Timeout => "timeout",
            Failure::Watchdog => "watchdog",
            Failure::StartLimit => "start-limit-hit",
            Failure::Resources => "resources",
            Failure::Protocol => "protocol",
        }
    }
}

/// Which command list a spawned process belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandSet {
    StartPre,
    Start,
    StartPost,
    Stop,
    StopPost,
    Reload,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// A start job for this unit runs.
    Start,
    /// A stop job for this unit runs (stops a pending restart too).
    Stop,
    /// The process spawned for `Action::Spawn` got this PID (or failed to start).
    Spawned(Result<u32, ()>),
    /// The process spawned for `Action::Spawn` (PID `pid`) failed a step before `execve`
    /// and exited with that step's status (systemd.exec(5), "Process Exit Codes").
    ExitedBeforeExec {
        pid: u32,
        status: i32,
    },
    Exited {
        pid: u32,
        how: Exit,
    },
    /// `READY=1` from the service.
    Ready,
    /// `RELOADING=1` from the service: it reloads on its own, until its `READY=1`.
    Reloading,
    /// `MAINPID=` from the service, or the PID read from `PIDFile=`.
    MainPid(u32),
    /// `systemctl reload` (the engine checks [`ServiceRun::can_reload`] first).
    Reload,
    /// The armed timer fired.
    Timer,
    /// The watchdog timer fired (armed by [`Action::ArmWatchdog`]).
    WatchdogExpired,
    /// `WATCHDOG=1` from the service: the watchdog starts over.
    WatchdogPing,
    /// `WATCHDOG_USEC=` from the service: the watchdog's new period (zero: off).
    WatchdogPeriod(Duration),
    /// The unit's cgroup holds no process (an answer to [`Action::AwaitGroupEmpty`]).
    CgroupEmpty,
}

/// Whom to signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KillTarget {
    /// The main process.
    Main(u32),
    /// The control process (an `ExecStartPre=`, `ExecStop=` ... command).
    Control(u32),
    /// Every process of the unit's cgroup.
    Group,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Start command `index` of `set`; answer with [`Event::Spawned`].
    Spawn {
        set: CommandSet,
        index: usize,
    },
    /// A stop signal as systemd 252's `unit_kill_context` sends it: `signal`, then SIGCONT
    /// (unless `signal` is SIGKILL or SIGCONT), so that a stopped process wakes to handle it.
    Kill {
        target: KillTarget,
        signal: i32,
    },
    /// `signal` alone, not followed by SIGCONT: the reload signal and `SendSIGHUP=`'s
    /// SIGHUP, which systemd sends with a plain kill(2).
    Signal {
        target: KillTarget,
        signal: i32,
    },
    /// Fire [`Event::Timer`] after this long (replaces any armed timer).
    Arm(Duration),
    Disarm,
    /// Fire [`Event::WatchdogExpired`] after this long (replaces an armed watchdog).
    ArmWatchdog(Duration),
    DisarmWatchdog,
    /// Read the PID file and answer with [`Event::MainPid`].
    ReadPidFile,
    /// The run waits for its cgroup to empty: answer with [`Event::CgroupEmpty`] at once
    /// when it is empty, else when its `cgroup.events` says `populated 0`.
    AwaitGroupEmpty,
}

/// How the drain of an ended run's cgroup ended (systemd's final-sigterm and
/// final-sigkill states).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DrainEnd {
    /// The cgroup emptied within its time.
    Empty,
    /// It ran out of time: after the final SIGKILL (or a SIGKILL that emptied it late),
    /// `may_restart`; after the stop signal without `SendSIGKILL=`, not.
    TimedOut { may_restart: bool },
}
