//! The graph `list-dependencies` and `critical-chain` walk, over the fake.

use super::graph::Direction;
use super::tests::{machine, manager, n};
use crate::sys::Syscalls;
use crate::unit::lifecycle::Active;

#[test]
fn forward_reverse_and_after_one_level_at_a_time() {
    let fake = machine(&[
        (
            "a.service",
            "[Unit]\nWants=b.service\nAfter=b.service\n[Service]\nExecStart=/usr/bin/a\n",
        ),
        ("b.service", "[Service]\nExecStart=/usr/bin/b\n"),
        ("multi-user.target.wants/a.service", ""),
        (
            "never.service",
            "[Unit]\nRequires=gone.service\n[Service]\nExecStart=/x\n",
        ),
    ]);
    let mut m = manager(&fake);
    m.start(&n("multi-user.target"));
    let names = |v: Vec<(crate::unit::name::UnitName, Active)>| {
        v.into_iter()
            .map(|(n, s)| format!("{n} {}", s.as_str()))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        names(m.dependencies(&n("multi-user.target"), Direction::Forward)),
        ["a.service active", "basic.target active"]
    );
    // The implicit Requires=sysinit.target of DefaultDependencies=yes.
    assert_eq!(
        names(m.dependencies(&n("a.service"), Direction::Forward)),
        ["b.service active", "sysinit.target active"]
    );
    assert_eq!(
        names(m.dependencies(&n("a.service"), Direction::Reverse)),
        ["multi-user.target active"]
    );
    assert_eq!(
        names(m.dependencies(&n("a.service"), Direction::After)),
        [
            "b.service active",
            "basic.target active",
            "sysinit.target active",
            // Its output goes to the journal (systemd lists it too); not loaded here.
            "systemd-journald.socket inactive"
        ]
    );
    // A unit PID 1 never loaded is read from its files, and stays unloaded.
    assert_eq!(
        names(m.dependencies(&n("never.service"), Direction::Forward)),
        ["gone.service inactive", "sysinit.target active"]
    );
    assert!(!m.slots.contains_key(&n("never.service")));
}

/// What `systemd-analyze` reads: per-unit activation timestamps and the boot's finish.
#[test]
fn activation_timestamps_are_recorded_and_shown() {
    let fake = machine(&[
        (
            "a.service",
            "[Service]\nType=notify\nExecStart=/usr/bin/a\n",
        ),
        ("multi-user.target.wants/a.service", ""),
    ]);
    let mut m = manager(&fake);
    m.start(&n("multi-user.target"));
    assert_eq!(m.boot_times.finish, None, "waits for READY=1");
    let started = fake.now();
    let pid = m.slots[&n("a.service")].run.main_pid.expect("running");
    fake.sleep(std::time::Duration::from_millis(1500));
    m.notify(pid, "READY=1");
    let props = m.properties(&n("a.service")).expect("loaded");
    let get = |k: &str| {
        props
            .iter()
            .find(|(key, _)| *key == k)
            .map(|(_, v)| v.parse::<u128>().expect("µs"))
            .expect(k)
    };
    assert_eq!(get("InactiveExitTimestampMonotonic"), started.as_micros());
    assert_eq!(get("ExecMainStartTimestampMonotonic"), started.as_micros());
    assert_eq!(
        get("ActiveEnterTimestampMonotonic"),
        started.as_micros() + 1_500_000
    );
    assert_eq!(
        m.boot_times.finish,
        Some(started + std::time::Duration::from_millis(1500))
    );
}

/// The boot's anchor is started as `default.target`, an alias: it is shown, walked and
/// found by its unit's own name, as systemd does.
#[test]
fn the_default_target_alias_is_its_unit() {
    let fake = machine(&[
        ("a.service", "[Service]\nExecStart=/usr/bin/a\n"),
        ("multi-user.target.wants/a.service", ""),
    ]);
    std::os::unix::fs::symlink(
        "multi-user.target",
        fake.host("/usr/lib/systemd/system/default.target"),
    )
    .expect("alias");
    let mut m = manager(&fake);
    m.start(&n("default.target"));
    let id = |name: &str| {
        m.properties(&n(name))
            .and_then(|p| p.into_iter().find(|(k, _)| *k == "Id"))
            .map(|(_, v)| v)
    };
    assert_eq!(id("default.target").as_deref(), Some("multi-user.target"));
    assert_eq!(
        id("multi-user.target").as_deref(),
        Some("multi-user.target")
    );
    let up = m.dependencies(&n("a.service"), Direction::Reverse);
    assert_eq!(up, [(n("multi-user.target"), Active::Active)]);
    let down = m.dependencies(&n("basic.target"), Direction::Reverse);
    assert_eq!(down, [(n("multi-user.target"), Active::Active)]);
}

/// systemd adds the inverse of `Before=`: a unit that says `Before=sysinit.target` is one
/// that sysinit.target is ordered after, so critical-chain goes down into it.
#[test]
fn after_includes_the_loaded_units_that_say_before() {
    let fake = machine(&[
        (
            "early.service",
            "[Unit]\nDefaultDependencies=no\nBefore=sysinit.target\n[Service]\nType=oneshot\nExecStart=/usr/bin/e\n",
        ),
        ("sysinit.target.wants/early.service", ""),
    ]);
    let mut m = manager(&fake);
    m.start(&n("multi-user.target"));
    let after: Vec<String> = m
        .dependencies(&n("sysinit.target"), Direction::After)
        .into_iter()
        .map(|(n, _)| n.to_string())
        .collect();
    assert!(after.contains(&"early.service".to_string()), "{after:?}");
}
