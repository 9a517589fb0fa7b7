//! VM tests of the journal, through the debug variant's root shell: a unit's lines under
//! `journalctl -u`, the kernel's under `-k`, syslog from `logger`, `systemctl status`
//! with the unit's last lines, the previous boot under `-b -1` after a reboot, the files
//! on STATE read by the host's own journalctl, and a journal that survives QEMU being
//! killed in the middle of heavy logging. Run by `cargo xtask test`.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use berth_tests::shell::{vm_builder, Shell};
use berth_tests::*;

/// A unit that logs as fast as it can, started by hand with systemctl.
/// How many times QEMU is killed in the middle of logging.
const KILLS: u32 = 10;

const FLOOD_UNIT: &str = "[Unit]\nDescription=Log flood\n[Service]\nExecStart=/usr/bin/busybox sh -c 'i=0; while :; do i=$((i+1)); echo \"flood line $i\"; done'\n";

fn write_unit(sh: &mut Shell, name: &str, text: &str) {
    let escaped = text.replace('\'', "'\\''");
    let out = sh.run(&format!(
        "busybox mkdir -p /etc/systemd/system && printf '%s' '{escaped}' > /etc/systemd/system/{name} && echo written"
    ));
    assert!(out.contains("written"), "{out}");
}

/// STATE's `var/log/journal` copied out of the disk with the host's debugfs.
fn journal_off_state(disk: &Path, dir: &Path) -> std::path::PathBuf {
    let state = table(disk).unwrap().by_label("STATE").unwrap().clone();
    let part = dir.join("state.ext4");
    extract(disk, state.offset(512), state.size(512), &part).unwrap();
    let out = dir.join("copied");
    std::fs::create_dir_all(&out).unwrap();
    let request = format!("rdump var/log/journal {}", path_str(&out).unwrap());
    tool(
        "debugfs",
        &["-R", &request, path_str(&part).unwrap()],
        "e2fsprogs",
    )
    .unwrap();
    out.join("journal")
}

fn host_journalctl(dir: &Path, args: &[&str]) -> (String, bool) {
    let out = Command::new("journalctl")
        .arg("--directory")
        .arg(dir)
        .args(args)
        .env("TZ", "UTC")
        .output()
        .expect("the host's journalctl (Debian package systemd)");
    (
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
        out.status.success(),
    )
}

#[test]
#[ignore = "boots VMs; run by `cargo xtask test`"]
fn units_kernel_syslog_and_the_previous_boot_are_in_the_journal() {
    if vm_tests_skipped() {
        return;
    }
    let (disk, _) = shared_debug_image();
    let dir = tempfile::tempdir().unwrap();
    let copy = sparse_copy(disk, dir.path());

    let mut sh = Shell::start(vm_builder("journal_boot_1", &copy, false));
    let runtime = sh.run("journalctl -u berth-runtime --no-pager -o cat | busybox head -n 5");
    assert!(
        !runtime.trim().is_empty(),
        "no berth-runtime lines: {runtime:?}"
    );
    let kernel = sh.run("journalctl -k -o cat --no-pager | busybox grep -c 'Linux version'");
    assert_eq!(kernel.trim(), "1", "{kernel}");
    // PID 1's `berth: ready` on /dev/kmsg: identifier `berth` (as journald splits a
    // user-space kmsg record), message `ready`.
    let ours = sh.run("journalctl -k -t berth -o cat --no-pager | busybox grep -cx ready");
    assert_eq!(
        ours.trim(),
        "1",
        "PID 1's console lines reach the journal: {ours}"
    );
    sh.run("busybox logger -t berth-test hello-through-syslog");
    let syslog = sh.run("busybox sleep 1; journalctl -t berth-test -o cat --no-pager");
    assert!(syslog.contains("hello-through-syslog"), "{syslog}");
    // -f: started before the line is logged, it prints it as it arrives, and only it.
    let follow = sh.run(
        "journalctl -f -n 0 -t berth-follow -o cat > /tmp/follow.txt & f=$!; busybox sleep 1; \
         busybox logger -t berth-follow first-followed; busybox logger -t berth-follow second-followed; \
         busybox sleep 2; busybox kill $f; busybox cat /tmp/follow.txt",
    );
    let followed: Vec<&str> = follow
        .lines()
        .map(str::trim)
        .filter(|l| l.ends_with("-followed"))
        .collect();
    assert_eq!(followed, ["first-followed", "second-followed"], "{follow}");
    let status = sh.run("systemctl status berth-runtime");
    let first_line = runtime.lines().next().unwrap_or_default().trim().to_owned();
    assert!(
        status.contains(&first_line) || status.lines().count() > 6,
        "{status}"
    );
    let files = sh.run("busybox ls /var/log/journal/$(busybox cat /etc/machine-id)/");
    assert!(
        files.contains("system.journal"),
        "persistent on STATE: {files}"
    );
    sh.power_off();

    let mut sh = Shell::start(vm_builder("journal_boot_2", &copy, false));
    let boots = sh.run("journalctl --list-boots --no-pager");
    assert_eq!(
        boots.trim().lines().count(),
        3,
        "header and two boots: {boots}"
    );
    let previous = sh.run("journalctl -b -1 -u berth-runtime -o cat --no-pager | busybox wc -l");
    assert!(
        previous.trim().parse::<u32>().unwrap_or(0) > 0,
        "the previous boot's lines: {previous}"
    );
    sh.power_off();

    // Copied off STATE, the files are read by the stock journalctl of this host.
    let copied = journal_off_state(&copy, dir.path());
    let (verify, ok) = host_journalctl(&copied, &["--verify"]);
    assert!(ok, "{verify}");
    let (boots, ok) = host_journalctl(&copied, &["--list-boots", "--no-pager"]);
    assert!(ok && boots.trim().lines().count() == 3, "{boots}");
    let (lines, ok) = host_journalctl(&copied, &["-u", "berth-runtime", "-o", "cat"]);
    assert!(ok && lines.contains(&first_line), "{lines}");
}

