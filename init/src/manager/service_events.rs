//! A service's events carried out: each event goes to its [`ServiceRun`], and what that
//! decides (spawn a command into the unit's cgroup, signal, arm a timer, read a PID file)
//! is done through the [`Syscalls`] boundary; then the unit's job is finished when its
//! state says so, and `OnFailure=`/`OnSuccess=` units are started.

use super::*;
use crate::unit::lifecycle::KillTarget;

/// Why a command of a unit did not run its program.
pub(super) enum SpawnFailed {
    /// No process was made (its cgroup, its private /tmp, its set-up before the fork).
    NotStarted(String),
    /// Process `pid` failed a step before `execve` and exited with that step's status.
    BeforeExec { why: String, pid: u32, status: i32 },
}

impl Manager<'_> {
    /// Feeds one event to a service and carries out what it decides.
    pub(super) fn feed(&mut self, name: &UnitName, event: Event) {
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
        self.release_runtime_dirs(name);
        self.revert_terminal(name);
        self.settle(name);
    }

    pub(super) fn act(&mut self, name: &UnitName, action: Action) {
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
                    Err(SpawnFailed::NotStarted(why)) => {
                        self.log(&format!("berth: FAILED {name}: {why}"));
                        Event::Spawned(Err(()))
                    }
                    // As systemd: the process was there and exited with the step's status.
                    Err(SpawnFailed::BeforeExec { why, pid, status }) => {
                        self.log(&format!("berth: FAILED {name}: {why}"));
                        let main = set == crate::unit::lifecycle::CommandSet::Start;
                        let mut at_fork = false;
                        if let Some(slot) = self.slots.get_mut(name).filter(|_| main) {
                            slot.main_started_at = Some(now);
                            at_fork = slot
                                .unit
                                .service
                                .as_ref()
                                .is_some_and(crate::unit::lifecycle::active_at_fork);
                        }
                        if at_fork {
                            // Type=simple and idle are started once forked, as on systemd
                            // 252 ("Started X."); the main process's exit fails it after.
                            self.feed(name, Event::Spawned(Ok(pid)));
                            Event::Exited {
                                pid,
                                how: Exit::Code(status),
                            }
                        } else {
                            Event::ExitedBeforeExec { pid, status }
                        }
                    }
                };
                self.feed(name, event);
            }
            Action::Kill { target, signal } => {
                self.send_signal(name, target, signal);
                if wakes_up(signal) {
                    self.send_signal(name, target, nix::libc::SIGCONT);
                }
            }
            Action::Signal { target, signal } => self.send_signal(name, target, signal),
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
            Action::AwaitGroupEmpty => {
                if !self.cgroup_populated(name) {
                    self.feed(name, Event::CgroupEmpty);
                }
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
    /// A run that ended with processes left in its cgroup is `deactivating` until they
    /// are gone ([`drain`]); it settles when the drain is done.
    pub(super) fn settle(&mut self, name: &UnitName) {
        self.drain_if_left(name);
        self.settle_reload_job(name);
        let Some(slot) = self.slots.get_mut(name) else {
            return;
        };
        let state = slot.active_state();
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
            Some(Exit::Code(c)) => {
                format!("{why} (exit {})", crate::unit::exit_status::with_name(c))
            }
            Some(Exit::Signal(s)) => format!("{why} (signal {s})"),
            None => why.to_owned(),
        };
        // systemd starts OnSuccess= units when a unit becomes inactive from any state but
        // inactive or failed (a clean exit, a stop).
        let succeeded_now = state == Active::Inactive
            && !matches!(slot.settled_as, Active::Inactive | Active::Failed);
        slot.settled_as = state;
        // Inactive or failed with its drain done: the cgroup goes, as systemd prunes it
        // (`unit_prune_cgroup`); one that still holds processes (`KillMode=process`
        // leftovers) stays, and the next run joins it.
        let prune = matches!(state, Active::Inactive | Active::Failed) && slot.cgroup_made;
        if prune {
            slot.cgroup_made = false;
        }
        let on_success = if succeeded_now {
            slot.unit.deps.on_success.clone()
        } else {
            Vec::new()
        };
        let on_failure = slot.unit.deps.on_failure.clone();
        if prune {
            if let Err(e) = self.sys.cgroup_remove(&self.cgroup_of(name)) {
                if e.kind() != std::io::ErrorKind::ResourceBusy {
                    self.log(&format!("berth: {name}: {e}"));
                }
            }
        }
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
    pub(super) fn start_triggered(&mut self, now: bool, units: &[UnitName]) {
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

    pub(super) fn spawn_command(
        &mut self,
        name: &UnitName,
        set: crate::unit::lifecycle::CommandSet,
        index: usize,
    ) -> Result<u32, SpawnFailed> {
        self.make_private_tmp(name)
            .map_err(SpawnFailed::NotStarted)?;
        let private_tmp = self
            .private_tmp
            .get(name)
            .map(|p| p.binds.clone())
            .unwrap_or_default();
        let slot = self
            .slots
            .get(name)
            .ok_or_else(|| SpawnFailed::NotStarted("not loaded".into()))?;
        let mut spec = spawn::command_spawn(
            self.sys,
            slot,
            set,
            index,
            &self.cgroup_of(name),
            &self.own_env,
            &private_tmp,
        )
        .map_err(SpawnFailed::NotStarted)?;
        // The main process gets the sockets (systemd's EXEC_PASS_FDS of ExecStart=).
        if set == crate::unit::lifecycle::CommandSet::Start {
            spec.listen_fds = self.socket_fds_for(name);
        }
        // command_spawn made the RuntimeDirectory= folders.
        self.runtime_dirs_made(name);
        self.terminal_taken(name);
        if let Some(dir) = &spec.cgroup {
            self.sys
                .cgroup_create(dir)
                .map_err(|e| SpawnFailed::NotStarted(format!("cgroup {}: {e}", dir.display())))?;
            if let Some(slot) = self.slots.get_mut(name) {
                slot.cgroup_made = true;
            }
            self.apply_limits(name, dir);
            self.delegate_controllers(name, dir);
            self.hand_over_subtree(name, dir, spec.credentials.as_ref())
                .map_err(SpawnFailed::NotStarted)?;
        }
        self.sys
            .spawn_command(&spec)
            .map_err(|e| match e.exited_child() {
                Some((pid, status)) => SpawnFailed::BeforeExec {
                    why: e.to_string(),
                    pid,
                    status,
                },
                None => SpawnFailed::NotStarted(e.to_string()),
            })
    }
    /// Start-up is over: units that started with a `StartupCPUWeight=` and still have a
    /// cgroup get their running weight back (systemd 252 re-applies the cgroup settings
    /// of its `startup_units` once the boot has finished).
    pub(super) fn finish_startup(&mut self) {
        self.startup_over = true;
        let names: Vec<(UnitName, String)> = self
            .slots
            .iter()
            .filter_map(|(name, slot)| {
                let resources = &slot.unit.service.as_ref()?.resources;
                Some((name.clone(), cgroup_limits::running_cpu_weight(resources)?))
            })
            .collect();
        for (name, weight) in names {
            let file = self.cgroup_of(&name).join("cpu.weight");
            if !self.sys.exists(&file) {
                continue;
            }
            if let Err(e) = self.sys.write_file(&file, weight.as_bytes()) {
                self.log(&format!(
                    "berth: {name}: cannot set cpu.weight={weight}: {e}"
                ));
            }
        }
    }

    /// Writes the unit's resource-control settings into its cgroup; a refusal is said.
    pub(super) fn apply_limits(&self, name: &UnitName, dir: &Path) {
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
        for (file, value) in cgroup_limits::files(resources, totals, !self.startup_over) {
            if let Err(e) = self.sys.write_file(&dir.join(file), value.as_bytes()) {
                self.log(&format!("berth: {name}: cannot set {file}={value}: {e}"));
            }
        }
    }

    /// `Delegate=yes` with `User=` (systemd.resource-control(5)): the delegatee may make
    /// its own groups and move its processes, so the unit's cgroup folder and the files
    /// that do that (`cgroup.procs`, `cgroup.subtree_control`, and `cgroup.threads`
    /// where the kernel has it) belong to the user, as systemd 252's `cg_set_access`
    /// makes them. A command run with `+` (no `credentials`) hands nothing over.
    fn hand_over_subtree(
        &self,
        name: &UnitName,
        dir: &Path,
        credentials: Option<&(u32, u32, Vec<u32>)>,
    ) -> Result<(), String> {
        let delegated = self
            .slots
            .get(name)
            .and_then(|s| s.unit.service.as_ref())
            .is_some_and(|svc| svc.resources.delegate);
        let (Some((uid, gid, _)), true) = (credentials, delegated) else {
            return Ok(());
        };
        let files = [
            (dir.to_path_buf(), true),
            (dir.join("cgroup.procs"), true),
            (dir.join("cgroup.subtree_control"), true),
            (dir.join("cgroup.threads"), false),
        ];
        for (path, required) in files {
            match self.sys.chown(&path, *uid, *gid) {
                Ok(()) => {}
                Err(e) if required => {
                    return Err(format!(
                        "Delegate=: cannot hand {} over: {e}",
                        path.display()
                    ))
                }
                Err(_) => {}
            }
        }
        Ok(())
    }

    /// A stop signal to every process left in the unit's cgroup, SIGCONT after it as
    /// [`Action::Kill`]; how many processes there were.
    pub(super) fn kill_group(&self, name: &UnitName, signal: i32) -> usize {
        let dir = self.cgroup_of(name);
        let left = self.sys.cgroup_signal(&dir, signal).unwrap_or(0);
        if wakes_up(signal) {
            let _ = self.sys.cgroup_signal(&dir, nix::libc::SIGCONT);
        }
        left
    }

    /// `signal` to the unit's main or control process, or to every process of its cgroup.
    fn send_signal(&self, name: &UnitName, target: KillTarget, signal: i32) {
        match target {
            KillTarget::Main(pid) | KillTarget::Control(pid) => {
                let _ = self.sys.kill(pid as i32, signal);
            }
            KillTarget::Group => {
                let dir = self.cgroup_of(name);
                let _ = self.sys.cgroup_signal(&dir, signal);
            }
        }
    }

    /// `Delegate=` with a controller list (systemd.resource-control(5)): each controller
    /// named must be available in the unit's cgroup, the root of the subtree handed over,
    /// so it is enabled in the parent's `cgroup.subtree_control` if it is not yet; one
    /// the kernel refuses is said. cgroup v1 names map to v2's (cpuacct is cpu, blkio is
    /// io); `devices` is eBPF on v2, not a controller. The subtree itself is the
    /// delegatee's: nothing is written inside it.
    fn delegate_controllers(&self, name: &UnitName, dir: &Path) {
        let Some(r) = self
            .slots
            .get(name)
            .and_then(|s| Some(&s.unit.service.as_ref()?.resources))
        else {
            return;
        };
        if !r.delegate || r.delegate_controllers.is_empty() {
            return;
        }
        let available = self
            .sys
            .read_to_string(&dir.join("cgroup.controllers"))
            .unwrap_or_default();
        let Some(parent) = dir.parent() else {
            return;
        };
        for wanted in &r.delegate_controllers {
            let v2 = match wanted.as_str() {
                "cpuacct" => "cpu",
                "blkio" => "io",
                "devices" => continue,
                other => other,
            };
            if available.split_whitespace().any(|c| c == v2) {
                continue;
            }
            let control = parent.join("cgroup.subtree_control");
            if let Err(e) = self.sys.write_file(&control, format!("+{v2}").as_bytes()) {
                self.log(&format!(
                    "berth: {name}: Delegate={wanted}: cannot enable it in {}: {e}",
                    control.display()
                ));
            }
        }
    }
}

/// Whether a stop signal is followed by SIGCONT (systemd 252's `kill_and_sigcont`): not
/// SIGKILL, which needs no waking, nor SIGCONT itself.
fn wakes_up(signal: i32) -> bool {
    signal != nix::libc::SIGKILL && signal != nix::libc::SIGCONT
}
