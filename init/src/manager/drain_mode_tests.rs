//! The final drain per `TimeoutStopFailureMode=` over the fake, as systemd 252's
//! final-sigterm, final-watchdog and final-sigkill: abort puts `WatchdogSignal=` with
//! `TimeoutAbortSec=` before SIGKILL; an `ExecStopPost=` out of time begins the drain
//! with the step the mode names, and kill without `SendSIGKILL=` ends the run there.
//! Under `KillMode=process` the stuck `ExecStopPost=` itself gets those signals.

use std::time::Duration;

use super::tests::{group, group_signals, machine, manager, n, pid_of};
use super::Manager;
use crate::sys::fake::{Call, Fake};
use crate::sys::Syscalls;
use crate::unit::lifecycle::{Active, Exit, Phase};

fn bomb(extra: &str) -> Fake {
    machine(&[(
        "bomb.service",
        &format!(
            "[Service]\nExecStart=/usr/bin/bomb\nExecStopPost=/usr/bin/post\n\
             TimeoutStopSec=5\nTimeoutAbortSec=8\nRestartSec=1\n{extra}"
        ),
    )])
}

fn sleep(fake: &Fake, m: &mut Manager<'_>, secs: u64) {
    fake.sleep(Duration::from_secs(secs));
    m.fire_timers();
}

fn state(m: &Manager<'_>) -> (Active, Phase, Option<&'static str>) {
    let slot = &m.slots[&n("bomb.service")];
    (
        slot.active_state(),
        slot.run.phase,
        slot.run.result.map(|r| r.as_str()),
    )
}

/// bomb.service stopped; its main process gone with an empty group, `ExecStopPost=`
/// runs and leaves a process behind, and runs out of time.
fn stop_post_times_out(fake: &Fake, m: &mut Manager<'_>) {
    m.start(&n("bomb.service"));
    let main = pid_of(m, "bomb.service");
    m.stop_unit(&n("bomb.service")).expect("stoppable");
    m.child_exited(main, Exit::Signal(15));
    assert_eq!(m.slots[&n("bomb.service")].run.phase, Phase::StopPost);
    group(fake, true);
    sleep(fake, m, 5);
}

#[test]
fn abort_puts_the_watchdog_signal_between_the_final_sigterm_and_sigkill() {
    let fake = bomb("TimeoutStopFailureMode=abort\n");
    let mut m = manager(&fake);
    m.start(&n("bomb.service"));
    let main = pid_of(&m, "bomb.service");
    m.stop_unit(&n("bomb.service")).expect("stoppable");
    m.child_exited(main, Exit::Signal(15));
    let post = m.slots[&n("bomb.service")].run.control_pid.expect("post");
    group(&fake, true);
    m.child_exited(post, Exit::Code(0));
    assert_eq!(group_signals(&fake), [15, 15]);
    sleep(&fake, &mut m, 5);
    assert_eq!(group_signals(&fake), [15, 15, 6]);
    assert!(fake
        .logs()
        .iter()
        .any(|l| l == "berth: bomb.service: State 'final-sigterm' timed out. Aborting."));
    // TimeoutAbortSec=, not TimeoutStopSec=, before SIGKILL.
    sleep(&fake, &mut m, 5);
    assert_eq!(group_signals(&fake), [15, 15, 6]);
    sleep(&fake, &mut m, 3);
    assert_eq!(group_signals(&fake), [15, 15, 6, 9]);
    sleep(&fake, &mut m, 5);
    assert_eq!(state(&m), (Active::Failed, Phase::Failed, Some("timeout")));
}

#[test]
fn an_exec_stop_post_out_of_time_under_abort_begins_with_the_watchdog_signal() {
    let fake = bomb("TimeoutStopFailureMode=abort\nSendSIGKILL=no\n");
    let mut m = manager(&fake);
    stop_post_times_out(&fake, &mut m);
    assert_eq!(group_signals(&fake), [15, 6]);
    // Without SendSIGKILL=, final-watchdog's timeout gives up: failed, timeout.
    sleep(&fake, &mut m, 8);
    assert!(fake.logs().iter().any(|l| l
        == "berth: bomb.service: State 'final-watchdog' timed out. Skipping SIGKILL. Entering failed mode."));
    assert_eq!(state(&m), (Active::Failed, Phase::Failed, Some("timeout")));
}