/// QEMU killed while a unit floods the journal, ten times over: every next boot opens the
/// journal, sets aside what the kill left half-written, and still has the lines written
/// before the last `sync`; the flood never grows the journal past its budget, and
/// `systemctl status` still answers during it.
#[test]
#[ignore = "boots VMs; run by `cargo xtask test`"]
fn a_journal_survives_qemu_killed_in_the_middle_of_heavy_logging() {
    if vm_tests_skipped() {
        return;
    }
    let (disk, _) = shared_debug_image();
    let dir = tempfile::tempdir().unwrap();
    let copy = sparse_copy(disk, dir.path());
    for round in 1..=KILLS {
        let mut sh = Shell::start(vm_builder(&format!("journal_kill_{round}"), &copy, false));
        if round > 1 {
            // What the last round synced is still there.
            let marker = format!("synced-before-kill-{}", round - 1);
            let seen = sh.run(&format!(
                "journalctl -t berth-test -o cat --no-pager | busybox grep -c {marker}"
            ));
            assert_eq!(seen.trim(), "1", "round {round}: {seen}");
        }
        write_unit(&mut sh, "flood.service", FLOOD_UNIT);
        let started = sh.run("systemctl start flood; echo rc=$?");
        assert!(started.contains("rc=0"), "{started}");
        // The last round floods for 30 s; systemctl status answers all along (the
        // shell's command returns; no time limit is asserted).
        let seconds = if round == KILLS { 30 } else { 10 };
        for _ in 0..seconds / 5 {
            std::thread::sleep(Duration::from_secs(5));
            let status = sh.run("systemctl status flood; echo rc=$?");
            assert!(
                status.contains("Active: active (running)") && status.contains("rc=0"),
                "{status}"
            );
        }
        // The line is in the journal file (journalctl reads it there), then on the disk.
        let written = sh.run(&format!(
            "busybox logger -t berth-test synced-before-kill-{round}; for i in $(busybox seq 40); do \
             n=$(journalctl -t berth-test -o cat --no-pager | busybox grep -c synced-before-kill-{round}); \
             [ \"$n\" = 1 ] && break; busybox sleep 1; done; busybox sync; echo seen=$n"
        ));
        assert!(
            written.contains("seen=1"),
            "round {round}: the marker never reached the journal: {written}\n{}",
            sh.run("journalctl -u berth-journald -o cat --no-pager | busybox tail -n 20")
        );
        let usage = sh.run("journalctl --disk-usage");
        assert!(usage.contains("take up"), "{usage}");
        // No clean shutdown: QEMU is killed.
        sh.vm.quit().unwrap();
    }
    let mut sh = Shell::start(vm_builder("journal_kill_last", &copy, false));
    // The last kill's synced line is there; older rounds' may have been vacuumed, since
    // the flood fills the budget: the journal stays within 10% of STATE.
    let seen = sh.run(&format!(
        "journalctl -t berth-test -o cat --no-pager | busybox grep -c synced-before-kill-{KILLS}"
    ));
    assert_eq!(
        seen.trim(),
        "1",
        "the last round's synced line is gone: {seen}\n{}",
        sh.run("busybox ls -l /var/log/journal/*/; journalctl --list-boots --no-pager")
    );
    let sizes = sh.run(
        "busybox du -sk /var/log/journal | busybox cut -f1; busybox df -k /var | busybox tail -n1",
    );
    let mut lines = sizes.lines();
    let used_kib: u64 = lines
        .next()
        .unwrap_or_default()
        .trim()
        .parse()
        .unwrap_or(u64::MAX);
    let state_kib: u64 = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    assert!(
        used_kib <= state_kib / 10 + 1024,
        "journal {used_kib} KiB on a STATE of {state_kib} KiB: {sizes}"
    );
    let flood = sh.run("journalctl -u flood -o cat --no-pager | busybox grep -c 'flood line'");
    assert!(flood.trim().parse::<u64>().unwrap_or(0) > 0, "{flood}");
    sh.power_off();
}
