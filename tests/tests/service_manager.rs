//! VM test of PID 1 against bad units on a booted node (#10's "Bad input"): a unit with
//! syntax errors, an ordering cycle, a missing program, a service that ignores SIGTERM, a
//! notify service that never says READY, a fork bomb under TasksMax= and a unit writing to
//! stdout as fast as it can. Each is named on the console (PID 1's `berth:` lines, read
//! back from the kernel log) and in `systemctl status`; PID 1 keeps answering and the
//! node's own units keep running. Run by `cargo xtask test`.

use berth_tests::shell::{vm_builder, Shell};
use berth_tests::*;

fn write_unit(sh: &mut Shell, name: &str, text: &str) {
    let escaped = text.replace('\'', "'\\''");
    let out = sh.run(&format!(
        "busybox mkdir -p /etc/systemd/system && printf '%s' '{escaped}' > /etc/systemd/system/{name} && echo written"
    ));
    assert!(out.contains("written"), "{out}");
}

/// PID 1's console lines so far that mention `what`.
fn said(sh: &mut Shell, what: &str) -> String {
    sh.run(&format!(
        "journalctl -k -t berth -o cat --no-pager | busybox grep -F '{what}'"
    ))
}

/// The node's own units still run and PID 1 answers.
fn node_still_serves(sh: &mut Shell, after: &str) {
    let out = sh.run("systemctl is-active berth-runtime berth-journald; echo rc=$?");
    assert!(
        out.contains("rc=0") && !out.contains("inactive") && !out.contains("failed"),
        "after {after}: {out}"
    );
}

const BROKEN: &str = "[Unit]\nDescription=Syntax errors\n[Service]\n\
ExecStart=/usr/bin/busybox sleep 1000\nthis line has no equals sign\nRestart=sometimes\n\
[Bogus]\nKey=value\n";
const CYCLE_A: &str =
    "[Unit]\nDescription=Cycle A\nWants=cycle-b.service\nAfter=cycle-b.service\n[Service]\n\
Type=oneshot\nRemainAfterExit=yes\nExecStart=/usr/bin/busybox true\n";
const CYCLE_B: &str = "[Unit]\nDescription=Cycle B\nAfter=cycle-a.service\n[Service]\n\
Type=oneshot\nRemainAfterExit=yes\nExecStart=/usr/bin/busybox true\n";
const MISSING: &str =
    "[Unit]\nDescription=Missing program\n[Service]\nExecStart=/usr/bin/no-such-program --flag\n";
const STUBBORN: &str = "[Unit]\nDescription=Ignores SIGTERM\n[Service]\n\
ExecStart=/usr/bin/busybox sh -c 'trap \"\" TERM; while :; do busybox sleep 1; done'\n\
TimeoutStopSec=3\n";
const SILENT: &str = "[Unit]\nDescription=Never READY\n[Service]\nType=notify\n\
ExecStart=/usr/bin/busybox sleep 1000\nTimeoutStartSec=3\n";
const BOMB: &str = "[Unit]\nDescription=Fork bomb\n[Service]\nTasksMax=20\n\
ExecStart=/usr/bin/busybox sh -c 'b() { b | b & }; b; busybox sleep 1000'\n";
const FLOOD: &str = "[Unit]\nDescription=Stdout flood\n[Service]\n\
ExecStart=/usr/bin/busybox sh -c 'while :; do echo flooding the journal; done'\n";

