//! VM test of PID 1 against bad units on a booted node (#10's "Bad input"): a unit with
//! syntax errors, an ordering cycle, a missing program, a service that ignores SIGTERM, a
//! notify service that never says READY, a process stopped by SIGSTOP, a fork bomb under
//! TasksMax= and a unit writing to stdout as fast as it can. Each is named on the console (PID 1's `berth:` lines, read
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
// Its shell handles SIGTERM, so the signal waits for SIGCONT (a fatal default action the
// kernel carries out on a stopped process at once).
const FROZEN: &str = "[Unit]\nDescription=Stopped by SIGSTOP\n[Service]\n\
ExecStart=/usr/bin/busybox sh -c 'trap \"exit 0\" TERM; while :; do busybox sleep 1; done'\n\
TimeoutStopSec=60\n";
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
        ("frozen.service", FROZEN),
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

    // A missing program: Type=simple is started at the fork, as on systemd 252 (the start
    // job is done, `systemctl start` exits 0), then fails with 203/EXEC, named with the
    // path on the console, and in status.
    let start = sh.run("systemctl start missing; echo rc=$?");
    assert!(start.contains("rc=0"), "{start}");
    let failed = said(&mut sh, "FAILED missing.service");
    assert!(failed.contains("/usr/bin/no-such-program"), "{failed}");
    let status = sh.run("systemctl status missing; echo rc=$?");
    assert!(
        status.contains("failed") && status.contains("status=203/EXEC"),
        "{status}"
    );
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
    let warned = said(&mut sh, "stubborn.service: State");
    assert!(
        warned.contains("stubborn.service: State 'stop-sigterm' timed out. Killing."),
        "systemd's warning: {warned}"
    );

    // A stopped (SIGSTOP) process that handles SIGTERM: SIGCONT follows the stop signal, so
    // its handler runs at once instead of the stop sitting out TimeoutStopSec=60 and SIGKILL.
    let start = sh.run("systemctl start frozen; echo rc=$?");
    assert!(start.contains("rc=0"), "{start}");
    let frozen = sh.run(
        "systemctl kill -s SIGSTOP frozen; busybox sleep 1; \
         busybox grep State /proc/$(systemctl show -p MainPID --value frozen)/status",
    );
    assert!(frozen.contains("stopped"), "{frozen}");
    let stop = sh.run("systemctl stop frozen; echo rc=$?; systemctl status frozen");
    assert!(stop.contains("rc=0"), "{stop}");
    assert!(
        stop.contains("inactive (dead)") && !stop.contains("timeout"),
        "ended by SIGTERM, not by the stop timeout: {stop}"
    );

    // Type=notify that never says READY: failed by TimeoutStartSec=3, named.
    let start = sh.run("systemctl start silent; echo rc=$?");
    assert!(!start.contains("rc=0"), "{start}");
    let failed = said(&mut sh, "FAILED silent.service");
    assert!(failed.contains("timeout"), "{failed}");
    let status = sh.run("systemctl status silent");
    assert!(status.contains("Result: timeout"), "{status}");
    let warned = said(&mut sh, "silent.service: start operation");
    assert!(
        warned.contains("silent.service: start operation timed out. Terminating."),
        "systemd's warning: {warned}"
    );
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
    // As on systemd, the stop returns only once the unit's cgroup is empty: read in the
    // same command, right when systemctl returns.
    let stop = sh.run(
        "systemctl stop bomb; echo rc=$?; d=/sys/fs/cgroup/system.slice/bomb.service; \
         busybox cat $d/cgroup.events 2>/dev/null || echo gone; \
         echo procs=$(busybox cat $d/cgroup.procs 2>/dev/null | busybox wc -l)",
    );
    assert!(stop.contains("rc=0"), "{stop}");
    assert!(
        stop.contains("populated 0") || stop.contains("gone"),
        "the bomb's cgroup is empty when stop returns: {stop}"
    );
    assert!(
        stop.contains("procs=0"),
        "no process left when stop returns: {stop}"
    );
    let state = sh.run("systemctl is-active bomb");
    assert_eq!(state.trim(), "inactive", "{state}");

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

