//! What `systemctl kill`, `reset-failed` and `reload` ask of a loaded unit, with the
//! refusals systemd gives (its D-Bus errors' texts, which systemctl prints).

use super::Manager;
use crate::unit::lifecycle::control::NotReloadable;
use crate::unit::lifecycle::{Active, Event, Phase};
use crate::unit::name::UnitName;

/// `--kill-whom=` (systemctl(1)): the main process, the control process, or the cgroup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Whom {
    Main,
    Control,
    All,
}

impl Whom {
    pub fn parse(s: &str) -> Option<Whom> {
        match s {
            "main" => Some(Whom::Main),
            "control" => Some(Whom::Control),
            "all" => Some(Whom::All),
            _ => None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum OpRefused {
    #[error("Unit {0} not loaded.")]
    NotLoaded(UnitName),
    #[error("No main process to kill")]
    NoMain,
    #[error("No control process to kill")]
    NoControl,
    #[error("No matching processes to kill")]
    NoProcesses,
    #[error("Failed to send signal {signal}: {source}")]
    Signal { signal: i32, source: std::io::Error },
    #[error("Job type reload is not applicable for unit {0}.")]
    NoReload(UnitName),
    #[error("Unit {0} cannot be reloaded because it is inactive.")]
    Inactive(UnitName),
}

impl Manager<'_> {
    /// `systemctl kill`: `signal` to whom `whom` names, now; no job, no state change
    /// (the unit reacts to its processes' exits as it always does).
    pub fn kill_unit(&mut self, name: &UnitName, whom: Whom, signal: i32) -> Result<(), OpRefused> {
        let slot = self
            .slots
            .get(name)
            .ok_or_else(|| OpRefused::NotLoaded(name.clone()))?;
        let failed = |source| OpRefused::Signal { signal, source };
        match whom {
            Whom::Main => {
                let pid = slot.run.main_pid.ok_or(OpRefused::NoMain)?;
                self.sys.kill(pid as i32, signal).map_err(failed)
            }
            Whom::Control => {
                let pid = slot.run.control_pid.ok_or(OpRefused::NoControl)?;
                self.sys.kill(pid as i32, signal).map_err(failed)
            }
            Whom::All => {
                let signalled = self
                    .sys
                    .cgroup_signal(&self.cgroup_of(name), signal)
                    .map_err(failed)?;
                if signalled == 0 {
                    return Err(OpRefused::NoProcesses);
                }
                Ok(())
            }
        }
    }

    /// `systemctl reset-failed [UNIT]`: one unit, or every loaded one.
    pub fn reset_failed(&mut self, name: Option<&UnitName>) -> Result<(), OpRefused> {
        match name {
            Some(n) => {
                let slot = self
                    .slots
                    .get_mut(n)
                    .ok_or_else(|| OpRefused::NotLoaded(n.clone()))?;
                slot.run.reset_failed();
                slot.failed = false;
            }
            None => self.slots.values_mut().for_each(|s| {
                s.run.reset_failed();
                s.failed = false;
            }),
        }
        Ok(())
    }

    /// `systemctl reload`: `ExecReload=` or notify-reload's signal; the reload is the
    /// unit's job until it ends ([`Manager::has_job`]).
    pub fn reload_unit(&mut self, name: &UnitName) -> Result<(), OpRefused> {
        let slot = self
            .slots
            .get(name)
            .ok_or_else(|| OpRefused::NotLoaded(name.clone()))?;
        let Some(svc) = &slot.unit.service else {
            return Err(OpRefused::NoReload(name.clone()));
        };
        match slot.run.can_reload(svc) {
            Ok(()) => {}
            Err(NotReloadable::NoReload) => return Err(OpRefused::NoReload(name.clone())),
            Err(NotReloadable::NotActive) => return Err(OpRefused::Inactive(name.clone())),
        }
        if let Some(slot) = self.slots.get_mut(name) {
            slot.job_done = None;
        }
        self.reload_jobs.insert(name.clone());
        self.feed(name, Event::Reload);
        Ok(())
    }

    /// Ends `name`'s reload job once the unit has left "reloading" for a state that ends
    /// it, as systemd 252's `unit_process_job`: active again (done, or failed with the
    /// reload's failure), inactive (done) or failed (failed) when the main process ended
    /// during the reload. Deactivating or activating on the way there, the job runs on. A
    /// start or stop job for the unit replaces it (systemd's conflicting job types).
    pub(super) fn settle_reload_job(&mut self, name: &UnitName) {
        if !self.reload_jobs.contains(name) {
            return;
        }
        if self.pending.contains_key(name) || self.running.contains_key(name) {
            self.reload_jobs.remove(name);
            return;
        }
        let Some(slot) = self.slots.get_mut(name) else {
            self.reload_jobs.remove(name);
            return;
        };
        if slot.run.phase == Phase::Reload {
            return;
        }
        let done = match slot.active_state() {
            Active::Active => slot.run.reload_result.is_none(),
            Active::Inactive => true,
            Active::Failed => false,
            _ => return,
        };
        slot.job_done = Some(done);
        self.reload_jobs.remove(name);
    }

    /// Whether a reload of `name` is under way.
    pub(super) fn reloading(&self, name: &UnitName) -> bool {
        self.slots
            .get(name)
            .is_some_and(|s| s.run.phase == Phase::Reload)
    }
}
