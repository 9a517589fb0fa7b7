//! `systemctl enable` / `mask` as the running manager sees them: the links
//! [`crate::unit::enable`] makes take effect at `daemon-reload`.

use super::tests::{machine, manager, n, spawned};
use crate::unit::enable::Installer;

#[test]
fn a_unit_enabled_after_boot_is_pulled_in_after_daemon_reload() {
    let fake = machine(&[(
        "late.service",
        "[Service]\nExecStart=/usr/bin/late\n[Install]\nWantedBy=multi-user.target\n",
    )]);
    let mut m = manager(&fake);
    m.start(&n("multi-user.target"));
    assert!(spawned(&fake).is_empty());
    let done = Installer::new(&fake.host("/"))
        .enable(&[n("late.service")], false)
        .expect("enable");
    assert_eq!(done.changes.len(), 1);
    m.reload_units();
    let target = &m.slots[&n("multi-user.target")].unit;
    assert!(target.deps.wants.contains(&n("late.service")), "{target:?}");
    m.start_unit(&n("multi-user.target")).expect("start");
    assert_eq!(spawned(&fake)[0].1, ["/usr/bin/late"]);
}

#[test]
fn a_masked_unit_is_refused_until_unmasked() {
    let fake = machine(&[("a.service", "[Service]\nExecStart=/usr/bin/a\n")]);
    let mut m = manager(&fake);
    m.start(&n("multi-user.target"));
    let files = Installer::new(&fake.host("/"));
    files.mask(&[n("a.service")], false).expect("mask");
    let refused = m.start_unit(&n("a.service")).expect_err("masked");
    assert_eq!(refused.to_string(), "Unit a.service is masked.");
    files.unmask(&[n("a.service")], false).expect("unmask");
    m.start_unit(&n("a.service")).expect("unmasked");
    assert_eq!(spawned(&fake)[0].1, ["/usr/bin/a"]);
}