/// kubeadm's `kubelet.service` (kubernetes/release, rpm and deb packaging) with its
/// `10-kubeadm.conf` drop-in, word for word but for the program's path (`/usr/bin` is the
/// verified root here, and the rest of STATE is noexec): a recorder that writes its argv and environment.
const KUBELET_SERVICE: &str = "[Unit]\nDescription=kubelet: The Kubernetes Node Agent\n\
Documentation=https://kubernetes.io/docs/\nWants=network-online.target\nAfter=network-online.target\n\n\
[Service]\nExecStart=/var/lib/kubelet/test-bin/kubelet\nRestart=always\nStartLimitInterval=0\nRestartSec=10\n\n\
[Install]\nWantedBy=multi-user.target\n";
const KUBEADM_DROP_IN: &str = "# Note: This dropin only works with kubeadm and kubelet v1.11+\n[Service]\n\
Environment=\"KUBELET_KUBECONFIG_ARGS=--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf --kubeconfig=/etc/kubernetes/kubelet.conf\"\n\
Environment=\"KUBELET_CONFIG_ARGS=--config=/var/lib/kubelet/config.yaml\"\n\
# This is a file that \"kubeadm init\" and \"kubeadm join\" generates at runtime, populating the KUBELET_KUBEADM_ARGS variable dynamically\n\
EnvironmentFile=-/var/lib/kubelet/kubeadm-flags.env\n\
# This is a file that the user can use for overrides of the kubelet args as a last resort.\n\
EnvironmentFile=-/etc/default/kubelet\n\
ExecStart=\n\
ExecStart=/var/lib/kubelet/test-bin/kubelet $KUBELET_KUBECONFIG_ARGS $KUBELET_CONFIG_ARGS $KUBELET_KUBEADM_ARGS $KUBELET_EXTRA_ARGS\n";
const KUBEADM_FLAGS: &str = "KUBELET_KUBEADM_ARGS=\"--container-runtime-endpoint=unix:///run/berth/cri.sock --pod-infra-container-image=registry.k8s.io/pause:3.9\"\n";
const RECORDER: &str = "#!/usr/bin/busybox sh\n\
for a in \"$@\"; do echo \"arg:$a\"; done > /run/kubelet-record\n\
echo \"env:KUBELET_CONFIG_ARGS=$KUBELET_CONFIG_ARGS\" >> /run/kubelet-record\n\
echo \"pid:$$\" >> /run/kubelet-record\n\
exec busybox sleep 100000\n";

/// Two units, `late` ordered after `early`, whose ExecStop= say so on the console.
const EARLY: &str = "[Unit]\nDescription=Started first\n[Service]\nExecStart=/usr/bin/busybox sleep 100000\n\
ExecStop=/usr/bin/busybox sh -c 'busybox sleep 1; echo stopping-early > /dev/console'\nTimeoutStopSec=20\n";
const LATE: &str = "[Unit]\nDescription=Started second\nAfter=early.service\nRequires=early.service\n[Service]\n\
ExecStart=/usr/bin/busybox sleep 100000\nExecStop=/usr/bin/busybox sh -c 'busybox sleep 1; echo stopping-late > /dev/console'\n\
TimeoutStopSec=20\n";

const ACT_SOCKET: &str = "[Socket]\nListenStream=127.0.0.1:8099\nFileDescriptorName=web\n";
/// Records what socket activation handed it, then stays (the socket is its own while it
/// runs, so the connection waiting in it starts nothing more). `$$` is a `$` for the
/// shell, as in systemd's command lines.
const ACT_SERVICE: &str = "[Service]\nExecStart=/usr/bin/busybox sh -c '\
echo fds=$$LISTEN_FDS names=$$LISTEN_FDNAMES pid_ok=$$([ $$LISTEN_PID = $$$$ ] && echo yes) \
fd3=$$(busybox readlink /proc/$$$$/fd/3) > /run/act.out; exec busybox sleep 1000'\n";

/// Socket units on the node: the journal's own, made by PID 1 and served by
/// berth-journald, and one a user adds, whose service a connection starts with the
/// listening socket at fd 3 (`$LISTEN_FDS`, `$LISTEN_FDNAMES`, `$LISTEN_PID`).
fn socket_activation(sh: &mut Shell) {
    let journal = sh.run("systemctl status systemd-journald.socket; busybox readlink /dev/log");
    for want in [
        "active (running)",
        "Triggers: ● berth-journald.service",
        "Listen: /run/systemd/journal/stdout (Stream)",
        "/run/systemd/journal/socket (Datagram)",
        "/run/systemd/journal/dev-log",
    ] {
        assert!(journal.contains(want), "{want} not in {journal}");
    }
    write_unit(sh, "act.socket", ACT_SOCKET);
    write_unit(sh, "act.service", ACT_SERVICE);
    let listening =
        sh.run("systemctl daemon-reload && systemctl start act.socket && systemctl status act.socket act.service; echo rc=$?");
    assert!(
        listening.contains("active (listening)") && listening.contains("inactive (dead)"),
        "{listening}"
    );
    // The connection waits in the socket's backlog (the kernel completes it; nothing
    // accepts it), so nc waits until `timeout` ends it. (busybox-static's wget crashes in
    // the C library's resolver, even for an address: nc does not resolve.)
    let nc = sh.run("busybox timeout 3 busybox nc 127.0.0.1 8099 </dev/null; echo nc=$?");
    assert!(!nc.contains("can't connect"), "{nc}");
    let mut out = String::new();
    for _ in 0..20 {
        out = sh.run("busybox cat /run/act.out; systemctl show -p SubState act.socket");
        if out.contains("fds=") && out.contains("SubState=running") {
            break;
        }
        sh.run("busybox sleep 1");
    }
    assert!(
        out.contains("fds=1 names=web pid_ok=yes fd3=socket:[") && out.contains("SubState=running"),
        "{out}"
    );
    let by = sh.run("systemctl status act.service");
    assert!(by.contains("TriggeredBy: ● act.socket"), "{by}");
    let stop = sh.run("systemctl stop act.service act.socket; echo rc=$?");
    assert!(stop.contains("rc=0"), "{stop}");
}

