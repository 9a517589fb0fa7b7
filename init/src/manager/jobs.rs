//! What `systemctl` asks of a running manager: start, stop or restart one unit (with
//! systemd's stop propagation), and the unit's properties as `systemctl show` names them.
//! The boot's anchor (`default.target`) is not changed by these jobs.

use std::collections::BTreeSet;

use super::{LoaderUnits, Manager, PendingJob, Slot};
use crate::unit::lifecycle::{Active, Exit};
use crate::unit::name::UnitName;
use crate::unit::setting_names::Named;
use crate::unit::transaction::{JobKind, Units};

/// Why a job was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JobRefused {
    #[error("Unit {0} not loaded.")]
    NotLoaded(UnitName),
    #[error("Unit {0} is masked.")]
    Masked(UnitName),
    #[error("Operation refused, unit {0} may be requested by dependency only (it is configured to refuse manual start/stop).")]
    Manual(UnitName),
}

impl Manager<'_> {
    /// `systemctl start`: the unit's start transaction (its requirements and wants too).
    pub fn start_unit(&mut self, name: &UnitName) -> Result<(), JobRefused> {
        let masked = match self.slots.get(name) {
            Some(slot) if slot.unit.refuse_manual_start => {
                return Err(JobRefused::Manual(name.clone()))
            }
            Some(slot) => slot.unit.files.masked,
            None => self
                .loader
                .load(name.as_str())
                .is_ok_and(|files| files.masked),
        };
        if masked {
            return Err(JobRefused::Masked(name.clone()));
        }
        self.enqueue_start(name);
        if !self.pending.contains_key(name) && !self.slots.contains_key(name) {
            self.unmet.clear();
            return Err(JobRefused::NotLoaded(name.clone()));
        }
        self.fail_unmet_and_dispatch();
        Ok(())
    }

    /// `systemctl stop`: stops the unit and, first, the active units that cannot run
    /// without it (`Requires=`, `BindsTo=`, `PartOf=` on it, as systemd propagates).
    pub fn stop_unit(&mut self, name: &UnitName) -> Result<(), JobRefused> {
        let slot = self
            .slots
            .get(name)
            .ok_or_else(|| JobRefused::NotLoaded(name.clone()))?;
        if slot.unit.refuse_manual_stop {
            return Err(JobRefused::Manual(name.clone()));
        }
        let stopping = self.stop_closure(name);
        for unit in &stopping {
            // Whoever depends on `unit` and is stopping too stops first.
            let after: BTreeSet<UnitName> = stopping
                .iter()
                .filter(|other| *other != unit && self.depends_on(other, unit))
                .cloned()
                .collect();
            self.pending.insert(
                unit.clone(),
                PendingJob {
                    kind: JobKind::Stop,
                    after,
                    required_by: BTreeSet::new(),
                },
            );
        }
        self.dispatch();
        Ok(())
    }

    /// `systemctl restart`: a stop job, then a start job once it is done (an inactive
    /// unit is just started).
    pub fn restart_unit(&mut self, name: &UnitName) -> Result<(), JobRefused> {
        let active = self
            .slots
            .get(name)
            .map(|s| s.active_state() != Active::Inactive && s.active_state() != Active::Failed)
            .unwrap_or(false);
        if !active {
            return self.start_unit(name);
        }
        self.restart_after_stop.insert(name.clone());
        self.stop_unit(name).inspect_err(|_| {
            self.restart_after_stop.remove(name);
        })
    }

    /// `systemctl daemon-reload`: every loaded unit's files are read again (a new drop-in,
    /// an edited unit); what runs keeps running, the next start uses the new definition.
    /// A unit whose files are gone or unreadable keeps its old definition, and that is
    /// said. Returns how many units were reloaded.
    pub fn reload_units(&mut self) -> usize {
        let names: Vec<UnitName> = self.slots.keys().cloned().collect();
        let mut reloaded = 0;
        for name in names {
            if self.slots.get(&name).is_some_and(|s| s.builtin) {
                continue;
            }
            match self.loader.load(name.as_str()) {
                Ok(files) => {
                    let mut unit = crate::unit::model::Unit::from_files(files, &self.host);
                    super::builtin::add_wanted_builtins(&mut unit, &self.slots);
                    if let Some(slot) = self.slots.get_mut(&name) {
                        slot.unit = unit;
                        reloaded += 1;
                    }
                }
                Err(e) => self.log(&format!("berth: {name}: not reloaded: {e}")),
            }
        }
        reloaded
    }

    /// Whether a job for `name` is queued or running.
    pub fn has_job(&self, name: &UnitName) -> bool {
        self.pending.contains_key(name)
            || self.running.contains_key(name)
            || self.restart_after_stop.contains(name)
            || self.reloading(name)
            || self.reload_jobs.contains(name)
    }

    /// `name` and every active unit that requires, binds to or is part of one of them.
    fn stop_closure(&self, name: &UnitName) -> BTreeSet<UnitName> {
        let mut set = BTreeSet::from([name.clone()]);
        let mut queue = vec![name.clone()];
        while let Some(unit) = queue.pop() {
            for (other, slot) in &self.slots {
                let active = !matches!(slot.active_state(), Active::Inactive | Active::Failed);
                if active && !set.contains(other) && self.depends_on(other, &unit) {
                    set.insert(other.clone());
                    queue.push(other.clone());
                }
            }
        }
        set
    }

    /// Whether `dependent` needs `on` (Requires=, BindsTo=, PartOf=).
    fn depends_on(&self, dependent: &UnitName, on: &UnitName) -> bool {
        self.slots.get(dependent).is_some_and(|s| {
            let d = &s.unit.deps;
            d.requires.contains(on) || d.binds_to.contains(on) || d.part_of.contains(on)
        })
    }

    /// The name a unit's slot is kept under: its own, an alias's (the boot's anchor is
    /// loaded as `default.target`), or for an alias asked for, its unit's.
    pub fn slot_key(&self, name: &UnitName) -> Option<UnitName> {
        if self.slots.contains_key(name) {
            return Some(name.clone());
        }
        if let Some((key, _)) = self.slots.iter().find(|(_, s)| s.unit.name == *name) {
            return Some(key.clone());
        }
        let real = self.loader.load(name.as_str()).ok()?.name;
        if self.slots.contains_key(&real) {
            return Some(real);
        }
        self.slots
            .iter()
            .find(|(_, s)| s.unit.name == real)
            .map(|(key, _)| key.clone())
    }

    /// Loads `name` from disk into an inactive slot when it is not loaded yet, as systemd
    /// loads a unit on demand for `show` and `status`. Returns the slot's key (an alias
    /// finds its unit), or `None` when no unit file has that name.
    pub fn load_on_demand(&mut self, name: &UnitName) -> Option<UnitName> {
        if let Some(key) = self.slot_key(name) {
            return Some(key);
        }
        let unit = LoaderUnits {
            loader: &self.loader,
            host: &self.host,
            known: &self.slots,
        }
        .unit(name)
        .ok()?;
        for w in &unit.warnings {
            self.log(&format!("berth: {}: {w}", unit.name));
        }
        let key = unit.name.clone();
        self.slots
            .entry(key.clone())
            .or_insert_with(|| Slot::new(unit));
        Some(key)
    }

    /// The unit's properties, named as `systemctl show` names them; `None` when the unit
    /// was never loaded. An alias shows its unit, and `Id` is the unit's own name.
    pub fn properties(&self, name: &UnitName) -> Option<Vec<(&'static str, String)>> {
        let name = &self.slot_key(name)?;
        let slot = self.slots.get(name)?;
        let unit = &slot.unit;
        let id = &unit.name;
        let state = slot.active_state();
        let sub = match unit.service {
            Some(_) => slot.run.phase.as_str(),
            // systemd's socket states: `running` while its service runs.
            None if unit.socket.is_some() && state == Active::Active => {
                match self.socket_service_running(name) {
                    true => "running",
                    false => "listening",
                }
            }
            None if state == Active::Failed => "failed",
            None if state == Active::Active => "active",
            None => "dead",
        };
        let files = &unit.files;
        let path = |p: &Option<std::path::PathBuf>| {
            p.as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        };
        let micros = |d: Option<std::time::Duration>| {
            d.map(|d| d.as_micros().to_string())
                .unwrap_or_else(|| "0".into())
        };
        // systemd's numbers: si_code's CLD_EXITED (1) or CLD_KILLED (2), and the status.
        let (code, status) = match slot.run.main_exit {
            Some(Exit::Code(c)) => (nix::libc::CLD_EXITED, c),
            Some(Exit::Signal(s)) => (nix::libc::CLD_KILLED, s),
            None => (0, 0),
        };
        let mut props = vec![
            ("Id", id.to_string()),
            ("Description", unit.description.clone().unwrap_or_default()),
            (
                "LoadState",
                if files.masked { "masked" } else { "loaded" }.into(),
            ),
            (
                "ActiveState",
                if slot.run.phase == crate::unit::lifecycle::Phase::Reload {
                    "reloading"
                } else {
                    state.as_str()
                }
                .into(),
            ),
            ("SubState", sub.into()),
            // A built-in unit has no file: none is claimed (its text lives in PID 1).
            (
                "FragmentPath",
                if slot.builtin {
                    String::new()
                } else {
                    path(&files.fragment)
                },
            ),
            (
                "DropInPaths",
                files
                    .dropins
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(" "),
            ),
            ("Job", self.has_job(name).to_string()),
            // The result systemctl's wait reads (systemd's JobRemoved signal's).
            (
                "JobResult",
                match slot.job_done {
                    Some(true) => "done",
                    Some(false) => "failed",
                    None => "",
                }
                .into(),
            ),
            ("ActiveEnterTimestampMonotonic", micros(slot.activated_at)),
            ("InactiveExitTimestampMonotonic", micros(slot.started_at)),
            (
                "ExecMainStartTimestampMonotonic",
                micros(slot.main_started_at),
            ),
        ];
        props.extend(self.socket_properties(name, unit));
        if let Some(service) = &unit.service {
            let run = &slot.run;
            let (main_pid, control_pid) = run.shown_pids(service);
            props.extend([
                ("Type", service.service_type.name().into()),
                ("MainPID", main_pid.unwrap_or(0).to_string()),
                ("ControlPID", control_pid.unwrap_or(0).to_string()),
                ("ExecMainPID", run.exec_main_pid.unwrap_or(0).to_string()),
                ("ExecMainCode", code.to_string()),
                ("ExecMainStatus", status.to_string()),
                (
                    "Result",
                    run.result.map(|r| r.as_str()).unwrap_or("success").into(),
                ),
                (
                    "ReloadResult",
                    run.reload_result
                        .map(|r| r.as_str())
                        .unwrap_or("success")
                        .into(),
                ),
                ("NRestarts", run.restarts.to_string()),
                ("StatusText", slot.status.clone().unwrap_or_default()),
                ("ControlGroup", self.control_group(name, slot)),
            ]);
            props.extend(crate::unit::show_settings::service_settings(service));
            // One line per command, as `systemctl show` prints them.
            use crate::unit::exec_record::{property, show_value, SETS};
            for set in SETS {
                let commands = crate::unit::lifecycle::command_list(service, set);
                for (index, command) in commands.iter().enumerate() {
                    let record = run
                        .exec_records
                        .iter()
                        .find(|r| (r.set, r.index) == (set, index));
                    props.push((property(set), show_value(command, record)));
                }
            }
        }
        Some(props)
    }

    /// systemd's `ControlGroup=`: the unit's cgroup while it has one, i.e. while its run
    /// goes on or processes are left in it; empty once the run ended with the group empty
    /// (systemd removes it then), and for a built-in unit, whose step runs in PID 1.
    fn control_group(&self, name: &UnitName, slot: &Slot) -> String {
        let has_one =
            !slot.builtin && (!slot.run.ended() || slot.draining || self.cgroup_populated(name));
        if has_one {
            self.cgroup_of(name).display().to_string()
        } else {
            String::new()
        }
    }

    /// Every loaded unit with its load, active and sub state and description, as
    /// `systemctl list-units` shows them.
    pub fn unit_list(&self) -> Vec<[String; 5]> {
        self.slots
            .keys()
            .filter_map(|name| {
                let props = self.properties(name)?;
                let get = |k: &str| {
                    props
                        .iter()
                        .find(|(key, _)| *key == k)
                        .map(|(_, v)| v.clone())
                        .unwrap_or_default()
                };
                Some([
                    name.to_string(),
                    get("LoadState"),
                    get("ActiveState"),
                    get("SubState"),
                    get("Description"),
                ])
            })
            .collect()
    }
}
