//! An `ExecStopPost=` that outlives `TimeoutStopSec=` under `KillMode=process` or
//! `mixed`: systemd 252's final-sigterm, final-watchdog and final-sigkill states signal
//! it by itself. `unit_kill_context` sends a state's signal to the main and control
//! processes under every mode but `none`, and to the cgroup only under `control-group`
//! (or `mixed`, for SIGKILL). Under `control-group` the engine's drain of the cgroup
//! reaches the control process too ([`crate::manager`]'s `drain.rs`); under `process`
//! nothing else would, and under `mixed` the drain would skip the stop signal (it sends
//! the group SIGKILL only), so this module signals the process, within
//! `TimeoutStopSec=` per step (`TimeoutAbortSec=` for the abort), as
//! `service_dispatch_timer` goes on from each state; what is left in the cgroup once the
//! run ended is the drain's, as before. Under `none`, systemd signals no one and ends
//! the run at once, as Berth already did.

use super::*;

impl ServiceRun {
    /// `ExecStopPost=` ran out of time: its control process is signalled per
    /// `TimeoutStopFailureMode=` (systemd's `stop-post` timeout: terminate, abort, or
    /// kill; kill without `SendSIGKILL=` ends the run at once, never restarting it).
    /// Returns false when the process is left to the drain (no control process, or a
    /// kill mode under which the cgroup drain or no one signals it).
    pub(super) fn final_signal_stop_post(&mut self, svc: &Service, out: &mut Vec<Action>) -> bool {
        if self.control_pid.is_none()
            || !matches!(svc.kill_mode, KillMode::Process | KillMode::Mixed)
        {
            return false;
        }
        match svc.timeout_stop_failure_mode {
            TimeoutFailureMode::Terminate => self.final_signal(svc, Phase::FinalSigterm, out),
            TimeoutFailureMode::Abort => self.final_signal(svc, Phase::FinalWatchdog, out),
            TimeoutFailureMode::Kill if svc.send_sigkill => {
                self.final_signal(svc, Phase::FinalSigkill, out)
            }
            TimeoutFailureMode::Kill => {
                self.current = None;
                self.end(svc, false, out);
            }
        }
        true
    }

    /// A final state's signal to the control process (the main process too, should it
    /// still be known), with that state's time limit.
    fn final_signal(&mut self, svc: &Service, phase: Phase, out: &mut Vec<Action>) {
        self.current = None;
        self.set(Active::Deactivating, phase);
        let (signal, timeout) = match phase {
            Phase::FinalWatchdog => (svc.watchdog_signal, svc.abort_timeout()),
            Phase::FinalSigkill => (SIGKILL, svc.timeout_stop),
            _ => (svc.kill_signal, svc.timeout_stop),
        };
        out.push(timeout.map_or(Action::Disarm, Action::Arm));
        for target in self.kill_targets(svc, phase) {
            out.push(Action::Kill { target, signal });
            if svc.send_sighup && phase == Phase::FinalSigterm {
                out.push(Action::Signal {
                    target,
                    signal: SIGHUP,
                });
            }
        }
    }

    /// A final state ran out of time (systemd 252's `service_dispatch_timer`):
    /// final-sigterm goes on to the abort (`TimeoutStopFailureMode=abort`) or SIGKILL,
    /// final-watchdog to SIGKILL; without `SendSIGKILL=` the run ends there, failed and
    /// not restarted; after the final SIGKILL it ends failed, a restart allowed.
    pub(super) fn final_timer(&mut self, svc: &Service, out: &mut Vec<Action>) {
        self.result.get_or_insert(Failure::Timeout);
        let abort = svc.timeout_stop_failure_mode == TimeoutFailureMode::Abort;
        match self.phase {
            Phase::FinalSigterm if abort => self.final_signal(svc, Phase::FinalWatchdog, out),
            Phase::FinalSigterm | Phase::FinalWatchdog if svc.send_sigkill => {
                self.final_signal(svc, Phase::FinalSigkill, out)
            }
            Phase::FinalSigterm | Phase::FinalWatchdog => self.end(svc, false, out),
            _ => self.finish(svc, out),
        }
    }
}