#[test]
#[ignore = "boots VMs; run by `cargo xtask test`"]
fn kubeadms_kubelet_unit_runs_and_poweroff_stops_in_reverse_order() {
    if vm_tests_skipped() {
        return;
    }
    let (disk, _) = shared_debug_image();
    let dir = tempfile::tempdir().unwrap();
    let copy = sparse_copy(disk, dir.path());
    let mut sh = Shell::start(vm_builder("service_manager_kubelet", &copy, false));
    write_unit(&mut sh, "kubelet.service", KUBELET_SERVICE);
    let escaped = |t: &str| t.replace('\'', "'\\''");
    let out = sh.run(&format!(
        "busybox mkdir -p /etc/systemd/system/kubelet.service.d /var/lib/kubelet/test-bin && \
         printf '%s' '{}' > /etc/systemd/system/kubelet.service.d/10-kubeadm.conf && \
         printf '%s' '{}' > /var/lib/kubelet/kubeadm-flags.env && \
         printf '%s' '{}' > /var/lib/kubelet/test-bin/kubelet && busybox chmod 755 /var/lib/kubelet/test-bin/kubelet && echo written",
        escaped(KUBEADM_DROP_IN),
        escaped(KUBEADM_FLAGS),
        escaped(RECORDER)
    ));
    assert!(out.contains("written"), "{out}");
    write_unit(&mut sh, "early.service", EARLY);
    write_unit(&mut sh, "late.service", LATE);
    let start = sh.run("systemctl daemon-reload && systemctl start kubelet late; echo rc=$?");
    assert!(start.contains("rc=0"), "{start}");
    socket_activation(&mut sh);

    // The drop-in's ExecStart= replaced the unit's; `$VAR` split into words, an unset
    // one (no /etc/default/kubelet) gone; EnvironmentFile= values unquoted.
    let record = sh.run("busybox sleep 1; busybox cat /run/kubelet-record");
    let args: Vec<&str> = record
        .lines()
        .filter_map(|l| l.trim().strip_prefix("arg:"))
        .collect();
    assert_eq!(
        args,
        [
            "--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf",
            "--kubeconfig=/etc/kubernetes/kubelet.conf",
            "--config=/var/lib/kubelet/config.yaml",
            "--container-runtime-endpoint=unix:///run/berth/cri.sock",
            "--pod-infra-container-image=registry.k8s.io/pause:3.9",
        ],
        "{record}"
    );
    assert!(
        record.contains("env:KUBELET_CONFIG_ARGS=--config=/var/lib/kubelet/config.yaml"),
        "{record}"
    );
    let first_pid = record
        .lines()
        .find_map(|l| l.trim().strip_prefix("pid:"))
        .unwrap_or_default()
        .to_owned();
    let status = sh.run("systemctl status kubelet");
    assert!(
        status.contains("10-kubeadm.conf") && status.contains("active (running)"),
        "the drop-in is listed: {status}"
    );

    // Restart=always, RestartSec=10: killed, it is back after ten seconds, a new process.
    sh.run(&format!("busybox kill -9 {first_pid}"));
    let mut restarted = String::new();
    for _ in 0..30 {
        restarted = sh.run("busybox sleep 2; systemctl show -p NRestarts -p ActiveState kubelet; busybox cat /run/kubelet-record");
        if restarted.contains("ActiveState=active")
            && !restarted.contains(&format!("pid:{first_pid}"))
        {
            break;
        }
    }
    assert!(
        restarted.contains("NRestarts=1") && !restarted.contains(&format!("pid:{first_pid}")),
        "{restarted}"
    );

    // `poweroff` (systemctl by that name, as systemd-sysv links it; the path given, since
    // the debug shell prefers its busybox applet): units stop in reverse order of their
    // start (late before early, each within TimeoutStopSec=), then QEMU exits.
    sh.vm.send("/usr/sbin/poweroff --no-wall\n").unwrap();
    sh.vm
        .wait_for(
            "berth: stopping units for power off (systemctl)",
            berth_tests::shell::BOOT,
        )
        .unwrap();
    sh.vm
        .wait_for("berth: shutdown power off", berth_tests::shell::BOOT)
        .unwrap();
    sh.vm.wait_exit(berth_tests::shell::BOOT).unwrap();
    let console = sh.vm.console();
    let late = console.rfind("stopping-late");
    let early = console.rfind("stopping-early");
    assert!(
        matches!((late, early), (Some(l), Some(e)) if l < e),
        "late stops before early: {late:?} {early:?}\n{console}"
    );
}
