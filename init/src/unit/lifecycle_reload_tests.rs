//! A main process that ends while `ExecReload=` runs, as systemd 252's
//! `service_sigchld_event`: the reload finishes first (its control process's result is
//! the reload's), then the main process's end is acted on; and a reload out of time
//! kills its control process.

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
