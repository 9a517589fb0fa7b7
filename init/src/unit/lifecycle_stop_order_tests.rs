//! The order of a stop, as systemd 252's service.c: once the main process (and
//! `ExecStop=`) are gone, the stop signal goes to the group and the run waits in
//! `stop-sigterm`/`stop-sigkill` for the group to empty before `ExecStopPost=`; a main
//! process still there when it is signalled moves the stop on at its own exit, as
//! `service_sigchld_event` does; the rest is then for the final drain.

use super::*;

/// A service with `ExecStop=` and `ExecStopPost=`, `TimeoutStopSec=3`, whose cgroup
/// holds more than the processes it was told of.
fn with_helpers(stop: bool) -> Drive {
    let mut text = vec!["ExecStart=/bin/a"];
    if stop {
        text.push("ExecStop=/bin/stop-a");
    }
    let mut svc = service(&text);
    svc.timeout_stop = Some(Duration::from_secs(3));
    svc.exec_stop_post = exec::parse("/bin/post").expect("command");
    let mut d = Drive::new(svc);
    d.group_populated = true;
    d
}

#[test]
fn exec_stop_post_waits_for_the_group_once_exec_stop_and_the_main_process_are_gone() {
    let mut d = with_helpers(true);
    let main = d.feed(Event::Start)[0];
    assert_eq!(spawns(&d.step(Event::Stop)), [CommandSet::Stop]);
    d.step(Event::Spawned(Ok(60)));
    // ExecStop= ends the main process, then ends itself.
    assert!(d
        .step(Event::Exited {
            pid: main,
            how: Exit::Signal(15),
        })
        .is_empty());
    assert_eq!(
        d.step(Event::Exited {
            pid: 60,
            how: Exit::Code(0),
        }),
        [
            Action::Arm(Duration::from_secs(3)),
            Action::Kill {
                target: KillTarget::Group,
                signal: 15
            },
            Action::AwaitGroupEmpty,
        ]
    );
    assert_eq!(d.state(), (Active::Deactivating, Phase::StopSigterm));
    assert!(d.run.waits_for_group());
    // Only the group emptying moves it on: ExecStopPost= with its own TimeoutStopSec=.
    assert_eq!(
        d.step(Event::CgroupEmpty),
        [
            Action::Arm(Duration::from_secs(3)),
            Action::Spawn {
                set: CommandSet::StopPost,
                index: 0
            }
        ]
    );
    assert_eq!(d.state(), (Active::Deactivating, Phase::StopPost));
    assert_eq!(d.run.result, None);
}

#[test]
fn a_group_past_timeout_stop_sec_gets_sigkill_before_exec_stop_post() {
    let mut d = with_helpers(false);
    let main = d.feed(Event::Start)[0];
    d.took();
    d.feed(Event::Exited {
        pid: main,
        how: Exit::Code(0),
    });
    assert!(spawns(&d.took()).is_empty());
    assert_eq!(d.state(), (Active::Deactivating, Phase::StopSigterm));
    assert_eq!(
        d.step(Event::Timer),
        [
            Action::Arm(Duration::from_secs(3)),
            Action::Kill {
                target: KillTarget::Group,
                signal: 9
            },
            Action::AwaitGroupEmpty,
        ]
    );
    assert_eq!(d.state(), (Active::Deactivating, Phase::StopSigkill));
    assert_eq!(d.run.result, Some(Failure::Timeout));
    assert_eq!(spawns(&d.step(Event::CgroupEmpty)), [CommandSet::StopPost]);
}

#[test]
fn a_group_that_outlives_sigkill_is_given_up_and_exec_stop_post_runs() {
    let mut d = with_helpers(false);
    let main = d.feed(Event::Start)[0];
    d.feed(Event::Exited {
        pid: main,
        how: Exit::Code(0),
    });
    d.step(Event::Timer);
    d.took();
    // Stuck in the kernel: systemd's "Processes still around after SIGKILL. Ignoring."
    assert_eq!(spawns(&d.step(Event::Timer)), [CommandSet::StopPost]);
    assert_eq!(d.run.result, Some(Failure::Timeout));
    assert!(!d.run.waits_for_group());
}

#[test]
fn a_signalled_main_process_moves_the_stop_on_at_its_exit() {
    // The main process was there to signal: its exit is what systemd waits for, and
    // whatever else is left is for the final drain after ExecStopPost=.
    let mut d = with_helpers(false);
    let main = d.feed(Event::Start)[0];
    d.took();
    let acts = d.step(Event::Stop);
    assert!(!acts.contains(&Action::AwaitGroupEmpty), "{acts:?}");
    assert!(!d.run.waits_for_group());
    let acts = d.step(Event::Exited {
        pid: main,
        how: Exit::Signal(15),
    });
    assert_eq!(spawns(&acts), [CommandSet::StopPost]);
}

#[test]
fn cgroup_empty_outside_a_stop_changes_nothing() {
    let mut d = with_helpers(false);
    d.feed(Event::Start);
    assert!(d.step(Event::CgroupEmpty).is_empty());
    assert_eq!(d.state(), (Active::Active, Phase::Running));
}

#[test]
fn under_mixed_the_group_gets_sigkill_and_exec_stop_post_waits_for_it_to_empty() {
    let mut d = with_helpers(false);
    d.svc.kill_mode = KillMode::Mixed;
    let main = d.feed(Event::Start)[0];
    d.took();
    // The main process ends on its own: the stop signal reaches no one under mixed, so
    // the group gets SIGKILL (systemd 252's stop-sigkill), and the stop waits there.
    let acts = d.step(Event::Exited {
        pid: main,
        how: Exit::Code(0),
    });
    assert_eq!(
        acts,
        [
            Action::Arm(Duration::from_secs(3)),
            Action::Kill {
                target: KillTarget::Group,
                signal: 9
            },
            Action::AwaitGroupEmpty,
        ]
    );
    assert_eq!(d.state(), (Active::Deactivating, Phase::StopSigkill));
    assert_eq!(spawns(&d.step(Event::CgroupEmpty)), [CommandSet::StopPost]);
    assert_eq!(d.run.result, None);
}
