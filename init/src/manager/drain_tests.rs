//! The unit's cgroup over the fake: an ended run (a stop, a main process that exits on
//! its own) waits for it to empty, per KillMode= (virtual clock, a `cgroup.events` file
//! the test rewrites), a drain out of time fails the unit, and `Delegate=` with controllers.

use std::path::Path;
use std::time::Duration;

use super::tests::{group, group_signals, machine, manager, n, pid_of, EVENTS};
use super::Manager;
use crate::sys::fake::{Call, Fake};
use crate::sys::Syscalls;
use crate::unit::lifecycle::{Active, Exit, Phase};

fn bomb(kill: &str) -> Fake {
    machine(&[(
        "bomb.service",
        &format!("[Service]\nExecStart=/usr/bin/bomb\nTimeoutStopSec=5\n{kill}"),
    )])
}

/// Starts bomb.service, stops it with its group populated, and its main process exits.
fn stop_leaving_processes(fake: &Fake, m: &mut Manager<'_>) {
    m.start(&n("bomb.service"));
    let pid = pid_of(m, "bomb.service");
    group(fake, true);
    m.stop_unit(&n("bomb.service")).expect("stoppable");
    m.child_exited(pid, Exit::Signal(15));
}

#[test]
fn control_group_stop_ends_when_the_cgroup_is_empty() {
    let fake = bomb("");
    let mut m = manager(&fake);
    m.start(&n("bomb.service"));
    let pid = pid_of(&m, "bomb.service");
    group(&fake, true);
    m.stop_unit(&n("bomb.service")).expect("stoppable");
    assert_eq!(group_signals(&fake), [15]);
    m.child_exited(pid, Exit::Signal(15));
    // The main process is gone but the group is not empty: still stopping, the rest
    // signalled again, and the loop is told which file to watch.
    assert!(m.has_job(&n("bomb.service")));
    assert_eq!(
        m.slots[&n("bomb.service")].active_state(),
        Active::Deactivating
    );
    assert_eq!(group_signals(&fake), [15, 15]);
    assert_eq!(
        m.drain_watches(),
        [(n("bomb.service"), Path::new(EVENTS).to_path_buf())]
    );
    // A change that leaves it populated changes nothing.
    m.cgroup_changed(&n("bomb.service"));
    assert!(m.has_job(&n("bomb.service")));
    assert_eq!(removed(&fake), 0, "no cgroup goes while it drains");
    group(&fake, false);
    m.cgroup_changed(&n("bomb.service"));
    assert!(!m.has_job(&n("bomb.service")));
    assert!(m.drain_watches().is_empty());
    assert_eq!(m.slots[&n("bomb.service")].active_state(), Active::Inactive);
    // Empty and inactive: the cgroup goes, once.
    assert_eq!(removed(&fake), 1);
    m.settle(&n("bomb.service"));
    assert_eq!(removed(&fake), 1);
}

/// How often the cgroup of bomb.service was removed.
fn removed(fake: &Fake) -> usize {
    fake.calls()
        .iter()
        .filter(|c| matches!(c, Call::CgroupRemove(d) if d.ends_with("bomb.service")))
        .count()
}

#[test]
fn a_run_that_ends_on_its_own_removes_its_cgroup_and_the_next_run_makes_it_again() {
    let fake = bomb("Restart=on-failure\nRestartSec=1\n");
    let mut m = manager(&fake);
    m.start(&n("bomb.service"));
    let first = pid_of(&m, "bomb.service");
    m.child_exited(first, Exit::Code(1));
    // Waiting to restart is no end: the cgroup stays until the unit is inactive or failed.
    assert_eq!(removed(&fake), 0);
    fake.sleep(Duration::from_secs(1));
    m.fire_timers();
    let second = pid_of(&m, "bomb.service");
    assert_ne!(second, first);
    m.stop_unit(&n("bomb.service")).expect("stoppable");
    m.child_exited(second, Exit::Signal(15));
    assert_eq!(m.slots[&n("bomb.service")].active_state(), Active::Inactive);
    assert_eq!(removed(&fake), 1);
    let made = fake
        .calls()
        .iter()
        .filter(|c| matches!(c, Call::CgroupCreate(d) if d.ends_with("bomb.service")))
        .count();
    assert_eq!(made, 2);
}