#[test]
#[ignore = "boots VMs; run by `cargo xtask test`"]
fn bad_units_are_named_and_the_node_keeps_running() {
    if vm_tests_skipped() {
        return;
    }
    let (disk, _) = shared_debug_image();
    let dir = tempfile::tempdir().unwrap();
    let copy = sparse_copy(disk, dir.path());
    let mut sh = Shell::start(vm_builder("service_manager_bad_units", &copy, false));
    for (name, text) in [
        ("broken.service", BROKEN),
        ("cycle-a.service", CYCLE_A),
        ("cycle-b.service", CYCLE_B),
        ("missing.service", MISSING),
        ("stubborn.service", STUBBORN),
        ("silent.service", SILENT),
        ("bomb.service", BOMB),
        ("flood.service", FLOOD),
    ] {
        write_unit(&mut sh, name, text);
    }
    let reload = sh.run("systemctl daemon-reload; echo rc=$?");
    assert!(reload.contains("rc=0"), "{reload}");

    // Syntax errors: each bad line named with file:line, ignored; the unit still runs.
    let start = sh.run("systemctl start broken; echo rc=$?");
    assert!(start.contains("rc=0"), "{start}");
    let lines = said(&mut sh, "broken.service:");
    for needle in [
        "/etc/systemd/system/broken.service:5: missing '='",
        "/etc/systemd/system/broken.service:6: Restart=sometimes",
        // At the section's first assignment, where its contents begin to be ignored.
        "/etc/systemd/system/broken.service:8: unknown section [Bogus]",
    ] {
        assert!(lines.contains(needle), "{needle} not said: {lines}");
    }
    let status = sh.run("systemctl status broken");
    assert!(status.contains("active (running)"), "{status}");

    // An ordering cycle of a wanted job: broken by dropping it, said on the console.
    let start = sh.run("systemctl start cycle-a; echo rc=$?");
    assert!(start.contains("rc=0"), "{start}");
    let cycle = said(&mut sh, "ordering cycle");
    assert!(
        cycle.contains("cycle-a.service") && cycle.contains("cycle-b.service"),
        "{cycle}"
    );

    // A missing program: the start fails, named with the path, on the console and in status.
    let start = sh.run("systemctl start missing; echo rc=$?");
    assert!(!start.contains("rc=0"), "{start}");
    let failed = said(&mut sh, "FAILED missing.service");
    assert!(failed.contains("/usr/bin/no-such-program"), "{failed}");
    let status = sh.run("systemctl status missing; echo rc=$?");
    assert!(status.contains("failed"), "{status}");
    node_still_serves(&mut sh, "a missing program");

    // SIGTERM ignored: the stop ends with SIGKILL after TimeoutStopSec=3.
    let start = sh.run("systemctl start stubborn; echo rc=$?");
    assert!(start.contains("rc=0"), "{start}");
    let stop = sh.run("systemctl stop stubborn; echo rc=$?");
    assert!(stop.contains("rc=0"), "{stop}");
    let status = sh.run("systemctl status stubborn");
    assert!(
        status.contains("timeout") || status.contains("signal"),
        "the forced stop shows: {status}"
    );
    let left = sh.run("busybox ps -o args | busybox grep -c '[t]rap'");
    assert_eq!(left.trim(), "0", "nothing of the unit is left: {left}");

    // Type=notify that never says READY: failed by TimeoutStartSec=3, named.
    let start = sh.run("systemctl start silent; echo rc=$?");
    assert!(!start.contains("rc=0"), "{start}");
    let failed = said(&mut sh, "FAILED silent.service");
    assert!(failed.contains("timeout"), "{failed}");
    let status = sh.run("systemctl status silent");
    assert!(status.contains("Result: timeout"), "{status}");
    node_still_serves(&mut sh, "a notify service that never said READY");

    // A fork bomb: held at TasksMax=20 by its cgroup, PID 1 answers, stop kills it all.
    let start = sh.run("systemctl start bomb; echo rc=$?");
    assert!(start.contains("rc=0"), "{start}");
    let pids = sh.run(
        "busybox sleep 3; busybox cat /sys/fs/cgroup/system.slice/bomb.service/pids.max \
         /sys/fs/cgroup/system.slice/bomb.service/pids.current \
         /sys/fs/cgroup/system.slice/bomb.service/pids.events",
    );
    // The kernel's "fork rejected by pids controller" lines may interleave on the console.
    let numbers: Vec<&str> = pids
        .lines()
        .filter(|l| !l.trim_start().starts_with('['))
        .flat_map(str::split_whitespace)
        .collect();
    assert_eq!(numbers.first(), Some(&"20"), "{pids}");
    let current: u32 = numbers.get(1).and_then(|n| n.parse().ok()).unwrap_or(99);
    assert!(current <= 20, "{pids}");
    assert!(
        numbers
            .windows(2)
            .any(|w| w[0] == "max" && w[1].parse::<u32>().unwrap_or(0) > 0),
        "the limit was hit: {pids}"
    );
    node_still_serves(&mut sh, "a fork bomb");
    let stop = sh.run(
        "systemctl stop bomb; echo rc=$?; busybox cat /sys/fs/cgroup/system.slice/bomb.service/pids.current 2>/dev/null || echo gone",
    );
    assert!(stop.contains("rc=0"), "{stop}");
    assert!(
        stop.lines().any(|l| matches!(l.trim(), "0" | "gone")),
        "nothing of the bomb is left: {stop}"
    );

    // A unit writing stdout as fast as it can: status keeps answering, with its lines.
    let start = sh.run("systemctl start flood; echo rc=$?");
    assert!(start.contains("rc=0"), "{start}");
    for _ in 0..3 {
        let status = sh.run("busybox sleep 2; systemctl status flood; echo rc=$?");
        assert!(
            status.contains("active (running)") && status.contains("rc=0"),
            "{status}"
        );
    }
    let stop = sh.run("systemctl stop flood; echo rc=$?");
    assert!(stop.contains("rc=0"), "{stop}");
    node_still_serves(&mut sh, "a stdout flood");

    // The unit with syntax errors ran all along.
    let status = sh.run("systemctl is-active broken");
    assert_eq!(status.trim(), "active", "{status}");
    sh.power_off();
}
