//! `systemctl kill`, `reset-failed` and `reload` against the engine over the fake.

use std::path::Path;
use std::time::Duration;

use super::tests::{machine, manager, n, pid_of, spawned};
use super::unit_ops::{OpRefused, Whom};
use super::Manager;
use crate::sys::fake::Call;
use crate::sys::Syscalls;
use crate::unit::lifecycle::{Active, Exit};

#[test]
fn kill_signals_the_main_process_or_the_cgroup() {
    let fake = machine(&[("a.service", "[Service]\nExecStart=/usr/bin/a\n")]);
    let mut m = manager(&fake);
    m.start_unit(&n("a.service")).expect("start");
    let pid = pid_of(&m, "a.service");
    m.kill_unit(&n("a.service"), Whom::Main, 10)
        .expect("kill main");
    assert!(fake.calls().contains(&Call::Kill(pid as i32, 10)));
    let refused = m.kill_unit(&n("a.service"), Whom::Control, 10);
    assert!(matches!(refused, Err(OpRefused::NoControl)), "{refused:?}");
    // An empty cgroup: nothing to kill, as systemd says.
    let refused = m.kill_unit(&n("a.service"), Whom::All, 9);
    assert!(
        matches!(refused, Err(OpRefused::NoProcesses)),
        "{refused:?}"
    );
    let dir = m.cgroup_of(&n("a.service"));
    fake.cgroup_members.borrow_mut().insert(dir.clone(), 2);
    m.kill_unit(&n("a.service"), Whom::All, 9)
        .expect("kill all");
    assert!(fake.calls().contains(&Call::CgroupSignal(dir, 9)));
    // No state change until the process exits.
    assert_eq!(m.slots[&n("a.service")].active_state(), Active::Active);
    m.child_exited(pid, Exit::Signal(9));
    assert_eq!(m.slots[&n("a.service")].active_state(), Active::Failed);
    m.reset_failed(Some(&n("a.service"))).expect("reset");
    assert_eq!(m.slots[&n("a.service")].active_state(), Active::Inactive);
    assert!(matches!(
        m.reset_failed(Some(&n("nope.service"))),
        Err(OpRefused::NotLoaded(_))
    ));
}

#[test]
fn reload_runs_exec_reload_with_mainpid_and_is_a_job_until_done() {
    let fake = machine(&[(
        "a.service",
        "[Service]\nExecStart=/usr/bin/a\nExecReload=/bin/kill -HUP $MAINPID\n",
    )]);
    fake.write(Path::new("/bin/kill"), "");
    let mut m = manager(&fake);
    m.start_unit(&n("a.service")).expect("start");
    let main = pid_of(&m, "a.service");
    m.reload_unit(&n("a.service")).expect("reload");
    let last = spawned(&fake).pop().expect("reload command");
    assert_eq!(last.1, ["/bin/kill", "-HUP", &main.to_string()]);
    assert!(m.has_job(&n("a.service")));
    let props = m.properties(&n("a.service")).expect("loaded");
    assert!(
        props.contains(&("ActiveState", "reloading".into())),
        "{props:?}"
    );
    let control = m.slots[&n("a.service")].run.control_pid.expect("control");
    m.child_exited(control, Exit::Code(0));
    assert!(!m.has_job(&n("a.service")));
    let props = m.properties(&n("a.service")).expect("loaded");
    assert!(
        props.contains(&("ReloadResult", "success".into())),
        "{props:?}"
    );
    m.stop_unit(&n("a.service")).expect("stop");
    m.child_exited(main, Exit::Signal(15));
    let refused = m.reload_unit(&n("a.service")).expect_err("inactive");
    assert_eq!(
        refused.to_string(),
        "Unit a.service cannot be reloaded because it is inactive."
    );
}

#[test]
fn reloading_notified_by_the_service_lasts_until_its_ready() {
    let fake = machine(&[(
        "d.service",
        "[Service]\nType=notify\nExecStart=/usr/bin/d\nTimeoutStartSec=4\n",
    )]);
    let mut m = manager(&fake);
    m.start_unit(&n("d.service")).expect("start");
    let main = pid_of(&m, "d.service");
    let state = |m: &Manager| {
        let props = m.properties(&n("d.service")).expect("loaded");
        let get = |k: &str| {
            props
                .iter()
                .find(|(key, _)| *key == k)
                .map(|(_, v)| v.clone())
        };
        (get("ActiveState").unwrap(), get("ReloadResult").unwrap())
    };
    // Still starting: RELOADING=1 means nothing yet.
    m.notify(main, "RELOADING=1");
    assert_eq!(state(&m).0, "activating");
    m.notify(main, "READY=1");
    assert_eq!(state(&m).0, "active");
    m.notify(main, "RELOADING=1\nSTATUS=reloading the configuration");
    assert_eq!(state(&m).0, "reloading");
    m.notify(main, "READY=1");
    assert_eq!(state(&m), ("active".into(), "success".into()));
    // A reload that never says READY=1 ends at TimeoutStartSec=, the unit still active.
    m.notify(main, "RELOADING=1");
    fake.sleep(Duration::from_secs(4));
    m.fire_timers();
    assert_eq!(state(&m), ("active".into(), "timeout".into()));
}

