//! The service manager's engine: loaded units, the jobs of a start transaction, and each
//! service's [`ServiceRun`], driven by what PID 1's event loop sees (a child exited, an
//! `sd_notify` message, a timer fired) and acting through the [`Syscalls`] boundary
//! (spawning into the unit's cgroup, signalling, arming timers). Nothing here blocks:
//! every wait is a timer, so PID 1 keeps answering signals.
//!
//! It is driven by calls, not by a loop of its own, so the tests drive it over the fake
//! with virtual time, and stage 2's poll loop drives it on the machine.

pub mod boot_times;
pub mod builtin;
mod cgroup_limits;
mod dispatch;
mod drain;
pub mod environment;
pub mod graph;
pub mod jobs;
mod notify;
mod private_tmp;
mod runtime_dirs;
pub mod sandbox;
pub mod seccomp;
mod service_events;
mod sockets;
mod spawn;
mod terminal_revert;
pub mod unit_ops;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::sys::Syscalls;
use crate::unit::condition::{self, Facts};
use crate::unit::lifecycle::{Action, Active, Event, Exit, ServiceRun};
use crate::unit::load::Loader;
use crate::unit::model::Unit;
use crate::unit::name::{UnitName, UnitType};
use crate::unit::service::NotifyAccess;
use crate::unit::specifier::Host;
use crate::unit::transaction::{JobKind, Note, Transaction, Units};

/// Where PID 1 listens for `sd_notify` messages (`$NOTIFY_SOCKET`).
pub const NOTIFY_SOCKET: &str = "/run/systemd/notify";
/// cgroup v2's mount point.
pub const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// One loaded unit and its state.
pub struct Slot {
    pub unit: Unit,
    /// Services only.
    pub run: ServiceRun,
    /// Targets and the other types: active once started.
    pub active: bool,
    /// Sockets: the last start failed, or the trigger limit was hit (until reset-failed or
    /// a start).
    pub failed: bool,
    /// `STATUS=` from sd_notify.
    pub status: Option<String>,
    /// When it last became active (for `systemd-analyze blame`).
    pub activated_at: Option<Duration>,
    pub started_at: Option<Duration>,
    /// When its main process (`ExecStart=`) was last spawned.
    pub main_started_at: Option<Duration>,
    /// The state last said on the console (`started`, `FAILED`), so that each is said once
    /// per change although settling runs again for nested events.
    said: Option<Active>,
    /// The state at the last settling, to see it become inactive (`OnSuccess=`).
    settled_as: Active,
    /// A built-in unit ([`builtin`]): PID 1 runs its step itself.
    pub builtin: bool,
    /// Its run ended and it waits for its cgroup to empty ([`drain`]).
    pub draining: bool,
    /// Whether the ended run's cgroup was looked at for a drain.
    drain_checked: bool,
    /// Its cgroup folder was made for a run and not yet removed ([`Manager::settle`]).
    cgroup_made: bool,
    /// How its last job ended (`Some(true)`: done), as systemctl waits for it: a
    /// `Type=simple` service that fails after it started had a job that was done.
    pub job_done: Option<bool>,
}

impl Slot {
    fn new(unit: Unit) -> Slot {
        Slot {
            unit,
            run: ServiceRun::default(),
            active: false,
            failed: false,
            status: None,
            activated_at: None,
            started_at: None,
            main_started_at: None,
            said: None,
            settled_as: Active::Inactive,
            builtin: false,
            draining: false,
            drain_checked: false,
            job_done: None,
            cgroup_made: false,
        }
    }

    pub fn active_state(&self) -> Active {
        match self.unit.name.unit_type() {
            UnitType::Service if self.draining => Active::Deactivating,
            UnitType::Service => self.run.active,
            _ if self.active => Active::Active,
            _ if self.failed => Active::Failed,
            _ => Active::Inactive,
        }
    }
}

struct PendingJob {
    kind: JobKind,
    after: BTreeSet<UnitName>,
    required_by: BTreeSet<UnitName>,
}

