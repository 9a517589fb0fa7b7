//! When `ExecStop=` runs and whom the stop signals reach, as systemd 252's
//! `service_stop`, `service_enter_running` and `unit_kill_context`: `ExecStop=` from
//! `running`/`exited` even with the main process gone, never from a start phase or
//! after a failure; under `KillMode=mixed` the group gets SIGKILL only.

use super::*;

fn with(mut svc: Service, f: impl FnOnce(&mut Service)) -> Service {
    f(&mut svc);
    svc
}

fn kills(actions: &[Action]) -> Vec<(KillTarget, i32)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Kill { target, signal } | Action::Signal { target, signal } => {
                Some((*target, *signal))
            }
            _ => None,
        })
        .collect()
}

fn oneshot_remaining(extra: &[&str]) -> Service {
    let mut text = vec!["ExecStart=/bin/setup", "ExecStop=/bin/teardown"];
    text.extend_from_slice(extra);
    with(service(&text), |s| {
        s.service_type = ServiceType::Oneshot;
        s.remain_after_exit = true;
    })
}

/// `svc` started, its actions so far taken, and its main process ended `how`.
fn main_ended(svc: Service, how: Exit) -> Drive {
    let mut d = Drive::new(svc);
    let pid = d.feed(Event::Start)[0];
    d.took();
    d.feed(Event::Exited { pid, how });
    d
}

#[test]
fn exec_stop_runs_for_an_exited_oneshot_whose_main_is_gone() {
    let mut d = main_ended(oneshot_remaining(&[]), Exit::Code(0));
    assert_eq!(d.state(), (Active::Active, Phase::Exited));
    d.took();
    d.feed(Event::Stop);
    assert_eq!(spawns(&d.took()), [CommandSet::Stop]);
    assert_eq!(d.state(), (Active::Deactivating, Phase::Stop));
}

#[test]
fn a_main_process_that_ends_cleanly_runs_exec_stop_and_one_that_fails_does_not() {
    let mut d = main_ended(
        service(&["ExecStart=/bin/a", "ExecStop=/bin/stop-a"]),
        Exit::Code(0),
    );
    assert_eq!(spawns(&d.took()), [CommandSet::Stop]);

    let mut d = main_ended(
        service(&["ExecStart=/bin/a", "ExecStop=/bin/stop-a"]),
        Exit::Code(3),
    );
    let acts = d.took();
    assert!(spawns(&acts).is_empty(), "{acts:?}");
    assert_eq!(kills(&acts), [(KillTarget::Group, 15)]);
    assert_eq!(d.run.result, Some(Failure::ExitCode));
}

#[test]
fn a_stop_during_the_start_skips_exec_stop() {
    let mut d = Drive::new(service(&[
        "ExecStartPre=/bin/slow",
        "ExecStart=/bin/a",
        "ExecStop=/bin/stop-a",
    ]));
    // The start-pre command is spawned but never exits.
    assert_eq!(spawns(&d.step(Event::Start)), [CommandSet::StartPre]);
    d.step(Event::Spawned(Ok(7)));
    d.took();
    d.feed(Event::Stop);
    let acts = d.took();
    assert!(spawns(&acts).is_empty(), "{acts:?}");
    assert_eq!(kills(&acts), [(KillTarget::Group, 15)]);
}

#[test]
fn a_main_exit_during_exec_start_post_waits_for_it_then_stops_through_exec_stop() {
    let mut svc = service(&["ExecStart=/bin/a", "ExecStop=/bin/stop-a"]);
    svc.exec_start_post = exec::parse("/bin/post").expect("command");
    let mut d = Drive::new(svc);
    assert_eq!(spawns(&d.step(Event::Start)), [CommandSet::Start]);
    assert_eq!(
        spawns(&d.step(Event::Spawned(Ok(10)))),
        [CommandSet::StartPost]
    );
    d.step(Event::Spawned(Ok(11)));
    // The main process exits while ExecStartPost= runs: nothing yet.
    d.feed(Event::Exited {
        pid: 10,
        how: Exit::Code(0),
    });
    assert_eq!(d.state(), (Active::Activating, Phase::StartPost));
    d.took();
    d.feed(Event::Exited {
        pid: 11,
        how: Exit::Code(0),
    });
    assert_eq!(spawns(&d.took()), [CommandSet::Stop]);
}

#[test]
fn a_oneshot_without_remain_after_exit_ends_through_exec_stop() {
    let mut d = main_ended(
        with(oneshot_remaining(&[]), |s| s.remain_after_exit = false),
        Exit::Code(0),
    );
    assert_eq!(spawns(&d.took()), [CommandSet::Stop]);
    assert_eq!(d.state(), (Active::Deactivating, Phase::Stop));
}

#[test]
fn mixed_with_the_main_process_gone_sends_the_group_sigkill_only() {
    let mut d = main_ended(
        with(oneshot_remaining(&[]), |s| {
            s.exec_stop.clear();
            s.kill_mode = KillMode::Mixed;
        }),
        Exit::Code(0),
    );
    d.took();
    d.feed(Event::Stop);
    assert_eq!(kills(&d.took()), [(KillTarget::Group, 9)]);
    assert_eq!(d.state(), (Active::Inactive, Phase::Dead));

    // Without SendSIGKILL=, nothing is signalled at all.
    let mut d = main_ended(
        with(oneshot_remaining(&[]), |s| {
            s.exec_stop.clear();
            s.kill_mode = KillMode::Mixed;
            s.send_sigkill = false;
        }),
        Exit::Code(0),
    );
    d.took();
    d.feed(Event::Stop);
    assert!(kills(&d.took()).is_empty());
    assert_eq!(d.state(), (Active::Inactive, Phase::Dead));
}

