//! The service manager's engine: loaded units, the jobs of a start transaction, and each
//! service's [`ServiceRun`], driven by what PID 1's event loop sees (a child exited, an
//! `sd_notify` message, a timer fired) and acting through the [`Syscalls`] boundary
//! (spawning into the unit's cgroup, signalling, arming timers). Nothing here blocks:
//! every wait is a timer, so PID 1 keeps answering signals.
//!
//! It is driven by calls, not by a loop of its own, so the tests drive it over the fake
//! with virtual time, and stage 2's poll loop drives it on the machine.

pub mod boot_times;
mod cgroup_limits;
pub mod environment;
pub mod graph;
pub mod jobs;
mod notify;
mod private_tmp;
pub mod sandbox;
mod spawn;
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
}

impl Slot {
    pub fn active_state(&self) -> Active {
        match self.unit.name.unit_type() {
            UnitType::Service => self.run.active,
            _ if self.active => Active::Active,
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
    /// Each service's watchdog deadline (`WatchdogSec=`), apart from its one timer.
    watchdogs: BTreeMap<UnitName, Duration>,
    anchor: Option<UnitName>,
    anchor_reached: bool,
    /// Requirements a transaction could not load: (requirer, missing).
    unmet: Vec<(UnitName, UnitName)>,
    /// Units to start again once their stop job is done (`systemctl restart`).
    restart_after_stop: BTreeSet<UnitName>,
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
    fn is_mount_point(&self, _path: &Path) -> bool {
        false
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
        Ok(Unit::from_files(files, self.host))
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
            anchor: None,
            anchor_reached: false,
            unmet: Vec::new(),
            restart_after_stop: BTreeSet::new(),
            own_env: BTreeMap::new(),
            boot_times: boot_times::BootTimes::default(),
        }
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

    /// Queues the start transaction of `name`, without running anything yet; returns the
    /// requirements found missing, for [`Manager::fail_unmet_and_dispatch`].
    fn enqueue_start(&mut self, anchor: &UnitName) {
        let t = Transaction::start(
            anchor,
            &mut LoaderUnits {
                loader: &self.loader,
                host: &self.host,
                known: &self.slots,
            },
        );
        for note in &t.notes {
            match note {
                Note::Missing {
                    unit,
                    why,
                    required: true,
                } => self.log(&format!("berth: FAILED {unit}: {why}")),
                Note::Missing { .. } | Note::ConflictIgnored { .. } => {}
                Note::CycleBroken { cycle, dropped } => self.log(&format!(
                    "berth: ordering cycle {}: dropped {dropped} (only wanted)",
                    cycle.join(" -> ")
                )),
                Note::CycleUnbreakable { cycle } => self.log(&format!(
                    "berth: FAILED ordering cycle {}: every job is required, one ordering ignored",
                    cycle.join(" -> ")
                )),
            }
        }
        for (name, unit) in t.units {
            for w in &unit.warnings {
                self.log(&format!("berth: {name}: {w}"));
            }
            self.slots.entry(name).or_insert(Slot {
                unit,
                run: ServiceRun::default(),
                active: false,
                status: None,
                activated_at: None,
                started_at: None,
                main_started_at: None,
                said: None,
                settled_as: Active::Inactive,
            });
        }
        for (name, job) in t.jobs {
            self.pending.insert(
                name,
                PendingJob {
                    kind: job.kind,
                    after: job.after,
                    required_by: job.required_by,
                },
            );
        }
        self.unmet.extend(t.unmet);
    }

    /// Fails the jobs whose requirements could not be loaded, then runs what can run.
    fn fail_unmet_and_dispatch(&mut self) {
        for (requirer, missing) in std::mem::take(&mut self.unmet) {
            if let Some(job) = self.pending.remove(&requirer) {
                let why = format!("dependency {missing} failed");
                self.job_done(&requirer, Err(why), &job.required_by);
            }
        }
        self.dispatch();
    }

    /// Whether the anchor's job has finished (then `berth: ready`).
    pub fn anchor_reached(&self) -> bool {
        self.anchor_reached
    }

    /// Whether any job is queued or running.
    pub fn busy(&self) -> bool {
        !self.pending.is_empty() || !self.running.is_empty()
    }

    /// Runs every queued job whose ordering predecessors are done, until none can run.
    fn dispatch(&mut self) {
        loop {
            let ready: Vec<UnitName> = self
                .pending
                .iter()
                .filter(|(_, j)| {
                    j.after
                        .iter()
                        .all(|a| !self.pending.contains_key(a) && !self.running.contains_key(a))
                })
                .map(|(n, _)| n.clone())
                .collect();
            if ready.is_empty() {
                return;
            }
            for name in ready {
                if let Some(job) = self.pending.remove(&name) {
                    self.run_job(name, job);
                }
            }
        }
    }

    fn run_job(&mut self, name: UnitName, job: PendingJob) {
        let now = self.sys.now();
        let Some(slot) = self.slots.get_mut(&name) else {
            return self.job_done(&name, Err("not loaded".into()), &job.required_by);
        };
        match job.kind {
            JobKind::Verify => {
                let ok = slot.active_state() == Active::Active;
                let r = if ok {
                    Ok(())
                } else {
                    Err("Requisite= unit is not active".into())
                };
                self.job_done(&name, r, &job.required_by);
            }
            JobKind::Stop => {
                if slot.unit.service.is_some() {
                    self.running
                        .insert(name.clone(), (JobKind::Stop, job.required_by));
                    self.feed(&name, Event::Stop);
                } else {
                    slot.active = false;
                    self.job_done(&name, Ok(()), &job.required_by);
                }
            }
            JobKind::Start => {
                let facts = (&self.facts, &self.host);
                let unmet = condition::evaluate(&slot.unit.conditions, &facts)
                    .err()
                    .map(|c| format!("{}={}", c.key, c.value));
                let failed = condition::evaluate(&slot.unit.asserts, &facts)
                    .err()
                    .map(|c| format!("{}={} failed", c.key, c.value));
                if let Some(c) = unmet {
                    self.sys.log(&format!("berth: skipped {name}: {c} not met"));
                    return self.job_done(&name, Ok(()), &job.required_by);
                }
                if let Some(why) = failed {
                    return self.job_done(&name, Err(why), &job.required_by);
                }
                let Some(slot) = self.slots.get_mut(&name) else {
                    return;
                };
                slot.started_at = Some(now);
                if slot.unit.service.is_some() {
                    self.running
                        .insert(name.clone(), (JobKind::Start, job.required_by));
                    self.feed(&name, Event::Start);
                } else {
                    slot.active = true;
                    slot.activated_at = Some(now);
                    self.job_done(&name, Ok(()), &job.required_by);
                }
            }
        }
    }

    /// A job ended: fail what required it, report, and go on.
    fn job_done(
        &mut self,
        name: &UnitName,
        result: Result<(), String>,
        required_by: &BTreeSet<UnitName>,
    ) {
        self.running.remove(name);
        if self.restart_after_stop.remove(name) {
            self.enqueue_start(name);
        }
        match result {
            Ok(()) => {
                if self.anchor.as_ref() == Some(name) {
                    self.anchor_reached = true;
                    self.boot_times.finish.get_or_insert(self.sys.now());
                }
            }
            Err(why) => {
                self.log(&format!("berth: FAILED {name}: {why}"));
                for dependent in required_by {
                    if let Some(job) = self.pending.remove(dependent) {
                        let why = format!("dependency {name} failed");
                        self.job_done(dependent, Err(why), &job.required_by);
                    }
                }
            }
        }
        self.fail_unmet_and_dispatch();
    }

    /// Feeds one event to a service and carries out what it decides.
    fn feed(&mut self, name: &UnitName, event: Event) {
        let now = self.sys.now();
        let Some(slot) = self.slots.get_mut(name) else {
            return;
        };
        let Some(svc) = slot.unit.service.clone() else {
            return;
        };
        let limit = (slot.unit.start_limit_interval, slot.unit.start_limit_burst);
        let actions = slot.run.handle(&svc, limit, event, now);
        for action in actions {
            self.act(name, action);
        }
        self.release_private_tmp(name);
        self.settle(name);
    }

    fn act(&mut self, name: &UnitName, action: Action) {
        let now = self.sys.now();
        match action {
            Action::Spawn { set, index } => {
                let result = self.spawn_command(name, set, index);
                let event = match result {
                    Ok(pid) => {
                        self.pids.insert(pid, name.clone());
                        if set == crate::unit::lifecycle::CommandSet::Start {
                            if let Some(slot) = self.slots.get_mut(name) {
                                slot.main_started_at = Some(now);
                            }
                        }
                        Event::Spawned(Ok(pid))
                    }
                    Err(why) => {
                        self.log(&format!("berth: FAILED {name}: {why}"));
                        Event::Spawned(Err(()))
                    }
                };
                self.feed(name, event);
            }
            Action::Kill { target, signal } => match target {
                crate::unit::lifecycle::KillTarget::Main(pid) => {
                    let _ = self.sys.kill(pid as i32, signal);
                }
                crate::unit::lifecycle::KillTarget::Group => {
                    let dir = self.cgroup_of(name);
                    let _ = self.sys.cgroup_signal(&dir, signal);
                }
            },
            Action::Arm(after) => {
                self.timers.insert(name.clone(), now + after);
            }
            Action::Disarm => {
                self.timers.remove(name);
            }
            Action::ArmWatchdog(after) => {
                self.watchdogs.insert(name.clone(), now + after);
            }
            Action::DisarmWatchdog => {
                self.watchdogs.remove(name);
            }
            Action::ReadPidFile => {
                let pid_file = self
                    .slots
                    .get(name)
                    .and_then(|s| s.unit.service.as_ref()?.pid_file.clone());
                let pid = pid_file
                    .and_then(|p| self.sys.read_to_string(Path::new(&p)).ok())
                    .and_then(|t| t.trim().parse::<u32>().ok());
                match pid {
                    Some(pid) => {
                        self.pids.insert(pid, name.clone());
                        self.feed(name, Event::MainPid(pid));
                    }
                    None => self.log(&format!("berth: {name}: PID file not readable yet")),
                }
            }
        }
    }

    /// After an event: finish the unit's job when its state says so, say failures.
    fn settle(&mut self, name: &UnitName) {
        let Some(slot) = self.slots.get_mut(name) else {
            return;
        };
        let state = slot.run.active;
        // Said once for every start, a job's or an automatic restart's (settle runs again
        // for nested events, so the slot remembers).
        let settled = matches!(state, Active::Active | Active::Failed);
        let new_state = settled && slot.said != Some(state);
        slot.said = settled.then_some(state);
        if new_state && state == Active::Active {
            slot.activated_at = Some(self.sys.now());
            self.sys.log(&format!("berth: started {name}"));
        }
        let failed_now = new_state && state == Active::Failed;
        let why = slot.run.result.map(|r| r.as_str()).unwrap_or("failed");
        let why = match slot.run.last_exit {
            Some(Exit::Code(c)) => format!("{why} (exit {c})"),
            Some(Exit::Signal(s)) => format!("{why} (signal {s})"),
            None => why.to_owned(),
        };
        // systemd starts OnSuccess= units when a unit becomes inactive from any state but
        // inactive or failed (a clean exit, a stop).
        let succeeded_now = state == Active::Inactive
            && !matches!(slot.settled_as, Active::Inactive | Active::Failed);
        slot.settled_as = state;
        let on_success = if succeeded_now {
            slot.unit.deps.on_success.clone()
        } else {
            Vec::new()
        };
        let on_failure = slot.unit.deps.on_failure.clone();
        if let Some((kind, required_by)) = self.running.get(name).cloned() {
            let done = match kind {
                JobKind::Start => match state {
                    Active::Active => Some(Ok(())),
                    Active::Inactive => Some(Ok(())),
                    Active::Failed => Some(Err(why.clone())),
                    _ => None,
                },
                JobKind::Stop => {
                    matches!(state, Active::Inactive | Active::Failed).then_some(Ok(()))
                }
                JobKind::Verify => None,
            };
            if let Some(result) = done {
                self.job_done(name, result, &required_by);
                self.start_triggered(failed_now, &on_failure);
                return self.start_triggered(succeeded_now, &on_success);
            }
        } else if failed_now {
            self.log(&format!("berth: FAILED {name}: {why}"));
        }
        self.start_triggered(failed_now, &on_failure);
        self.start_triggered(succeeded_now, &on_success);
    }

    /// Starts `units` (`OnFailure=`, `OnSuccess=`) when `now`.
    fn start_triggered(&mut self, now: bool, units: &[UnitName]) {
        if now {
            for u in units {
                self.start(u);
            }
        }
    }

    /// A child of PID 1 exited.
    pub fn child_exited(&mut self, pid: u32, how: Exit) {
        if let Some(name) = self.pids.remove(&pid) {
            self.feed(&name, Event::Exited { pid, how });
        }
    }

    /// Queues stop jobs for every active unit, in the reverse of start order (a unit
    /// stops after the units ordered after it have stopped).
    pub fn stop_all(&mut self) {
        let active: BTreeSet<UnitName> = self
            .slots
            .iter()
            .filter(|(_, s)| matches!(s.active_state(), Active::Active | Active::Activating))
            .map(|(n, _)| n.clone())
            .collect();
        for name in &active {
            let mut after = BTreeSet::new();
            // Reverse ordering: whoever is ordered after me stops before me.
            for (other, slot) in &self.slots {
                if active.contains(other) && slot.unit.effective_after().contains(name) {
                    after.insert(other.clone());
                }
            }
            if let Some(slot) = self.slots.get(name) {
                for b in &slot.unit.deps.before {
                    if active.contains(b) {
                        after.insert(b.clone());
                    }
                }
            }
            self.pending.insert(
                name.clone(),
                PendingJob {
                    kind: JobKind::Stop,
                    after,
                    required_by: BTreeSet::new(),
                },
            );
        }
        self.anchor = None;
        self.dispatch();
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

    fn spawn_command(
        &mut self,
        name: &UnitName,
        set: crate::unit::lifecycle::CommandSet,
        index: usize,
    ) -> Result<u32, String> {
        self.make_private_tmp(name)?;
        let private_tmp = self
            .private_tmp
            .get(name)
            .map(|p| p.binds.clone())
            .unwrap_or_default();
        let slot = self.slots.get(name).ok_or("not loaded")?;
        let spec = spawn::command_spawn(
            self.sys,
            slot,
            set,
            index,
            &self.cgroup_of(name),
            &self.own_env,
            &private_tmp,
        )?;
        if let Some(dir) = &spec.cgroup {
            self.sys
                .cgroup_create(dir)
                .map_err(|e| format!("cgroup {}: {e}", dir.display()))?;
            self.apply_limits(name, dir);
        }
        self.sys.spawn_command(&spec).map_err(|e| e.to_string())
    }
}

impl Manager<'_> {
    /// Writes the unit's resource-control settings into its cgroup; a refusal is said.
    fn apply_limits(&self, name: &UnitName, dir: &Path) {
        let Some(resources) = self
            .slots
            .get(name)
            .and_then(|s| Some(&s.unit.service.as_ref()?.resources))
        else {
            return;
        };
        let read = |p: &str| self.sys.read_to_string(Path::new(p)).unwrap_or_default();
        let totals =
            cgroup_limits::Totals::parse(&read("/proc/meminfo"), &read("/proc/sys/kernel/pid_max"));
        for (file, value) in cgroup_limits::files(resources, totals) {
            if let Err(e) = self.sys.write_file(&dir.join(file), value.as_bytes()) {
                self.log(&format!("berth: {name}: cannot set {file}={value}: {e}"));
            }
        }
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
mod graph_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod unit_file_tests;
#[cfg(test)]
mod unit_ops_tests;