pub struct Manager<'a> {
    sys: &'a dyn Syscalls,
    loader: Loader,
    host: Host,
    facts: MachineFacts,
    pub slots: BTreeMap<UnitName, Slot>,
    pending: BTreeMap<UnitName, PendingJob>,
    running: BTreeMap<UnitName, (JobKind, BTreeSet<UnitName>)>,
    pids: BTreeMap<u32, UnitName>,
    timers: BTreeMap<UnitName, Duration>,
    /// `PrivateTmp=` folders of running services.
    private_tmp: BTreeMap<UnitName, private_tmp::PrivateTmp>,
    /// Units whose run made its `RuntimeDirectory=` folders ([`runtime_dirs`]).
    runtime_dirs: BTreeSet<UnitName>,
    /// Units whose run's terminal is reverted when it ends ([`terminal_revert`]).
    terminals: BTreeSet<UnitName>,
    /// Socket units' open sockets ([`sockets`]).
    listening: BTreeMap<UnitName, sockets::Listening>,
    /// [`Manager::stop_all`] ran: traffic no longer starts services.
    stopping_all: bool,
    /// Each service's watchdog deadline (`WatchdogSec=`), apart from its one timer.
    watchdogs: BTreeMap<UnitName, Duration>,
    anchor: Option<UnitName>,
    anchor_reached: bool,
    /// The anchor's job has ended, done or failed: start-up is over (`StartupCPUWeight=`
    /// no longer applies).
    startup_over: bool,
    /// Requirements a transaction could not load: (requirer, missing).
    unmet: Vec<(UnitName, UnitName)>,
    /// Ended runs waiting for their unit's cgroup to empty.
    drains: BTreeMap<UnitName, drain::Drain>,
    /// Built-in units whose start job runs, for the caller to carry out.
    due_builtins: Vec<UnitName>,
    /// Units to start again once their stop job is done (`systemctl restart`).
    restart_after_stop: BTreeSet<UnitName>,
    /// Units whose `systemctl reload` job runs: it lasts, as systemd 252's, until the unit
    /// is active again, or inactive or failed when the reload ended the run
    /// ([`Manager::settle_reload_job`]).
    reload_jobs: BTreeSet<UnitName>,
    /// PID 1's own environment, for `PassEnvironment=`.
    pub own_env: BTreeMap<String, String>,
    /// The boot's milestones; stage 2 sets the first two, the manager the last.
    pub boot_times: boot_times::BootTimes,
}

/// What conditions see of the machine.
pub struct MachineFacts {
    pub root: PathBuf,
    pub cmdline: String,
    pub virtualization: Option<String>,
    pub first_boot: bool,
}

impl Facts for (&MachineFacts, &Host) {
    fn root(&self) -> &Path {
        &self.0.root
    }
    fn kernel_command_line(&self) -> &str {
        &self.0.cmdline
    }
    fn virtualization(&self) -> Option<&str> {
        self.0.virtualization.as_deref()
    }
    fn first_boot(&self) -> bool {
        self.0.first_boot
    }
    fn hostname(&self) -> &str {
        &self.1.hostname
    }
    fn machine_id(&self) -> &str {
        &self.1.machine_id
    }
    /// Symbolic links followed, as systemd's `path_is_mount_point(AT_SYMLINK_FOLLOW)`.
    fn is_mount_point(&self, path: &Path) -> bool {
        let root = &self.0.root;
        let below = root.join(path.strip_prefix("/").unwrap_or(path));
        let (Ok(root), Ok(real)) = (std::fs::canonicalize(root), std::fs::canonicalize(below))
        else {
            return false;
        };
        let Ok(inside) = real.strip_prefix(&root) else {
            return false;
        };
        let target = Path::new("/").join(inside);
        std::fs::read_to_string(root.join("proc/self/mountinfo")).is_ok_and(|text| {
            sandbox::mount_table(&text)
                .iter()
                .any(|(point, _)| *point == target)
        })
    }
    /// PID 1's own, as systemd reads it for `ConditionCapability=`.
    fn capability_bounding_set(&self) -> Option<u64> {
        let status = std::fs::read_to_string(self.0.root.join("proc/self/status")).ok()?;
        crate::unit::capability::bounding_set_in_status(&status)
    }
}

struct LoaderUnits<'l> {
    loader: &'l Loader,
    host: &'l Host,
    known: &'l BTreeMap<UnitName, Slot>,
}

