//! What `systemctl show` and `status` learn of a unit's processes: a command whose child
//! failed a step before `execve` is recorded as systemd records it (the child's PID, exit
//! status the step's: `226/NAMESPACE`, `203/EXEC`, `200/CHDIR`), and `ControlGroup=` and
//! `FragmentPath=` are only claimed when there is one.

use super::tests::{machine, manager, n};
use crate::sys::child_report::{ChildFailure, Step, NO_INDEX};
use crate::unit::lifecycle::Active;

fn prop(m: &super::Manager, unit: &str, key: &str) -> String {
    let props = m.properties(&n(unit)).expect("loaded");
    props
        .into_iter()
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v)
        .unwrap_or_else(|| panic!("{unit} has no {key}"))
}

fn fail_at(fake: &crate::sys::fake::Fake, program: &str, step: Step) {
    fake.child_failures.borrow_mut().insert(
        program.into(),
        ChildFailure {
            step,
            index: NO_INDEX,
            errno: nix::libc::EACCES,
        },
    );
}

#[test]
fn a_main_process_that_fails_a_step_before_exec_exits_with_the_steps_status() {
    for (step, status) in [
        (Step::Namespace, "226"),
        (Step::User, "217"),
        (Step::Chdir, "200"),
    ] {
        for kind in ["simple", "idle", "exec", "notify"] {
            let fake = machine(&[(
                "x.service",
                &format!("[Service]\nType={kind}\nExecStart=/usr/bin/x\n"),
            )]);
            fail_at(&fake, "/usr/bin/x", step);
            let mut m = manager(&fake);
            m.start(&n("x.service"));
            let pid = fake.next_pid.get() - 1;
            assert_eq!(m.slots[&n("x.service")].active_state(), Active::Failed);
            assert_eq!(prop(&m, "x.service", "Result"), "exit-code");
            assert_eq!(prop(&m, "x.service", "MainPID"), "0");
            assert_eq!(prop(&m, "x.service", "ExecMainPID"), pid.to_string());
            assert_eq!(prop(&m, "x.service", "ExecMainCode"), "1", "CLD_EXITED");
            assert_eq!(prop(&m, "x.service", "ExecMainStatus"), status, "{step:?}");
            let said = format!(
                "berth: FAILED x.service: exit-code (exit {status}/{})",
                step.name()
            );
            let logs = fake.logs();
            let failed = logs.iter().position(|l| *l == said);
            assert!(failed.is_some(), "{kind}: {logs:?}");
            // As systemd 252: simple and idle are started at the fork ("Started x."),
            // then fail; exec and notify were never started.
            let started = logs.iter().position(|l| l == "berth: started x.service");
            if matches!(kind, "simple" | "idle") {
                assert!(
                    started.is_some_and(|s| Some(s) < failed),
                    "{kind}: {logs:?}"
                );
                assert_eq!(prop(&m, "x.service", "JobResult"), "done", "{kind}");
            } else {
                assert_eq!(started, None, "{kind}: {logs:?}");
                assert_eq!(prop(&m, "x.service", "JobResult"), "failed", "{kind}");
            }
        }
    }
}

#[test]
fn a_missing_program_is_status_203_and_restart_on_failure_applies() {
    let fake = machine(&[(
        "x.service",
        "[Service]\nExecStart=/usr/bin/gone\nRestart=on-failure\nRestartSec=1\n",
    )]);
    fake.missing_programs
        .borrow_mut()
        .insert("/usr/bin/gone".into());
    let mut m = manager(&fake);
    m.start(&n("x.service"));
    assert_eq!(prop(&m, "x.service", "ExecMainStatus"), "203");
    assert_eq!(prop(&m, "x.service", "SubState"), "auto-restart");
}

#[test]
fn a_control_command_that_fails_before_exec_fails_the_start_but_is_no_main_status() {
    let fake = machine(&[(
        "p.service",
        "[Service]\nExecStartPre=/usr/bin/pre\nExecStart=/usr/bin/p\n",
    )]);
    fail_at(&fake, "/usr/bin/pre", Step::Chdir);
    let mut m = manager(&fake);
    m.start(&n("p.service"));
    assert_eq!(m.slots[&n("p.service")].active_state(), Active::Failed);
    assert_eq!(prop(&m, "p.service", "Result"), "exit-code");
    assert_eq!(prop(&m, "p.service", "ExecMainPID"), "0");
    assert_eq!(prop(&m, "p.service", "ExecMainCode"), "0");
    assert_eq!(fake.spawns.borrow().len(), 1, "the main command never ran");
}

