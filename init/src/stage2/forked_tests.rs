//! Steps in a forked child over the fake: the child's result reaches the unit (its
//! reason when it failed), a fork that fails runs the step in PID 1, and a shutdown stops
//! the child.

use super::engine::{JobResult, Machine};
use super::forked::{self, Started};
use super::tests::machine;
use super::{early, units};
use crate::sys::fake::Call;
use crate::sys::Syscalls;
use berth_layout::cmdline::BootOptions;

fn failing(_: &mut Machine) -> JobResult {
    Err("50-berth.conf:3: expected `key = value`".into())
}

fn fine(m: &mut Machine) -> JobResult {
    m.log("berth: step ran");
    Ok(())
}

fn options() -> BootOptions {
    BootOptions::parse_lenient("").0
}

#[test]
fn a_failed_child_passes_its_reason_and_a_clean_exit_is_done() {
    let f = machine(true, 0);
    f.mkdir(std::path::Path::new("/run/berth")).unwrap(); // as the API mounts do
    let mut m = Machine::new(&f, options());
    let Started::Child(pid) = forked::start(&mut m, "systemd-sysctl.service", failing) else {
        panic!("not forked");
    };
    assert!(f.calls().contains(&Call::Fork(pid)));
    let running: Vec<(u32, &str)> = m.forked.iter().map(|s| (s.pid, s.unit)).collect();
    assert_eq!(running, [(pid, "systemd-sysctl.service")]);
    assert_eq!(f.reap().exited, [(pid, "exit 1".to_owned())]);
    assert_eq!(
        forked::result(&f, "systemd-sysctl.service", "exit 1"),
        Err("50-berth.conf:3: expected `key = value`".into())
    );
    // A child that wrote nothing (killed, or it could not write) says how it ended.
    assert_eq!(
        forked::result(&f, "systemd-modules-load.service", "signal 9"),
        Err("its process ended with signal 9".into())
    );
    let Started::Child(pid) = forked::start(&mut m, "systemd-modules-load.service", fine) else {
        panic!("not forked");
    };
    assert_eq!(f.reap().exited, [(pid, "exit 0".to_owned())]);
    assert_eq!(
        forked::result(&f, "systemd-modules-load.service", "exit 0"),
        Ok(())
    );
    assert!(f.logs().contains(&"berth: step ran".to_owned()));
}

#[test]
fn a_fork_that_fails_runs_the_step_in_pid_1() {
    let f = machine(true, 0);
    f.fork_fails.set(true);
    let mut m = Machine::new(&f, options());
    match forked::start(&mut m, "systemd-sysctl.service", failing) {
        Started::RanHere(result) => {
            assert_eq!(
                result,
                Err("50-berth.conf:3: expected `key = value`".into())
            )
        }
        Started::Child(_) => panic!("forked"),
    }
    assert!(m.forked.is_empty());
    assert!(!f.exists(&forked::result_path("systemd-sysctl.service")));
    let logs = f.logs().join("\n");
    assert!(
        logs.contains("systemd-sysctl.service: cannot fork"),
        "{logs}"
    );
}

/// Runs early boot's due steps until one runs in a forked child.
fn run_until_forked(
    f: &crate::sys::fake::Fake,
    m: &mut Machine,
    manager: &mut crate::manager::Manager,
) {
    while m.forked.is_empty() {
        let due = manager.take_due_builtins();
        assert!(!due.is_empty(), "nothing forked: {:#?}", f.logs());
        for unit in due {
            if let Some(result) = early::run_step(m, &unit, true) {
                manager.builtin_done(&unit, result);
            }
        }
    }
}

#[test]
fn early_boot_forks_the_etc_overlay_and_modules_side_by_side_and_a_shutdown_stops_them() {
    let f = machine(true, 0);
    f.helper_time.set(std::time::Duration::from_secs(5));
    let mut m = Machine::new(&f, options());
    let mut manager = units::manager(&m);
    early::start(&mut manager);
    run_until_forked(&f, &mut m, &mut manager);
    // Both need only the API file systems: two children at once, beside STATE.
    let forked: Vec<(u32, &str)> = m.forked.iter().map(|s| (s.pid, s.unit)).collect();
    assert_eq!(
        forked.iter().map(|(_, u)| *u).collect::<Vec<_>>(),
        ["berth-etc-overlay.service", "systemd-modules-load.service"]
    );
    early::cancel(&mut m, &mut manager);
    assert!(m.forked.is_empty());
    for (pid, unit) in forked {
        assert!(f
            .calls()
            .contains(&Call::Kill(-(pid as i32), nix::libc::SIGTERM)));
        let name = crate::unit::name::UnitName::parse(unit).unwrap();
        let status = manager.slots.get(&name).and_then(|s| s.status.clone());
        assert_eq!(
            status.as_deref(),
            Some("cancelled: the system is shutting down"),
            "{unit}"
        );
    }
}

#[test]
fn a_child_past_its_limit_is_killed_and_its_unit_fails_while_boot_goes_on() {
    let f = machine(true, 0);
    // A module whose init never returns: the child outlives the limit.
    f.helper_time.set(forked::STEP_LIMIT * 10);
    let mut m = Machine::new(&f, options());
    let mut manager = units::manager(&m);
    early::start(&mut manager);
    run_until_forked(&f, &mut m, &mut manager);
    let first = m.forked[0];
    assert_eq!(early::deadline(&m), Some(first.deadline));
    assert_eq!(first.deadline, f.now() + forked::STEP_LIMIT);
    // Not yet: a second short of the limit nothing is killed.
    f.sleep(forked::STEP_LIMIT - std::time::Duration::from_secs(1));
    early::expire(&mut m, &mut manager);
    assert!(m.forked.contains(&first));
    f.sleep(std::time::Duration::from_secs(1));
    early::expire(&mut m, &mut manager);
    assert!(!m.forked.iter().any(|s| s.pid == first.pid));
    assert!(f
        .calls()
        .contains(&Call::Kill(-(first.pid as i32), nix::libc::SIGKILL)));
    let name = crate::unit::name::UnitName::parse(first.unit).unwrap();
    let slot = manager.slots.get(&name).unwrap();
    assert_eq!(
        slot.status.as_deref(),
        Some("timed out after 90 s; its process group was killed")
    );
    assert_eq!(slot.active_state(), crate::unit::lifecycle::Active::Failed);
    // Its exit, whenever it comes, belongs to no step any more.
    assert!(!early::child_exited(
        &mut m,
        &mut manager,
        first.pid,
        "signal KILL"
    ));
}