impl Units for LoaderUnits<'_> {
    fn unit(&mut self, name: &UnitName) -> Result<Unit, String> {
        if let Some(slot) = self.known.get(name) {
            return Ok(slot.unit.clone());
        }
        let files = self.loader.load(name.as_str()).map_err(|e| e.to_string())?;
        let mut unit = Unit::from_files(files, self.host);
        builtin::add_wanted_builtins(&mut unit, self.known);
        Ok(unit)
    }
}

impl<'a> Manager<'a> {
    pub fn new(
        sys: &'a dyn Syscalls,
        loader: Loader,
        host: Host,
        facts: MachineFacts,
    ) -> Manager<'a> {
        Manager {
            sys,
            loader,
            host,
            facts,
            slots: BTreeMap::new(),
            pending: BTreeMap::new(),
            running: BTreeMap::new(),
            pids: BTreeMap::new(),
            timers: BTreeMap::new(),
            watchdogs: BTreeMap::new(),
            private_tmp: BTreeMap::new(),
            runtime_dirs: BTreeSet::new(),
            terminals: BTreeSet::new(),
            listening: BTreeMap::new(),
            stopping_all: false,
            anchor: None,
            anchor_reached: false,
            startup_over: false,
            unmet: Vec::new(),
            restart_after_stop: BTreeSet::new(),
            reload_jobs: BTreeSet::new(),
            due_builtins: Vec::new(),
            drains: BTreeMap::new(),
            own_env: BTreeMap::new(),
            boot_times: boot_times::BootTimes::default(),
        }
    }

    /// What specifiers and conditions see of the machine, once early boot has settled it
    /// (the machine-id, the host name, first boot); for units loaded from now on.
    pub fn set_machine(&mut self, host: Host, facts: MachineFacts) {
        self.host = host;
        self.facts = facts;
    }

    fn log(&self, line: &str) {
        self.sys.log(line);
    }

    /// Queues the start transaction of `anchor`, the unit whose job makes the boot
    /// reached (`berth: ready`), and runs what can run.
    pub fn start(&mut self, anchor: &UnitName) {
        self.enqueue_start(anchor);
        self.anchor = Some(anchor.clone());
        self.anchor_reached = false;
        self.fail_unmet_and_dispatch();
    }

    /// Whether the anchor's job has finished (then `berth: ready`).
    pub fn anchor_reached(&self) -> bool {
        self.anchor_reached
    }

    /// Whether any job is queued or running.
    pub fn busy(&self) -> bool {
        !self.pending.is_empty() || !self.running.is_empty()
    }

    /// The cgroup folder of a unit: `/sys/fs/cgroup/<slices>/<unit>`.
    pub fn cgroup_of(&self, name: &UnitName) -> PathBuf {
        let slice = self
            .slots
            .get(name)
            .and_then(|s| s.unit.service.as_ref()?.resources.slice.clone())
            .map(|s| s.to_string())
            .unwrap_or_else(|| "system.slice".into());
        let mut path = PathBuf::from(CGROUP_ROOT);
        path.push(slice_path(&slice));
        path.push(name.as_str());
        path
    }
}

/// `a-b-c.slice` lives at `a.slice/a-b.slice/a-b-c.slice`.
pub fn slice_path(slice: &str) -> PathBuf {
    let stem = slice.strip_suffix(".slice").unwrap_or(slice);
    let mut path = PathBuf::new();
    let mut prefix = String::new();
    for part in stem.split('-') {
        if !prefix.is_empty() {
            prefix.push('-');
        }
        prefix.push_str(part);
        path.push(format!("{prefix}.slice"));
    }
    path
}

#[cfg(test)]
mod condition_tests;
#[cfg(test)]
mod control_pid_tests;
#[cfg(test)]
mod drain_mode_tests;
#[cfg(test)]
mod drain_restart_tests;
#[cfg(test)]
mod drain_tests;
#[cfg(test)]
mod exec_status_tests;
#[cfg(test)]
mod graph_tests;
#[cfg(test)]
mod runtime_dirs_tests;
#[cfg(test)]
mod sockets_tests;
#[cfg(test)]
mod stop_order_tests;
#[cfg(test)]
mod terminal_revert_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod unit_file_tests;
#[cfg(test)]
mod unit_ops_tests;
