//! `Restart=` decided once the group is empty, as systemd 252's `service_enter_dead`
//! runs only after stop-sigterm/stop-sigkill and final-sigterm/final-sigkill: a group
//! out of time makes the result `timeout`, which on-failure restarts and on-success does
//! not; a final drain given up after the stop signal (`SendSIGKILL=no`) never restarts.

use std::time::Duration;

use super::tests::{group, manager, n, pid_of};
use crate::sys::fake::Fake;
use crate::sys::Syscalls;
use crate::unit::lifecycle::{Active, Exit, Phase};

fn bomb(extra: &str) -> Fake {
    super::tests::machine(&[(
        "bomb.service",
        &format!("[Service]\nExecStart=/usr/bin/bomb\nTimeoutStopSec=5\nRestartSec=1\n{extra}"),
    )])
}

/// bomb.service's main process exits cleanly with helpers left; the stop signal to
/// them times out (stop-sigterm: then SIGKILL, or without it, `ExecStopPost=` and the
/// final drain's stop signal).
fn clean_exit_then_stop_signal_times_out(fake: &Fake, m: &mut super::Manager<'_>) -> u32 {
    m.start(&n("bomb.service"));
    let pid = pid_of(m, "bomb.service");
    group(fake, true);
    m.child_exited(pid, Exit::Code(0));
    fake.sleep(Duration::from_secs(5));
    m.fire_timers();
    pid
}

fn state(m: &super::Manager<'_>) -> (Active, Phase, Option<&'static str>) {
    let slot = &m.slots[&n("bomb.service")];
    (
        slot.active_state(),
        slot.run.phase,
        slot.run.result.map(|r| r.as_str()),
    )
}

/// bomb.service failed with result timeout, and no restart comes, however long one waits.
fn failed_for_good(fake: &Fake, m: &mut super::Manager<'_>) {
    assert_eq!(state(m), (Active::Failed, Phase::Failed, Some("timeout")));
    fake.sleep(Duration::from_secs(10));
    m.fire_timers();
    assert_eq!(m.slots[&n("bomb.service")].run.main_pid, None);
}

#[test]
fn on_failure_restarts_a_clean_run_whose_group_timed_out() {
    let fake = bomb("Restart=on-failure\n");
    let mut m = manager(&fake);
    let first = clean_exit_then_stop_signal_times_out(&fake, &mut m);
    // The SIGKILL after the stop signal empties the group: the run ends with result
    // timeout, which on-failure restarts, RestartSec= from now.
    group(&fake, false);
    m.cgroup_changed(&n("bomb.service"));
    assert_eq!(
        state(&m),
        (Active::Activating, Phase::AutoRestart, Some("timeout"))
    );
    fake.sleep(Duration::from_secs(1));
    m.fire_timers();
    assert_ne!(pid_of(&m, "bomb.service"), first);
}

#[test]
fn on_success_does_not_restart_a_run_whose_group_timed_out() {
    let fake = bomb("Restart=on-success\n");
    let mut m = manager(&fake);
    clean_exit_then_stop_signal_times_out(&fake, &mut m);
    group(&fake, false);
    m.cgroup_changed(&n("bomb.service"));
    failed_for_good(&fake, &mut m);
}

#[test]
fn a_drain_given_up_without_sigkill_never_restarts() {
    let fake = bomb("Restart=always\nSendSIGKILL=no\n");
    let mut m = manager(&fake);
    clean_exit_then_stop_signal_times_out(&fake, &mut m);
    // Still there: the final drain's stop signal times out too, and that never restarts.
    fake.sleep(Duration::from_secs(5));
    m.fire_timers();
    failed_for_good(&fake, &mut m);
}

#[test]
fn a_final_sigkill_timeout_restarts_per_restart() {
    let fake = bomb("Restart=on-abnormal\n");
    let mut m = manager(&fake);
    let first = clean_exit_then_stop_signal_times_out(&fake, &mut m);
    // Still populated after SIGKILL's time: given up, then the final drain's SIGTERM
    // and SIGKILL, each out of time: result timeout, which on-abnormal restarts (the
    // restart then waits for nothing: the drain is over).
    for _ in 0..3 {
        fake.sleep(Duration::from_secs(5));
        m.fire_timers();
    }
    assert_eq!(
        state(&m),
        (Active::Activating, Phase::AutoRestart, Some("timeout"))
    );
    fake.sleep(Duration::from_secs(1));
    m.fire_timers();
    assert_ne!(pid_of(&m, "bomb.service"), first);
}
