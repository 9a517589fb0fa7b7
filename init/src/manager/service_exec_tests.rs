//! `RuntimeMaxSec=`, `WatchdogSec=` and the sandbox (`PrivateTmp=`, `ProtectSystem=`...)
//! through the engine, over the fake with its virtual clock.

use super::*;

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

#[test]
fn watchdog_pings_keep_a_service_alive_and_silence_kills_it_with_sigabrt_then_restarts() {
    let fake = machine(&[(
        "w.service",
        "[Service]\nType=notify\nExecStart=/usr/bin/w\nWatchdogSec=2\nRestart=on-watchdog\n",
    )]);
    let mut m = manager(&fake);
    m.start(&n("w.service"));
    let pid = pid_of(&m, "w.service");
    let spec = fake.spawns.borrow()[0].clone();
    assert!(spec
        .env
        .contains(&("WATCHDOG_USEC".to_owned(), "2000000".to_owned())));
    assert!(spec.watchdog_pid);
    m.notify(pid, "READY=1");
    let ready_at = fake.now();
    assert_eq!(m.next_deadline(), Some(ready_at + secs(2)));
    fake.sleep(Duration::from_millis(1500));
    m.notify(pid, "WATCHDOG=1");
    assert_eq!(m.next_deadline(), Some(fake.now() + secs(2)));
    fake.sleep(Duration::from_millis(1500));
    m.fire_timers();
    assert_eq!(
        m.slots[&n("w.service")].run.active,
        Active::Active,
        "pinged in time"
    );
    m.notify(pid, "WATCHDOG_USEC=5000000");
    assert_eq!(m.next_deadline(), Some(fake.now() + secs(5)));
    fake.sleep(secs(5));
    m.fire_timers();
    assert!(fake.calls().contains(&Call::CgroupSignal(
        "/sys/fs/cgroup/system.slice/w.service".into(),
        6
    )));
    m.child_exited(pid, Exit::Signal(6));
    let slot = &m.slots[&n("w.service")];
    assert_eq!(slot.run.result.map(|r| r.as_str()), Some("watchdog"));
    assert_eq!(slot.run.phase.as_str(), "auto-restart");
    assert!(fake
        .logs()
        .contains(&"berth: w.service: watchdog timeout".to_owned()));
    fake.sleep(secs(1));
    m.fire_timers();
    assert_ne!(pid_of(&m, "w.service"), pid, "restarted");
}

#[test]
fn watchdog_trigger_from_the_service_counts_as_expiry() {
    let fake = machine(&[(
        "t.service",
        "[Service]\nExecStart=/usr/bin/t\nWatchdogSec=30\nWatchdogSignal=SIGUSR2\nNotifyAccess=main\n",
    )]);
    let mut m = manager(&fake);
    m.start(&n("t.service"));
    let pid = pid_of(&m, "t.service");
    m.notify(pid, "WATCHDOG=trigger");
    assert!(fake.calls().contains(&Call::CgroupSignal(
        "/sys/fs/cgroup/system.slice/t.service".into(),
        12
    )));
}

#[test]
fn runtime_max_sec_stops_a_service_with_result_timeout() {
    let fake = machine(&[(
        "r.service",
        "[Service]\nExecStart=/usr/bin/r\nRuntimeMaxSec=60\n",
    )]);
    let mut m = manager(&fake);
    m.start(&n("r.service"));
    let pid = pid_of(&m, "r.service");
    assert!(!fake.spawns.borrow()[0].watchdog_pid);
    assert_eq!(m.next_deadline(), Some(fake.now() + secs(60)));
    fake.sleep(secs(59));
    m.fire_timers();
    assert_eq!(m.slots[&n("r.service")].run.active, Active::Active);
    fake.sleep(secs(1));
    m.fire_timers();
    assert!(fake.calls().contains(&Call::CgroupSignal(
        "/sys/fs/cgroup/system.slice/r.service".into(),
        15
    )));
    m.child_exited(pid, Exit::Signal(15));
    assert!(
        fake.logs()
            .contains(&"berth: FAILED r.service: timeout (signal 15)".to_owned()),
        "{:?}",
        fake.logs()
    );
}

