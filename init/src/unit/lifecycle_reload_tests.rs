//! A main process that ends while `ExecReload=` runs, as systemd 252's
//! `service_sigchld_event`: the reload finishes first (its control process's result is
//! the reload's), then the main process's end is acted on; and a reload out of time
//! kills its control process. A reload with no control process (notify-reload's
//! `ReloadSignal=`, `RELOADING=1`) cannot end once the main process is gone: the service
//! stops at once, through `ExecStop=` (systemd's `service_enter_stop(s, f)`).

use super::*;

/// A running service with `ExecReload=` and `ExecStop=`, its reload's command running
/// as PID 70; returns it with its main PID.
fn reloading(extra: impl FnOnce(&mut Service)) -> (Drive, u32) {
    let mut svc = service(&[
        "ExecStart=/bin/a",
        "ExecReload=/bin/reload-a",
        "ExecStop=/bin/stop-a",
    ]);
    extra(&mut svc);
    let mut d = Drive::new(svc);
    let main = d.feed(Event::Start)[0];
    assert_eq!(spawns(&d.step(Event::Reload)), [CommandSet::Reload]);
    d.step(Event::Spawned(Ok(70)));
    (d, main)
}

#[test]
fn a_main_exit_during_exec_reload_waits_for_the_reload_then_stops() {
    let (mut d, main) = reloading(|_| {});
    let acts = d.step(Event::Exited {
        pid: main,
        how: Exit::Code(0),
    });
    // Nothing yet: no stop, no signal to the reload's command.
    assert!(acts.is_empty(), "{acts:?}");
    assert_eq!(d.state(), (Active::Active, Phase::Reload));
    assert_eq!(d.run.control_pid, Some(70));
    // The reload ends: its result, then the main process's clean end stops the
    // service through ExecStop=.
    let acts = d.step(Event::Exited {
        pid: 70,
        how: Exit::Code(0),
    });
    assert_eq!(spawns(&acts), [CommandSet::Stop]);
    assert_eq!(d.run.reload_result, None);
    assert_eq!(d.run.result, None);
    assert_eq!(d.state(), (Active::Deactivating, Phase::Stop));
}

#[test]
fn a_failed_main_during_a_failed_reload_fails_the_unit_after_the_reload() {
    let (mut d, main) = reloading(|_| {});
    assert!(d
        .step(Event::Exited {
            pid: main,
            how: Exit::Code(2),
        })
        .is_empty());
    let acts = d.step(Event::Exited {
        pid: 70,
        how: Exit::Code(1),
    });
    assert_eq!(d.run.reload_result, Some(Failure::ExitCode));
    assert_eq!(d.run.result, Some(Failure::ExitCode));
    // A failed run is signalled, without ExecStop=.
    assert!(spawns(&acts).is_empty(), "{acts:?}");
    assert!(acts.contains(&Action::Kill {
        target: KillTarget::Group,
        signal: 15
    }));
    assert_eq!(d.state().0, Active::Deactivating);
}

#[test]
fn a_main_exit_during_exec_reload_with_remain_after_exit_leaves_it_exited() {
    let (mut d, main) = reloading(|s| s.remain_after_exit = true);
    d.step(Event::Exited {
        pid: main,
        how: Exit::Code(0),
    });
    assert_eq!(d.state(), (Active::Active, Phase::Reload));
    d.step(Event::Exited {
        pid: 70,
        how: Exit::Code(0),
    });
    assert_eq!(d.state(), (Active::Active, Phase::Exited));
}

#[test]
fn a_reload_out_of_time_kills_its_command_and_the_service_runs_on() {
    let (mut d, main) = reloading(|_| {});
    let acts = d.step(Event::Timer);
    assert!(acts.contains(&Action::Kill {
        target: KillTarget::Control(70),
        signal: 9
    }));
    assert_eq!(d.run.reload_result, Some(Failure::Timeout));
    assert_eq!(d.state(), (Active::Active, Phase::Running));
    assert_eq!(d.run.main_pid, Some(main));
}

/// A running notify-reload service with `ExecStop=` and no `ExecReload=`, its
/// `ReloadSignal=` sent; returns it with its main PID.
fn reloading_by_signal(extra: impl FnOnce(&mut Service)) -> (Drive, u32) {
    let mut svc = service(&["ExecStart=/bin/a", "ExecStop=/bin/stop-a"]);
    svc.service_type = ServiceType::NotifyReload;
    extra(&mut svc);
    let mut d = Drive::new(svc);
    let main = d.feed(Event::Start)[0];
    d.feed(Event::Ready);
    let acts = d.step(Event::Reload);
    assert!(acts.contains(&Action::Signal {
        target: KillTarget::Main(main),
        signal: d.svc.reload_signal
    }));
    assert_eq!(d.state(), (Active::Active, Phase::Reload));
    assert_eq!(d.run.control_pid, None);
    (d, main)
}

#[test]
fn a_main_exit_during_a_reload_by_signal_stops_at_once_through_exec_stop() {
    let (mut d, main) = reloading_by_signal(|_| {});
    let acts = d.step(Event::Exited {
        pid: main,
        how: Exit::Code(0),
    });
    assert_eq!(spawns(&acts), [CommandSet::Stop]);
    assert_eq!(d.state(), (Active::Deactivating, Phase::Stop));
    assert_eq!(d.run.result, None);
    // The reload never finished: no reload result of its own.
    assert_eq!(d.run.reload_result, None);
}

#[test]
fn a_failed_main_during_a_reload_by_signal_fails_the_run_after_exec_stop() {
    // RemainAfterExit= does not keep it: the reload cannot end.
    let (mut d, main) = reloading_by_signal(|s| s.remain_after_exit = true);
    let acts = d.step(Event::Exited {
        pid: main,
        how: Exit::Signal(11),
    });
    assert_eq!(spawns(&acts), [CommandSet::Stop]);
    assert_eq!(d.run.result, Some(Failure::Signal));
    d.step(Event::Spawned(Ok(80)));
    d.feed(Event::Exited {
        pid: 80,
        how: Exit::Code(0),
    });
    assert_eq!(d.state(), (Active::Failed, Phase::Failed));
}

#[test]
fn a_main_exit_after_reloading_notified_stops_without_waiting_for_the_timeout() {
    // systemd's issue #19300: Type=notify, RELOADING=1, then the main process fails.
    let mut svc = service(&["ExecStart=/bin/a"]);
    svc.service_type = ServiceType::Notify;
    svc.restart = Restart::OnFailure;
    let mut d = Drive::new(svc);
    let main = d.feed(Event::Start)[0];
    d.feed(Event::Ready);
    d.feed(Event::Reloading);
    assert_eq!(d.state(), (Active::Active, Phase::Reload));
    d.took();
    d.feed(Event::Exited {
        pid: main,
        how: Exit::Code(1),
    });
    assert_eq!(d.run.result, Some(Failure::ExitCode));
    // No ExecStop=: the rest of the group is signalled, then the restart is scheduled.
    assert!(d.took().contains(&Action::Kill {
        target: KillTarget::Group,
        signal: 15
    }));
    assert_eq!(d.state(), (Active::Activating, Phase::AutoRestart));
}
