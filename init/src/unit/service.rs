//! The `[Service]` section (systemd.service(5), .exec(5), .kill(5), .resource-control(5)):
//! the service type, its commands, restart policy and timeouts, the execution
//! environment, how it is stopped, and its cgroup limits.

use std::collections::BTreeMap;
use std::time::Duration;

use super::exec::{self, is_env_name, ExecCommand};
use super::model::{extend_names, Applied, Ctx};
use super::name::{UnitName, UnitType};
use super::seccomp::Seccomp;
use super::setting_names::Named;
use super::syntax::Assignment;
use super::terminal::Terminal;
use super::values::{self, Limit, WorkingDirectory};
use super::words::{self, Mode};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ServiceType {
    #[default]
    Simple,
    Exec,
    Forking,
    Oneshot,
    Notify,
    NotifyReload,
    Idle,
    Dbus,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Restart {
    #[default]
    No,
    Always,
    OnSuccess,
    OnFailure,
    OnAbnormal,
    OnAbort,
    OnWatchdog,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum KillMode {
    #[default]
    ControlGroup,
    Mixed,
    Process,
    None,
}

/// `TimeoutStartFailureMode=`, `TimeoutStopFailureMode=`: what a start or stop step out
/// of time does next (systemd.service(5)).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum TimeoutFailureMode {
    /// `KillSignal=`, then SIGKILL after `TimeoutStopSec=`.
    #[default]
    Terminate,
    /// `WatchdogSignal=` (SIGABRT), then SIGKILL after `TimeoutAbortSec=`.
    Abort,
    /// SIGKILL at once.
    Kill,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum NotifyAccess {
    #[default]
    None,
    Main,
    Exec,
    All,
}

/// Where a standard stream goes (StandardInput/Output/Error=).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Stdio {
    #[default]
    Inherit,
    Null,
    Tty,
    Journal,
    Kmsg,
    JournalConsole,
    KmsgConsole,
    File(String),
    Append(String),
    Truncate(String),
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ProtectSystem {
    #[default]
    No,
    Yes,
    Full,
    Strict,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ProtectHome {
    #[default]
    No,
    Yes,
    ReadOnly,
    Tmpfs,
}

/// `RuntimeDirectoryPreserve=`: when the run's `RuntimeDirectory=` folders are removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Preserve {
    /// `no`: whenever a run ends, an automatic restart's too.
    #[default]
    No,
    /// `yes`: never.
    Yes,
    /// `restart`: when a run ends unless the unit is restarted (automatically or by
    /// `systemctl restart`).
    Restart,
}

/// `RuntimeDirectory=` and its siblings: names below their base folder, with the mode.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Directories {
    pub names: Vec<String>,
    pub mode: u32,
}

/// cgroup settings (systemd.resource-control(5)).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Resources {
    pub slice: Option<UnitName>,
    pub delegate: bool,
    /// The controllers named by `Delegate=`; empty means all of them.
    pub delegate_controllers: Vec<String>,
    pub cpu_weight: Option<u64>,
    /// `StartupCPUWeight=`: the weight while the system starts up, instead of `cpu_weight`.
    pub startup_cpu_weight: Option<u64>,
    /// Per cent of one CPU (`CPUQuota=150%` is 150).
    pub cpu_quota_percent: Option<u64>,
    pub memory_max: Option<Limit>,
    pub memory_high: Option<Limit>,
    pub memory_low: Option<Limit>,
    pub memory_min: Option<Limit>,
    pub tasks_max: Option<Limit>,
    pub io_weight: Option<u64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Service {
    pub service_type: ServiceType,
    pub exec_start_pre: Vec<ExecCommand>,
    pub exec_start: Vec<ExecCommand>,
    pub exec_start_post: Vec<ExecCommand>,
    pub exec_reload: Vec<ExecCommand>,
    pub exec_stop: Vec<ExecCommand>,
    pub exec_stop_post: Vec<ExecCommand>,
    pub remain_after_exit: bool,
    pub pid_file: Option<String>,
    pub restart: Restart,
    pub restart_sec: Duration,
    pub restart_prevent_exit_status: Vec<i32>,
    /// `RestartForceExitStatus=`: main process ends that restart whatever `Restart=` says.
    pub restart_force_exit_status: Vec<i32>,
    pub success_exit_status: Vec<i32>,
    /// `None` is infinity.
    pub timeout_start: Option<Duration>,
    pub timeout_stop: Option<Duration>,
    /// `TimeoutAbortSec=`: `None` when unset (`TimeoutStopSec=` applies), `Some(None)`
    /// for infinity; see [`Service::abort_timeout`].
    pub timeout_abort: Option<Option<Duration>>,
    pub timeout_start_failure_mode: TimeoutFailureMode,
    pub timeout_stop_failure_mode: TimeoutFailureMode,
    pub runtime_max: Option<Duration>,
    pub watchdog: Option<Duration>,
    /// `WatchdogSignal=`: sent when the watchdog expires (SIGABRT by default).
    pub watchdog_signal: i32,
    pub notify_access: Option<NotifyAccess>,
    pub kill_mode: KillMode,
    pub kill_signal: i32,
    /// `ReloadSignal=` of `Type=notify-reload` (SIGHUP by default).
    pub reload_signal: i32,
    pub send_sigkill: bool,
    pub send_sighup: bool,
    /// `Environment=`, in order; later assignments of a name win.
    pub environment: BTreeMap<String, String>,
    /// `EnvironmentFile=`: path and whether a missing file is fine (`-`).
    pub environment_files: Vec<(String, bool)>,
    pub pass_environment: Vec<String>,
    pub unset_environment: Vec<String>,
    pub working_directory: Option<WorkingDirectory>,
    pub user: Option<String>,
    pub group: Option<String>,
    pub supplementary_groups: Vec<String>,
    pub umask: u32,
    /// `StandardOutput=`; unset, the journal, or the terminal when it is standard input
    /// ([`Service::stdout`]).
    pub standard_output: Option<Stdio>,
    pub standard_error: Option<Stdio>,
    /// `StandardInput=` and the terminal's settings.
    pub terminal: Terminal,
    /// `SyslogIdentifier=`: the journal's SYSLOG_IDENTIFIER (default: the program's name).
    pub syslog_identifier: Option<String>,
    /// `SyslogLevel=`: the priority of lines without a `<N>` prefix (default info, 6).
    pub syslog_level: u8,
    /// `SyslogLevelPrefix=`: whether `<N>` at the start of a line sets its priority.
    pub syslog_level_prefix: bool,
    pub runtime_directory: Directories,
    pub runtime_directory_preserve: Preserve,
    pub state_directory: Directories,
    pub cache_directory: Directories,
    pub logs_directory: Directories,
    /// `Limit*=`: resource name (`NOFILE`) to (soft, hard); `None` is infinity.
    pub limits: BTreeMap<String, (Option<u64>, Option<u64>)>,
    pub oom_score_adjust: Option<i32>,
    pub nice: Option<i32>,
    pub no_new_privileges: bool,
    /// `IgnoreSIGPIPE=` (default yes): the commands start with SIGPIPE ignored, so a write
    /// to a closed pipe or socket fails with EPIPE instead of ending the process.
    pub ignore_sigpipe: bool,
    pub capability_bounding_set: Option<Vec<String>>,
    pub ambient_capabilities: Vec<String>,
    pub private_tmp: bool,
    pub protect_system: ProtectSystem,
    pub protect_home: ProtectHome,
    /// `ProtectControlGroups=`: the cgroup tree read-only.
    pub protect_control_groups: bool,
    /// `ProtectKernelModules=`: no module loading (CAP_SYS_MODULE dropped, the module
    /// folders inaccessible).
    pub protect_kernel_modules: bool,
    /// `ProtectKernelLogs=`: the kernel log out of reach (CAP_SYSLOG dropped, `/proc/kmsg`
    /// and `/dev/kmsg` inaccessible).
    pub protect_kernel_logs: bool,
    /// `ProtectKernelTunables=`: `/proc/sys`, `/sys` and the other tunables read-only.
    pub protect_kernel_tunables: bool,
    /// `ProtectHostname=`: a UTS namespace of its own (a host name set inside stays there).
    pub protect_hostname: bool,
    /// `ProtectClock=`: the clock cannot be set (CAP_SYS_TIME and CAP_WAKE_ALARM dropped).
    pub protect_clock: bool,
    /// `PrivateNetwork=`: a network namespace of its own with only the loopback link, up.
    pub private_network: bool,
    pub read_write_paths: Vec<String>,
    pub read_only_paths: Vec<String>,
    pub resources: Resources,
    /// `SystemCallFilter=` and the other seccomp settings.
    pub seccomp: Seccomp,
    /// `Sockets=`: socket units whose descriptors the service also gets (besides the
    /// sockets that name it, or share its name); each is wanted and ordered before it.
    pub sockets: Vec<UnitName>,
}

impl Default for Service {
    fn default() -> Service {
        let dirs = |mode| Directories {
            names: Vec::new(),
            mode,
        };
        Service {
            service_type: ServiceType::Simple,
            exec_start_pre: Vec::new(),
            exec_start: Vec::new(),
            exec_start_post: Vec::new(),
            exec_reload: Vec::new(),
            exec_stop: Vec::new(),
            exec_stop_post: Vec::new(),
            remain_after_exit: false,
            pid_file: None,
            restart: Restart::No,
            restart_sec: Duration::from_millis(100),
            restart_prevent_exit_status: Vec::new(),
            restart_force_exit_status: Vec::new(),
            success_exit_status: Vec::new(),
            // DefaultTimeoutStartSec= and DefaultTimeoutStopSec= of system.conf.
            timeout_start: Some(Duration::from_secs(90)),
            timeout_stop: Some(Duration::from_secs(90)),
            // DefaultTimeoutAbortSec= is unset by default.
            timeout_abort: None,
            timeout_start_failure_mode: TimeoutFailureMode::Terminate,
            timeout_stop_failure_mode: TimeoutFailureMode::Terminate,
            runtime_max: None,
            watchdog: None,
            watchdog_signal: 6,
            notify_access: None,
            kill_mode: KillMode::ControlGroup,
            kill_signal: 15,
            reload_signal: 1,
            send_sigkill: true,
            send_sighup: false,
            environment: BTreeMap::new(),
            environment_files: Vec::new(),
            pass_environment: Vec::new(),
            unset_environment: Vec::new(),
            working_directory: None,
            user: None,
            group: None,
            supplementary_groups: Vec::new(),
            umask: 0o022,
            standard_output: None,
            standard_error: None,
            terminal: Terminal::default(),
            syslog_identifier: None,
            syslog_level: 6,
            syslog_level_prefix: true,
            runtime_directory: dirs(0o755),
            runtime_directory_preserve: Preserve::No,
            state_directory: dirs(0o755),
            cache_directory: dirs(0o755),
            logs_directory: dirs(0o755),
            limits: BTreeMap::new(),
            oom_score_adjust: None,
            nice: None,
            no_new_privileges: false,
            ignore_sigpipe: true,
            capability_bounding_set: None,
            ambient_capabilities: Vec::new(),
            private_tmp: false,
            protect_system: ProtectSystem::No,
            protect_home: ProtectHome::No,
            protect_control_groups: false,
            protect_kernel_modules: false,
            protect_kernel_logs: false,
            protect_kernel_tunables: false,
            protect_hostname: false,
            protect_clock: false,
            private_network: false,
            read_write_paths: Vec::new(),
            read_only_paths: Vec::new(),
            seccomp: Seccomp::default(),
            sockets: Vec::new(),
            resources: Resources::default(),
        }
    }
}

/// cgroup v2 controllers `Delegate=` may name.
const CONTROLLERS: [&str; 8] = [
    "cpu", "cpuacct", "cpuset", "io", "blkio", "memory", "devices", "pids",
];

/// Exit status names of systemd.exec(5) "Process Exit Codes": LSB, BSD sysexits.h, and
/// the ones systemd itself uses.
const EXIT_STATUS_NAMES: [(&str, i32); 27] = [
    ("SUCCESS", 0),
    ("FAILURE", 1),
    ("INVALIDARGUMENT", 2),
    ("NOTIMPLEMENTED", 3),
    ("NOPERMISSION", 4),
    ("NOTINSTALLED", 5),
    ("NOTCONFIGURED", 6),
    ("NOTRUNNING", 7),
    ("USAGE", 64),
    ("DATAERR", 65),
    ("NOINPUT", 66),
    ("NOUSER", 67),
    ("NOHOST", 68),
    ("UNAVAILABLE", 69),
    ("SOFTWARE", 70),
    ("OSERR", 71),
    ("OSFILE", 72),
    ("CANTCREAT", 73),
    ("IOERR", 74),
    ("TEMPFAIL", 75),
    ("PROTOCOL", 76),
    ("NOPERM", 77),
    ("CONFIG", 78),
    ("CHDIR", 200),
    ("EXEC", 203),
    ("GROUP", 216),
    ("USER", 217),
];

/// Resource names of `Limit*=` (setrlimit(2)); time limits take time spans.
const RLIMITS: [&str; 16] = [
    "CPU",
    "FSIZE",
    "DATA",
    "STACK",
    "CORE",
    "RSS",
    "NOFILE",
    "AS",
    "NPROC",
    "MEMLOCK",
    "LOCKS",
    "SIGPENDING",
    "MSGQUEUE",
    "NICE",
    "RTPRIO",
    "RTTIME",
];

impl Service {
    /// StandardOutput=: the journal by default, and `inherit` (the terminal) when standard
    /// input is a terminal, as systemd's `service_fix_stdio`.
    pub fn stdout(&self) -> &Stdio {
        match &self.standard_output {
            Some(s) => s,
            None if self.terminal.is_input() => &Stdio::Inherit,
            None => &Stdio::Journal,
        }
    }

    /// StandardError= defaults to StandardOutput=.
    pub fn stderr(&self) -> &Stdio {
        self.standard_error
            .as_ref()
            .unwrap_or_else(|| self.stdout())
    }

    /// NotifyAccess= defaults to `main` for notify services, `none` otherwise.
    /// How long the watchdog's or an abort's signal has before SIGKILL (`None`:
    /// infinity): `TimeoutAbortSec=`, else `TimeoutStopSec=`.
    pub fn abort_timeout(&self) -> Option<Duration> {
        self.timeout_abort.unwrap_or(self.timeout_stop)
    }

    pub fn notify_access(&self) -> NotifyAccess {
        self.notify_access.unwrap_or(match self.service_type {
            ServiceType::Notify | ServiceType::NotifyReload => NotifyAccess::Main,
            _ => NotifyAccess::None,
        })
    }

    pub(crate) fn apply(&mut self, ctx: &mut Ctx, a: &Assignment) -> Applied {
        let v = a.value.as_str();
        match a.key.as_str() {
            "Type" => match ServiceType::from_name(v) {
                Some(kind) => self.service_type = kind,
                None => ctx.warn(a, "unknown service type"),
            },
            "ExecStartPre" => commands(ctx, a, &mut self.exec_start_pre),
            "ExecStart" => commands(ctx, a, &mut self.exec_start),
            "ExecStartPost" => commands(ctx, a, &mut self.exec_start_post),
            "ExecReload" => commands(ctx, a, &mut self.exec_reload),
            "ExecStop" => commands(ctx, a, &mut self.exec_stop),
            "ExecStopPost" => commands(ctx, a, &mut self.exec_stop_post),
            "RemainAfterExit" => ctx.bool(a, &mut self.remain_after_exit),
            "PIDFile" => self.pid_file = ctx.expand(a).filter(|p| !p.is_empty()),
            "Restart" => match Restart::from_name(v) {
                Some(restart) => self.restart = restart,
                None => ctx.warn(a, "unknown restart policy"),
            },
            "RestartSec" => {
                let mut d = Some(self.restart_sec);
                ctx.span(a, &mut d);
                self.restart_sec = d.unwrap_or(Duration::ZERO);
            }
            "RestartPreventExitStatus" => {
                exit_statuses(ctx, a, &mut self.restart_prevent_exit_status)
            }
            "RestartForceExitStatus" => exit_statuses(ctx, a, &mut self.restart_force_exit_status),
            "SuccessExitStatus" => exit_statuses(ctx, a, &mut self.success_exit_status),
            "TimeoutStartSec" => ctx.span(a, &mut self.timeout_start),
            "TimeoutStopSec" => ctx.span(a, &mut self.timeout_stop),
            "TimeoutSec" => {
                ctx.span(a, &mut self.timeout_start);
                self.timeout_stop = self.timeout_start;
            }
            // Empty: back to unset; zero, as infinity, is infinity.
            "TimeoutAbortSec" if v.is_empty() => self.timeout_abort = None,
            "TimeoutAbortSec" => match values::timespan(v) {
                Ok(d) => self.timeout_abort = Some(d.filter(|d| !d.is_zero())),
                Err(e) => ctx.warn(a, e),
            },
            "TimeoutStartFailureMode" => match TimeoutFailureMode::from_name(v) {
                Some(mode) => self.timeout_start_failure_mode = mode,
                None => ctx.warn(a, "unknown timeout failure mode"),
            },
            "TimeoutStopFailureMode" => match TimeoutFailureMode::from_name(v) {
                Some(mode) => self.timeout_stop_failure_mode = mode,
                None => ctx.warn(a, "unknown timeout failure mode"),
            },
            "RuntimeMaxSec" => ctx.span(a, &mut self.runtime_max),
            "WatchdogSec" => ctx.span(a, &mut self.watchdog),
            "NotifyAccess" => match NotifyAccess::from_name(v) {
                Some(access) => self.notify_access = Some(access),
                None => ctx.warn(a, "unknown notify access"),
            },
            "KillMode" => match KillMode::from_name(v) {
                Some(mode) => self.kill_mode = mode,
                None => ctx.warn(a, "unknown kill mode"),
            },
            "KillSignal" => match values::signal(v) {
                Ok(s) => self.kill_signal = s,
                Err(e) => ctx.warn(a, e),
            },
            "WatchdogSignal" => match values::signal(v) {
                Ok(s) => self.watchdog_signal = s,
                Err(e) => ctx.warn(a, e),
            },
            "ReloadSignal" => match values::signal(v) {
                Ok(s) => self.reload_signal = s,
                Err(e) => ctx.warn(a, e),
            },
            "SendSIGKILL" => ctx.bool(a, &mut self.send_sigkill),
            "SendSIGHUP" => ctx.bool(a, &mut self.send_sighup),
            "Sockets" if v.is_empty() => self.sockets.clear(),
            "Sockets" => {
                let mut names = Vec::new();
                extend_names(ctx, a, &mut names);
                for n in names {
                    if n.unit_type() != UnitType::Socket {
                        ctx.warn(a, format!("{n} is not a socket unit"));
                    } else if !self.sockets.contains(&n) {
                        self.sockets.push(n);
                    }
                }
            }
            _ => return self.apply_exec_context(ctx, a),
        }
        Applied::Done
    }

    fn apply_exec_context(&mut self, ctx: &mut Ctx, a: &Assignment) -> Applied {
        if self.terminal.apply(ctx, a) || self.seccomp.apply(ctx, a) {
            return Applied::Done;
        }
        let v = a.value.as_str();
        match a.key.as_str() {
            "Environment" => {
                if v.is_empty() {
                    self.environment.clear();
                } else if let Some(words) = split(ctx, a, Mode::EXEC) {
                    for w in words {
                        match w.split_once('=') {
                            Some((k, val)) if is_env_name(k) => {
                                self.environment.insert(k.to_owned(), val.to_owned());
                            }
                            _ => ctx.warn(a, format!("'{w}' is not NAME=VALUE")),
                        }
                    }
                }
            }
            "EnvironmentFile" => {
                if v.is_empty() {
                    self.environment_files.clear();
                } else if let Some(path) = ctx.expand(a) {
                    let (path, optional) = match path.strip_prefix('-') {
                        Some(p) => (p.to_owned(), true),
                        None => (path, false),
                    };
                    if path.starts_with('/') {
                        self.environment_files.push((path, optional));
                    } else {
                        ctx.warn(a, "not an absolute path");
                    }
                }
            }
            "PassEnvironment" => string_list(ctx, a, &mut self.pass_environment),
            "UnsetEnvironment" => string_list(ctx, a, &mut self.unset_environment),
            "WorkingDirectory" => match ctx.expand(a).as_deref().map(WorkingDirectory::parse) {
                Some(Ok(w)) => self.working_directory = w,
                Some(Err(e)) => ctx.warn(a, e),
                None => {}
            },
            "User" => self.user = ctx.expand(a).filter(|p| !p.is_empty()),
            "Group" => self.group = ctx.expand(a).filter(|p| !p.is_empty()),
            "SupplementaryGroups" => string_list(ctx, a, &mut self.supplementary_groups),
            "UMask" => match values::mode(v) {
                Ok(m) => self.umask = m,
                Err(e) => ctx.warn(a, e),
            },
            "StandardOutput" => {
                if let Some(s) = stdio(ctx, a) {
                    self.standard_output = Some(s);
                }
            }
            "StandardError" => {
                if let Some(s) = stdio(ctx, a) {
                    self.standard_error = Some(s);
                }
            }
            "SyslogIdentifier" => self.syslog_identifier = ctx.expand(a).filter(|p| !p.is_empty()),
            "SyslogLevel" => match syslog_level(v) {
                Some(level) => self.syslog_level = level,
                None => ctx.warn(a, "not a syslog level (emerg..debug or 0..7)"),
            },
            "SyslogLevelPrefix" => match values::boolean(v) {
                Ok(b) => self.syslog_level_prefix = b,
                Err(e) => ctx.warn(a, e),
            },
            "RuntimeDirectory" => string_list(ctx, a, &mut self.runtime_directory.names),
            "StateDirectory" => string_list(ctx, a, &mut self.state_directory.names),
            "CacheDirectory" => string_list(ctx, a, &mut self.cache_directory.names),
            "LogsDirectory" => string_list(ctx, a, &mut self.logs_directory.names),
            "RuntimeDirectoryMode" => dir_mode(ctx, a, &mut self.runtime_directory.mode),
            "RuntimeDirectoryPreserve" => match v {
                "restart" => self.runtime_directory_preserve = Preserve::Restart,
                _ => match values::boolean(v) {
                    Ok(true) => self.runtime_directory_preserve = Preserve::Yes,
                    Ok(false) => self.runtime_directory_preserve = Preserve::No,
                    Err(e) => ctx.warn(a, e),
                },
            },
            "StateDirectoryMode" => dir_mode(ctx, a, &mut self.state_directory.mode),
            "CacheDirectoryMode" => dir_mode(ctx, a, &mut self.cache_directory.mode),
            "LogsDirectoryMode" => dir_mode(ctx, a, &mut self.logs_directory.mode),
            "OOMScoreAdjust" => match v.parse::<i32>() {
                Ok(n) if (-1000..=1000).contains(&n) => self.oom_score_adjust = Some(n),
                _ => ctx.warn(a, "not a number from -1000 to 1000"),
            },
            "Nice" => match v.parse::<i32>() {
                Ok(n) if (-20..=19).contains(&n) => self.nice = Some(n),
                _ => ctx.warn(a, "not a number from -20 to 19"),
            },
            "NoNewPrivileges" => ctx.bool(a, &mut self.no_new_privileges),
            "IgnoreSIGPIPE" => ctx.bool(a, &mut self.ignore_sigpipe),
            "CapabilityBoundingSet" => capabilities(
                ctx,
                a,
                self.capability_bounding_set.get_or_insert_with(Vec::new),
            ),
            "AmbientCapabilities" => capabilities(ctx, a, &mut self.ambient_capabilities),
            "PrivateTmp" => ctx.bool(a, &mut self.private_tmp),
            "ProtectSystem" => match v {
                "strict" => self.protect_system = ProtectSystem::Strict,
                "full" => self.protect_system = ProtectSystem::Full,
                _ => match values::boolean(v) {
                    Ok(true) => self.protect_system = ProtectSystem::Yes,
                    Ok(false) => self.protect_system = ProtectSystem::No,
                    Err(e) => ctx.warn(a, e),
                },
            },
            "ProtectControlGroups" => ctx.bool(a, &mut self.protect_control_groups),
            "ProtectKernelModules" => ctx.bool(a, &mut self.protect_kernel_modules),
            "ProtectKernelLogs" => ctx.bool(a, &mut self.protect_kernel_logs),
            "ProtectKernelTunables" => ctx.bool(a, &mut self.protect_kernel_tunables),
            "ProtectHostname" => ctx.bool(a, &mut self.protect_hostname),
            "ProtectClock" => ctx.bool(a, &mut self.protect_clock),
            "PrivateNetwork" => ctx.bool(a, &mut self.private_network),
            "ProtectHome" => match v {
                "read-only" => self.protect_home = ProtectHome::ReadOnly,
                "tmpfs" => self.protect_home = ProtectHome::Tmpfs,
                _ => match values::boolean(v) {
                    Ok(true) => self.protect_home = ProtectHome::Yes,
                    Ok(false) => self.protect_home = ProtectHome::No,
                    Err(e) => ctx.warn(a, e),
                },
            },
            "ReadWritePaths" => string_list(ctx, a, &mut self.read_write_paths),
            "ReadOnlyPaths" => string_list(ctx, a, &mut self.read_only_paths),
            key => {
                if let Some(resource) = key.strip_prefix("Limit").filter(|r| RLIMITS.contains(r)) {
                    let time = matches!(resource, "CPU" | "RTTIME");
                    match values::rlimit(v, time) {
                        Ok(l) => {
                            self.limits.insert(resource.to_owned(), l);
                        }
                        Err(e) => ctx.warn(a, e),
                    }
                    return Applied::Done;
                }
                return self.apply_resources(ctx, a);
            }
        }
        Applied::Done
    }

    fn apply_resources(&mut self, ctx: &mut Ctx, a: &Assignment) -> Applied {
        let r = &mut self.resources;
        let v = a.value.as_str();
        let weight = |ctx: &mut Ctx, slot: &mut Option<u64>| match v.parse::<u64>() {
            Ok(w) if (1..=10000).contains(&w) => *slot = Some(w),
            _ if v.is_empty() => *slot = None,
            _ => ctx.warn(a, "not a weight from 1 to 10000"),
        };
        let memory = |ctx: &mut Ctx, slot: &mut Option<Limit>| match values::limit(v) {
            Ok(l) => *slot = Some(l),
            Err(e) => ctx.warn(a, e),
        };
        match a.key.as_str() {
            "Slice" => match ctx.expand(a).map(|s| UnitName::parse(&s)) {
                Some(Ok(s)) if s.unit_type() == super::name::UnitType::Slice => r.slice = Some(s),
                Some(_) => ctx.warn(a, "not a slice unit name"),
                None => {}
            },
            // `Delegate=` takes a boolean or the controllers to delegate (then: yes).
            "Delegate" => match values::boolean(v) {
                Ok(b) => {
                    r.delegate = b;
                    r.delegate_controllers.clear();
                }
                Err(_) if v.split_whitespace().all(|c| CONTROLLERS.contains(&c)) => {
                    r.delegate = true;
                    r.delegate_controllers = v.split_whitespace().map(str::to_owned).collect();
                }
                Err(e) => ctx.warn(a, e),
            },
            "CPUWeight" => weight(ctx, &mut r.cpu_weight),
            "StartupCPUWeight" => weight(ctx, &mut r.startup_cpu_weight),
            "IOWeight" => weight(ctx, &mut r.io_weight),
            "CPUQuota" => match v.strip_suffix('%').and_then(|p| p.parse::<u64>().ok()) {
                Some(p) if p > 0 => r.cpu_quota_percent = Some(p),
                _ if v.is_empty() => r.cpu_quota_percent = None,
                _ => ctx.warn(a, "not a percentage above 0%"),
            },
            "MemoryMax" | "MemoryLimit" => memory(ctx, &mut r.memory_max),
            "MemoryHigh" => memory(ctx, &mut r.memory_high),
            "MemoryLow" => memory(ctx, &mut r.memory_low),
            "MemoryMin" => memory(ctx, &mut r.memory_min),
            "TasksMax" => match values::count_limit(v) {
                Ok(l) => r.tasks_max = Some(l),
                Err(e) => ctx.warn(a, e),
            },
            _ => return Applied::Unknown,
        }
        Applied::Done
    }
}

fn split(ctx: &mut Ctx, a: &Assignment, mode: Mode) -> Option<Vec<String>> {
    let words = match words::split(&a.value, mode) {
        Ok(w) => w,
        Err(e) => {
            ctx.warn(a, e);
            return None;
        }
    };
    let mut out = Vec::with_capacity(words.len());
    for w in words {
        match super::specifier::expand(&w, ctx.unit, ctx.host) {
            Ok(w) => out.push(w),
            Err(e) => {
                ctx.warn(a, e);
                return None;
            }
        }
    }
    Some(out)
}

fn commands(ctx: &mut Ctx, a: &Assignment, list: &mut Vec<ExecCommand>) {
    if a.value.is_empty() {
        list.clear();
        return;
    }
    match exec::parse(&a.value) {
        Ok(cmds) => {
            for mut c in cmds {
                let mut ok = true;
                for w in c.argv.iter_mut().chain(std::iter::once(&mut c.path)) {
                    match super::specifier::expand(w, ctx.unit, ctx.host) {
                        Ok(x) => *w = x,
                        Err(e) => {
                            ctx.warn(a, e);
                            ok = false;
                            break;
                        }
                    }
                }
                if ok {
                    list.push(c);
                }
            }
        }
        Err(e) => ctx.warn(a, e),
    }
}

fn string_list(ctx: &mut Ctx, a: &Assignment, list: &mut Vec<String>) {
    if a.value.is_empty() {
        list.clear();
    } else if let Some(words) = split(ctx, a, Mode::EXEC) {
        list.extend(words);
    }
}

fn dir_mode(ctx: &mut Ctx, a: &Assignment, slot: &mut u32) {
    match values::mode(&a.value) {
        Ok(m) => *slot = m,
        Err(e) => ctx.warn(a, e),
    }
}

fn capabilities(ctx: &mut Ctx, a: &Assignment, list: &mut Vec<String>) {
    if a.value.is_empty() {
        list.clear();
        return;
    }
    let (invert, rest) = match a.value.strip_prefix('~') {
        Some(r) => (true, r),
        None => (false, a.value.as_str()),
    };
    for cap in rest.split_whitespace() {
        if super::capability::number(cap).is_none() {
            ctx.warn(a, format!("'{cap}' is not a capability name"));
            return;
        }
        let entry = if invert {
            format!("~{cap}")
        } else {
            cap.to_owned()
        };
        list.push(entry);
    }
}

fn stdio(ctx: &mut Ctx, a: &Assignment) -> Option<Stdio> {
    let v = a.value.as_str();
    let s = match v {
        "inherit" => Stdio::Inherit,
        "null" => Stdio::Null,
        "tty" => Stdio::Tty,
        "journal" | "syslog" => Stdio::Journal,
        "kmsg" => Stdio::Kmsg,
        "journal+console" | "syslog+console" => Stdio::JournalConsole,
        "kmsg+console" => Stdio::KmsgConsole,
        _ => {
            let expanded = ctx.expand(a)?;
            let (kind, path) = expanded.split_once(':').unwrap_or(("", ""));
            if !path.starts_with('/') {
                ctx.warn(a, "unsupported output");
                return None;
            }
            match kind {
                "file" => Stdio::File(path.into()),
                "append" => Stdio::Append(path.into()),
                "truncate" => Stdio::Truncate(path.into()),
                _ => {
                    ctx.warn(a, "unsupported output");
                    return None;
                }
            }
        }
    };
    Some(s)
}

fn exit_statuses(ctx: &mut Ctx, a: &Assignment, list: &mut Vec<i32>) {
    if a.value.is_empty() {
        list.clear();
        return;
    }
    for word in a.value.split_whitespace() {
        // Signals are kept as negative numbers to tell them from exit codes.
        if let Ok(n) = word.parse::<i32>() {
            if (0..=255).contains(&n) {
                list.push(n);
                continue;
            }
        } else if let Some((_, n)) = EXIT_STATUS_NAMES.iter().find(|(name, _)| *name == word) {
            list.push(*n);
            continue;
        } else if let Ok(sig) = values::signal(word) {
            list.push(-sig);
            continue;
        }
        ctx.warn(a, format!("'{word}' is not an exit status or signal"));
    }
}

/// syslog(3) level names and numbers, as `SyslogLevel=` takes them.
pub fn syslog_level(v: &str) -> Option<u8> {
    const NAMES: [&str; 8] = [
        "emerg", "alert", "crit", "err", "warning", "notice", "info", "debug",
    ];
    NAMES
        .iter()
        .position(|n| *n == v)
        .map(|i| i as u8)
        .or_else(|| v.parse::<u8>().ok().filter(|n| *n < 8))
}
