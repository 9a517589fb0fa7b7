//! STATE's repair helpers as children the event loop waits on, over the fake with its
//! virtual clock: while e2fsck runs, STATE's unit is `activating` and PID 1 is free (the
//! step has returned); its exit, reaped like any child's, completes the unit; a shutdown
//! meanwhile stops it and fails the unit as cancelled.

use std::path::Path;
use std::time::Duration;

use super::engine::{Machine, StateBacking};
use super::tests::{exit, machine};
use super::{early, units};
use crate::manager::Manager;
use crate::sys::fake::{Call, Fake};
use crate::sys::Syscalls;
use crate::unit::name::UnitName;
use berth_layout::cmdline::BootOptions;
use berth_layout::paths::STATE_MOUNT;

const STATE: &str = "berth-state.service";
const ETC: &str = "berth-etc-overlay.service";
const MODULES: &str = "systemd-modules-load.service";

fn row(m: &Manager, unit: &str) -> [String; 5] {
    m.unit_list()
        .into_iter()
        .find(|r| r[0] == unit)
        .unwrap_or_else(|| panic!("{unit} not listed"))
}

/// Runs the due steps as the event loop does, until none is due (a step may be waiting).
fn turn(m: &mut Machine, manager: &mut Manager) {
    loop {
        let due = manager.take_due_builtins();
        if due.is_empty() {
            return;
        }
        for unit in due {
            if let Some(result) = early::run_step(m, &unit, true) {
                manager.builtin_done(&unit, result);
            }
        }
    }
}

/// A STATE the kernel refuses once, whose e2fsck -p takes 90 s (virtual) and repairs it.
fn refused_state() -> Fake {
    let f = machine(true, 0);
    f.failing_mounts_times
        .borrow_mut()
        .insert(format!("ext4 {STATE_MOUNT}"), 1);
    f.runs.borrow_mut().push_back(exit(
        1,
        "/dev/vda6: 11/4096 files (0.0% non-contiguous), 1/16384 blocks\n",
    ));
    f.helper_time.set(Duration::from_secs(90));
    f
}

fn options(f: &Fake) -> BootOptions {
    let cmdline = f.read_to_string(Path::new("/proc/cmdline")).unwrap();
    BootOptions::parse_lenient(&cmdline).0
}

#[test]
fn while_e2fsck_runs_the_unit_is_activating_and_its_exit_completes_it() {
    let f = refused_state();
    let mut m = Machine::new(&f, options(&f));
    let mut manager = units::manager(&m);
    early::start(&mut manager);
    turn(&mut m, &mut manager);
    // The step returned with e2fsck started: STATE waits, nothing after it runs.
    let waiting = m.waiting.as_ref().expect("waiting for e2fsck");
    let pid = waiting.repair.helper.pid;
    assert_eq!(
        waiting.repair.helper.deadline,
        f.now() + Duration::from_secs(1200)
    );
    // The forked steps beside it (the /etc overlay, modules-load) have the sooner limit.
    assert_eq!(
        early::deadline(&m),
        Some(f.now() + super::forked::STEP_LIMIT)
    );
    let r = row(&manager, STATE);
    assert_eq!(r[2], "activating", "{r:?}");
    assert!(!manager.anchor_reached());
    assert!(manager.take_due_builtins().is_empty());
    // Nothing has exited yet; the timer has not fired.
    f.sleep(Duration::from_secs(60));
    assert!(f.reap().exited.is_empty());
    early::expire(&mut m, &mut manager);
    assert!(m.waiting.is_some());
    // Its exit arrives through reaping, as SIGCHLD brings it to the loop.
    f.sleep(Duration::from_secs(30));
    // The /etc overlay's and modules-load's forked children (beside STATE) ended meanwhile.
    let exited = f.reap().exited;
    assert_eq!(exited.len(), 3, "{exited:?}");
    assert!(exited.contains(&(pid, "exit 1".to_owned())), "{exited:?}");
    let forked: Vec<(u32, &str)> = m.forked.iter().map(|s| (s.pid, s.unit)).collect();
    assert_eq!(
        forked.iter().map(|(_, u)| *u).collect::<Vec<_>>(),
        [ETC, MODULES]
    );
    for (child, unit) in forked {
        assert!(early::child_exited(&mut m, &mut manager, child, "exit 0"));
        assert_eq!(row(&manager, unit)[2], "active");
    }
    assert!(!early::child_exited(
        &mut m,
        &mut manager,
        pid + 7,
        "exit 0"
    ));
    assert!(early::child_exited(&mut m, &mut manager, pid, "exit 1"));
    assert!(m.waiting.is_none());
    let r = row(&manager, STATE);
    assert_eq!([&r[2], &r[3]], ["active", "exited"], "{r:?}");
    assert_eq!(m.state, StateBacking::Partition("/dev/vda6".into()));
    turn(&mut m, &mut manager);
    // sysctl's and coldplug's children, one after the other.
    while !m.forked.is_empty() {
        f.sleep(Duration::from_secs(90));
        for (pid, how) in f.reap().exited {
            assert!(early::child_exited(&mut m, &mut manager, pid, &how));
        }
        turn(&mut m, &mut manager);
    }
    assert!(manager.anchor_reached());
    assert_eq!(early::failed(&manager), 0, "{:#?}", f.logs());
    let logs = f.logs().join("\n");
    for line in [
        "berth: state: e2fsck -p repaired /dev/vda6 (exit 1, 90.0 s): /dev/vda6: 11/4096 files",
        "berth: state mounted /dev/vda6 (16 MiB, repaired) on /mnt/stateful_partition",
    ] {
        assert!(logs.contains(line), "no {line:?} in\n{logs}");
    }
}

#[test]
fn a_shutdown_while_e2fsck_runs_stops_it_and_fails_the_unit_as_cancelled() {
    let f = refused_state();
    let mut m = Machine::new(&f, options(&f));
    let mut manager = units::manager(&m);
    early::start(&mut manager);
    turn(&mut m, &mut manager);
    let pid = m.waiting.as_ref().expect("waiting").repair.helper.pid;
    early::cancel(&mut m, &mut manager);
    assert!(m.waiting.is_none());
    assert!(f
        .calls()
        .contains(&Call::Kill(-(pid as i32), nix::libc::SIGTERM)));
    let r = row(&manager, STATE);
    assert_eq!(r[2], "failed", "{r:?}");
    let unit = UnitName::parse(STATE).unwrap();
    let status = manager.slots.get(&unit).and_then(|s| s.status.clone());
    assert_eq!(
        status.as_deref(),
        Some("cancelled: the system is shutting down")
    );
}
