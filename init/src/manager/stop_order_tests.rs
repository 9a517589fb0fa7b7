//! The order of a stop over the fake, as systemd 252: with the main process gone, the
//! group's stop signal and the wait for `cgroup.events` to say `populated 0` come before
//! `ExecStopPost=`; the final drain is for what `ExecStopPost=` leaves.

use std::time::Duration;

use super::tests::{group, machine, manager, n, pid_of};
use crate::sys::fake::{Call, Fake};
use crate::sys::Syscalls;
use crate::unit::lifecycle::{Active, Event, Exit, Phase};

/// The signals sent to bomb.service's group and whether `/usr/bin/post` ran, in order.
fn steps(fake: &Fake) -> Vec<String> {
    fake.calls()
        .into_iter()
        .filter_map(|c| match c {
            Call::CgroupSignal(dir, s) if dir.ends_with("bomb.service") => Some(format!("{s}")),
            Call::SpawnCommand(_, argv, _) if argv[0] == "/usr/bin/post" => Some("post".into()),
            _ => None,
        })
        .collect()
}

fn bomb() -> Fake {
    machine(&[(
        "bomb.service",
        "[Service]\nExecStart=/usr/bin/bomb\nExecStop=/usr/bin/stop\n\
         ExecStopPost=/usr/bin/post\nTimeoutStopSec=5\n",
    )])
}

#[test]
fn exec_stop_post_runs_once_the_group_is_empty() {
    let fake = bomb();
    let mut m = manager(&fake);
    m.start(&n("bomb.service"));
    let main = pid_of(&m, "bomb.service");
    group(&fake, true);
    m.stop_unit(&n("bomb.service")).expect("stoppable");
    let stop = m.slots[&n("bomb.service")]
        .run
        .control_pid
        .expect("ExecStop=");
    m.child_exited(main, Exit::Signal(15));
    m.child_exited(stop, Exit::Code(0));
    // The group's stop signal, and no ExecStopPost= while it holds processes.
    assert_eq!(steps(&fake), ["15", "18"]);
    assert_eq!(m.slots[&n("bomb.service")].run.phase, Phase::StopSigterm);
    assert_eq!(m.drain_watches().len(), 1);
    m.cgroup_changed(&n("bomb.service"));
    assert_eq!(steps(&fake), ["15", "18"]);
    group(&fake, false);
    m.cgroup_changed(&n("bomb.service"));
    assert_eq!(steps(&fake), ["15", "18", "post"]);
    let post = m.slots[&n("bomb.service")].run.control_pid.expect("post");
    m.child_exited(post, Exit::Code(0));
    assert_eq!(m.slots[&n("bomb.service")].active_state(), Active::Inactive);
    assert!(!m.has_job(&n("bomb.service")));
}

#[test]
fn a_group_that_outlives_the_stop_signal_gets_sigkill_then_exec_stop_post() {
    let fake = bomb();
    let mut m = manager(&fake);
    m.start(&n("bomb.service"));
    let main = pid_of(&m, "bomb.service");
    group(&fake, true);
    // The main process ends on its own: ExecStop=, then the group.
    m.child_exited(main, Exit::Code(0));
    let stop = m.slots[&n("bomb.service")]
        .run
        .control_pid
        .expect("ExecStop=");
    m.child_exited(stop, Exit::Code(0));
    fake.sleep(Duration::from_secs(5));
    m.fire_timers();
    assert_eq!(steps(&fake), ["15", "18", "9"]);
    assert!(fake
        .logs()
        .contains(&"berth: bomb.service: State 'stop-sigterm' timed out. Killing.".to_owned()));
    assert_eq!(m.slots[&n("bomb.service")].run.phase, Phase::StopSigkill);
    group(&fake, false);
    m.cgroup_changed(&n("bomb.service"));
    assert_eq!(steps(&fake), ["15", "18", "9", "post"]);
    let post = m.slots[&n("bomb.service")].run.control_pid.expect("post");
    m.child_exited(post, Exit::Code(0));
    let slot = &m.slots[&n("bomb.service")];
    assert_eq!(slot.active_state(), Active::Failed);
    assert_eq!(slot.run.result.map(|r| r.as_str()), Some("timeout"));
}

#[test]
fn what_exec_stop_post_leaves_is_drained_after_it() {
    let fake = bomb();
    let mut m = manager(&fake);
    m.start(&n("bomb.service"));
    let main = pid_of(&m, "bomb.service");
    m.stop_unit(&n("bomb.service")).expect("stoppable");
    let stop = m.slots[&n("bomb.service")]
        .run
        .control_pid
        .expect("ExecStop=");
    m.child_exited(main, Exit::Signal(15));
    // The group is empty at the stop signal: straight on to ExecStopPost=.
    m.child_exited(stop, Exit::Code(0));
    assert_eq!(steps(&fake), ["15", "18", "post"]);
    // ExecStopPost= leaves a process behind: the final drain's signal, after it.
    group(&fake, true);
    let post = m.slots[&n("bomb.service")].run.control_pid.expect("post");
    m.child_exited(post, Exit::Code(0));
    assert_eq!(steps(&fake), ["15", "18", "post", "15", "18"]);
    assert_eq!(
        m.slots[&n("bomb.service")].active_state(),
        Active::Deactivating
    );
}

/// systemd 252's `unit_kill_context` sends SIGCONT after the stop signal (so a stopped
/// process wakes to handle it), SendSIGHUP='s SIGHUP after that, and nothing after SIGKILL;
/// a reload signal is a plain kill(2) with no SIGCONT.
#[test]
fn a_stop_signal_is_followed_by_sigcont() {
    let fake = machine(&[(
        "d.service",
        "[Service]\nType=notify-reload\nExecStart=/usr/bin/d\nKillMode=process\n\
         SendSIGHUP=yes\nTimeoutStopSec=5\n",
    )]);
    let mut m = manager(&fake);
    m.start(&n("d.service"));
    let main = pid_of(&m, "d.service");
    let kills = |fake: &Fake| -> Vec<Call> {
        fake.calls()
            .into_iter()
            .filter(|c| matches!(c, Call::Kill(..) | Call::CgroupSignal(..)))
            .collect()
    };
    m.feed(&n("d.service"), Event::Ready);
    m.reload_unit(&n("d.service")).expect("reloadable");
    assert_eq!(
        kills(&fake),
        [Call::Kill(main as i32, 1)],
        "the reload signal alone"
    );
    m.feed(&n("d.service"), Event::Ready);
    m.stop_unit(&n("d.service")).expect("stoppable");
    fake.sleep(Duration::from_secs(5));
    m.fire_timers();
    let p = main as i32;
    assert_eq!(
        kills(&fake)[1..],
        [
            Call::Kill(p, 15),
            Call::Kill(p, 18),
            Call::Kill(p, 1),
            Call::Kill(p, 9)
        ]
    );
}
