use std::path::Path;
use std::time::Duration;

use super::*;
use crate::sys::fake::{Call, Fake};

const TARGETS: [(&str, &str); 5] = [
    ("sysinit.target", "[Unit]\nDefaultDependencies=no\n"),
    (
        "basic.target",
        "[Unit]\nRequires=sysinit.target\nAfter=sysinit.target\n",
    ),
    ("network.target", "[Unit]\n"),
    (
        "multi-user.target",
        "[Unit]\nRequires=basic.target\nAfter=basic.target\n",
    ),
    ("shutdown.target", "[Unit]\nDefaultDependencies=no\n"),
];

pub(super) fn machine(units: &[(&str, &str)]) -> Fake {
    let fake = Fake::new();
    for (name, text) in TARGETS.iter().chain(units) {
        fake.write(Path::new("/usr/lib/systemd/system").join(name), text);
    }
    fake
}

pub(super) fn manager(fake: &Fake) -> Manager<'_> {
    let facts = MachineFacts {
        root: fake.host("/"),
        cmdline: String::new(),
        virtualization: Some("qemu".into()),
        first_boot: false,
    };
    Manager::new(
        fake,
        Loader::system(&fake.host("/")),
        Host::default(),
        facts,
    )
}

pub(super) fn n(s: &str) -> UnitName {
    UnitName::parse(s).expect("valid")
}

pub(super) fn spawned(fake: &Fake) -> Vec<(String, Vec<String>)> {
    fake.calls()
        .into_iter()
        .filter_map(|c| match c {
            Call::SpawnCommand(unit, argv, _) => Some((unit, argv)),
            _ => None,
        })
        .collect()
}

pub(super) fn pid_of(m: &Manager, unit: &str) -> u32 {
    m.slots[&n(unit)].run.main_pid.expect("running")
}

#[test]
fn boot_starts_wanted_services_in_order_and_waits_for_ready() {
    let fake = machine(&[
        (
            "multi-user.target.wants/a.service",
            "[Service]\nExecStart=/usr/bin/a --flag\n",
        ),
        ("a.service", "[Service]\nExecStart=/usr/bin/a --flag\n"),
        (
            "b.service",
            "[Unit]\nAfter=a.service\n[Service]\nType=notify\nExecStart=/usr/bin/b\n",
        ),
        ("multi-user.target.wants/b.service", ""),
    ]);
    let mut m = manager(&fake);
    m.start(&n("multi-user.target"));
    assert_eq!(
        spawned(&fake),
        [
            (
                "a.service".to_owned(),
                vec!["/usr/bin/a".to_owned(), "--flag".to_owned()]
            ),
            ("b.service".to_owned(), vec!["/usr/bin/b".to_owned()])
        ]
    );
    assert!(!m.anchor_reached(), "b has not said READY=1");
    assert!(fake.calls().contains(&Call::CgroupCreate(
        "/sys/fs/cgroup/system.slice/a.service".into()
    )));
    let b = pid_of(&m, "b.service");
    m.notify(b, "STATUS=warming up\nREADY=1\n");
    assert!(m.anchor_reached());
    assert_eq!(
        m.slots[&n("b.service")].status.as_deref(),
        Some("warming up")
    );
    let logs = fake.logs();
    assert!(
        logs.contains(&"berth: started a.service".to_owned()),
        "{logs:?}"
    );
    assert!(
        logs.contains(&"berth: started b.service".to_owned()),
        "{logs:?}"
    );
}

#[test]
fn a_failed_requirement_fails_its_dependents_and_boot_goes_on() {
    let fake = machine(&[
        (
            "multi-user.target",
            "[Unit]\nRequires=basic.target\nWants=x.service ok.service\n",
        ),
        (
            "x.service",
            "[Unit]\nRequires=gone.service\n[Service]\nExecStart=/usr/bin/x\n",
        ),
        ("ok.service", "[Service]\nExecStart=/usr/bin/ok\n"),
        ("nobin.service", "[Service]\nExecStart=/usr/bin/none\n"),
    ]);
    fake.missing_programs
        .borrow_mut()
        .insert("/usr/bin/none".into());
    let mut m = manager(&fake);
    m.start(&n("multi-user.target"));
    assert!(m.anchor_reached());
    let logs = fake.logs();
    assert!(
        logs.iter()
            .any(|l| l.starts_with("berth: FAILED gone.service: unit gone.service not found")),
        "{logs:?}"
    );
    assert!(
        logs.contains(&"berth: FAILED x.service: dependency gone.service failed".to_owned()),
        "{logs:?}"
    );
    assert!(logs.contains(&"berth: started ok.service".to_owned()));
    m.start(&n("nobin.service"));
    let logs = fake.logs();
    assert!(
        logs.iter()
            .any(|l| l.contains("berth: FAILED nobin.service: cannot start /usr/bin/none")),
        "{logs:?}"
    );
    assert_eq!(m.slots[&n("nobin.service")].run.active, Active::Failed);
}

