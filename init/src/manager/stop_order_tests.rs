//! The order of a stop over the fake, as systemd 252: with the main process gone, the
//! group's stop signal and the wait for `cgroup.events` to say `populated 0` come before
//! `ExecStopPost=`; the final drain is for what `ExecStopPost=` leaves.

use std::time::Duration;

use super::tests::{group, machine, manager, n, pid_of};
use crate::sys::fake::{Call, Fake};
use crate::sys::Syscalls;
use crate::unit::lifecycle::{Active, Exit, Phase};

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
    assert_eq!(steps(&fake), ["15"]);
    assert_eq!(m.slots[&n("bomb.service")].run.phase, Phase::StopSigterm);
    assert_eq!(m.drain_watches().len(), 1);
    m.cgroup_changed(&n("bomb.service"));
    assert_eq!(steps(&fake), ["15"]);
    group(&fake, false);
    m.cgroup_changed(&n("bomb.service"));
    assert_eq!(steps(&fake), ["15", "post"]);
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
    assert_eq!(steps(&fake), ["15", "9"]);
    assert_eq!(m.slots[&n("bomb.service")].run.phase, Phase::StopSigkill);
    group(&fake, false);
    m.cgroup_changed(&n("bomb.service"));
    assert_eq!(steps(&fake), ["15", "9", "post"]);
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
    assert_eq!(steps(&fake), ["15", "post"]);
    // ExecStopPost= leaves a process behind: the final drain's signal, after it.
    group(&fake, true);
    let post = m.slots[&n("bomb.service")].run.control_pid.expect("post");
    m.child_exited(post, Exit::Code(0));
    assert_eq!(steps(&fake), ["15", "post", "15"]);
    assert_eq!(
        m.slots[&n("bomb.service")].active_state(),
        Active::Deactivating
    );
}
