//! What `systemctl` asks of a service besides start and stop. `reset-failed`: a failed
//! service back to inactive, its start-limit count forgotten. `reload` (systemd.service(5) `ExecReload=`,
//! `Type=notify-reload`): the `ExecReload=` commands run one after another as the unit's
//! control process (with `$MAINPID`), or, for notify-reload without them, `ReloadSignal=`
//! goes to the main process and the reload ends at its `READY=1` (after `RELOADING=1`).
//! A service may also say `RELOADING=1` on its own: `reloading` until its `READY=1`.
//! The service stays active throughout; a failed reload is the reload's result
//! (`ReloadResult=`), not the unit's. A main process that ends during `ExecReload=` is
//! acted on once the reload is done, as systemd 252 does; one that ends during a reload
//! with no control process (by `ReloadSignal=` or `RELOADING=1`), which can then never
//! end, stops the service at once through `ExecStop=`, as systemd does.

use super::{
    commands, Action, Active, CommandSet, Failure, KillTarget, Phase, ServiceRun, ServiceType,
};
use crate::unit::service::Service;

/// Why a reload cannot be asked of a service now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NotReloadable {
    /// No `ExecReload=` and not notify-reload.
    #[error("Job type reload is not applicable")]
    NoReload,
    #[error("not active, cannot reload")]
    NotActive,
}

impl ServiceRun {
    /// Whether `systemctl reload` may run now, as systemd decides before queueing the job.
    pub fn can_reload(&self, svc: &Service) -> Result<(), NotReloadable> {
        if commands(svc, CommandSet::Reload) == 0 && svc.service_type != ServiceType::NotifyReload {
            return Err(NotReloadable::NoReload);
        }
        if self.active != Active::Active || !matches!(self.phase, Phase::Running | Phase::Exited) {
            return Err(NotReloadable::NotActive);
        }
        Ok(())
    }

    pub(super) fn reload(&mut self, svc: &Service, out: &mut Vec<Action>) {
        if self.can_reload(svc).is_err() {
            return;
        }
        self.reload_result = None;
        self.main_ended_in_reload = false;
        self.phase = Phase::Reload;
        if let Some(t) = svc.timeout_start {
            out.push(Action::Arm(t));
        }
        if commands(svc, CommandSet::Reload) > 0 {
            self.current = Some((CommandSet::Reload, 0));
            out.push(Action::Spawn {
                set: CommandSet::Reload,
                index: 0,
            });
        } else if let Some(pid) = self.main_pid {
            out.push(Action::Signal {
                target: KillTarget::Main(pid),
                signal: svc.reload_signal,
            });
        } else {
            self.reload_done(svc, Some(Failure::Protocol), out);
        }
    }

    /// `RELOADING=1` from a running service (sd_notify(3)): it reloads its configuration
    /// on its own, and the unit is `reloading` until its `READY=1`, within
    /// `TimeoutStartSec=` (systemd 252's "reload by notify"). Ignored in any other state.
    pub(super) fn reloading_notified(&mut self, svc: &Service, out: &mut Vec<Action>) {
        if self.active != Active::Active || self.phase != Phase::Running {
            return;
        }
        self.reload_result = None;
        self.phase = Phase::Reload;
        if let Some(t) = svc.timeout_start {
            out.push(Action::Arm(t));
        }
    }

    /// The reload ended (`None`: it succeeded): back to running, or exited. A main process
    /// that ended meanwhile is acted on now, as systemd 252 does once the reload's control
    /// process is done (`service_enter_running`): the run fails on an unclean end, is
    /// `exited` with `RemainAfterExit=`, or stops through `ExecStop=`.
    pub(super) fn reload_done(
        &mut self,
        svc: &Service,
        failure: Option<Failure>,
        out: &mut Vec<Action>,
    ) {
        self.current = None;
        out.push(Action::Disarm);
        self.reload_result = failure;
        if std::mem::take(&mut self.main_ended_in_reload) {
            return self.enter_running(svc, out);
        }
        self.phase = if self.main_pid.is_some() {
            Phase::Running
        } else {
            Phase::Exited
        };
        // The reload's timeout took the one timer: RuntimeMaxSec= counts on from the
        // start of the run, as systemd 252 arms it from the active-enter time.
        if let Some(at) = self
            .runtime_deadline
            .filter(|_| self.phase == Phase::Running)
        {
            out.push(Action::Arm(at.saturating_sub(self.clock)));
        }
    }

    /// systemd's `MainPID` and `ControlPID`: a oneshot's running `ExecStart=` is its main
    /// process there (252's `service_enter_start`), though Berth runs it as a command of
    /// the start; every other command (`ExecStartPre=`, forking's start, `ExecReload=`,
    /// `ExecStop=`, `ExecStopPost=` ...) is the control process.
    pub fn shown_pids(&self, svc: &Service) -> (Option<u32>, Option<u32>) {
        let oneshot_start = svc.service_type == ServiceType::Oneshot
            && matches!(self.current, Some((CommandSet::Start, _)));
        if oneshot_start {
            return (self.control_pid, None);
        }
        (self.main_pid, self.control_pid)
    }

    /// `systemctl reset-failed`: failed becomes inactive, and the start limit starts over.
    pub fn reset_failed(&mut self) {
        self.starts.clear();
        if self.active == Active::Failed {
            self.result = None;
            self.active = Active::Inactive;
            self.phase = Phase::Dead;
        }
    }
}
