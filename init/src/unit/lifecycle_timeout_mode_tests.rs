//! A start or stop out of time per `TimeoutStartFailureMode=` and
//! `TimeoutStopFailureMode=` (systemd 252's `service_dispatch_timer`): terminate signals `KillSignal=` then SIGKILL; abort
//! signals `WatchdogSignal=` and allows `TimeoutAbortSec=` before SIGKILL; kill sends
//! SIGKILL at once. And `RestartForceExitStatus=`, which restarts whatever `Restart=` says.

use super::*;
use crate::unit::service::TimeoutFailureMode;

fn stoppable(mode: TimeoutFailureMode, extra: impl FnOnce(&mut Service)) -> Drive {
    let mut svc = service(&["ExecStart=/bin/a", "ExecStop=/bin/stuck"]);
    svc.timeout_stop = Some(Duration::from_secs(3));
    svc.timeout_abort = Some(Some(Duration::from_secs(7)));
    svc.timeout_stop_failure_mode = mode;
    extra(&mut svc);
    let mut d = Drive::new(svc);
    d.feed(Event::Start);
    d.step(Event::Stop);
    d.step(Event::Spawned(Ok(61)));
    d
}

fn group(signal: i32) -> Action {
    Action::Kill {
        target: KillTarget::Group,
        signal,
    }
}

#[test]
fn abort_sends_watchdog_signal_with_timeout_abort_sec_then_sigkill() {
    let mut d = stoppable(TimeoutFailureMode::Abort, |_| {});
    // ExecStop= out of time: SIGABRT to the group, TimeoutAbortSec= to end.
    assert_eq!(
        d.step(Event::Timer),
        [Action::Arm(Duration::from_secs(7)), group(6)]
    );
    assert_eq!(d.state(), (Active::Deactivating, Phase::StopWatchdog));
    assert_eq!(d.run.result, Some(Failure::Timeout));
    assert_eq!(
        d.step(Event::Timer),
        [Action::Arm(Duration::from_secs(3)), group(9)]
    );
    assert_eq!(d.state(), (Active::Deactivating, Phase::StopSigkill));
}

#[test]
fn abort_after_the_stop_signal_times_out_and_uses_watchdog_signal() {
    let mut d = stoppable(TimeoutFailureMode::Abort, |s| {
        s.exec_stop.clear();
        s.watchdog_signal = 3;
        s.timeout_abort = None;
    });
    // No ExecStop=: the stop signal went at once; its timeout aborts, within
    // TimeoutStopSec= since TimeoutAbortSec= is unset.
    assert_eq!(d.state(), (Active::Deactivating, Phase::StopSigterm));
    assert_eq!(
        d.step(Event::Timer),
        [Action::Arm(Duration::from_secs(3)), group(3)]
    );
    assert_eq!(d.state(), (Active::Deactivating, Phase::StopWatchdog));
}

#[test]
fn abort_with_infinite_timeout_abort_sec_waits_and_without_sigkill_gives_up() {
    let mut d = stoppable(TimeoutFailureMode::Abort, |s| {
        s.timeout_abort = Some(None);
        s.send_sigkill = false;
    });
    assert_eq!(d.step(Event::Timer), [Action::Disarm, group(6)]);
    // The one timer was disarmed; were it to fire, without SendSIGKILL= the stop goes on.
    let acts = d.step(Event::Timer);
    assert!(!acts.contains(&group(9)), "{acts:?}");
    assert_eq!(d.state(), (Active::Failed, Phase::Failed));
    assert_eq!(d.run.result, Some(Failure::Timeout));
}

#[test]
fn kill_sends_sigkill_at_once_or_without_send_sigkill_goes_to_exec_stop_post() {
    let mut d = stoppable(TimeoutFailureMode::Kill, |_| {});
    assert_eq!(
        d.step(Event::Timer),
        [Action::Arm(Duration::from_secs(3)), group(9)]
    );
    assert_eq!(d.state(), (Active::Deactivating, Phase::StopSigkill));
    assert_eq!(d.run.result, Some(Failure::Timeout));

    let mut d = stoppable(TimeoutFailureMode::Kill, |s| {
        s.send_sigkill = false;
        s.exec_stop_post = exec::parse("/bin/post").expect("command");
    });
    let acts = d.step(Event::Timer);
    assert_eq!(
        acts,
        [
            Action::Arm(Duration::from_secs(3)),
            Action::Spawn {
                set: CommandSet::StopPost,
                index: 0
            }
        ]
    );
    assert_eq!(d.run.result, Some(Failure::Timeout));
}

#[test]
fn terminate_signals_kill_signal_then_sigkill() {
    let mut d = stoppable(TimeoutFailureMode::Terminate, |_| {});
    assert_eq!(
        d.step(Event::Timer),
        [Action::Arm(Duration::from_secs(3)), group(15)]
    );
    assert_eq!(
        d.step(Event::Timer),
        [Action::Arm(Duration::from_secs(3)), group(9)]
    );
}

#[test]
fn abort_under_mixed_goes_to_the_main_process_only() {
    let mut d = stoppable(TimeoutFailureMode::Abort, |s| s.kill_mode = KillMode::Mixed);
    let main = d.run.main_pid.expect("running");
    let acts = d.step(Event::Timer);
    assert!(acts.contains(&Action::Kill {
        target: KillTarget::Main(main),
        signal: 6
    }));
    assert!(!acts.contains(&group(6)), "{acts:?}");
}

