//! The graph `list-dependencies` and `critical-chain` walk, over the fake.

use super::graph::Direction;
use super::tests::{machine, manager, n};
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
            "sysinit.target active"
        ]
    );
    // A unit PID 1 never loaded is read from its files, and stays unloaded.
    assert_eq!(
        names(m.dependencies(&n("never.service"), Direction::Forward)),
        ["gone.service inactive", "sysinit.target active"]
    );
    assert!(!m.slots.contains_key(&n("never.service")));
}