#[test]
fn a_control_command_with_a_dash_may_fail_before_exec() {
    let fake = machine(&[(
        "p.service",
        "[Service]\nExecStartPre=-/usr/bin/pre\nExecStart=/usr/bin/p\n",
    )]);
    fail_at(&fake, "/usr/bin/pre", Step::Exec);
    let mut m = manager(&fake);
    m.start(&n("p.service"));
    assert_eq!(m.slots[&n("p.service")].active_state(), Active::Active);
}

#[test]
fn control_group_is_shown_while_the_unit_has_one() {
    let fake = machine(&[("a.service", "[Service]\nExecStart=/usr/bin/a\n")]);
    let mut m = manager(&fake);
    m.load_on_demand(&n("a.service"));
    assert_eq!(prop(&m, "a.service", "ControlGroup"), "", "never started");
    m.start(&n("a.service"));
    assert_eq!(
        prop(&m, "a.service", "ControlGroup"),
        "/sys/fs/cgroup/system.slice/a.service"
    );
    let pid = super::tests::pid_of(&m, "a.service");
    m.child_exited(pid, crate::unit::lifecycle::Exit::Code(0));
    assert_eq!(m.slots[&n("a.service")].active_state(), Active::Inactive);
    assert_eq!(
        prop(&m, "a.service", "ControlGroup"),
        "",
        "ended, group empty"
    );
}

#[test]
fn a_builtin_unit_claims_no_file_and_no_cgroup() {
    let fake = machine(&[]);
    let mut m = manager(&fake);
    m.add_builtin(
        &n("berth-early.service"),
        "[Unit]\nDescription=early\n[Service]\nType=oneshot\nRemainAfterExit=yes\n",
    );
    m.start_unit(&n("berth-early.service")).expect("startable");
    m.take_due_builtins();
    m.builtin_done(&n("berth-early.service"), Ok(()));
    assert_eq!(prop(&m, "berth-early.service", "ActiveState"), "active");
    assert_eq!(prop(&m, "berth-early.service", "FragmentPath"), "");
    assert_eq!(prop(&m, "berth-early.service", "ControlGroup"), "");
}

#[test]
fn each_command_of_the_run_is_shown_with_its_process_and_end() {
    let fake = machine(&[(
        "p.service",
        "[Service]\nExecStartPre=/bin/mkdir -p /run/p\nExecStartPre=-/usr/bin/check\n\
         ExecStart=/usr/bin/p\nExecStop=/bin/stop-p\n",
    )]);
    let mut m = manager(&fake);
    m.start(&n("p.service"));
    let first_pre = fake.next_pid.get() - 1;
    m.child_exited(first_pre, crate::unit::lifecycle::Exit::Code(0));
    m.child_exited(first_pre + 1, crate::unit::lifecycle::Exit::Code(1));
    let shown: Vec<String> = m
        .properties(&n("p.service"))
        .expect("loaded")
        .into_iter()
        .filter(|(k, _)| k.starts_with("Exec") && !k.starts_with("ExecMain"))
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let main = first_pre + 2;
    assert_eq!(
        shown,
        [
            format!("ExecStartPre={{ path=/bin/mkdir ; argv[]=/bin/mkdir -p /run/p ; ignore_errors=no ; pid={first_pre} ; code=exited ; status=0 }}"),
            format!("ExecStartPre={{ path=/usr/bin/check ; argv[]=/usr/bin/check ; ignore_errors=yes ; pid={} ; code=exited ; status=1 }}", first_pre + 1),
            format!("ExecStart={{ path=/usr/bin/p ; argv[]=/usr/bin/p ; ignore_errors=no ; pid={main} ; code=(null) ; status=0/0 }}"),
            "ExecStop={ path=/bin/stop-p ; argv[]=/bin/stop-p ; ignore_errors=no ; pid=0 ; code=(null) ; status=0/0 }".to_owned(),
        ]
    );
}
