//! How a service's run ends: `ExecStop=`, the stop signal per `KillMode=` and SIGKILL
//! after `TimeoutStopSec=`, `ExecStopPost=`, the final state and restart decision, and
//! what each armed timer means in each phase (a start, stop or run past its limit).

use super::*;

impl ServiceRun {
    /// ExecStop=, or straight to the signals.
    pub(super) fn begin_stop(&mut self, svc: &Service, out: &mut Vec<Action>) {
        match self.active {
            Active::Inactive | Active::Failed => {
                // A pending restart is cancelled by a stop.
                if self.phase == Phase::AutoRestart {
                    out.push(Action::Disarm);
                    self.set(Active::Inactive, Phase::Dead);
                }
                return;
            }
            Active::Deactivating => return,
            _ => {}
        }
        self.set(Active::Deactivating, Phase::Stop);
        if let Some(t) = svc.timeout_stop {
            out.push(Action::Arm(t));
        } else {
            out.push(Action::Disarm);
        }
        if self.main_pid.is_some() && commands(svc, CommandSet::Stop) > 0 {
            self.run_from(svc, CommandSet::Stop, 0, out);
        } else {
            self.signal_remaining(svc, out);
        }
    }

    /// KillSignal= to the main process or the group, per KillMode=.
    pub(super) fn signal_remaining(&mut self, svc: &Service, out: &mut Vec<Action>) {
        self.signal(svc, svc.kill_signal, Phase::StopSigterm, out);
    }

    /// `signal` to the main process or the group, per KillMode=; SIGHUP after it when
    /// `SendSIGHUP=` (on the stop signal only).
    pub(super) fn signal(
        &mut self,
        svc: &Service,
        signal: i32,
        phase: Phase,
        out: &mut Vec<Action>,
    ) {
        self.current = None;
        self.phase = phase;
        let target = match (svc.kill_mode, self.main_pid) {
            (KillMode::None, _) => None,
            (KillMode::Process, Some(pid)) => Some(KillTarget::Main(pid)),
            (KillMode::Process, None) => None,
            (KillMode::Mixed, Some(pid)) => Some(KillTarget::Main(pid)),
            (KillMode::Mixed, None) | (KillMode::ControlGroup, _) => Some(KillTarget::Group),
        };
        match target {
            Some(t) => {
                out.push(Action::Kill { target: t, signal });
                if svc.send_sighup && phase == Phase::StopSigterm {
                    out.push(Action::Kill {
                        target: t,
                        signal: SIGHUP,
                    });
                }
                if self.main_pid.is_none() && t == KillTarget::Group {
                    // Nothing we track: the engine reports an empty group as done.
                    self.begin_stop_post(svc, out);
                }
            }
            None => self.begin_stop_post(svc, out),
        }
    }

    pub(super) fn begin_stop_post(&mut self, svc: &Service, out: &mut Vec<Action>) {
        self.set(Active::Deactivating, Phase::StopPost);
        self.run_from(svc, CommandSet::StopPost, 0, out);
    }

    /// The run is over: inactive, failed, or a restart scheduled.
    pub(super) fn finish(&mut self, svc: &Service, out: &mut Vec<Action>) {
        self.current = None;
        out.push(Action::Disarm);
        if !self.stop_requested && should_restart(svc, self.result, self.last_exit) {
            self.set(Active::Activating, Phase::AutoRestart);
            out.push(Action::Arm(svc.restart_sec));
            return;
        }
        match self.result {
            Some(_) => self.set(Active::Failed, Phase::Failed),
            None => self.set(Active::Inactive, Phase::Dead),
        }
    }

    /// Processes left in the cgroup after the run ended outlived the stop's time
    /// (systemd's `final-sigterm` or `final-sigkill` timing out): the result is `timeout`
    /// unless the run failed already, and a run that ended inactive is failed. A restart
    /// already scheduled stays scheduled.
    pub fn leftovers_timed_out(&mut self) {
        self.result.get_or_insert(Failure::Timeout);
        if self.active == Active::Inactive {
            self.set(Active::Failed, Phase::Failed);
        }
    }

    /// Whether the run is over (inactive, failed, or waiting to restart), so that what is
    /// left in its cgroup is the manager's to end.
    pub fn ended(&self) -> bool {
        matches!(self.active, Active::Inactive | Active::Failed) || self.phase == Phase::AutoRestart
    }

    pub(super) fn timer(
        &mut self,
        svc: &Service,
        limit: (Duration, u32),
        now: Duration,
        out: &mut Vec<Action>,
    ) {
        match self.phase {
            Phase::AutoRestart => {
                self.restarts += 1;
                self.set(Active::Inactive, Phase::Dead);
                self.start(svc, limit, now, out);
            }
            // A start that took too long, or a run past RuntimeMaxSec=.
            Phase::StartPre | Phase::Start | Phase::StartPost | Phase::Running => {
                self.result = Some(Failure::Timeout);
                self.begin_stop(svc, out);
            }
            Phase::Stop | Phase::StopSigterm | Phase::StopWatchdog => {
                // As systemd: a stop that times out fails the unit (Result: timeout),
                // unless it already failed (a watchdog stop keeps Result: watchdog).
                self.result.get_or_insert(Failure::Timeout);
                if svc.send_sigkill {
                    self.phase = Phase::StopSigkill;
                    let target = match (svc.kill_mode, self.main_pid) {
                        (KillMode::Process, Some(pid)) => KillTarget::Main(pid),
                        _ => KillTarget::Group,
                    };
                    out.push(Action::Kill {
                        target,
                        signal: SIGKILL,
                    });
                    if let Some(t) = svc.timeout_stop {
                        out.push(Action::Arm(t));
                    }
                } else {
                    self.main_pid = None;
                    self.begin_stop_post(svc, out);
                }
            }
            Phase::StopSigkill => {
                // Not even SIGKILL ended it (stuck in the kernel): give up on it.
                self.main_pid = None;
                self.result.get_or_insert(Failure::Timeout);
                self.begin_stop_post(svc, out);
            }
            Phase::StopPost => {
                self.result.get_or_insert(Failure::Timeout);
                self.finish(svc, out);
            }
            Phase::Reload => self.reload_done(Some(Failure::Timeout), out),
            _ => {}
        }
    }
}
