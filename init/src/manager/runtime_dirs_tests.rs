//! `RuntimeDirectory=` folders removed when the run is over, as `RuntimeDirectoryPreserve=`
//! says, on the fake's root.

use std::time::Duration;

use super::tests::{machine, manager, n, pid_of};
use crate::sys::Syscalls;
use crate::unit::lifecycle::Exit;

/// A service with `RuntimeDirectory=rd` and `more`, restarted 1 s after it exits, with
/// `RuntimeDirectoryPreserve=` set to `preserve` (unset when empty).
fn unit(preserve: &str) -> String {
    let line = match preserve {
        "" => String::new(),
        p => format!("RuntimeDirectoryPreserve={p}\n"),
    };
    format!(
        "[Service]\nExecStart=/usr/bin/d\nRuntimeDirectory=rd more\nRestart=always\n\
         RestartSec=1\n{line}"
    )
}

/// Whether each of the unit's folders exists after: its start, its main process's exit
/// (waiting to restart), the restart, `systemctl stop`.
fn lifetimes(preserve: &str) -> [bool; 4] {
    let fake = machine(&[("d.service", &unit(preserve))]);
    let both = || {
        let (a, b) = (
            fake.host("/run/rd").is_dir(),
            fake.host("/run/more").is_dir(),
        );
        assert_eq!(a, b, "both folders go together");
        a
    };
    let mut m = manager(&fake);
    m.start_unit(&n("d.service")).expect("start");
    let started = both();
    std::fs::write(fake.host("/run/rd/pid"), "1").expect("a file in it");
    m.child_exited(pid_of(&m, "d.service"), Exit::Code(1));
    let waiting = both();
    fake.sleep(Duration::from_secs(1));
    m.fire_timers();
    let restarted = both();
    if restarted {
        assert_eq!(
            fake.host("/run/rd/pid").exists(),
            waiting,
            "a kept folder keeps its files"
        );
    }
    m.stop_unit(&n("d.service")).expect("stop");
    m.child_exited(pid_of(&m, "d.service"), Exit::Signal(15));
    [started, waiting, restarted, both()]
}

#[test]
fn runtime_directories_end_with_the_run_as_preserve_says() {
    assert_eq!(lifetimes(""), [true, false, true, false]);
    assert_eq!(lifetimes("no"), [true, false, true, false]);
    assert_eq!(lifetimes("restart"), [true, true, true, false]);
    assert_eq!(lifetimes("yes"), [true, true, true, true]);
}

#[test]
fn systemctl_restart_keeps_them_only_with_preserve_restart_or_yes() {
    for (preserve, kept) in [("no", false), ("restart", true), ("yes", true)] {
        let fake = machine(&[("d.service", &unit(preserve))]);
        let mut m = manager(&fake);
        m.start_unit(&n("d.service")).expect("start");
        std::fs::write(fake.host("/run/rd/pid"), "1").expect("a file in it");
        let first = pid_of(&m, "d.service");
        m.restart_unit(&n("d.service")).expect("restart");
        m.child_exited(first, Exit::Signal(15));
        assert_ne!(pid_of(&m, "d.service"), first, "{preserve}: restarted");
        assert!(fake.host("/run/rd").is_dir(), "{preserve}: made again");
        assert_eq!(fake.host("/run/rd/pid").exists(), kept, "{preserve}");
    }
}
