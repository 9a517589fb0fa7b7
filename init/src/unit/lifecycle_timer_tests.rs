//! `RuntimeMaxSec=` (the one timer, while running) and `WatchdogSec=` (a timer of its own).

use super::*;

const SIGABRT: i32 = 6;

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

#[test]
fn runtime_max_arms_once_running_and_its_expiry_stops_with_result_timeout() {
    let mut svc = service(&["ExecStart=/bin/a"]);
    svc.runtime_max = Some(secs(30));
    svc.restart = Restart::OnFailure;
    let mut d = Drive::new(svc);
    let pid = d.feed(Event::Start)[0];
    let acts = d.took();
    let disarm = acts.iter().rposition(|a| *a == Action::Disarm);
    let arm = acts.iter().rposition(|a| *a == Action::Arm(secs(30)));
    assert!(
        disarm < arm,
        "the start timeout is replaced by the runtime limit: {acts:?}"
    );
    assert_eq!(d.state(), (Active::Active, Phase::Running));
    d.feed(Event::Timer);
    assert_eq!(d.run.result, Some(Failure::Timeout));
    assert_eq!(d.state(), (Active::Deactivating, Phase::StopSigterm));
    d.feed(Event::Exited {
        pid,
        how: Exit::Signal(15),
    });
    assert_eq!(
        d.state(),
        (Active::Activating, Phase::AutoRestart),
        "on-failure restarts after a timeout"
    );
}

#[test]
fn runtime_max_counts_on_after_a_reload() {
    let mut svc = service(&["ExecStart=/bin/a", "ExecReload=/bin/reload-a"]);
    svc.runtime_max = Some(secs(30));
    svc.timeout_start = Some(secs(5));
    let mut d = Drive::new(svc);
    d.now = secs(100);
    d.feed(Event::Start);
    d.took();
    d.now = secs(110);
    d.feed(Event::Reload);
    assert!(d.took().contains(&Action::Arm(secs(5))));
    d.now = secs(112);
    let reload = d.run.control_pid.expect("ExecReload=");
    d.feed(Event::Exited {
        pid: reload,
        how: Exit::Code(0),
    });
    // 30s from the start at 100: 18s are left.
    assert_eq!(d.took(), [Action::Disarm, Action::Arm(secs(18))]);
    assert_eq!(d.state(), (Active::Active, Phase::Running));
}

#[test]
fn without_runtime_max_a_running_service_arms_nothing() {
    let mut d = Drive::new(service(&["ExecStart=/bin/a"]));
    d.feed(Event::Start);
    let acts = d.took();
    assert!(
        !acts
            .iter()
            .any(|a| matches!(a, Action::Arm(t) if *t != secs(90))),
        "{acts:?}"
    );
    assert!(!acts.iter().any(|a| matches!(a, Action::ArmWatchdog(_))));
}

#[test]
fn the_watchdog_is_armed_from_start_reset_by_pings_and_changed_by_watchdog_usec() {
    let mut svc = service(&["ExecStart=/bin/a"]);
    svc.watchdog = Some(secs(2));
    let mut d = Drive::new(svc);
    d.feed(Event::Start);
    assert!(d.took().contains(&Action::ArmWatchdog(secs(2))));
    d.feed(Event::WatchdogPing);
    assert_eq!(d.took(), vec![Action::ArmWatchdog(secs(2))]);
    d.feed(Event::WatchdogPeriod(secs(7)));
    assert_eq!(d.took(), vec![Action::ArmWatchdog(secs(7))]);
    assert_eq!(d.run.watchdog_period(&d.svc), Some(secs(7)));
    d.feed(Event::WatchdogPing);
    assert_eq!(d.took(), vec![Action::ArmWatchdog(secs(7))]);
    d.feed(Event::WatchdogPeriod(Duration::ZERO));
    assert_eq!(d.took(), vec![Action::DisarmWatchdog], "zero turns it off");
}