#[test]
fn private_tmp_is_made_per_run_bound_in_the_plan_and_removed_when_the_unit_stops() {
    let fake = machine(&[(
        "p.service",
        "[Service]\nExecStart=/usr/bin/p\nPrivateTmp=yes\nProtectSystem=strict\n\
         ReadWritePaths=-/var/lib/p\nCapabilityBoundingSet=CAP_NET_ADMIN\n",
    )]);
    fake.write(
        "/proc/sys/kernel/random/boot_id",
        "0123abcd-0000-1111-2222-333344445555\n",
    );
    fake.write(
        "/proc/self/mountinfo",
        "22 1 254:0 / / ro,relatime shared:1 - ext4 /dev/dm-0 ro\n",
    );
    fake.write("/tmp/.keep", "");
    let mut m = manager(&fake);
    m.start(&n("p.service"));
    let pid = pid_of(&m, "p.service");
    let outer =
        PathBuf::from("/tmp/systemd-private-0123abcd000011112222333344445555-p.service-000001");
    assert!(fake.calls().contains(&Call::MakeTempDir(outer.clone())));
    assert!(fake
        .calls()
        .contains(&Call::Chmod(outer.join("tmp"), 0o1777)));
    let sandbox = fake.spawns.borrow()[0].sandbox.clone().expect("sandbox");
    assert_eq!(sandbox.bounding_set, Some(1 << 12));
    assert!(sandbox
        .mounts
        .contains(&crate::sys::sandbox::MountOp::Bind {
            source: outer.join("tmp"),
            target: "/tmp".into(),
            recursive: false,
        }));
    m.child_exited(pid, Exit::Code(0));
    assert!(fake.calls().contains(&Call::RemoveTree(outer.clone())));
    assert!(!fake.host(&outer).exists());
}

#[test]
fn a_sandbox_path_that_is_missing_fails_the_start_with_its_name() {
    let fake = machine(&[(
        "q.service",
        "[Service]\nExecStart=/usr/bin/q\nReadOnlyPaths=/opt/q\n",
    )]);
    fake.write(
        "/proc/self/mountinfo",
        "22 1 254:0 / / rw - ext4 /dev/vda rw\n",
    );
    let mut m = manager(&fake);
    m.start(&n("q.service"));
    assert!(
        fake.logs()
            .iter()
            .any(|l| l.contains("q.service") && l.contains("/opt/q: no such file or directory")),
        "{:?}",
        fake.logs()
    );
    assert!(spawned(&fake).is_empty());
}

#[test]
fn a_bind_mount_that_fails_in_the_child_is_said_with_its_setting_and_the_unit_fails() {
    let fake = machine(&[(
        "x.service",
        "[Service]\nExecStart=/bin/sh -c true\nReadWritePaths=/srv/a\n",
    )]);
    fake.write(
        "/proc/self/mountinfo",
        "22 1 254:0 / / rw - ext4 /dev/vda rw\n",
    );
    fake.write("/srv/a/.keep", "");
    let mut m = manager(&fake);
    // The plan's first mount binds /srv/a onto itself: the child reports it failed there.
    let bind = crate::sys::sandbox::MountOp::Bind {
        source: "/srv/a".into(),
        target: "/srv/a".into(),
        recursive: true,
    };
    fake.child_failures.borrow_mut().insert(
        "/bin/sh".into(),
        crate::sys::child_report::ChildFailure {
            step: crate::sys::child_report::Step::Namespace,
            index: 0,
            errno: nix::libc::ENOENT,
        },
    );
    m.start(&n("x.service"));
    assert_eq!(
        fake.spawns.borrow()[0]
            .sandbox
            .as_ref()
            .map(|s| s.mounts[0].clone()),
        Some(bind)
    );
    assert!(
        fake.logs().contains(
            &"berth: FAILED x.service: ReadWritePaths=/srv/a: bind mount: No such file or directory"
                .to_owned()
        ),
        "{:?}",
        fake.logs()
    );
    assert_eq!(m.slots[&n("x.service")].run.active, Active::Failed);
}