#[test]
fn processes_that_outlive_timeout_stop_get_sigkill_then_the_unit_fails_with_timeout() {
    let fake = bomb("");
    let mut m = manager(&fake);
    stop_leaving_processes(&fake, &mut m);
    assert_eq!(m.next_deadline(), Some(fake.now() + Duration::from_secs(5)));
    fake.sleep(Duration::from_secs(5));
    m.fire_timers();
    assert_eq!(group_signals(&fake), [15, 15, 9]);
    assert!(m.has_job(&n("bomb.service")));
    // Still there after SIGKILL and another TimeoutStopSec: said, and the unit failed
    // with result timeout, as systemd's final-sigkill timeout.
    fake.sleep(Duration::from_secs(5));
    m.fire_timers();
    assert!(!m.has_job(&n("bomb.service")));
    assert!(fake.logs().iter().any(|l| {
        l
        == "berth: bomb.service: Processes still around after final SIGKILL. Entering failed mode."
    }));
    assert_eq!(result_of(&m), (Active::Failed, "timeout".into()));
}

#[test]
fn a_sigkill_that_empties_the_group_after_the_timeout_still_fails_the_unit() {
    let fake = bomb("");
    let mut m = manager(&fake);
    stop_leaving_processes(&fake, &mut m);
    fake.sleep(Duration::from_secs(5));
    m.fire_timers();
    group(&fake, false);
    m.cgroup_changed(&n("bomb.service"));
    assert!(!m.has_job(&n("bomb.service")));
    assert_eq!(result_of(&m), (Active::Failed, "timeout".into()));
}

#[test]
fn send_sigkill_no_gives_up_after_the_stop_signal_and_fails() {
    let fake = bomb("SendSIGKILL=no\n");
    let mut m = manager(&fake);
    stop_leaving_processes(&fake, &mut m);
    fake.sleep(Duration::from_secs(5));
    m.fire_timers();
    assert!(!group_signals(&fake).contains(&9));
    assert_eq!(result_of(&m), (Active::Failed, "timeout".into()));
}

#[test]
fn a_main_process_that_exits_on_its_own_leaves_the_unit_deactivating_until_the_group_is_empty() {
    let fake = machine(&[
        (
            "bomb.service",
            "[Unit]\nOnSuccess=after.service\n[Service]\nExecStart=/usr/bin/bomb\nTimeoutStopSec=5\n",
        ),
        ("after.service", "[Service]\nExecStart=/usr/bin/after\n"),
    ]);
    let mut m = manager(&fake);
    m.start(&n("bomb.service"));
    let pid = pid_of(&m, "bomb.service");
    group(&fake, true);
    // No job: the main process ends by itself, its helpers stay.
    m.child_exited(pid, Exit::Code(0));
    assert_eq!(
        m.slots[&n("bomb.service")].active_state(),
        Active::Deactivating
    );
    // The stop signal to the group, and the stop waits in stop-sigterm for it to empty
    // (systemd 252); nothing is left for a final drain after that.
    assert_eq!(group_signals(&fake), [15]);
    assert_eq!(m.slots[&n("bomb.service")].run.phase, Phase::StopSigterm);
    assert_eq!(m.drain_watches().len(), 1);
    assert!(!m.slots.contains_key(&n("after.service")));
    group(&fake, false);
    m.cgroup_changed(&n("bomb.service"));
    assert_eq!(result_of(&m), (Active::Inactive, "success".into()));
    // OnSuccess= only once the unit really is inactive.
    assert!(m.slots.contains_key(&n("after.service")));
}

