//! Early boot's built-in units over the fake: their order, a failure said and passed
//! over, their states as `systemctl` shows them, and `default.target`'s transaction
//! after them.

use std::path::Path;
use std::time::Duration;

use super::early::{self, EARLY_BOOT, EARLY_TARGET};
use crate::manager::{MachineFacts, Manager};
use crate::sys::fake::Fake;
use crate::sys::Syscalls;
use crate::unit::load::Loader;
use crate::unit::name::UnitName;
use crate::unit::specifier::Host;

const MODULES: &str = "systemd-modules-load.service";

fn n(s: &str) -> UnitName {
    UnitName::parse(s).expect("valid")
}

fn manager(fake: &Fake) -> Manager<'_> {
    let facts = MachineFacts {
        root: fake.host("/"),
        cmdline: String::new(),
        virtualization: None,
        first_boot: false,
    };
    Manager::new(
        fake,
        Loader::system(&fake.host("/")),
        Host::default(),
        facts,
    )
}

/// Runs the due steps as `outcome` says, each taking a second of virtual time; returns
/// the units in the order their steps ran.
fn run(fake: &Fake, m: &mut Manager, outcome: impl Fn(&str) -> Result<(), String>) -> Vec<String> {
    let mut ran = Vec::new();
    loop {
        let due = m.take_due_builtins();
        if due.is_empty() {
            return ran;
        }
        for unit in due {
            fake.sleep(Duration::from_secs(1));
            m.builtin_done(&unit, outcome(unit.as_str()));
            ran.push(unit.to_string());
        }
    }
}

fn row(m: &Manager, unit: &str) -> [String; 5] {
    m.unit_list()
        .into_iter()
        .find(|r| r[0] == unit)
        .unwrap_or_else(|| panic!("{unit} not listed"))
}

#[test]
fn early_units_run_in_their_order_the_forked_ones_beside_the_chain_then_the_target_is_reached() {
    let fake = Fake::new();
    let mut m = manager(&fake);
    early::start(&mut m);
    assert!(!m.anchor_reached());
    // One step is due at a time: the next only once the one before is done.
    assert_eq!(m.take_due_builtins(), [n("berth-api-mounts.service")]);
    assert!(m.take_due_builtins().is_empty());
    m.builtin_done(&n("berth-api-mounts.service"), Ok(()));
    let ran = run(&fake, &mut m, |_| Ok(()));
    assert_eq!(ran.len(), EARLY_BOOT.len() - 1, "{ran:?}");
    // The steps PID 1 runs in its turn, one after another in the list's order.
    let chained: Vec<&str> = ran
        .iter()
        .map(String::as_str)
        .filter(|name| EARLY_BOOT.iter().any(|u| u.job.name == *name && !u.forked))
        .collect();
    let want: Vec<&str> = EARLY_BOOT
        .iter()
        .skip(1)
        .filter(|u| !u.forked)
        .map(|u| u.job.name)
        .collect();
    assert_eq!(chained, want);
    // The forked ones each after what they name and nothing more: modules-load beside
    // STATE and its binds, once /etc is there.
    let at = |name: &str| ran.iter().position(|r| r == name).unwrap();
    for u in EARLY_BOOT.iter().filter(|u| u.forked) {
        for a in u.after.iter().filter(|a| **a != "berth-api-mounts.service") {
            assert!(
                at(a) < at(u.job.name),
                "{} ran before {a}: {ran:?}",
                u.job.name
            );
        }
    }
    assert!(at(MODULES) < at("berth-state-binds.service"), "{ran:?}");
    assert!(m.anchor_reached());
    for u in &EARLY_BOOT {
        let r = row(&m, u.job.name);
        assert_eq!(
            [&r[1], &r[2], &r[3]],
            ["loaded", "active", "exited"],
            "{r:?}"
        );
    }
    assert_eq!(row(&m, EARLY_TARGET)[2], "active");
    // No step ran a process, and the units' text drew no warning.
    assert!(!fake
        .calls()
        .iter()
        .any(|c| matches!(c, crate::sys::fake::Call::SpawnCommand(..))));
    let logs = fake.logs().join("\n");
    assert!(!logs.contains(".service:"), "{logs}");
    // blame's figures: a step due alone took its second of virtual time.
    let props = m
        .properties(&n("systemd-tmpfiles-setup.service"))
        .expect("loaded");
    let get = |k: &str| {
        props
            .iter()
            .find(|(key, _)| *key == k)
            .map(|(_, v)| v.clone())
    };
    let took = get("ActiveEnterTimestampMonotonic")
        .unwrap()
        .parse::<u64>()
        .unwrap()
        - get("InactiveExitTimestampMonotonic")
            .unwrap()
            .parse::<u64>()
            .unwrap();
    assert_eq!(took, 1_000_000);
}