#[test]
fn on_success_units_start_after_a_clean_end_and_not_after_a_failure() {
    let fake = machine(&[
        (
            "ok.service",
            "[Unit]\nOnSuccess=then.service\n[Service]\nType=oneshot\nExecStart=/usr/bin/ok\n",
        ),
        (
            "bad.service",
            "[Unit]\nOnSuccess=then.service\n[Service]\nType=oneshot\nExecStart=/usr/bin/bad\n",
        ),
        ("then.service", "[Service]\nExecStart=/usr/bin/then\n"),
    ]);
    let mut m = manager(&fake);
    m.start(&n("bad.service"));
    let pid = m.slots[&n("bad.service")].run.control_pid.expect("running");
    m.child_exited(pid, Exit::Code(1));
    assert!(!spawned(&fake).iter().any(|(u, _)| u == "then.service"));
    m.start(&n("ok.service"));
    let pid = m.slots[&n("ok.service")].run.control_pid.expect("running");
    m.child_exited(pid, Exit::Code(0));
    assert_eq!(m.slots[&n("ok.service")].run.active, Active::Inactive);
    assert!(
        spawned(&fake).iter().any(|(u, _)| u == "then.service"),
        "{:?}",
        spawned(&fake)
    );
}

#[test]
fn notify_access_decides_which_processes_of_the_unit_are_heard() {
    for (access, heard) in [("main", false), ("all", true)] {
        let fake = machine(&[(
            "n.service",
            &*format!("[Service]\nType=notify\nExecStart=/usr/bin/n\nNotifyAccess={access}\n"),
        )]);
        fake.write("/proc/4242/cgroup", "0::/system.slice/n.service\n");
        let mut m = manager(&fake);
        m.start(&n("n.service"));
        m.notify(4242, "READY=1");
        let active = m.slots[&n("n.service")].run.active == Active::Active;
        assert_eq!(active, heard, "NotifyAccess={access}: {:?}", fake.logs());
    }
}

#[test]
fn ambient_capabilities_reach_the_command_but_not_a_full_privileges_one() {
    let fake = machine(&[(
        "a.service",
        "[Service]\nExecStartPre=+/usr/bin/pre\nExecStart=/usr/bin/a\nUser=root\n\
         AmbientCapabilities=CAP_NET_BIND_SERVICE CAP_NET_RAW\n",
    )]);
    fake.write("/etc/passwd", "root:x:0:0:root:/root:/bin/sh\n");
    fake.write("/etc/group", "root:x:0:\n");
    let mut m = manager(&fake);
    m.start(&n("a.service"));
    let pre = m.slots[&n("a.service")].run.control_pid.expect("pre runs");
    m.child_exited(pre, Exit::Code(0));
    let spawns = fake.spawns.borrow();
    assert_eq!(spawns.len(), 2, "{:?}", fake.logs());
    assert_eq!(spawns[0].ambient_capabilities, 0);
    assert_eq!(spawns[1].ambient_capabilities, (1 << 10) | (1 << 13));
}

