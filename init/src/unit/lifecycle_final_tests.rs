//! A stuck `ExecStopPost=` under `KillMode=process` and `mixed`, as systemd 252's
//! final-sigterm, final-watchdog and final-sigkill states signal it (`unit_kill_context`
//! reaches the control process under every mode but `none`), and under `none`, where
//! no one is signalled and the run ends at once.

use super::*;

/// A service with `ExecStopPost=` under `mode`, stopped (`by_stop`) or ended by its main
/// process failing, its `ExecStopPost=` running as the returned PID and its actions so
/// far taken.
fn stuck_stop_post(
    mode: KillMode,
    by_stop: bool,
    extra: impl FnOnce(&mut Service),
) -> (Drive, u32) {
    let mut svc = service(&["ExecStart=/bin/a"]);
    svc.exec_stop_post = exec::parse("/bin/post").expect("command");
    svc.kill_mode = mode;
    svc.restart = Restart::OnFailure;
    extra(&mut svc);
    let mut d = Drive::new(svc);
    let main = d.feed(Event::Start)[0];
    let mut spawned = Vec::new();
    let how = if by_stop {
        spawned = d.feed(Event::Stop);
        Exit::Signal(15)
    } else {
        Exit::Code(1)
    };
    if d.run.main_pid.is_some() {
        spawned.extend(d.feed(Event::Exited { pid: main, how }));
    }
    assert_eq!(d.state(), (Active::Deactivating, Phase::StopPost));
    assert_eq!(d.run.control_pid, spawned.first().copied());
    d.took();
    (d, spawned[0])
}

fn control_kills(actions: &[Action]) -> Vec<(KillTarget, i32)> {
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

#[test]
fn kill_mode_process_sends_the_stuck_stop_post_sigterm_then_sigkill() {
    let (mut d, post) = stuck_stop_post(KillMode::Process, true, |_| {});
    d.feed(Event::Timer);
    let acts = d.took();
    assert_eq!(control_kills(&acts), [(KillTarget::Control(post), 15)]);
    assert!(acts.contains(&Action::Arm(Duration::from_secs(90))));
    assert_eq!(d.state(), (Active::Deactivating, Phase::FinalSigterm));
    assert_eq!(d.run.result, Some(Failure::Timeout));
    // It ignores SIGTERM: SIGKILL after TimeoutStopSec=.
    d.feed(Event::Timer);
    assert_eq!(control_kills(&d.took()), [(KillTarget::Control(post), 9)]);
    assert_eq!(d.state(), (Active::Deactivating, Phase::FinalSigkill));
    // Its end ends the run, failed with result timeout (a stop job: no restart).
    d.feed(Event::Exited {
        pid: post,
        how: Exit::Signal(9),
    });
    assert_eq!(d.run.result, Some(Failure::Timeout));
    assert_eq!(d.state(), (Active::Failed, Phase::Failed));
    assert_eq!(d.run.control_pid, None);
}

#[test]
fn a_stop_post_that_ends_on_the_final_sigterm_ends_the_run() {
    let (mut d, post) = stuck_stop_post(KillMode::Process, false, |s| s.send_sighup = true);
    d.feed(Event::Timer);
    assert_eq!(
        control_kills(&d.took()),
        [
            (KillTarget::Control(post), 15),
            (KillTarget::Control(post), 1)
        ]
    );
    // The run ends with the main process's result, and Restart=on-failure restarts it
    // (systemd's `service_enter_dead(s, f, true)`).
    d.feed(Event::Exited {
        pid: post,
        how: Exit::Signal(15),
    });
    assert_eq!(d.run.result, Some(Failure::ExitCode));
    assert_eq!(d.state(), (Active::Activating, Phase::AutoRestart));
}

#[test]
fn kill_mode_mixed_sends_the_stop_post_sigterm_then_the_group_sigkill() {
    let (mut d, post) = stuck_stop_post(KillMode::Mixed, true, |_| {});
    d.feed(Event::Timer);
    assert_eq!(control_kills(&d.took()), [(KillTarget::Control(post), 15)]);
    d.feed(Event::Timer);
    assert_eq!(control_kills(&d.took()), [(KillTarget::Group, 9)]);
    assert_eq!(d.state(), (Active::Deactivating, Phase::FinalSigkill));
}

#[test]
fn the_final_states_follow_timeout_stop_failure_mode() {
    // abort: the watchdog signal within TimeoutAbortSec=, then SIGKILL.
    let (mut d, post) = stuck_stop_post(KillMode::Process, true, |s| {
        s.timeout_stop_failure_mode = TimeoutFailureMode::Abort;
        s.timeout_abort = Some(Some(Duration::from_secs(5)));
    });
    d.feed(Event::Timer);
    let acts = d.took();
    assert_eq!(control_kills(&acts), [(KillTarget::Control(post), 6)]);
    assert!(acts.contains(&Action::Arm(Duration::from_secs(5))));
    assert_eq!(d.state().1, Phase::FinalWatchdog);
    d.feed(Event::Timer);
    assert_eq!(control_kills(&d.took()), [(KillTarget::Control(post), 9)]);

    // kill: SIGKILL at once.
    let (mut d, post) = stuck_stop_post(KillMode::Process, false, |s| {
        s.timeout_stop_failure_mode = TimeoutFailureMode::Kill;
    });
    d.feed(Event::Timer);
    assert_eq!(control_kills(&d.took()), [(KillTarget::Control(post), 9)]);
    assert_eq!(d.state().1, Phase::FinalSigkill);
    // Still there after the final SIGKILL: failed, and a restart is allowed.
    d.feed(Event::Timer);
    assert_eq!(d.state(), (Active::Activating, Phase::AutoRestart));
}

#[test]
fn without_send_sigkill_the_final_sigterm_out_of_time_fails_for_good() {
    let (mut d, post) = stuck_stop_post(KillMode::Process, false, |s| s.send_sigkill = false);
    d.feed(Event::Timer);
    assert_eq!(control_kills(&d.took()), [(KillTarget::Control(post), 15)]);
    // "Skipping SIGKILL. Entering failed mode.": no restart.
    d.feed(Event::Timer);
    assert!(control_kills(&d.took()).is_empty());
    assert_eq!(d.state(), (Active::Failed, Phase::Failed));
}

#[test]
fn kill_mode_none_signals_no_one_and_ends_the_run() {
    let (mut d, _post) = stuck_stop_post(KillMode::None, true, |_| {});
    d.feed(Event::Timer);
    assert!(control_kills(&d.took()).is_empty());
    assert_eq!(d.run.result, Some(Failure::Timeout));
    assert_eq!(d.state(), (Active::Failed, Phase::Failed));
    // Ended by its main process, a restart follows (systemd: final-sigterm and
    // final-sigkill reach no one, then `service_enter_dead(s, f, true)`).
    let (mut d, _post) = stuck_stop_post(KillMode::None, false, |_| {});
    d.feed(Event::Timer);
    assert!(control_kills(&d.took()).is_empty());
    assert_eq!(d.state(), (Active::Activating, Phase::AutoRestart));
}