#[test]
fn mixed_and_process_signal_a_running_control_process_never_the_group() {
    for mode in [KillMode::Mixed, KillMode::Process] {
        let mut d = Drive::new(with(service(&["ExecStart=/bin/a"]), |s| {
            s.exec_start_pre = exec::parse("/bin/slow").expect("command");
            s.kill_mode = mode;
            s.timeout_stop = Some(Duration::from_secs(3));
        }));
        d.step(Event::Start);
        d.step(Event::Spawned(Ok(7)));
        d.feed(Event::Stop);
        assert_eq!(kills(&d.took()), [(KillTarget::Control(7), 15)], "{mode:?}");
        assert_eq!(d.state(), (Active::Deactivating, Phase::StopSigterm));
        // It ignores SIGTERM: SIGKILL after TimeoutStopSec=, to it (mixed: the group).
        d.feed(Event::Timer);
        let want = match mode {
            KillMode::Mixed => KillTarget::Group,
            _ => KillTarget::Control(7),
        };
        assert_eq!(kills(&d.took()), [(want, 9)], "{mode:?}");
        d.feed(Event::Exited {
            pid: 7,
            how: Exit::Signal(9),
        });
        assert_eq!(d.state(), (Active::Failed, Phase::Failed), "{mode:?}");
        assert_eq!(d.run.result, Some(Failure::Timeout));
    }
}

#[test]
fn restart_prevent_exit_status_looks_at_the_main_process_not_a_control_command() {
    // ExecStop= exits 3 (RestartPreventExitStatus=3) after a main process killed by a
    // signal: the restart is decided on the main process's end, as systemd does.
    let mut d = Drive::new(with(
        service(&["ExecStart=/bin/a", "ExecStop=/bin/stop-a"]),
        |s| {
            s.restart = Restart::OnFailure;
            s.restart_prevent_exit_status = vec![3];
        },
    ));
    let main = d.feed(Event::Start)[0];
    d.step(Event::Exited {
        pid: main,
        how: Exit::Code(0),
    });
    d.step(Event::Spawned(Ok(50)));
    d.feed(Event::Exited {
        pid: 50,
        how: Exit::Code(3),
    });
    assert_eq!(d.run.result, Some(Failure::ExitCode));
    assert_eq!(d.state(), (Active::Activating, Phase::AutoRestart));
}

#[test]
fn each_step_of_a_stop_has_timeout_stop_sec_of_its_own() {
    let mut d = Drive::new(with(
        service(&["ExecStart=/bin/a", "ExecStop=/bin/stop-a"]),
        |s| {
            s.timeout_stop = Some(Duration::from_secs(3));
            s.exec_stop_post = exec::parse("/bin/post").expect("command");
        },
    ));
    let main = d.feed(Event::Start)[0];
    d.took();
    assert_eq!(
        d.step(Event::Stop),
        [
            Action::Arm(Duration::from_secs(3)),
            Action::Spawn {
                set: CommandSet::Stop,
                index: 0
            }
        ]
    );
    d.step(Event::Spawned(Ok(60)));
    // ExecStop= done: the stop signal, with a fresh TimeoutStopSec=.
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
            }
        ]
    );
    // The main process ends: ExecStopPost=, with its own TimeoutStopSec=.
    assert_eq!(
        d.step(Event::Exited {
            pid: main,
            how: Exit::Signal(15),
        }),
        [
            Action::Arm(Duration::from_secs(3)),
            Action::Spawn {
                set: CommandSet::StopPost,
                index: 0
            }
        ]
    );
    assert_eq!(d.run.result, None);
}

#[test]
fn exec_stop_out_of_time_gets_the_stop_signal_then_sigkill() {
    let mut d = Drive::new(with(
        service(&["ExecStart=/bin/a", "ExecStop=/bin/stuck"]),
        |s| s.timeout_stop = Some(Duration::from_secs(3)),
    ));
    d.feed(Event::Start);
    d.step(Event::Stop);
    d.step(Event::Spawned(Ok(61)));
    // TimeoutStopFailureMode=terminate: SIGTERM first, as systemd 252.
    assert_eq!(kills(&d.step(Event::Timer)), [(KillTarget::Group, 15)]);
    assert_eq!(d.run.result, Some(Failure::Timeout));
    assert_eq!(kills(&d.step(Event::Timer)), [(KillTarget::Group, 9)]);
}

#[test]
fn a_notify_main_process_ending_cleanly_after_ready_stops_through_exec_stop() {
    // READY=1 came; the main process exits 0 while ExecStartPost= runs: as systemd, the
    // start finishes, then the service stops (no protocol failure).
    let mut svc = service(&["ExecStart=/bin/a", "ExecStop=/bin/stop-a"]);
    svc.service_type = ServiceType::Notify;
    svc.exec_start_post = exec::parse("/bin/post").expect("command");
    let mut d = Drive::new(svc);
    d.step(Event::Start);
    d.step(Event::Spawned(Ok(10)));
    assert_eq!(spawns(&d.step(Event::Ready)), [CommandSet::StartPost]);
    d.step(Event::Spawned(Ok(11)));
    d.step(Event::Exited {
        pid: 10,
        how: Exit::Code(0),
    });
    assert_eq!(d.state(), (Active::Activating, Phase::StartPost));
    let acts = d.step(Event::Exited {
        pid: 11,
        how: Exit::Code(0),
    });
    assert_eq!(spawns(&acts), [CommandSet::Stop]);
    assert_eq!(d.run.result, None);
}