#[test]
fn working_directory_may_be_missing_with_a_dash_and_is_the_users_home_with_a_tilde() {
    let fake = machine(&[
        (
            "gone.service",
            "[Service]\nExecStart=/usr/bin/a\nWorkingDirectory=-/srv/gone\n",
        ),
        (
            "home.service",
            "[Service]\nExecStart=/usr/bin/a\nUser=app\nWorkingDirectory=~\n",
        ),
        (
            "roothome.service",
            "[Service]\nExecStart=/usr/bin/a\nWorkingDirectory=-~\n",
        ),
        (
            "plain.service",
            "[Service]\nExecStart=/usr/bin/a\nWorkingDirectory=/srv/a\n",
        ),
        (
            "relative.service",
            "[Service]\nExecStart=/usr/bin/a\nWorkingDirectory=srv\n",
        ),
    ]);
    fake.write("/etc/passwd", "app:x:1000:1000::/home/app:/bin/sh\n");
    fake.write("/etc/group", "app:x:1000:\n");
    let mut m = manager(&fake);
    for unit in [
        "gone.service",
        "home.service",
        "roothome.service",
        "plain.service",
        "relative.service",
    ] {
        m.start(&n(unit));
    }
    let dirs: Vec<(String, String, bool)> = fake
        .spawns
        .borrow()
        .iter()
        .map(|s| {
            (
                s.unit.clone(),
                s.working_directory.display().to_string(),
                s.working_directory_missing_ok,
            )
        })
        .collect();
    let want = [
        ("gone.service", "/srv/gone", true),
        ("home.service", "/home/app", false),
        ("roothome.service", "/root", true),
        ("plain.service", "/srv/a", false),
        // Not absolute: said with file:line, and the default kept.
        ("relative.service", "/", false),
    ];
    let want: Vec<(String, String, bool)> = want
        .iter()
        .map(|(u, d, ok)| (u.to_string(), d.to_string(), *ok))
        .collect();
    assert_eq!(dirs, want, "{:?}", fake.logs());
    assert!(
        fake.logs().iter().any(|l| l.contains("relative.service")
            && l.contains("WorkingDirectory=srv")
            && l.contains("not an absolute path or ~")),
        "{:?}",
        fake.logs()
    );
}

#[test]
fn a_main_process_that_cannot_enter_its_working_directory_fails_with_200_chdir() {
    let fake = machine(&[(
        "w.service",
        "[Service]\nExecStart=/usr/bin/w\nWorkingDirectory=/srv/gone\n",
    )]);
    fake.child_failures.borrow_mut().insert(
        "/usr/bin/w".into(),
        crate::sys::child_report::ChildFailure {
            step: crate::sys::child_report::Step::Chdir,
            index: crate::sys::child_report::NO_INDEX,
            errno: nix::libc::ENOENT,
        },
    );
    let mut m = manager(&fake);
    m.start(&n("w.service"));
    assert!(fake.logs().contains(
        &"berth: FAILED w.service: WorkingDirectory=/srv/gone: chdir: No such file or directory"
            .to_owned()
    ));
    let props = m.properties(&n("w.service")).expect("loaded");
    assert!(
        props.contains(&("ExecMainStatus", "200".into())),
        "{props:?}"
    );
}

#[test]
fn a_terminal_on_standard_input_is_where_inherited_output_goes() {
    use crate::sys::service_spawn::Output;
    use crate::sys::terminal::{TerminalMode, TerminalSpawn};
    let fake = machine(&[
        (
            "shell.service",
            "[Service]\nExecStart=/bin/sh\nStandardInput=tty-force\nTTYPath=/dev/ttyS0\n\
             TTYReset=yes\nTTYVHangup=yes\nStandardError=journal\n",
        ),
        (
            "out.service",
            "[Service]\nExecStart=/bin/out\nStandardOutput=tty\nTTYPath=/dev/tty1\n",
        ),
        ("plain.service", "[Service]\nExecStart=/bin/plain\n"),
    ]);
    let mut m = manager(&fake);
    for unit in ["shell.service", "out.service", "plain.service"] {
        m.start(&n(unit));
    }
    let spawns = fake.spawns.borrow().clone();
    let shell = &spawns[0];
    assert_eq!(
        shell.stdin,
        Some(TerminalSpawn {
            path: "/dev/ttyS0".into(),
            mode: TerminalMode::Force,
            reset: true,
            vhangup: true,
        })
    );
    // Unset StandardOutput= inherits the terminal (systemd's service_fix_stdio); an
    // explicit StandardError= is kept.
    assert_eq!(shell.stdout, Output::Stdin);
    assert!(
        matches!(shell.stderr, Output::Journal(_)),
        "{:?}",
        shell.stderr
    );
    // `tty` output without terminal input is TTYPath=, written only.
    assert_eq!(spawns[1].stdin, None);
    assert_eq!(spawns[1].stdout, Output::Terminal("/dev/tty1".into()));
    assert_eq!(spawns[1].stderr, Output::Terminal("/dev/tty1".into()));
    // The default stays the journal.
    assert_eq!(spawns[2].stdin, None);
    assert!(matches!(spawns[2].stdout, Output::Journal(_)));
}