#[test]
fn an_exec_stop_post_out_of_time_under_kill_begins_with_sigkill() {
    let fake = bomb("TimeoutStopFailureMode=kill\n");
    let mut m = manager(&fake);
    stop_post_times_out(&fake, &mut m);
    assert_eq!(group_signals(&fake), [15, 9]);
    group(&fake, false);
    m.cgroup_changed(&n("bomb.service"));
    assert_eq!(state(&m), (Active::Failed, Phase::Failed, Some("timeout")));
}

#[test]
fn kill_without_send_sigkill_ends_the_run_at_once_and_never_restarts() {
    let fake = bomb("TimeoutStopFailureMode=kill\nSendSIGKILL=no\nRestart=always\n");
    let mut m = manager(&fake);
    m.start(&n("bomb.service"));
    let main = pid_of(&m, "bomb.service");
    // The main process fails on its own; ExecStopPost= runs and hangs.
    m.child_exited(main, Exit::Code(1));
    assert_eq!(m.slots[&n("bomb.service")].run.phase, Phase::StopPost);
    group(&fake, true);
    sleep(&fake, &mut m, 5);
    assert_eq!(group_signals(&fake), [15]);
    assert_eq!(
        state(&m),
        (Active::Failed, Phase::Failed, Some("exit-code"))
    );
    sleep(&fake, &mut m, 10);
    assert_eq!(m.slots[&n("bomb.service")].run.main_pid, None);
}

#[test]
fn terminate_is_the_default_and_an_exec_stop_post_out_of_time_gets_the_stop_signal() {
    let fake = bomb("");
    let mut m = manager(&fake);
    stop_post_times_out(&fake, &mut m);
    assert_eq!(group_signals(&fake), [15, 15]);
    sleep(&fake, &mut m, 5);
    assert_eq!(group_signals(&fake), [15, 15, 9]);
}

#[test]
fn under_kill_mode_process_a_stuck_exec_stop_post_gets_the_final_signals_itself() {
    let fake = bomb("KillMode=process\n");
    let mut m = manager(&fake);
    m.start(&n("bomb.service"));
    let main = pid_of(&m, "bomb.service");
    m.stop_unit(&n("bomb.service")).expect("stoppable");
    m.child_exited(main, Exit::Signal(15));
    let post = m.slots[&n("bomb.service")].run.control_pid.expect("post");
    let kills = |fake: &Fake| {
        fake.calls()
            .into_iter()
            .filter(|c| matches!(c, Call::Kill(pid, _) if *pid == post as i32))
            .collect::<Vec<_>>()
    };
    assert!(kills(&fake).is_empty());
    // TimeoutStopSec= out: final-sigterm to the control process, not to the group.
    sleep(&fake, &mut m, 5);
    assert_eq!(
        kills(&fake),
        [Call::Kill(post as i32, 15), Call::Kill(post as i32, 18)]
    );
    assert!(group_signals(&fake).is_empty());
    assert_eq!(
        state(&m),
        (Active::Deactivating, Phase::FinalSigterm, Some("timeout"))
    );
    // Another TimeoutStopSec=: final-sigkill.
    sleep(&fake, &mut m, 5);
    assert_eq!(
        kills(&fake),
        [
            Call::Kill(post as i32, 15),
            Call::Kill(post as i32, 18),
            Call::Kill(post as i32, 9)
        ]
    );
    m.child_exited(post, Exit::Signal(9));
    assert_eq!(state(&m), (Active::Failed, Phase::Failed, Some("timeout")));
    let props = m.properties(&n("bomb.service")).expect("loaded");
    assert!(props.contains(&("ControlPID", "0".into())), "{props:?}");
}