#[test]
fn a_main_exit_during_a_reload_by_signal_stops_the_service_through_exec_stop() {
    let fake = machine(&[(
        "d.service",
        "[Service]\nType=notify-reload\nReloadSignal=SIGUSR1\nExecStart=/usr/bin/d\n\
         ExecStop=/usr/bin/stop-d\n",
    )]);
    let mut m = manager(&fake);
    m.start_unit(&n("d.service")).expect("start");
    let main = pid_of(&m, "d.service");
    m.notify(main, "READY=1");
    m.reload_unit(&n("d.service")).expect("reload");
    assert!(fake.calls().contains(&Call::Kill(main as i32, 10)));
    assert!(m.has_job(&n("d.service")));
    // The main process ends before RELOADING=1/READY=1: with no control process the
    // reload can never end, so the service stops at once, ExecStop= first (systemd's
    // `service_enter_stop`), not after TimeoutStartSec=.
    m.child_exited(main, Exit::Code(0));
    let stop = spawned(&fake).pop().expect("ExecStop=");
    assert_eq!(stop.1, ["/usr/bin/stop-d"]);
    assert_eq!(
        m.slots[&n("d.service")].active_state(),
        Active::Deactivating
    );
    // The reload job lasts until the unit is inactive (systemd's `unit_process_job`):
    // `systemctl reload` waits for the stop, not only for the end of "reloading".
    assert!(m.has_job(&n("d.service")));
    let control = m.slots[&n("d.service")].run.control_pid.expect("control");
    m.child_exited(control, Exit::Code(0));
    assert_eq!(m.slots[&n("d.service")].active_state(), Active::Inactive);
    assert!(!m.has_job(&n("d.service")));
    assert_eq!(job_result(&m, "d.service"), "done");
}

#[test]
fn a_reload_job_ended_by_a_failed_main_process_fails() {
    let fake = machine(&[(
        "d.service",
        "[Service]\nExecStart=/usr/bin/d\nExecReload=/usr/bin/reload-d\n",
    )]);
    let mut m = manager(&fake);
    m.start_unit(&n("d.service")).expect("start");
    let main = pid_of(&m, "d.service");
    m.reload_unit(&n("d.service")).expect("reload");
    let reload = m.slots[&n("d.service")]
        .run
        .control_pid
        .expect("ExecReload=");
    // The main process fails while ExecReload= runs; the reload itself succeeds.
    m.child_exited(main, Exit::Code(3));
    assert!(m.has_job(&n("d.service")));
    m.child_exited(reload, Exit::Code(0));
    // Its cgroup is empty: the failed run ends at once, and the job with it.
    assert_eq!(m.slots[&n("d.service")].active_state(), Active::Failed);
    assert!(!m.has_job(&n("d.service")));
    assert_eq!(job_result(&m, "d.service"), "failed");
    let props = m.properties(&n("d.service")).expect("loaded");
    assert!(
        props.contains(&("ReloadResult", "success".into())),
        "{props:?}"
    );
    assert!(props.contains(&("Result", "exit-code".into())), "{props:?}");
}

#[test]
fn a_stop_replaces_a_running_reload_job() {
    let fake = machine(&[(
        "d.service",
        "[Service]\nExecStart=/usr/bin/d\nExecReload=/usr/bin/reload-d\n",
    )]);
    let mut m = manager(&fake);
    m.start_unit(&n("d.service")).expect("start");
    m.reload_unit(&n("d.service")).expect("reload");
    m.stop_unit(&n("d.service")).expect("stop");
    assert!(m.has_job(&n("d.service")), "the stop job");
    // Once the stop is done, no reload job is left behind.
    for pid in [
        m.slots[&n("d.service")].run.control_pid,
        m.slots[&n("d.service")].run.main_pid,
    ]
    .into_iter()
    .flatten()
    {
        m.child_exited(pid, Exit::Signal(15));
    }
    assert_eq!(m.slots[&n("d.service")].active_state(), Active::Inactive);
    assert!(!m.has_job(&n("d.service")));
}

fn job_result(m: &Manager, unit: &str) -> String {
    let props = m.properties(&n(unit)).expect("loaded");
    props
        .into_iter()
        .find(|(k, _)| *k == "JobResult")
        .map(|(_, v)| v)
        .unwrap_or_default()
}

#[test]
fn show_loads_an_installed_unit_on_demand_with_its_type() {
    let fake = machine(&[(
        "c.service",
        "[Unit]\nDescription=C\n[Service]\nType=notify\nExecStart=/usr/bin/c\n",
    )]);
    let mut m = manager(&fake);
    assert!(m.properties(&n("c.service")).is_none(), "not loaded yet");
    assert_eq!(m.load_on_demand(&n("c.service")), Some(n("c.service")));
    let props = m.properties(&n("c.service")).expect("loaded on demand");
    for want in [
        ("LoadState", "loaded"),
        ("ActiveState", "inactive"),
        ("SubState", "dead"),
        ("Type", "notify"),
        ("MainPID", "0"),
    ] {
        assert!(
            props.contains(&(want.0, want.1.into())),
            "{want:?} in {props:?}"
        );
    }
    // Loading starts nothing; a unit without a file stays unknown.
    assert!(spawned(&fake).is_empty());
    assert_eq!(m.load_on_demand(&n("nope.service")), None);
    // The loaded unit starts as any other.
    m.start_unit(&n("c.service")).expect("start");
    assert_eq!(
        m.slots[&n("c.service")].active_state(),
        Active::Activating,
        "notify: activating until READY=1"
    );
}