#[test]
fn leftovers_of_a_self_ended_run_that_outlive_sigkill_fail_it_with_timeout() {
    let fake = bomb("");
    let mut m = manager(&fake);
    m.start(&n("bomb.service"));
    let pid = pid_of(&m, "bomb.service");
    group(&fake, true);
    m.child_exited(pid, Exit::Code(0));
    // stop-sigterm, stop-sigkill, each out of time; then, with no ExecStopPost=, the
    // final-sigterm and final-sigkill of the drain, as systemd 252 goes through them.
    for _ in 0..3 {
        fake.sleep(Duration::from_secs(5));
        m.fire_timers();
        assert_eq!(
            m.slots[&n("bomb.service")].active_state(),
            Active::Deactivating
        );
    }
    assert_eq!(group_signals(&fake), [15, 9, 15, 9]);
    fake.sleep(Duration::from_secs(5));
    m.fire_timers();
    assert!(m.drain_watches().is_empty());
    assert_eq!(result_of(&m), (Active::Failed, "timeout".into()));
}

#[test]
fn an_automatic_restart_waits_for_the_group_to_empty() {
    let fake = bomb("Restart=always\nRestartSec=1\n");
    let mut m = manager(&fake);
    m.start(&n("bomb.service"));
    let first = pid_of(&m, "bomb.service");
    group(&fake, true);
    m.child_exited(first, Exit::Code(1));
    assert_eq!(
        m.slots[&n("bomb.service")].active_state(),
        Active::Deactivating
    );
    // The restart's hold-off passes while the group drains: no restart yet, and the
    // next deadline is the drain's, not the held restart's.
    assert_eq!(m.next_deadline(), Some(fake.now() + Duration::from_secs(5)));
    fake.sleep(Duration::from_secs(2));
    m.fire_timers();
    assert_eq!(pid_of_opt(&m), None);
    group(&fake, false);
    m.cgroup_changed(&n("bomb.service"));
    // As systemd (service_enter_dead after final-sigterm): RestartSec= counts from the
    // drain's end.
    m.fire_timers();
    assert_eq!(pid_of_opt(&m), None);
    assert_eq!(m.next_deadline(), Some(fake.now() + Duration::from_secs(1)));
    fake.sleep(Duration::from_secs(1));
    m.fire_timers();
    assert_ne!(pid_of_opt(&m), None);
    assert_ne!(pid_of(&m, "bomb.service"), first);
}

fn result_of(m: &crate::manager::Manager) -> (Active, String) {
    let slot = &m.slots[&n("bomb.service")];
    let result = slot.run.result.map_or("success", |r| r.as_str());
    (slot.active_state(), result.to_owned())
}

fn pid_of_opt(m: &crate::manager::Manager) -> Option<u32> {
    m.slots[&n("bomb.service")].run.main_pid
}

#[test]
fn mixed_sends_the_rest_sigkill_at_once() {
    let fake = bomb("KillMode=mixed\n");
    let mut m = manager(&fake);
    m.start(&n("bomb.service"));
    let pid = pid_of(&m, "bomb.service");
    group(&fake, true);
    m.stop_unit(&n("bomb.service")).expect("stoppable");
    // mixed: SIGTERM to the main process only, then SIGKILL to what is left.
    assert!(fake.calls().contains(&Call::Kill(pid as i32, 15)));
    assert!(group_signals(&fake).is_empty());
    m.child_exited(pid, Exit::Signal(15));
    assert_eq!(group_signals(&fake), [9]);
    assert!(m.has_job(&n("bomb.service")));
    group(&fake, false);
    m.cgroup_changed(&n("bomb.service"));
    assert!(!m.has_job(&n("bomb.service")));
}

#[test]
fn kill_mode_process_and_none_do_not_wait_for_the_group() {
    for mode in ["process", "none"] {
        let fake = bomb(&format!("KillMode={mode}\n"));
        let mut m = manager(&fake);
        m.start(&n("bomb.service"));
        let pid = pid_of(&m, "bomb.service");
        group(&fake, true);
        m.stop_unit(&n("bomb.service")).expect("stoppable");
        m.child_exited(pid, Exit::Signal(15));
        assert!(!m.has_job(&n("bomb.service")), "{mode}");
        assert!(group_signals(&fake).is_empty(), "{mode}");
        assert!(m.drain_watches().is_empty(), "{mode}");
    }
}

