//! A unit's terminal hung up and reset when each run ends, not while it runs.

use std::path::PathBuf;
use std::time::Duration;

use super::tests::{machine, manager, n, pid_of};
use crate::sys::fake::Call;
use crate::sys::Syscalls;
use crate::unit::lifecycle::Exit;

const SHELL: &str = "[Service]\nExecStart=/usr/bin/sh\nStandardInput=tty-force\n\
     TTYPath=/dev/ttyS1\nTTYReset=yes\nTTYVHangup=yes\nRestart=always\nRestartSec=1\n";

fn reverts(fake: &crate::sys::fake::Fake) -> Vec<Call> {
    fake.calls()
        .into_iter()
        .filter(|c| matches!(c, Call::RevertTerminal(..)))
        .collect()
}

#[test]
fn the_terminal_is_reverted_at_the_end_of_each_run() {
    let fake = machine(&[
        ("shell.service", SHELL),
        (
            "plain.service",
            "[Service]\nExecStart=/usr/bin/p\nStandardInput=tty\nTTYPath=/dev/ttyS2\n",
        ),
    ]);
    let mut m = manager(&fake);
    m.start_unit(&n("shell.service")).expect("start");
    m.start_unit(&n("plain.service")).expect("start");
    assert!(reverts(&fake).is_empty(), "not while it runs");
    let once = Call::RevertTerminal(PathBuf::from("/dev/ttyS1"), true, true);
    m.child_exited(pid_of(&m, "shell.service"), Exit::Code(0));
    assert_eq!(
        reverts(&fake),
        std::slice::from_ref(&once),
        "before the automatic restart"
    );
    fake.sleep(Duration::from_secs(1));
    m.fire_timers();
    assert_eq!(reverts(&fake).len(), 1, "the new run has the terminal");
    m.stop_unit(&n("shell.service")).expect("stop");
    m.child_exited(pid_of(&m, "shell.service"), Exit::Signal(15));
    assert_eq!(reverts(&fake), [once.clone(), once]);
    // Without TTYReset= or TTYVHangup= there is nothing to revert.
    m.child_exited(pid_of(&m, "plain.service"), Exit::Code(0));
    assert_eq!(reverts(&fake).len(), 2);
}