#[test]
fn restart_always_restarts_after_restart_sec_on_virtual_time() {
    let fake = machine(&[(
        "r.service",
        "[Service]\nExecStart=/usr/bin/r\nRestart=always\nRestartSec=2\n",
    )]);
    let mut m = manager(&fake);
    m.start(&n("r.service"));
    let first = pid_of(&m, "r.service");
    m.child_exited(first, Exit::Code(1));
    assert_eq!(m.next_deadline(), Some(fake.now() + Duration::from_secs(2)));
    fake.sleep(Duration::from_secs(2));
    m.fire_timers();
    let second = pid_of(&m, "r.service");
    assert_ne!(first, second);
    assert_eq!(spawned(&fake).len(), 2);
    let started = fake
        .logs()
        .iter()
        .filter(|l| *l == "berth: started r.service")
        .count();
    assert_eq!(
        started,
        2,
        "a restart is said like a start: {:?}",
        fake.logs()
    );
}

#[test]
fn a_notify_service_that_never_says_ready_times_out_and_is_killed() {
    let fake = machine(&[(
        "n.service",
        "[Service]\nType=notify\nExecStart=/usr/bin/n\nTimeoutStartSec=5\n",
    )]);
    let mut m = manager(&fake);
    m.start(&n("n.service"));
    let pid = pid_of(&m, "n.service");
    fake.sleep(Duration::from_secs(5));
    m.fire_timers();
    assert!(fake.calls().contains(&Call::CgroupSignal(
        "/sys/fs/cgroup/system.slice/n.service".into(),
        15
    )));
    m.child_exited(pid, Exit::Signal(15));
    assert!(
        fake.logs()
            .contains(&"berth: FAILED n.service: timeout (signal 15)".to_owned()),
        "{:?}",
        fake.logs()
    );
}

#[test]
fn shutdown_stops_in_reverse_order_and_kill_mode_process_spares_the_group() {
    let fake = machine(&[
        (
            "multi-user.target",
            "[Unit]\nRequires=basic.target\nWants=a.service b.service\n",
        ),
        ("a.service", "[Service]\nExecStart=/usr/bin/a\n"),
        (
            "b.service",
            "[Unit]\nAfter=a.service\n[Service]\nExecStart=/usr/bin/b\nKillMode=process\n",
        ),
    ]);
    let mut m = manager(&fake);
    m.start(&n("multi-user.target"));
    let (a, b) = (pid_of(&m, "a.service"), pid_of(&m, "b.service"));
    m.stop_all();
    let kills: Vec<Call> = fake
        .calls()
        .into_iter()
        .filter(|c| matches!(c, Call::Kill(..) | Call::CgroupSignal(..)))
        .collect();
    assert_eq!(
        kills,
        [Call::Kill(b as i32, 15), Call::Kill(b as i32, 18)],
        "b (ordered after a) stops first, and alone, SIGCONT after SIGTERM"
    );
    m.child_exited(b, Exit::Signal(15));
    let kills: Vec<Call> = fake
        .calls()
        .into_iter()
        .filter(|c| matches!(c, Call::Kill(..) | Call::CgroupSignal(..)))
        .collect();
    assert_eq!(
        kills[2],
        Call::CgroupSignal("/sys/fs/cgroup/system.slice/a.service".into(), 15)
    );
    m.child_exited(a, Exit::Signal(15));
    assert!(!m.busy());
}

#[test]
fn environment_user_and_slices_reach_the_command() {
    let fake = machine(&[(
        "k.service",
        "[Service]\nEnvironment=\"ARGS=--a --b\" ONE=1\nEnvironmentFile=-/etc/default/k\nExecStart=/usr/bin/k $ARGS ${ONE} $FROMFILE\nSlice=kube-pods.slice\n",
    )]);
    fake.write("/etc/default/k", "FROMFILE=yes\n");
    let mut m = manager(&fake);
    m.start(&n("k.service"));
    let calls = fake.calls();
    let spawn = calls.iter().find_map(|c| match c {
        Call::SpawnCommand(_, argv, cgroup) => Some((argv.clone(), cgroup.clone())),
        _ => None,
    });
    let (argv, cgroup) = spawn.expect("spawned");
    assert_eq!(argv, ["/usr/bin/k", "--a", "--b", "1", "yes"]);
    assert_eq!(
        cgroup.as_deref(),
        Some(Path::new(
            "/sys/fs/cgroup/kube.slice/kube-pods.slice/k.service"
        ))
    );
}