#[test]
fn a_restart_starts_again_only_once_the_group_is_empty() {
    let fake = bomb("");
    let mut m = manager(&fake);
    m.start(&n("bomb.service"));
    let first = pid_of(&m, "bomb.service");
    group(&fake, true);
    m.restart_unit(&n("bomb.service")).expect("restartable");
    m.child_exited(first, Exit::Signal(15));
    let spawns = |f: &Fake| {
        f.calls()
            .iter()
            .filter(|c| matches!(c, Call::SpawnCommand(..)))
            .count()
    };
    assert_eq!(spawns(&fake), 1);
    group(&fake, false);
    m.cgroup_changed(&n("bomb.service"));
    assert_eq!(spawns(&fake), 2);
    assert_ne!(pid_of(&m, "bomb.service"), first);
}

#[test]
fn delegate_with_controllers_enables_the_missing_ones_in_the_parent() {
    let fake = machine(&[(
        "r.service",
        "[Service]\nExecStart=/usr/bin/r\nDelegate=cpu blkio memory devices\n",
    )]);
    let dir = Path::new("/sys/fs/cgroup/system.slice/r.service");
    fake.write(dir.join("cgroup.controllers"), "cpu pids\n");
    fake.write("/sys/fs/cgroup/system.slice/cgroup.subtree_control", "");
    let mut m = manager(&fake);
    m.start(&n("r.service"));
    let writes: Vec<String> = fake
        .calls()
        .into_iter()
        .filter_map(|c| match c {
            Call::Write(p, v) if p.ends_with("system.slice/cgroup.subtree_control") => Some(v),
            _ => None,
        })
        .collect();
    // cpu is there; blkio is v2's io; devices is no v2 controller.
    assert_eq!(writes, ["+io", "+memory"]);
    // Inside the delegated group nothing is written.
    assert!(!fake
        .calls()
        .iter()
        .any(|c| matches!(c, Call::Write(p, _) if p.starts_with(dir))));
}

#[test]
fn delegate_with_user_hands_the_group_and_its_control_files_to_the_user() {
    let fake = machine(&[
        (
            "k.service",
            "[Service]\nExecStart=/usr/bin/k\nDelegate=yes\nUser=kube\n",
        ),
        (
            "root.service",
            "[Service]\nExecStart=+/usr/bin/k\nDelegate=yes\nUser=kube\n",
        ),
        (
            "plain.service",
            "[Service]\nExecStart=/usr/bin/k\nUser=kube\n",
        ),
    ]);
    fake.write("/etc/passwd", "kube:x:1000:1001::/home/kube:/bin/sh\n");
    // The kernel's files of a new group; cgroup.threads may be missing.
    let dir = "/sys/fs/cgroup/system.slice/k.service";
    for file in ["cgroup.procs", "cgroup.subtree_control"] {
        fake.write(format!("{dir}/{file}"), "");
    }
    let mut m = manager(&fake);
    for unit in ["k.service", "root.service", "plain.service"] {
        m.start(&n(unit));
    }
    let chowned: Vec<(String, u32, u32)> = fake
        .calls()
        .into_iter()
        .filter_map(|c| match c {
            Call::Chown(p, uid, gid) if p.starts_with("/sys/fs/cgroup") => {
                Some((p.display().to_string(), uid, gid))
            }
            _ => None,
        })
        .collect();
    // Only k.service's: root.service's command runs with full privileges (`+`), and
    // plain.service delegates nothing.
    assert_eq!(
        chowned,
        [
            (dir.to_owned(), 1000, 1001),
            (format!("{dir}/cgroup.procs"), 1000, 1001),
            (format!("{dir}/cgroup.subtree_control"), 1000, 1001),
            (format!("{dir}/cgroup.threads"), 1000, 1001),
        ]
    );
    assert_eq!(m.slots[&n("k.service")].active_state(), Active::Active);
}