#[test]
fn watchdog_expiry_sends_sigabrt_fails_with_watchdog_and_restarts_on_watchdog() {
    let mut svc = service(&["ExecStart=/bin/a", "ExecStop=/bin/stop"]);
    svc.watchdog = Some(secs(2));
    svc.restart = Restart::OnWatchdog;
    svc.timeout_stop = Some(secs(9));
    let mut d = Drive::new(svc);
    let pid = d.feed(Event::Start)[0];
    d.took();
    let spawned = d.feed(Event::WatchdogExpired);
    assert!(spawned.is_empty(), "no ExecStop= on a watchdog timeout");
    assert_eq!(
        d.took(),
        vec![
            Action::Arm(secs(9)),
            Action::Kill {
                target: KillTarget::Group,
                signal: SIGABRT
            },
        ],
        "the expired watchdog is not armed any more"
    );
    assert_eq!(d.state(), (Active::Deactivating, Phase::StopWatchdog));
    assert_eq!(d.run.result, Some(Failure::Watchdog));
    d.feed(Event::Exited {
        pid,
        how: Exit::Signal(SIGABRT),
    });
    assert_eq!(d.state(), (Active::Activating, Phase::AutoRestart));
    assert_eq!(d.run.result, Some(Failure::Watchdog));
}

#[test]
fn a_watchdog_signal_that_is_ignored_is_followed_by_sigkill_after_the_stop_timeout() {
    let mut svc = service(&["ExecStart=/bin/a"]);
    svc.watchdog = Some(secs(2));
    svc.watchdog_signal = 10;
    svc.kill_mode = KillMode::Process;
    let mut d = Drive::new(svc);
    let pid = d.feed(Event::Start)[0];
    d.took();
    d.feed(Event::WatchdogExpired);
    assert!(d.took().contains(&Action::Kill {
        target: KillTarget::Main(pid),
        signal: 10
    }));
    d.feed(Event::Timer);
    assert!(d.took().contains(&Action::Kill {
        target: KillTarget::Main(pid),
        signal: SIGKILL
    }));
    d.feed(Event::Exited {
        pid,
        how: Exit::Signal(SIGKILL),
    });
    assert_eq!(d.state(), (Active::Failed, Phase::Failed));
    assert_eq!(d.run.result, Some(Failure::Watchdog), "Restart=no");
}

#[test]
fn leaving_running_disarms_the_watchdog_and_a_late_expiry_or_ping_does_nothing() {
    let mut svc = service(&["ExecStart=/bin/a"]);
    svc.watchdog = Some(secs(2));
    let mut d = Drive::new(svc);
    let pid = d.feed(Event::Start)[0];
    d.took();
    d.feed(Event::Stop);
    assert!(d.took().contains(&Action::DisarmWatchdog));
    d.feed(Event::Exited {
        pid,
        how: Exit::Signal(15),
    });
    assert_eq!(d.state(), (Active::Inactive, Phase::Dead));
    d.took();
    d.feed(Event::WatchdogExpired);
    d.feed(Event::WatchdogPing);
    assert_eq!(d.took(), vec![]);
    assert_eq!(d.state(), (Active::Inactive, Phase::Dead));
}

#[test]
fn a_notify_service_gets_its_watchdog_once_ready_and_the_override_ends_with_the_run() {
    let mut svc = service(&["ExecStart=/bin/a"]);
    svc.service_type = ServiceType::Notify;
    svc.watchdog = Some(secs(3));
    svc.restart = Restart::Always;
    let mut d = Drive::new(svc);
    let pid = d.feed(Event::Start)[0];
    assert!(!d.took().iter().any(|a| matches!(a, Action::ArmWatchdog(_))));
    d.feed(Event::Ready);
    assert!(d.took().contains(&Action::ArmWatchdog(secs(3))));
    d.feed(Event::WatchdogPeriod(secs(1)));
    d.feed(Event::Exited {
        pid,
        how: Exit::Code(1),
    });
    d.feed(Event::Timer);
    d.feed(Event::Ready);
    assert_eq!(d.run.watchdog_period(&d.svc), Some(secs(3)));
}
