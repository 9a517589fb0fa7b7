//! VM test of the service manager's control surface on a booted debug image, through the
//! root shell on the serial console: `systemctl enable --now`, `is-enabled`,
//! `list-unit-files`, `list-dependencies`, `reload`, `kill -s`, `reset-failed`, `mask` /
//! `unmask`, `disable --now`, `reenable`, a unit whose main process leaves a child in its
//! cgroup, the exit status of a step failed before `execve` (a `Type=simple` service
//! started, then failed), `Process:` lines and `ExecStop=` of an exited oneshot,
//! `WorkingDirectory=-`, `ExecStopPost=` after the group emptied, a running
//! `ExecStartPre=` as `Cntrl PID:`, a built-in unit's status, and `systemd-analyze time` (with
//! systemd-boot's firmware and loader times), `blame` and `critical-chain [--fuzz]`.
//! Run by `cargo xtask test` (ignored by a plain `cargo test`).

use berth_tests::shell::Shell;
use berth_tests::*;

/// A unit that is not enabled in the image, in the runtime folder (`/run`), so that a mask
/// in `/etc` can hide it. Its reload writes `$MAINPID` where the test can read it.
const PROBE: &str = r#"busybox printf '[Unit]\nDescription=Control probe\n[Service]\nExecStart=busybox sleep 1000\nExecReload=busybox sh -c "echo $MAINPID > /run/probe-reload"\n[Install]\nWantedBy=multi-user.target\n' > /run/systemd/system/probe.service"#;

/// A service whose main process leaves a child behind in its cgroup and exits; its
/// `ExecStopPost=` writes down how many such children it still sees.
const LEFTOVER: &str = r#"busybox printf '[Service]\nExecStart=busybox sh -c "busybox sleep 1001 & exit 0"\nExecStopPost=-busybox sh -c "busybox ps -o args | busybox grep -c [s]leep.1001 > /run/leftover-post"\n' > /run/systemd/system/leftover.service"#;
/// A service whose start waits in `ExecStartPre=`.
const SLOW_PRE: &str = r#"busybox printf '[Service]\nExecStartPre=busybox sleep 1002\nExecStart=busybox sleep 1003\n' > /run/systemd/system/slowpre.service"#;

/// A service whose working directory is missing, and one that may miss it.
const NO_DIR: &str = r#"busybox printf '[Service]\nExecStart=busybox true\nWorkingDirectory=/nonexistent\n' > /run/systemd/system/nodir.service"#;
/// A oneshot that remains after exit, with a start-pre command and a teardown.
const TEARDOWN: &str = r#"busybox printf '[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStartPre=busybox true\nExecStart=busybox true\nExecStop=busybox touch /run/teardown-ran\n' > /run/systemd/system/teardown.service"#;
/// A delegated group handed to a user, who makes a group of its own in it.
const DELEGATED: &str = r#"busybox printf '[Service]\nType=oneshot\nRemainAfterExit=yes\nUser=nobody\nDelegate=yes\nExecStart=busybox mkdir /sys/fs/cgroup/system.slice/delegated.service/own\n' > /run/systemd/system/delegated.service"#;
const MAYBE_DIR: &str = r#"busybox printf '[Service]\nType=oneshot\nExecStart=busybox sh -c "busybox pwd > /run/maybedir"\nWorkingDirectory=-/nonexistent\n' > /run/systemd/system/maybedir.service"#;

