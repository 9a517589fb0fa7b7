//! What a run's timer says when it fires: the warning systemd 252's
//! `service_dispatch_timer` logs for the state that ran out of time, word for word, so
//! that a stuck stop reads in the journal as it does on systemd ("State 'stop-sigterm'
//! timed out. Killing."). Read before the timer is handled, from the state it fired in.

use super::{Phase, ServiceRun};
use crate::unit::service::{Service, TimeoutFailureMode};

impl ServiceRun {
    /// The warning for the timer of the current phase, if that phase has one.
    pub fn timeout_message(&self, svc: &Service) -> Option<String> {
        let stop_mode = svc.timeout_stop_failure_mode;
        let message = match self.phase {
            Phase::StartPre | Phase::Start | Phase::StartPost => {
                let state = match self.phase {
                    Phase::StartPre => "start-pre",
                    Phase::Start => "start",
                    _ => "start-post",
                };
                let how = match svc.timeout_start_failure_mode {
                    TimeoutFailureMode::Terminate => "Terminating",
                    TimeoutFailureMode::Abort => "Aborting",
                    TimeoutFailureMode::Kill => "Killing",
                };
                format!("{state} operation timed out. {how}.")
            }
            Phase::Running => "Service reached runtime time limit. Stopping.".into(),
            Phase::Reload => "Reload operation timed out. Killing reload process.".into(),
            Phase::Stop => format!("Stopping timed out. {}.", next_step(svc, stop_mode)),
            Phase::StopWatchdog => state_timed_out(
                "stop-watchdog",
                next_step(svc, TimeoutFailureMode::Kill),
                false,
            ),
            Phase::StopSigterm => state_timed_out(
                "stop-sigterm",
                next_step(svc, stop_mode.after_stop_signal()),
                false,
            ),
            Phase::StopSigkill => "Processes still around after SIGKILL. Ignoring.".into(),
            Phase::StopPost => state_timed_out(
                "stop-post",
                next_step(svc, stop_mode),
                stop_mode == TimeoutFailureMode::Kill && !svc.send_sigkill,
            ),
            Phase::FinalWatchdog => state_timed_out(
                "final-watchdog",
                next_step(svc, TimeoutFailureMode::Kill),
                !svc.send_sigkill,
            ),
            Phase::FinalSigterm => {
                let mode = stop_mode.after_stop_signal();
                state_timed_out(
                    "final-sigterm",
                    next_step(svc, mode),
                    mode == TimeoutFailureMode::Kill && !svc.send_sigkill,
                )
            }
            Phase::FinalSigkill => FINAL_SIGKILL_LEFT.into(),
            _ => return None,
        };
        Some(message)
    }
}

impl TimeoutFailureMode {
    /// After the stop signal there is nothing left to terminate: terminate becomes kill.
    fn after_stop_signal(self) -> Self {
        match self {
            TimeoutFailureMode::Abort => TimeoutFailureMode::Abort,
            _ => TimeoutFailureMode::Kill,
        }
    }
}

/// What comes next under `mode`: SIGKILL is skipped without `SendSIGKILL=`.
fn next_step(svc: &Service, mode: TimeoutFailureMode) -> &'static str {
    match mode {
        TimeoutFailureMode::Terminate => "Terminating",
        TimeoutFailureMode::Abort => "Aborting",
        TimeoutFailureMode::Kill if svc.send_sigkill => "Killing",
        TimeoutFailureMode::Kill => "Skipping SIGKILL",
    }
}

/// systemd's words when processes outlive the final SIGKILL.
pub const FINAL_SIGKILL_LEFT: &str =
    "Processes still around after final SIGKILL. Entering failed mode.";

/// "State 'STATE' timed out. STEP.", with " Entering failed mode." when the run ends
/// there; shared with the manager's final drain ([`crate::manager`]), which says the same
/// of the states it runs.
pub fn state_timed_out(state: &str, step: &str, ends: bool) -> String {
    let head = format!("State '{state}' timed out. {step}.");
    match ends {
        true => format!("{head} Entering failed mode."),
        false => head,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::unit::lifecycle::Active;

    fn run_in(phase: Phase) -> ServiceRun {
        let mut run = ServiceRun::default();
        run.set(Active::Deactivating, phase);
        run
    }

    fn service(send_sigkill: bool, stop_mode: TimeoutFailureMode) -> Service {
        Service {
            send_sigkill,
            timeout_stop_failure_mode: stop_mode,
            ..Service::default()
        }
    }

    #[test]
    fn each_state_says_what_systemd_says() {
        use TimeoutFailureMode::{Abort, Terminate};
        let cases = [
            (
                Phase::Start,
                true,
                Terminate,
                "start operation timed out. Terminating.",
            ),
            (
                Phase::StopSigterm,
                true,
                Terminate,
                "State 'stop-sigterm' timed out. Killing.",
            ),
            (
                Phase::StopSigterm,
                false,
                Terminate,
                "State 'stop-sigterm' timed out. Skipping SIGKILL.",
            ),
            (
                Phase::StopSigterm,
                true,
                Abort,
                "State 'stop-sigterm' timed out. Aborting.",
            ),
            (
                Phase::Stop,
                true,
                Terminate,
                "Stopping timed out. Terminating.",
            ),
            (
                Phase::StopPost,
                true,
                Terminate,
                "State 'stop-post' timed out. Terminating.",
            ),
            (
                Phase::FinalSigterm,
                false,
                Terminate,
                "State 'final-sigterm' timed out. Skipping SIGKILL. Entering failed mode.",
            ),
        ];
        for (phase, send_sigkill, mode, said) in cases {
            let svc = service(send_sigkill, mode);
            assert_eq!(run_in(phase).timeout_message(&svc).as_deref(), Some(said));
        }
        assert_eq!(
            run_in(Phase::Dead).timeout_message(&service(true, Terminate)),
            None
        );
    }
}