/// sysinit, basic and multi-user targets as systemd ships them, in short.
fn write_targets(fake: &Fake) {
    let dir = Path::new("/usr/lib/systemd/system");
    fake.write(
        dir.join("sysinit.target"),
        "[Unit]\nDefaultDependencies=no\n",
    );
    fake.write(
        dir.join("basic.target"),
        "[Unit]\nRequires=sysinit.target\nAfter=sysinit.target\n",
    );
    fake.write(
        dir.join("multi-user.target"),
        "[Unit]\nRequires=basic.target\nAfter=basic.target\n",
    );
}

#[test]
fn a_failed_step_is_said_shown_with_its_reason_and_boot_goes_on() {
    let fake = Fake::new();
    write_targets(&fake);
    let mut m = manager(&fake);
    early::start(&mut m);
    let ran = run(&fake, &mut m, |unit| match unit {
        "berth-state.service" => Err("no partition labelled STATE".into()),
        "systemd-sysctl.service" => Err("50-berth.conf:3: expected `key = value`".into()),
        _ => Ok(()),
    });
    // Every step ran: a failure fails nothing after it (ordering only, no Requires=).
    assert_eq!(ran.len(), EARLY_BOOT.len());
    assert!(m.anchor_reached());
    let logs = fake.logs();
    assert!(
        logs.contains(&"berth: FAILED berth-state.service: no partition labelled STATE".to_owned()),
        "{logs:?}"
    );
    assert!(
        logs.contains(
            &"berth: FAILED systemd-sysctl.service: 50-berth.conf:3: expected `key = value`"
                .to_owned()
        ),
        "{logs:?}"
    );
    assert_eq!(early::failed(&m), 2);
    let r = row(&m, "systemd-sysctl.service");
    assert_eq!([&r[2], &r[3]], ["failed", "failed"]);
    let props = m.properties(&n("systemd-sysctl.service")).expect("loaded");
    assert!(
        props.contains(&(
            "StatusText",
            "50-berth.conf:3: expected `key = value`".into()
        )),
        "{props:?}"
    );
    assert_eq!(row(&m, "berth-state-binds.service")[2], "active");
    // default.target's transaction pulls them in again: a failed step is not run twice.
    m.start(&n("multi-user.target"));
    assert!(m.take_due_builtins().is_empty());
    assert_eq!(row(&m, "berth-state.service")[2], "failed");
    let said = fake
        .logs()
        .iter()
        .filter(|l| l.starts_with("berth: FAILED berth-state.service"))
        .count();
    assert_eq!(said, 1, "{:?}", fake.logs());
}

#[test]
fn default_target_after_early_boot_finds_them_done_and_shutdown_stops_them() {
    let fake = Fake::new();
    write_targets(&fake);
    let mut m = manager(&fake);
    early::start(&mut m);
    run(&fake, &mut m, |_| Ok(()));
    m.boot_times.finish = None; // as stage 2 does before default.target
    let started = m.properties(&n("systemd-sysctl.service")).expect("loaded");
    let target = m.properties(&n(EARLY_TARGET)).expect("loaded");
    fake.sleep(Duration::from_secs(1));
    m.start(&n("multi-user.target"));
    // sysinit.target wants them (WantedBy=), and nothing runs twice, nor is timed again.
    assert!(m.take_due_builtins().is_empty());
    assert_eq!(m.properties(&n("systemd-sysctl.service")), Some(started));
    assert_eq!(m.properties(&n(EARLY_TARGET)), Some(target));
    assert!(m.anchor_reached());
    assert_eq!(m.boot_times.finish, Some(fake.now()));
    let sysinit = &m.slots[&n("sysinit.target")].unit;
    for u in &EARLY_BOOT {
        assert!(
            sysinit.deps.wants.contains(&n(u.job.name)),
            "{:?}",
            sysinit.deps.wants
        );
    }
    // Manual start and stop are refused.
    assert!(m.stop_unit(&n("systemd-sysctl.service")).is_err());
    assert!(m.start_unit(&n("berth-state.service")).is_err());
    m.stop_all();
    assert!(!m.busy());
    assert_eq!(row(&m, "systemd-tmpfiles-setup.service")[2], "inactive");
}