/// What `command` printed, without the kernel's console lines (`[   14.478526] ...`)
/// that may land among them.
fn run(sh: &mut Shell, command: &str) -> String {
    sh.run(command)
        .lines()
        .filter(|l| !(l.starts_with('[') && l.contains("] ")))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// Runs `command` and its exit status (`rc=N` on the last line).
fn with_rc(sh: &mut Shell, command: &str) -> (String, i32) {
    let out = run(sh, &format!("{command}; echo rc=$?"));
    let (text, rc) = out.trim_end().rsplit_once("rc=").unwrap_or(("", "-1"));
    (text.to_owned(), rc.trim().parse().unwrap_or(-1))
}

#[test]
#[ignore = "boots VMs; run by `cargo xtask test`"]
fn systemctl_and_systemd_analyze_drive_units_as_systemd_does() {
    if vm_tests_skipped() {
        return;
    }
    let (disk, _) = shared_debug_image();
    let mut sh = Shell::boot("unit_control", disk, true);
    sh.run("busybox mkdir -p /run/systemd/system");
    sh.run(PROBE);

    let (out, rc) = with_rc(&mut sh, "systemctl is-enabled probe");
    assert_eq!((out.trim(), rc), ("disabled", 1), "{out}");
    let (out, rc) = with_rc(&mut sh, "systemctl enable --now probe 2>&1");
    assert_eq!(rc, 0, "{out}");
    assert_eq!(
        out.trim(),
        "Created symlink /etc/systemd/system/multi-user.target.wants/probe.service \u{2192} /run/systemd/system/probe.service."
    );
    let (out, rc) = with_rc(
        &mut sh,
        "systemctl is-active probe; systemctl is-enabled probe",
    );
    assert_eq!((out.trim(), rc), ("active\nenabled", 0), "{out}");
    let status = run(&mut sh, "systemctl status probe");
    assert!(
        status.contains(
            "Loaded: loaded (/run/systemd/system/probe.service; enabled; preset: enabled)"
        ),
        "{status}"
    );
    let files = run(
        &mut sh,
        "systemctl list-unit-files --no-legend 'probe*' berth-runtime.service",
    );
    let rows: Vec<Vec<&str>> = files
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        rows,
        [
            vec!["berth-runtime.service", "disabled", "enabled"],
            vec!["probe.service", "enabled", "enabled"]
        ],
        "{files}"
    );

    // The tree below multi-user.target has the new unit, active; --reverse goes back up.
    let tree = run(&mut sh, "systemctl list-dependencies multi-user.target");
    assert!(tree.starts_with("multi-user.target\n"), "{tree}");
    assert!(
        tree.lines()
            .any(|l| l.starts_with("\u{25cf} \u{251c}\u{2500}probe.service")
                || l.starts_with("\u{25cf} \u{2514}\u{2500}probe.service")),
        "{tree}"
    );
    // --all expands the services too; a service with siblings below keeps its bar.
    let all = run(
        &mut sh,
        "systemctl list-dependencies --all multi-user.target",
    );
    assert!(
        all.lines()
            .any(|l| l.starts_with("\u{25cf} \u{2502} \u{2514}\u{2500}")),
        "{all}"
    );
    let reverse = run(&mut sh, "systemctl list-dependencies --reverse probe");
    assert!(
        reverse.starts_with("probe.service\n") && reverse.contains("\u{2500}multi-user.target"),
        "{reverse}"
    );

    // reload runs ExecReload= with $MAINPID; the main process stays.
    let main = run(&mut sh, "systemctl show -p MainPID --value probe");
    let main = main.trim().to_owned();
    let (out, rc) = with_rc(&mut sh, "systemctl reload probe");
    assert_eq!(rc, 0, "{out}");
    let reloaded = run(
        &mut sh,
        "busybox cat /run/probe-reload; systemctl show -p MainPID --value probe",
    );
    assert_eq!(reloaded.trim(), format!("{main}\n{main}"), "{reloaded}");

    // kill -s KILL to the main process: the unit fails with Result=signal; reset-failed
    // makes it inactive.
    let (out, rc) = with_rc(&mut sh, "systemctl kill -s KILL --kill-whom=main probe");
    assert_eq!(rc, 0, "{out}");
    let failed = run(&mut sh,
        "for i in 1 2 3 4 5 6 7 8 9 10; do systemctl is-failed -q probe && break; busybox sleep 1; done; systemctl show -p ActiveState,Result probe",
    );
    assert_eq!(
        failed.trim(),
        "ActiveState=failed\nResult=signal",
        "{failed}"
    );
    let (out, rc) = with_rc(
        &mut sh,
        "systemctl reset-failed probe; systemctl is-active probe",
    );
    assert_eq!((out.trim(), rc), ("inactive", 3), "{out}");

    // A mask in /etc hides the unit from start until unmasked.
    let (out, rc) = with_rc(&mut sh, "systemctl mask probe 2>&1");
    assert_eq!(
        (out.trim(), rc),
        (
            "Created symlink /etc/systemd/system/probe.service \u{2192} /dev/null.",
            0
        )
    );
    let (out, rc) = with_rc(&mut sh, "systemctl start probe 2>&1");
    assert_eq!(
        (out.trim(), rc),
        (
            "Failed to start probe.service: Unit probe.service is masked.",
            1
        )
    );
    let (out, _) = with_rc(&mut sh, "systemctl is-enabled probe");
    assert_eq!(out.trim(), "masked");
    let (out, rc) = with_rc(&mut sh, "systemctl unmask probe 2>&1");
    assert_eq!(
        (out.trim(), rc),
        ("Removed \"/etc/systemd/system/probe.service\".", 0)
    );
    let (out, rc) = with_rc(
        &mut sh,
        "systemctl enable --now probe 2>&1; systemctl is-active probe",
    );
    assert_eq!((out.trim(), rc), ("active", 0), "{out}");
    let (out, rc) = with_rc(
        &mut sh,
        "systemctl disable --now probe 2>&1; systemctl is-active probe",
    );
    assert_eq!(
        (out.trim(), rc),
        (
            "Removed \"/etc/systemd/system/multi-user.target.wants/probe.service\".\ninactive",
            3
        ),
        "{out}"
    );

    // reenable of a disabled unit: only the links made.
    let (out, rc) = with_rc(
        &mut sh,
        "systemctl reenable probe 2>&1; systemctl is-enabled probe",
    );
    assert_eq!(
        (out.trim(), rc),
        (
            "Created symlink /etc/systemd/system/multi-user.target.wants/probe.service \u{2192} /run/systemd/system/probe.service.\nenabled",
            0
        ),
        "{out}"
    );

    // A main process that ends on its own while its child stays in the cgroup: the child
    // gets the stop signal and the unit is inactive once the cgroup is empty, as on
    // systemd; then it has no cgroup to show.
    sh.run(LEFTOVER);
    let (out, rc) = with_rc(&mut sh, "systemctl start leftover 2>&1");
    assert_eq!(rc, 0, "{out}");
    let ended = run(
        &mut sh,
        "for i in 1 2 3 4 5 6 7 8 9 10; do [ \"$(systemctl show -p ActiveState --value leftover)\" = inactive ] && break; busybox sleep 1; done; \
         systemctl show -p ActiveState --value leftover; systemctl show -p ControlGroup --value leftover; \
         busybox ps -o args | busybox grep -c '[s]leep 1001'",
    );
    assert_eq!(ended.trim(), "inactive\n\n0", "{ended}");
    // As systemd 252: the group emptied (stop-sigterm) before ExecStopPost= ran.
    let post = run(&mut sh, "busybox cat /run/leftover-post");
    assert_eq!(post.trim(), "0", "{post}");
    // The empty group of an inactive unit is removed, as systemd prunes it.
    let (_, rc) = with_rc(
        &mut sh,
        "busybox test -e /sys/fs/cgroup/system.slice/leftover.service",
    );
    assert_eq!(rc, 1, "leftover.service's cgroup is still there");

    // Delegate=yes with User=: the user owns the group and may make groups in it; a stop
    // removes them all.
    sh.run(DELEGATED);
    let (out, rc) = with_rc(
        &mut sh,
        "systemctl start delegated 2>&1 && busybox stat -c %U /sys/fs/cgroup/system.slice/delegated.service/own",
    );
    assert_eq!((out.trim(), rc), ("nobody", 0), "{out}");
    let (out, rc) = with_rc(
        &mut sh,
        "systemctl stop delegated 2>&1; busybox test -e /sys/fs/cgroup/system.slice/delegated.service",
    );
    assert_eq!(rc, 1, "delegated.service's cgroup is still there: {out}");

    // A step that fails between fork and exec: the exit status is the step's, as systemd
    // records it; with `-` a missing working directory is no error.
    // Type=simple is started at the fork, as on systemd 252: the start job is done (exit
    // 0), and the unit fails after it.
    sh.run(NO_DIR);
    let (out, rc) = with_rc(&mut sh, "systemctl start nodir 2>&1");
    assert_eq!((out.trim(), rc), ("", 0), "{out}");
    let status = run(
        &mut sh,
        "busybox sleep 1; systemctl show -p ExecMainStatus --value nodir; systemctl status nodir",
    );
    assert!(status.starts_with("200\n"), "{status}");
    assert!(
        status.contains("(Result: exit-code)")
            && status.contains("(code=exited, status=200/CHDIR)")
            && status.contains(" ExecStart=busybox true (code=exited, status=200/CHDIR)\n"),
        "{status}"
    );
    // Each ended command of the run is a Process: line; ExecStop= runs on a stop of an
    // exited oneshot, its main process long gone.
    sh.run(TEARDOWN);
    let status = run(
        &mut sh,
        "systemctl start teardown; systemctl status teardown",
    );
    assert!(
        status.lines().any(|l| l.starts_with("    Process: ")
            && l.ends_with(" ExecStartPre=busybox true (code=exited, status=0/SUCCESS)")),
        "{status}"
    );
    let (out, rc) = with_rc(
        &mut sh,
        "systemctl stop teardown 2>&1; busybox test -e /run/teardown-ran",
    );
    assert_eq!((out.trim(), rc), ("", 0), "{out}");
    sh.run(MAYBE_DIR);
    let (out, rc) = with_rc(
        &mut sh,
        "systemctl start maybedir 2>&1; busybox cat /run/maybedir",
    );
    assert_eq!((out.trim(), rc), ("/", 0), "{out}");

    // A running ExecStartPre= is the control process: `Cntrl PID:` in status, as
    // systemd 252 shows it, and ControlPID= in show.
    sh.run(SLOW_PRE);
    let status = run(
        &mut sh,
        "systemctl start --no-block slowpre; busybox sleep 1; systemctl status slowpre; systemctl show -p ControlPID,MainPID slowpre",
    );
    let control = status
        .lines()
        .find_map(|l| l.strip_prefix("  Cntrl PID: "))
        .and_then(|rest| rest.strip_suffix(" (busybox)"))
        .unwrap_or_else(|| panic!("a Cntrl PID line: {status}"));
    assert!(
        status.contains("     Active: activating (start-pre)")
            && status.contains(&format!("MainPID=0\nControlPID={control}\n")),
        "{status}"
    );
    sh.run("systemctl stop slowpre");

    // A built-in unit has no file and no cgroup: none is claimed.
    let builtin = run(&mut sh, "systemctl status systemd-sysctl.service");
    assert!(
        builtin.lines().any(|l| l == "     Loaded: loaded") && !builtin.contains("CGroup:"),
        "{builtin}"
    );

    // systemd-analyze from PID 1's timestamps, and systemd-boot's EFI variables (OVMF
    // boots the image through systemd-boot), read from the efivarfs PID 1 mounts.
    let vars = run(
        &mut sh,
        "busybox ls /sys/firmware/efi/efivars | busybox grep LoaderTime",
    );
    let time = run(&mut sh, "systemd-analyze time");
    let mut lines = time.lines();
    let first = lines.next().unwrap_or_default();
    // systemd-boot leaves the variables out when it cannot time itself; then systemd
    // leaves the two phases out too.
    let efi = vars.contains("LoaderTimeInitUSec-") && vars.contains("LoaderTimeExecUSec-");
    eprintln!("systemd-boot's LoaderTime variables present: {efi}");
    assert_eq!(
        (
            first.contains(" (firmware) + "),
            first.contains(" (loader) + ")
        ),
        (efi, efi),
        "{time}\nefivarfs: {vars}"
    );
    assert!(
        first.starts_with("Startup finished in ")
            && first.contains(" (kernel) + ")
            && first.contains(" (initrd) + ")
            && first.contains(" (userspace) = "),
        "{time}\nefivarfs: {vars}"
    );
    let second = lines.next().unwrap_or_default();
    assert!(
        second.starts_with("multi-user.target reached after ")
            && second.ends_with(" in userspace."),
        "{time}"
    );
    let blame = run(&mut sh, "systemd-analyze blame");
    let runtime = blame
        .lines()
        .find(|l| l.ends_with(" berth-runtime.service"))
        .unwrap_or_else(|| panic!("berth-runtime.service in blame: {blame}"));
    let took = runtime.trim().split(' ').next().unwrap_or_default();
    assert!(took.ends_with("ms") || took.ends_with('s'), "{blame}");
    // Right-aligned: every time ends in the same column.
    let ends: std::collections::BTreeSet<usize> = blame
        .lines()
        .map(|l| l.len() - l.trim_start().len() + l.trim_start().find(' ').unwrap_or(0))
        .collect();
    assert_eq!(ends.len(), 1, "{blame}");
    let chain = run(&mut sh, "systemd-analyze critical-chain");
    assert!(
        chain.starts_with(
            "The time when unit became active or started is printed after the \"@\" character.\n"
        ) && chain.contains("\nmulti-user.target ")
            && chain.contains("\u{2514}\u{2500}"),
        "{chain}"
    );
    // With an hour of fuzz every dependency that became active is shown: branches.
    let fuzzy = run(&mut sh, "systemd-analyze critical-chain --fuzz=1h");
    assert!(fuzzy.contains("\u{251c}\u{2500}"), "{fuzzy}");
    let (out, rc) = with_rc(&mut sh, "systemd-analyze critical-chain --fuzz=soon 2>&1");
    assert_eq!((out.trim(), rc), ("Failed to parse timespan 'soon'.", 1));
    sh.power_off();
}