#[test]
fn slice_paths() {
    assert_eq!(slice_path("system.slice"), Path::new("system.slice"));
    assert_eq!(
        slice_path("a-b-c.slice"),
        Path::new("a.slice/a-b.slice/a-b-c.slice")
    );
}

#[test]
fn limit_nofile_infinity_is_nr_open() {
    let fake = machine(&[(
        "l.service",
        "[Service]\nExecStart=/usr/bin/l\nLimitNOFILE=infinity\nLimitCORE=infinity\n",
    )]);
    fake.write("/proc/sys/fs/nr_open", "1048576\n");
    let mut m = manager(&fake);
    let slot_spec = {
        m.start(&n("l.service"));
        let slot = &m.slots[&n("l.service")];
        spawn::command_spawn(
            &fake,
            slot,
            crate::unit::lifecycle::CommandSet::Start,
            0,
            Path::new("/sys/fs/cgroup/x"),
            &Default::default(),
            &[],
        )
        .expect("spec")
    };
    assert!(slot_spec.rlimits.contains(&(
        nix::libc::RLIMIT_NOFILE as i32,
        Some(1048576),
        Some(1048576)
    )));
    assert!(slot_spec
        .rlimits
        .contains(&(nix::libc::RLIMIT_CORE as i32, None, None)));
}

/// `systemctl restart`: the unit is stopped (SIGTERM to its cgroup) and, once its process
/// is gone, started again with a new PID; the anchor stays reached.
#[test]
fn restart_stops_then_starts_again_and_stop_propagates_to_dependents() {
    let fake = machine(&[
        ("a.service", "[Service]\nExecStart=/usr/bin/a\n"),
        (
            "b.service",
            "[Unit]\nRequires=a.service\nAfter=a.service\n[Service]\nExecStart=/usr/bin/b\n",
        ),
        ("multi-user.target.wants/b.service", ""),
    ]);
    let mut m = manager(&fake);
    m.start(&n("multi-user.target"));
    assert!(m.anchor_reached());
    let a1 = pid_of(&m, "a.service");
    m.restart_unit(&n("a.service")).expect("restart");
    assert!(m.has_job(&n("a.service")));
    // Stop propagates: b requires a, so b is stopped first, then a.
    let b1 = pid_of(&m, "b.service");
    m.child_exited(b1, Exit::Signal(15));
    m.child_exited(a1, Exit::Signal(15));
    let a2 = pid_of(&m, "a.service");
    assert_ne!(a1, a2, "started again");
    assert!(!m.has_job(&n("a.service")));
    assert_eq!(m.slots[&n("b.service")].active_state(), Active::Inactive);
    assert!(m.anchor_reached(), "the boot's anchor is untouched");
    let props = m.properties(&n("a.service")).expect("loaded");
    assert!(props.contains(&("ActiveState", "active".into())));
    assert!(props.contains(&("MainPID", a2.to_string())));
    // And started again by hand.
    m.start_unit(&n("b.service")).expect("start");
    assert_eq!(m.slots[&n("b.service")].active_state(), Active::Active);
    assert_eq!(
        m.start_unit(&n("nope.service")),
        Err(jobs::JobRefused::NotLoaded(n("nope.service")))
    );
}

/// MemoryMax= and friends reach the unit's cgroup files before its process starts.
#[test]
fn resource_limits_are_written_into_the_units_cgroup() {
    let fake = machine(&[
        (
            "a.service",
            "[Service]\nExecStart=/usr/bin/a\nMemoryMax=64M\nCPUQuota=50%\nTasksMax=100\n",
        ),
        ("multi-user.target.wants/a.service", ""),
    ]);
    let mut m = manager(&fake);
    m.start(&n("multi-user.target"));
    let dir = Path::new("/sys/fs/cgroup/system.slice/a.service");
    let calls = fake.calls();
    let wrote = |f: &str, v: &str| calls.contains(&Call::Write(dir.join(f), v.into()));
    assert!(wrote("memory.max", "67108864"), "{calls:?}");
    assert!(wrote("cpu.max", "50000 100000"));
    assert!(wrote("pids.max", "100"));
    let spawn = calls
        .iter()
        .position(|c| matches!(c, Call::SpawnCommand(..)))
        .expect("spawned");
    let limit = calls
        .iter()
        .position(|c| matches!(c, Call::Write(p, _) if p.starts_with(dir)))
        .expect("limits written");
    assert!(limit < spawn);
}