#[test]
fn unit_files_order_each_after_what_it_needs_and_before_sysinit() {
    for (i, u) in EARLY_BOOT.iter().enumerate() {
        let text = early::unit_text(i);
        assert!(
            text.contains("Before=sysinit.target berth-early-boot.target"),
            "{text}"
        );
        assert!(text.contains("DefaultDependencies=no\n"), "{text}");
        for a in u.after {
            assert!(text.contains(a), "{}: no After={a}", u.job.name);
        }
    }
    let at = |name: &str| EARLY_BOOT.iter().position(|u| u.job.name == name).unwrap();
    assert!(early::unit_text(at("systemd-sysctl.service"))
        .contains("After=berth-etc-overlay.service systemd-modules-load.service\n"));
    // The mounting steps come before local-fs.target, the others do not.
    assert!(early::unit_text(at("berth-state.service"))
        .contains("Before=sysinit.target berth-early-boot.target local-fs.target\n"));
    assert!(
        early::unit_text(at(MODULES)).contains("Before=sysinit.target berth-early-boot.target\n")
    );
    // What the manager needs runs before the drivers and modules, and tmpfiles' folders
    // (the journal's) too.
    for needed in early::MANAGER_NEEDS
        .iter()
        .chain(&["systemd-tmpfiles-setup.service"])
    {
        assert!(at(needed) < at(MODULES), "{needed}");
    }
    // The drivers of the present devices and efivarfs last: only default dependencies
    // wait for them.
    assert_eq!(at("systemd-udev-trigger.service"), EARLY_BOOT.len() - 2);
    assert_eq!(at("berth-efivarfs.service"), EARLY_BOOT.len() - 1);
}

/// The units' spawns so far, by unit name.
fn spawned(fake: &Fake) -> Vec<String> {
    fake.calls()
        .into_iter()
        .filter_map(|c| match c {
            crate::sys::fake::Call::SpawnCommand(unit, ..) => Some(unit),
            _ => None,
        })
        .collect()
}

#[test]
fn units_start_once_the_manager_has_what_it_needs_each_after_only_what_it_names() {
    let fake = Fake::new();
    let dir = Path::new("/usr/lib/systemd/system");
    let files = [
        ("local-fs.target", "[Unit]\nDefaultDependencies=no\n"),
        (
            "sysinit.target",
            "[Unit]\nDefaultDependencies=no\nWants=local-fs.target\nAfter=local-fs.target\n",
        ),
        (
            "basic.target",
            "[Unit]\nRequires=sysinit.target\nAfter=sysinit.target\n",
        ),
        (
            "multi-user.target",
            "[Unit]\nRequires=basic.target\nAfter=basic.target\n\
             Wants=journal.service cri.service runtime.service\n",
        ),
        (
            "cri.service",
            "[Unit]\nDefaultDependencies=no\n\
             After=local-fs.target systemd-tmpfiles-setup.service journal.service\n\
             After=systemd-modules-load.service systemd-sysctl.service\n\
             [Service]\nExecStart=/bin/cri\n",
        ),
        (
            "journal.service",
            "[Unit]\nDefaultDependencies=no\n\
             After=local-fs.target systemd-tmpfiles-setup.service\n\
             [Service]\nExecStart=/bin/journal\n",
        ),
        ("runtime.service", "[Service]\nExecStart=/bin/runtime\n"),
    ];
    for (name, text) in files {
        fake.write(dir.join(name), text);
    }
    let mut m = manager(&fake);
    early::start(&mut m);
    let mut ran = Vec::new();
    while !early::manager_may_start(&m) {
        for unit in m.take_due_builtins() {
            m.builtin_done(&unit, Ok(()));
            ran.push(unit.to_string());
        }
    }
    // The forked steps (modules, sysctl, drivers) ran beside the chain meanwhile.
    assert_eq!(ran.len(), 10, "{ran:?}");
    assert!(!early::reached(&m));
    m.start(&n("multi-user.target"));
    // The rest of early boot goes on, one step at a time, and none runs twice.
    let mut during = Vec::new();
    loop {
        let due = m.take_due_builtins();
        if due.is_empty() {
            break;
        }
        for unit in due {
            during.push((unit.to_string(), spawned(&fake)));
            m.builtin_done(&unit, Ok(()));
            ran.push(unit.to_string());
        }
    }
    let mut want: Vec<&str> = EARLY_BOOT.iter().map(|u| u.job.name).collect();
    let mut all: Vec<&str> = ran.iter().map(String::as_str).collect();
    want.sort_unstable();
    all.sort_unstable();
    assert_eq!(all, want);
    assert!(early::reached(&m));
    // The journal and a unit after modules and sysctl started once tmpfiles was done,
    // while efivarfs was still to run; one with default dependencies only after every
    // early step.
    let steps: Vec<&str> = during.iter().map(|(step, _)| step.as_str()).collect();
    assert_eq!(
        steps,
        ["systemd-tmpfiles-setup.service", "berth-efivarfs.service"]
    );
    assert_eq!(during[0].1, Vec::<String>::new());
    assert_eq!(during[1].1, ["journal.service", "cri.service"]);
    assert_eq!(
        spawned(&fake),
        ["journal.service", "cri.service", "runtime.service"]
    );
}
