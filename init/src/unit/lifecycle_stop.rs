//! How a service's run ends: `ExecStop=`, the stop signal per `KillMode=` and SIGKILL
//! after `TimeoutStopSec=` (or, per `TimeoutStopFailureMode=`, `WatchdogSignal=` with
//! `TimeoutAbortSec=`, or SIGKILL at once; a start out of time per
//! `TimeoutStartFailureMode=`), `ExecStopPost=`, the final state and restart
//! decision, and what each armed timer means in each phase (a start, stop or run past
//! its limit).

use super::*;

impl ServiceRun {
    /// A stop (a stop job, a start or run out of time, a main process that failed), as
    /// systemd 252's `service_stop`: from `running` or `exited`, `ExecStop=` first (even
    /// when the main process is gone: `$MAINPID` is then unset); from a start or reload
    /// phase, straight to the stop signal. A stop of a stopping run changes nothing; one
    /// of an ended run cancels its pending restart.
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
        if matches!(self.phase, Phase::Running | Phase::Exited) {
            self.enter_stop(svc, out);
        } else {
            self.enter_stop_signal(svc, out);
        }
    }

    /// `stop`: `ExecStop=` when there is one, then the stop signal. As on systemd, each
    /// step of a stop (`ExecStop=`, the stop signal, SIGKILL, `ExecStopPost=`) has a
    /// `TimeoutStopSec=` of its own.
    pub(super) fn enter_stop(&mut self, svc: &Service, out: &mut Vec<Action>) {
        self.set(Active::Deactivating, Phase::Stop);
        if commands(svc, CommandSet::Stop) > 0 {
            self.arm_stop_timeout(svc, out);
            self.run_from(svc, CommandSet::Stop, 0, out);
        } else {
            self.signal_remaining(svc, out);
        }
    }

    /// `stop-sigterm` without `ExecStop=`.
    pub(super) fn enter_stop_signal(&mut self, svc: &Service, out: &mut Vec<Action>) {
        self.set(Active::Deactivating, Phase::Stop);
        self.signal_remaining(svc, out);
    }

    pub(super) fn arm_stop_timeout(&self, svc: &Service, out: &mut Vec<Action>) {
        match svc.timeout_stop {
            Some(t) => out.push(Action::Arm(t)),
            None => out.push(Action::Disarm),
        }
    }

    /// KillSignal= to the main process or the group, per KillMode=.
    pub(super) fn signal_remaining(&mut self, svc: &Service, out: &mut Vec<Action>) {
        self.signal(svc, svc.kill_signal, Phase::StopSigterm, out);
    }

    /// Whom a signal of `phase` goes to, as systemd 252's `unit_kill_context`: the main
    /// and control processes (all modes but `none`), and the whole cgroup under
    /// `control-group`, or under `mixed` for SIGKILL only (`stop-sigkill`): under
    /// `mixed`, the stop signal never goes to the group, even with the main process gone.
    pub(super) fn kill_targets(&self, svc: &Service, phase: Phase) -> Vec<KillTarget> {
        let processes = || {
            let main = self.main_pid.map(KillTarget::Main);
            let control = self.control_pid.map(KillTarget::Control);
            main.into_iter().chain(control).collect()
        };
        match svc.kill_mode {
            KillMode::None => Vec::new(),
            KillMode::ControlGroup => vec![KillTarget::Group],
            KillMode::Mixed if matches!(phase, Phase::StopSigkill | Phase::FinalSigkill) => {
                vec![KillTarget::Group]
            }
            KillMode::Mixed | KillMode::Process => processes(),
        }
    }

    /// `signal` to whom `KillMode=` says ([`Self::kill_targets`]); SIGHUP after it when
    /// `SendSIGHUP=` (on the stop signal only). With no one to signal, on to SIGKILL
    /// (when `SendSIGKILL=`), else to `ExecStopPost=`, as systemd does.
    pub(super) fn signal(
        &mut self,
        svc: &Service,
        signal: i32,
        phase: Phase,
        out: &mut Vec<Action>,
    ) {
        self.current = None;
        self.phase = phase;
        let targets = self.kill_targets(svc, phase);
        if targets.is_empty() {
            if phase != Phase::StopSigkill && svc.send_sigkill {
                return self.signal(svc, SIGKILL, Phase::StopSigkill, out);
            }
            return self.begin_stop_post(svc, out);
        }
        if phase == Phase::StopWatchdog {
            // The watchdog's or an abort's signal: TimeoutAbortSec= (systemd 252's
            // `service_timeout_abort_usec`).
            out.push(svc.abort_timeout().map_or(Action::Disarm, Action::Arm));
        } else {
            self.arm_stop_timeout(svc, out);
        }
        for &target in &targets {
            out.push(Action::Kill { target, signal });
            if svc.send_sighup && phase == Phase::StopSigterm {
                out.push(Action::Signal {
                    target,
                    signal: SIGHUP,
                });
            }
        }
        if self.waits_for_group() {
            // Only the group was signalled, nothing we track: as systemd 252's
            // `service_enter_signal`, the stop waits in this phase, within its timeout,
            // for the group to empty; only then comes `ExecStopPost=`.
            out.push(Action::AwaitGroupEmpty);
        }
    }

    /// Whether the run is in a stop-signal phase with neither a main nor a control
    /// process left, so that only its cgroup emptying moves it on ([`Event::CgroupEmpty`]).
    pub fn waits_for_group(&self) -> bool {
        matches!(
            self.phase,
            Phase::StopSigterm | Phase::StopWatchdog | Phase::StopSigkill
        ) && self.main_pid.is_none()
            && self.control_pid.is_none()
    }

    /// The cgroup is empty (systemd 252's `service_notify_cgroup_empty_event`): a stop
    /// that waited for it goes on to `ExecStopPost=`; in any other phase it changes nothing.
    pub(super) fn group_empty(&mut self, svc: &Service, out: &mut Vec<Action>) {
        if self.waits_for_group() {
            self.begin_stop_post(svc, out);
        }
    }

    /// `TimeoutStopFailureMode=abort`: `WatchdogSignal=` (SIGABRT by default), with
    /// `TimeoutAbortSec=` before SIGKILL (systemd's `stop-watchdog`).
    fn abort(&mut self, svc: &Service, out: &mut Vec<Action>) {
        self.signal(svc, svc.watchdog_signal, Phase::StopWatchdog, out);
    }

    /// SIGKILL when `SendSIGKILL=`, else give up on what is left and go on to
    /// `ExecStopPost=`.
    fn kill_or_give_up(&mut self, svc: &Service, out: &mut Vec<Action>) {
        if svc.send_sigkill {
            self.signal(svc, SIGKILL, Phase::StopSigkill, out);
        } else {
            self.main_pid = None;
            self.control_pid = None;
            self.begin_stop_post(svc, out);
        }
    }

    pub(super) fn begin_stop_post(&mut self, svc: &Service, out: &mut Vec<Action>) {
        self.set(Active::Deactivating, Phase::StopPost);
        if commands(svc, CommandSet::StopPost) > 0 {
            self.arm_stop_timeout(svc, out);
        }
        self.run_from(svc, CommandSet::StopPost, 0, out);
    }

    /// The run is over: inactive, failed, or a restart scheduled. When processes are
    /// left in its cgroup, the engine drains it and this is decided again with the
    /// drain's outcome ([`Self::drain_ended`]).
    pub(super) fn finish(&mut self, svc: &Service, out: &mut Vec<Action>) {
        self.current = None;
        self.end(svc, true, out);
    }

    /// systemd 252's `service_enter_dead`: failed or dead by the run's result, and a
    /// restart when allowed (no stop was asked for) and `Restart=` says so for that result.
    pub(super) fn end(&mut self, svc: &Service, may_restart: bool, out: &mut Vec<Action>) {
        out.push(Action::Disarm);
        if may_restart && !self.stop_requested && should_restart(svc, self.result, self.main_exit) {
            self.set(Active::Activating, Phase::AutoRestart);
            out.push(Action::Arm(svc.restart_sec));
            return;
        }
        match self.result {
            Some(_) => self.set(Active::Failed, Phase::Failed),
            None => self.set(Active::Inactive, Phase::Dead),
        }
    }

    /// The drain of the ended run's cgroup is over. systemd decides the end state and
    /// `Restart=` only after its final-sigterm/final-sigkill states, so they are decided
    /// again here, with the final result: a drain out of time makes it `timeout` (unless
    /// the run failed already), which `Restart=on-failure` restarts and `on-success` does
    /// not; giving up after the stop signal (`SendSIGKILL=no`) never restarts. A restart's
    /// `RestartSec=` counts from now.
    pub fn drain_ended(&mut self, svc: &Service, end: DrainEnd) -> Vec<Action> {
        let mut out = Vec::new();
        if !self.ended() {
            return out;
        }
        let may_restart = match end {
            DrainEnd::Empty => true,
            DrainEnd::TimedOut { may_restart } => {
                self.result.get_or_insert(Failure::Timeout);
                may_restart
            }
        };
        self.end(svc, may_restart, &mut out);
        out
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
            // A start that took too long, per TimeoutStartFailureMode= (systemd 252's
            // `service_dispatch_timer`: terminate from start-post stops through
            // ExecStop=), or a run past RuntimeMaxSec=, which stops through ExecStop=.
            Phase::StartPre | Phase::Start | Phase::StartPost => {
                self.result = Some(Failure::Timeout);
                match svc.timeout_start_failure_mode {
                    TimeoutFailureMode::Terminate if self.phase == Phase::StartPost => {
                        self.enter_stop(svc, out)
                    }
                    TimeoutFailureMode::Terminate => self.enter_stop_signal(svc, out),
                    TimeoutFailureMode::Abort => {
                        self.set(Active::Deactivating, Phase::Stop);
                        self.abort(svc, out);
                    }
                    TimeoutFailureMode::Kill => {
                        self.set(Active::Deactivating, Phase::Stop);
                        self.kill_or_give_up(svc, out);
                    }
                }
            }
            Phase::Running => {
                self.result = Some(Failure::Timeout);
                self.begin_stop(svc, out);
            }
            // As systemd: a stop that times out fails the unit (Result: timeout), unless
            // it already failed (a watchdog stop keeps Result: watchdog), and goes on per
            // `TimeoutStopFailureMode=` (systemd 252's `service_dispatch_timer`).
            Phase::Stop => {
                self.result.get_or_insert(Failure::Timeout);
                match svc.timeout_stop_failure_mode {
                    TimeoutFailureMode::Terminate => self.signal_remaining(svc, out),
                    TimeoutFailureMode::Abort => self.abort(svc, out),
                    TimeoutFailureMode::Kill => self.kill_or_give_up(svc, out),
                }
            }
            Phase::StopSigterm => {
                self.result.get_or_insert(Failure::Timeout);
                match svc.timeout_stop_failure_mode {
                    TimeoutFailureMode::Abort => self.abort(svc, out),
                    _ => self.kill_or_give_up(svc, out),
                }
            }
            Phase::StopWatchdog => {
                self.result.get_or_insert(Failure::Timeout);
                self.kill_or_give_up(svc, out);
            }
            Phase::StopSigkill => {
                // Not even SIGKILL ended it (stuck in the kernel): give up on it.
                self.main_pid = None;
                self.result.get_or_insert(Failure::Timeout);
                self.begin_stop_post(svc, out);
            }
            // The final drain goes on per TimeoutStopFailureMode=; kill without
            // SendSIGKILL= ends the run at once and never restarts it, as systemd 252.
            Phase::StopPost => {
                self.result.get_or_insert(Failure::Timeout);
                self.stop_post_timed_out = true;
                if self.final_signal_stop_post(svc, out) {
                    return;
                }
                if svc.timeout_stop_failure_mode == TimeoutFailureMode::Kill && !svc.send_sigkill {
                    self.current = None;
                    return self.end(svc, false, out);
                }
                self.finish(svc, out);
            }
            Phase::FinalSigterm | Phase::FinalWatchdog | Phase::FinalSigkill => {
                self.final_timer(svc, out)
            }
            // systemd 252: "Reload operation timed out. Killing reload process."
            Phase::Reload => {
                if let Some(pid) = self.control_pid {
                    out.push(Action::Kill {
                        target: KillTarget::Control(pid),
                        signal: SIGKILL,
                    });
                }
                self.reload_done(svc, Some(Failure::Timeout), out);
            }
            _ => {}
        }
    }
}