/// StartupCPUWeight= is the unit's weight until the boot's target is reached, then
/// CPUWeight= (or the default, 100) is put back, as systemd does for its startup units.
#[test]
fn the_startup_cpu_weight_gives_way_once_the_boot_is_reached() {
    let fake = machine(&[
        (
            "rt.service",
            "[Unit]\nBefore=multi-user.target\n[Service]\nType=notify\nExecStart=/usr/bin/rt\nStartupCPUWeight=1000\nCPUWeight=300\n",
        ),
        ("multi-user.target.wants/rt.service", ""),
        (
            "plain.service",
            "[Service]\nExecStart=/usr/bin/plain\nStartupCPUWeight=500\n",
        ),
    ]);
    let rt = Path::new("/sys/fs/cgroup/system.slice/rt.service");
    let plain = Path::new("/sys/fs/cgroup/system.slice/plain.service");
    for dir in [rt, plain] {
        std::fs::create_dir_all(fake.host(dir)).unwrap();
    }
    let weights = |dir: &Path| -> Vec<String> {
        fake.calls()
            .into_iter()
            .filter_map(|c| match c {
                Call::Write(p, v) if p == dir.join("cpu.weight") => Some(v),
                _ => None,
            })
            .collect()
    };
    let mut m = manager(&fake);
    m.start(&n("multi-user.target"));
    assert_eq!(weights(rt), ["1000"], "start-up: the startup weight");
    assert!(!m.anchor_reached());
    let pid = pid_of(&m, "rt.service");
    m.notify(pid, "READY=1");
    assert!(m.anchor_reached());
    assert_eq!(weights(rt), ["1000", "300"], "then CPUWeight=");
    // Started after the boot: CPUWeight= from the start, and with none set, nothing.
    m.start_unit(&n("plain.service")).unwrap();
    assert!(weights(plain).is_empty(), "{:?}", fake.calls());
}

/// daemon-reload: a drop-in added after boot is used by the next start.
#[test]
fn daemon_reload_picks_up_a_new_drop_in() {
    let fake = machine(&[
        ("a.service", "[Service]\nExecStart=/usr/bin/a\n"),
        ("multi-user.target.wants/a.service", ""),
    ]);
    let mut m = manager(&fake);
    m.start(&n("multi-user.target"));
    let first = pid_of(&m, "a.service");
    fake.write(
        Path::new("/etc/systemd/system/a.service.d/override.conf"),
        "[Service]\nExecStart=\nExecStart=/usr/bin/a --new\n",
    );
    assert_eq!(m.reload_units(), m.slots.len());
    m.restart_unit(&n("a.service")).expect("restart");
    m.child_exited(first, Exit::Signal(15));
    let last = spawned(&fake).pop().expect("started again");
    assert_eq!(last.1, vec!["/usr/bin/a".to_owned(), "--new".to_owned()]);
}

#[path = "service_exec_tests.rs"]
mod service_exec;

/// `bomb.service`'s `cgroup.events`, which the drain tests rewrite.
pub(super) const EVENTS: &str = "/sys/fs/cgroup/system.slice/bomb.service/cgroup.events";

/// Says `bomb.service`'s group is (or is not) populated, as the kernel does.
pub(super) fn group(fake: &Fake, populated: bool) {
    fake.write(
        EVENTS,
        format!("populated {}\nfrozen 0\n", u8::from(populated)),
    );
}

/// The signals sent to `bomb.service`'s whole group, in order, without the SIGCONT that
/// follows each stop signal (checked by `a_stop_signal_is_followed_by_sigcont`).
pub(super) fn group_signals(fake: &Fake) -> Vec<i32> {
    fake.calls()
        .into_iter()
        .filter_map(|c| match c {
            crate::sys::fake::Call::CgroupSignal(dir, s)
                if dir.ends_with("bomb.service") && s != nix::libc::SIGCONT =>
            {
                Some(s)
            }
            _ => None,
        })
        .collect()
}
