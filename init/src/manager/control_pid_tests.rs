//! `systemctl show`'s `MainPID=` and `ControlPID=` over the fake, as systemd 252 sets
//! them: the control process while a command other than the main one runs
//! (`ExecStartPre=`, `ExecReload=`, `ExecStop=`, `ExecStopPost=`), none once it ended,
//! and a oneshot's start command as its main process; and a service's settings in
//! systemd's property names and formats (`RestartUSec=`, `TimeoutStopFailureMode=`, …).

use super::tests::{machine, manager, n};
use super::Manager;
use crate::unit::lifecycle::Exit;

fn pids(m: &Manager<'_>, unit: &str) -> (String, String) {
    let props = m.properties(&n(unit)).expect("loaded");
    let get = |k: &str| {
        props
            .iter()
            .find(|(key, _)| *key == k)
            .map(|(_, v)| v.clone())
            .expect("property")
    };
    (get("MainPID"), get("ControlPID"))
}

fn control(m: &Manager<'_>, unit: &str) -> u32 {
    m.slots[&n(unit)]
        .run
        .control_pid
        .expect("a control process")
}

#[test]
fn control_pid_is_the_running_command_of_each_step() {
    let fake = machine(&[(
        "a.service",
        "[Service]\nExecStartPre=/usr/bin/pre\nExecStart=/usr/bin/a\n\
         ExecReload=/usr/bin/reload\nExecStop=/usr/bin/stop\nExecStopPost=/usr/bin/post\n",
    )]);
    let mut m = manager(&fake);
    m.start(&n("a.service"));
    let pre = control(&m, "a.service");
    assert_eq!(pids(&m, "a.service"), ("0".into(), pre.to_string()));
    m.child_exited(pre, Exit::Code(0));
    let main = m.slots[&n("a.service")].run.main_pid.expect("running");
    assert_eq!(pids(&m, "a.service"), (main.to_string(), "0".into()));

    m.reload_unit(&n("a.service")).expect("reloadable");
    let reload = control(&m, "a.service");
    assert_eq!(
        pids(&m, "a.service"),
        (main.to_string(), reload.to_string())
    );
    m.child_exited(reload, Exit::Code(0));
    assert_eq!(pids(&m, "a.service"), (main.to_string(), "0".into()));

    m.stop_unit(&n("a.service")).expect("stoppable");
    let stop = control(&m, "a.service");
    assert_eq!(pids(&m, "a.service"), (main.to_string(), stop.to_string()));
    m.child_exited(main, Exit::Signal(15));
    m.child_exited(stop, Exit::Code(0));
    let post = control(&m, "a.service");
    assert_eq!(pids(&m, "a.service"), ("0".into(), post.to_string()));
    m.child_exited(post, Exit::Code(0));
    assert_eq!(pids(&m, "a.service"), ("0".into(), "0".into()));
}

#[test]
fn a_oneshot_start_command_is_its_main_process() {
    let fake = machine(&[(
        "once.service",
        "[Service]\nType=oneshot\nExecStart=/usr/bin/once\n",
    )]);
    let mut m = manager(&fake);
    m.start(&n("once.service"));
    let pid = control(&m, "once.service");
    assert_eq!(pids(&m, "once.service"), (pid.to_string(), "0".into()));
}

#[test]
fn show_lists_a_services_settings_in_systemds_names_and_formats() {
    let fake = machine(&[(
        "a.service",
        "[Service]\nExecStart=/usr/bin/a\nRestart=on-failure\nRestartSec=1.5\n\
         TimeoutStopSec=90\nTimeoutStopFailureMode=abort\nTimeoutStartSec=infinity\n\
         KillMode=mixed\nSendSIGHUP=yes\n",
    )]);
    let mut m = manager(&fake);
    m.start(&n("a.service"));
    let props = m.properties(&n("a.service")).expect("loaded");
    for (key, value) in [
        ("Restart", "on-failure"),
        ("RestartUSec", "1.500000s"),
        ("TimeoutStartUSec", "infinity"),
        ("TimeoutStopUSec", "1min 30s"),
        // Unset, TimeoutAbortSec= is TimeoutStopSec='s.
        ("TimeoutAbortUSec", "1min 30s"),
        ("TimeoutStartFailureMode", "terminate"),
        ("TimeoutStopFailureMode", "abort"),
        ("RuntimeMaxUSec", "infinity"),
        ("WatchdogUSec", "0"),
        ("RemainAfterExit", "no"),
        ("KillMode", "mixed"),
        ("KillSignal", "15"),
        ("SendSIGKILL", "yes"),
        ("SendSIGHUP", "yes"),
    ] {
        assert!(
            props.contains(&(key, value.to_owned())),
            "{key}={value} not in {props:?}"
        );
    }
}

#[test]
fn show_lists_the_exit_status_sets_statuses_then_signal_names() {
    let fake = machine(&[(
        "a.service",
        "[Service]\nExecStart=/usr/bin/a\nSuccessExitStatus=SIGUSR1 75 TEMPFAIL 3\n\
         SuccessExitStatus=SIGHUP\nRestartForceExitStatus=SIGKILL 1\n\
         RestartPreventExitStatus=4\nRestartPreventExitStatus=\n",
    )]);
    let mut m = manager(&fake);
    m.start(&n("a.service"));
    let props = m.properties(&n("a.service")).expect("loaded");
    let keys: Vec<_> = props.iter().map(|(k, _)| *k).collect();
    let at = |key| keys.iter().position(|k| *k == key).expect("listed");
    // systemd 252's order: after RemainAfterExit=, Prevent, Force, Success.
    assert!(at("RemainAfterExit") < at("RestartPreventExitStatus"));
    assert!(at("RestartPreventExitStatus") < at("RestartForceExitStatus"));
    assert!(at("RestartForceExitStatus") < at("SuccessExitStatus"));
    for (key, value) in [
        // An empty assignment clears the list.
        ("RestartPreventExitStatus", ""),
        ("RestartForceExitStatus", "1 KILL"),
        ("SuccessExitStatus", "3 75 HUP USR1"),
    ] {
        assert!(
            props.contains(&(key, value.to_owned())),
            "{key}={value} not in {props:?}"
        );
    }
}