#[test]
fn a_watchdog_timeout_gets_timeout_abort_sec() {
    let mut svc = service(&["ExecStart=/bin/a"]);
    svc.watchdog = Some(Duration::from_secs(1));
    svc.timeout_abort = Some(Some(Duration::from_secs(30)));
    let mut d = Drive::new(svc);
    d.feed(Event::Start);
    d.took();
    assert_eq!(
        d.step(Event::WatchdogExpired),
        [Action::Arm(Duration::from_secs(30)), group(6)]
    );
}

fn ends(force: &[i32], prevent: &[i32], restart: Restart, how: Exit) -> Phase {
    let mut svc = service(&["ExecStart=/bin/a"]);
    svc.restart = restart;
    svc.restart_force_exit_status = force.to_vec();
    svc.restart_prevent_exit_status = prevent.to_vec();
    let mut d = Drive::new(svc);
    let pid = d.feed(Event::Start)[0];
    d.feed(Event::Exited { pid, how });
    d.run.phase
}

#[test]
fn restart_force_exit_status_restarts_whatever_restart_says() {
    assert_eq!(
        ends(&[3], &[], Restart::No, Exit::Code(3)),
        Phase::AutoRestart
    );
    assert_eq!(ends(&[3], &[], Restart::No, Exit::Code(4)), Phase::Failed);
    assert_eq!(
        ends(&[0], &[], Restart::OnFailure, Exit::Code(0)),
        Phase::AutoRestart
    );
    // A signal is listed as its negative number (SIGUSR1).
    assert_eq!(
        ends(&[-10], &[], Restart::No, Exit::Signal(10)),
        Phase::AutoRestart
    );
    // RestartPreventExitStatus= comes first.
    assert_eq!(
        ends(&[3], &[3], Restart::Always, Exit::Code(3)),
        Phase::Failed
    );
}

#[test]
fn restart_force_exit_status_does_not_restart_after_a_stop() {
    let mut svc = service(&["ExecStart=/bin/a"]);
    svc.restart_force_exit_status = vec![-15];
    let mut d = Drive::new(svc);
    let pid = d.feed(Event::Start)[0];
    d.feed(Event::Stop);
    d.feed(Event::Exited {
        pid,
        how: Exit::Signal(15),
    });
    assert_eq!(d.state(), (Active::Inactive, Phase::Dead));
}

/// A service whose `ExecStartPost=` hangs past `TimeoutStartSec=2`.
fn start_post_hangs(mode: TimeoutFailureMode) -> Drive {
    let mut svc = service(&["ExecStart=/bin/a", "ExecStop=/bin/stop-a"]);
    svc.exec_start_post = exec::parse("/bin/post").expect("command");
    svc.timeout_start = Some(Duration::from_secs(2));
    svc.timeout_stop = Some(Duration::from_secs(3));
    svc.timeout_start_failure_mode = mode;
    let mut d = Drive::new(svc);
    d.step(Event::Start);
    d.step(Event::Spawned(Ok(10)));
    d.step(Event::Spawned(Ok(11)));
    assert_eq!(d.state(), (Active::Activating, Phase::StartPost));
    d
}

#[test]
fn a_start_post_out_of_time_stops_through_exec_stop_under_terminate() {
    let mut d = start_post_hangs(TimeoutFailureMode::Terminate);
    let acts = d.step(Event::Timer);
    assert!(acts.contains(&Action::Spawn {
        set: CommandSet::Stop,
        index: 0
    }));
    assert_eq!(d.state(), (Active::Deactivating, Phase::Stop));
    assert_eq!(d.run.result, Some(Failure::Timeout));
}

#[test]
fn a_start_out_of_time_aborts_or_kills_per_timeout_start_failure_mode() {
    let mut d = start_post_hangs(TimeoutFailureMode::Abort);
    assert_eq!(
        d.step(Event::Timer),
        [Action::Arm(Duration::from_secs(3)), group(6)]
    );
    assert_eq!(d.state(), (Active::Deactivating, Phase::StopWatchdog));
    let mut d = start_post_hangs(TimeoutFailureMode::Kill);
    assert_eq!(
        d.step(Event::Timer),
        [Action::Arm(Duration::from_secs(3)), group(9)]
    );
    assert_eq!(d.state(), (Active::Deactivating, Phase::StopSigkill));
    assert_eq!(d.run.result, Some(Failure::Timeout));
    // Before start-post, terminate sends the stop signal without ExecStop=.
    let mut svc = service(&["ExecStart=/bin/a", "ExecStop=/bin/stop-a"]);
    svc.service_type = ServiceType::Notify;
    svc.timeout_start = Some(Duration::from_secs(2));
    let mut d = Drive::new(svc);
    d.step(Event::Start);
    d.step(Event::Spawned(Ok(10)));
    let acts = d.step(Event::Timer);
    assert!(acts.contains(&group(15)), "{acts:?}");
    assert!(!acts.iter().any(|a| matches!(a, Action::Spawn { .. })));
}
