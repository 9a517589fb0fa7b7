//! A service's sandbox on this host, as root: the plan that PID 1 computes
//! (`berth_init::manager::sandbox::plan`) for `ProtectSystem=strict`, `ReadWritePaths=`,
//! `PrivateTmp=`, `ProtectControlGroups=` and `CapabilityBoundingSet=`, carried out by the real fork/exec path
//! (`berth_init::sys::service_spawn::spawn`). The command reports from inside: its mount
//! table, what it could write, its bounding set and `$WATCHDOG_PID`; the host's mount
//! table must be unchanged afterwards.
//!
//! Skipped, with the reason printed (failing under CI), when not root.

use std::path::{Path, PathBuf};

use berth_init::manager::sandbox;
use berth_init::sys::service_spawn::{self, CommandSpawn, Output};
use berth_init::sys::{Linux, Syscalls};
use berth_init::unit::service::{ProtectSystem, Service};
use nix::sys::wait::{waitpid, WaitStatus};

/// Mount points and their per-mount options, from a mountinfo text.
fn mounts(mountinfo: &str) -> Vec<(String, String)> {
    mountinfo
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            Some((f.get(4)?.to_string(), f.get(5)?.to_string()))
        })
        .collect()
}

fn options_of<'m>(table: &'m [(String, String)], point: &str) -> Vec<&'m str> {
    table
        .iter()
        .rev()
        .find(|(p, _)| p == point)
        .map(|(_, o)| o.split(',').collect())
        .unwrap_or_default()
}

/// `sh -c script`, its output in `dir/report`, its errors in `dir/stderr`.
fn shell(script: &str, dir: &Path) -> CommandSpawn {
    CommandSpawn {
        env: vec![("PATH".into(), "/usr/bin:/bin:/usr/sbin:/sbin".into())],
        stdout: Output::Truncate(dir.join("report")),
        stderr: Output::Append(dir.join("stderr")),
        ..CommandSpawn::new(
            "sandbox.service",
            Path::new("/bin/sh"),
            vec!["sh".into(), "-c".into(), script.into()],
        )
    }
}

/// Runs `spec` through the real spawn path to its end (exit 0 expected); returns its PID,
/// its output and its errors.
fn run(spec: &CommandSpawn, dir: &Path) -> (u32, String, String) {
    let pid = service_spawn::spawn(spec).expect("spawned");
    let status = waitpid(nix::unistd::Pid::from_raw(pid as i32), None).unwrap();
    let stderr = std::fs::read_to_string(dir.join("stderr")).unwrap_or_default();
    assert_eq!(
        status,
        WaitStatus::Exited(nix::unistd::Pid::from_raw(pid as i32), 0),
        "stderr: {stderr}"
    );
    let out = std::fs::read_to_string(dir.join("report")).unwrap();
    (pid, out, stderr)
}

#[test]
#[ignore = "host test: root, changes of user; run with --include-ignored"]
fn ambient_capabilities_survive_the_change_of_user() {
    if !nix::unistd::geteuid().is_root() {
        berth_testkit::skip("not root: cannot change user");
        return;
    }
    // Not below /tmp or /var/tmp (where the target folder of a checkout under /tmp would
    // put it): PrivateTmp= hides those from the service, so a ReadWritePaths= there does
    // not exist inside and the start fails, as on systemd.
    let work = tempfile::tempdir_in("/run").unwrap();
    let mut spec = shell(
        "id -u; grep -E '^Cap(Eff|Amb)' /proc/self/status",
        work.path(),
    );
    spec.credentials = Some((65534, 65534, Vec::new()));
    // CAP_NET_BIND_SERVICE (10), as a web server without root would ask.
    spec.ambient_capabilities = 1 << 10;
    let (_, out, _) = run(&spec, work.path());
    assert_eq!(
        out,
        "65534\nCapEff:\t0000000000000400\nCapAmb:\t0000000000000400\n"
    );
    spec.ambient_capabilities = 0;
    let (_, out, _) = run(&spec, work.path());
    assert_eq!(
        out, "65534\nCapEff:\t0000000000000000\nCapAmb:\t0000000000000000\n",
        "without it, nothing"
    );
}

#[test]
#[ignore = "host test: root, mount namespaces; run with --include-ignored"]
fn strict_sandbox_with_private_tmp_and_bounding_set_takes_effect_inside_only() {
    if !nix::unistd::geteuid().is_root() {
        berth_testkit::skip("not root: cannot make mount namespaces");
        return;
    }
    let linux = Linux::new();
    // Not below /tmp or /var/tmp (where the target folder of a checkout under /tmp would
    // put it): PrivateTmp= hides those from the service, so a ReadWritePaths= there does
    // not exist inside and the start fails, as on systemd.
    let work = tempfile::tempdir_in("/run").unwrap();
    let rw = work.path().join("state");
    std::fs::create_dir(&rw).unwrap();
    let private = linux
        .make_temp_dir(Path::new("/tmp/systemd-private-test-sandbox.service-"))
        .unwrap();
    let private_tmp = private.join("tmp");
    linux.mkdir_mode(&private_tmp, 0o1777).unwrap();
    let pairs = vec![(PathBuf::from("/tmp"), private_tmp.clone())];

    let svc = Service {
        protect_system: ProtectSystem::Strict,
        read_write_paths: vec![rw.display().to_string(), "-/nonexistent/berth".into()],
        private_tmp: true,
        protect_control_groups: true,
        capability_bounding_set: Some(vec!["CAP_CHOWN".into(), "CAP_NET_BIND_SERVICE".into()]),
        ..Service::default()
    };
    let probe_before = Path::new("/tmp/probe").exists();
    let host_before = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let plan = sandbox::plan(&svc, &pairs, &|p| p.exists(), &host_before)
        .unwrap()
        .expect("a sandbox");

    let script = format!(
        "grep CapBnd /proc/self/status\n\
         echo WD $WATCHDOG_PID $$\n\
         echo written > {rw}/file && echo RW_OK\n\
         if touch /etc/berth-sandbox-probe 2>/dev/null; then echo ETC_WRITABLE; \
         rm -f /etc/berth-sandbox-probe; else echo ETC_READ_ONLY; fi\n\
         if mkdir /sys/fs/cgroup/berth-sandbox-probe 2>/dev/null; then echo CGROUP_WRITABLE; \
         rmdir /sys/fs/cgroup/berth-sandbox-probe; else echo CGROUP_READ_ONLY; fi\n\
         echo private > /tmp/probe && echo TMP_OK\n\
         echo TMP_HAS $(ls -A /tmp)\n\
         cat /proc/self/mountinfo > {rw}/mountinfo\n",
        rw = rw.display()
    );
    let mut spec = shell(&script, work.path());
    spec.watchdog_pid = true;
    spec.sandbox = Some(plan);
    let (pid, out, stderr) = run(&spec, work.path());
    let host_after = std::fs::read_to_string("/proc/self/mountinfo").unwrap();

    assert!(
        out.contains("CapBnd:\t0000000000000401\n"),
        "CAP_CHOWN and CAP_NET_BIND_SERVICE only: {out}"
    );
    assert!(out.contains(&format!("WD {pid} {pid}\n")), "{out}");
    assert!(out.contains("RW_OK\n"), "{out}\n{stderr}");
    assert!(out.contains("ETC_READ_ONLY\n"), "{out}");
    assert!(out.contains("CGROUP_READ_ONLY\n"), "{out}");
    assert!(out.contains("TMP_OK\nTMP_HAS probe\n"), "{out}");
    assert_eq!(
        std::fs::read_to_string(private_tmp.join("probe")).unwrap(),
        "private\n",
        "/tmp inside is the private folder"
    );
    assert_eq!(
        Path::new("/tmp/probe").exists(),
        probe_before,
        "the host's /tmp is untouched"
    );

    let inside = mounts(&std::fs::read_to_string(rw.join("mountinfo")).unwrap());
    assert!(options_of(&inside, "/").contains(&"ro"), "{inside:?}");
    let rw_point = rw.display().to_string();
    assert!(options_of(&inside, &rw_point).contains(&"rw"), "{inside:?}");
    assert!(options_of(&inside, "/tmp").contains(&"rw"), "{inside:?}");
    assert!(options_of(&inside, "/proc").contains(&"rw"), "{inside:?}");
    for (point, options) in mounts(&host_before) {
        if point == "/" || point.starts_with("/proc") || point.starts_with("/sys") {
            continue;
        }
        // Below the private /tmp the host's mounts are hidden (another test's, say).
        if point.starts_with("/dev") || point.starts_with("/tmp/") {
            continue;
        }
        let inside_options = options_of(&inside, &point);
        assert!(
            inside_options.contains(&"ro"),
            "{point} ({options}) is read-only inside: {inside_options:?}"
        );
        for kept in ["nosuid", "nodev", "noexec"] {
            assert_eq!(
                options.split(',').any(|o| o == kept),
                inside_options.contains(&kept),
                "{point} keeps {kept}"
            );
        }
    }
    // Other tests on this machine may mount meanwhile: every mount seen before and after
    // has the same options, and none of the sandbox's mounts reached the host.
    let (before, after) = (mounts(&host_before), mounts(&host_after));
    for (point, options) in &before {
        if let Some((_, now)) = after.iter().find(|(p, _)| p == point) {
            assert_eq!(options, now, "{point} is unchanged on the host");
        }
    }
    for point in [rw_point.as_str(), "/tmp"] {
        assert_eq!(
            options_of(&before, point),
            options_of(&after, point),
            "no sandbox mount at {point} on the host"
        );
    }
    assert_eq!(
        after.iter().filter(|(p, _)| p == &rw_point).count(),
        0,
        "the writable bind stayed inside"
    );
    linux.remove_tree(&private).unwrap();
}

#[test]
#[ignore = "host test: root, mount namespaces; run with --include-ignored"]
fn a_step_that_fails_in_the_child_is_named_not_the_program() {
    if !nix::unistd::geteuid().is_root() {
        berth_testkit::skip("not root: cannot make mount namespaces");
        return;
    }
    use berth_init::sys::child_report::Step;
    let work = tempfile::tempdir_in("/run").unwrap();
    let gone = work.path().join("gone");
    std::fs::create_dir(&gone).unwrap();
    let svc = Service {
        read_write_paths: vec![gone.display().to_string()],
        ..Service::default()
    };
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let plan = sandbox::plan(&svc, &[], &|p| p.exists(), &mountinfo)
        .unwrap()
        .expect("a sandbox");
    // The folder goes away between the plan and the fork: the child's bind mount fails.
    std::fs::remove_dir(&gone).unwrap();
    let mut spec = shell("echo ran", work.path());
    spec.sandbox = Some(plan);
    let err = service_spawn::spawn(&spec).expect_err("the bind mount fails");
    assert_eq!(err.step(), Some(Step::Namespace));
    assert_eq!(
        err.to_string(),
        format!(
            "ReadWritePaths={}: bind mount: No such file or directory",
            gone.display()
        )
    );

    let mut spec = shell("echo ran", work.path());
    spec.working_directory = work.path().join("no-such-folder");
    let err = service_spawn::spawn(&spec).expect_err("chdir fails");
    assert_eq!(err.step(), Some(Step::Chdir));
    assert_eq!(
        err.to_string(),
        format!(
            "WorkingDirectory={}: chdir: No such file or directory",
            spec.working_directory.display()
        )
    );
    // The child that failed is what systemd records: its own PID, exit status 200/CHDIR.
    let (pid, status) = err.exited_child().expect("a child ran");
    assert!(pid > 1 && pid != std::process::id(), "{pid}");
    assert_eq!(status, 200);
    // `WorkingDirectory=-...`: a folder that is missing is no error; the command runs
    // where its parent is (PID 1: `/`).
    let mut spec = shell("pwd", work.path());
    spec.working_directory = work.path().join("no-such-folder");
    spec.working_directory_missing_ok = true;
    let (_, out, _) = run(&spec, work.path());
    let here = std::env::current_dir().unwrap();
    assert_eq!(out, format!("{}\n", here.display()));

    // Only the user's: a folder root may enter and nobody may not.
    let private = work.path().join("private");
    std::fs::create_dir(&private).unwrap();
    std::fs::set_permissions(
        &private,
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .unwrap();
    let mut spec = shell("pwd", work.path());
    spec.working_directory = private.clone();
    let (_, out, _) = run(&spec, work.path());
    assert_eq!(out, format!("{}\n", private.display()), "as root it starts");
    spec.credentials = Some((65534, 65534, Vec::new()));
    let err = service_spawn::spawn(&spec).expect_err("nobody cannot enter it");
    assert_eq!(err.step(), Some(Step::Chdir), "{err}");
    assert!(
        err.to_string().ends_with(": chdir: Permission denied"),
        "{err}"
    );

    spec.program = work.path().join("no-such-program");
    spec.credentials = None;
    spec.working_directory = "/".into();
    let err = service_spawn::spawn(&spec).expect_err("no program");
    assert_eq!(err.step(), Some(Step::Exec));
    assert_eq!(
        err.to_string(),
        format!(
            "cannot start {}: No such file or directory",
            spec.program.display()
        )
    );
}

/// `ProtectKernelModules=`, `ProtectKernelLogs=`, `ProtectKernelTunables=` and
/// `ProtectHostname=` together, checked from inside: the capabilities gone from the
/// bounding set, `/proc/sys` read-only, `/proc/kallsyms` and `/dev/kmsg` empty, the
/// module folder empty, and a host name set inside that the host never sees.
#[test]
#[ignore = "host test: root, mount and UTS namespaces; run with --include-ignored"]
fn kernel_protections_take_effect_inside_only() {
    if !nix::unistd::geteuid().is_root() {
        berth_testkit::skip("not root: cannot make mount namespaces");
        return;
    }
    // What PID 1 makes before the first such start (manager/spawn.rs).
    let cover = Path::new(sandbox::INACCESSIBLE_FILE);
    if !cover.exists() {
        std::fs::create_dir_all(cover.parent().unwrap()).unwrap();
        std::fs::write(cover, "").unwrap();
        std::fs::set_permissions(cover, std::os::unix::fs::PermissionsExt::from_mode(0o000))
            .unwrap();
    }
    let work = tempfile::tempdir_in("/run").unwrap();
    let svc = Service {
        protect_kernel_modules: true,
        protect_kernel_logs: true,
        protect_kernel_tunables: true,
        protect_hostname: true,
        ..Service::default()
    };
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let plan = sandbox::plan(&svc, &[], &|p| p.exists(), &mountinfo)
        .unwrap()
        .expect("a sandbox");
    let host_name = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let script = "grep CapBnd /proc/self/status\n\
         hostname berth-uts-probe && echo UTS $(hostname)\n\
         if echo 1 > /proc/sys/kernel/printk_ratelimit 2>/dev/null; then echo SYSCTL_WRITABLE; \
         else echo SYSCTL_READ_ONLY; fi\n\
         echo KALLSYMS $(wc -c < /proc/kallsyms)\n\
         echo KMSG $(timeout 2 head -c 1 /dev/kmsg | wc -c)\n\
         if echo x > /proc/kallsyms 2>/dev/null; then echo COVER_WRITABLE; else echo COVER_READ_ONLY; fi\n\
         for d in /lib/modules /usr/lib/modules; do [ -d $d ] && echo MODULES $d $(ls -A $d | wc -l); done\n\
         true\n";
    let mut spec = shell(script, work.path());
    spec.sandbox = Some(plan);
    let (_, out, stderr) = run(&spec, work.path());
    let bounding = out
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .unwrap_or_else(|| panic!("no CapBnd: {out}\n{stderr}"));
    assert_eq!(bounding & (1 << 16), 0, "CAP_SYS_MODULE kept: {out}");
    assert_eq!(bounding & (1 << 34), 0, "CAP_SYSLOG kept: {out}");
    assert!(bounding & (1 << 21) != 0, "CAP_SYS_ADMIN stays: {out}");
    assert!(out.contains("UTS berth-uts-probe\n"), "{out}\n{stderr}");
    assert_eq!(
        std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap(),
        host_name,
        "the host's name"
    );
    assert!(out.contains("SYSCTL_READ_ONLY\n"), "{out}");
    assert!(out.contains("KALLSYMS 0\n"), "{out}");
    assert!(out.contains("KMSG 0\n"), "{out}");
    assert!(out.contains("COVER_READ_ONLY\n"), "{out}");
    for line in out.lines().filter(|l| l.starts_with("MODULES ")) {
        assert!(line.ends_with(" 0"), "a module folder is not empty: {line}");
    }
    assert_eq!(std::fs::read(cover).unwrap(), b"", "the cover stays empty");
}

/// `PrivateNetwork=` and `ProtectClock=`, checked from inside: only the loopback link, up
/// (its 127.0.0.1 route is there), none of the host's links, and the capabilities that
/// setting the clock needs gone from the bounding set.
#[test]
#[ignore = "host test: root, network namespaces; run with --include-ignored"]
fn private_network_and_protect_clock_take_effect_inside_only() {
    if !nix::unistd::geteuid().is_root() {
        berth_testkit::skip("not root: cannot make network namespaces");
        return;
    }
    let work = tempfile::tempdir_in("/run").unwrap();
    let svc = Service {
        private_network: true,
        protect_clock: true,
        ..Service::default()
    };
    let plan = sandbox::plan(&svc, &[], &|p| p.exists(), "")
        .unwrap()
        .expect("a sandbox");
    let links = |dev: &str| -> Vec<String> {
        dev.lines()
            .skip(2)
            .filter_map(|l| Some(l.split(':').next()?.trim().to_owned()))
            .collect()
    };
    let host_links = links(&std::fs::read_to_string("/proc/net/dev").unwrap());
    let script = format!(
        "cat /proc/net/dev > {dir}/links\n\
         echo LOOPBACK_ROUTES $(grep -c 127.0.0.1 /proc/net/fib_trie)\n\
         grep CapBnd /proc/self/status\n",
        dir = work.path().display()
    );
    let mut spec = shell(&script, work.path());
    spec.sandbox = Some(plan);
    let (_, out, stderr) = run(&spec, work.path());
    let inside = links(&std::fs::read_to_string(work.path().join("links")).unwrap());
    assert!(inside.contains(&"lo".to_owned()), "{inside:?}");
    for host in host_links.iter().filter(|l| *l != "lo") {
        assert!(
            !inside.contains(host),
            "{host} of the host is inside: {inside:?}"
        );
    }
    assert!(
        !out.contains("LOOPBACK_ROUTES 0"),
        "lo is not up: {out}\n{stderr}"
    );
    // Not by setting the clock: a failed protection would set this host's.
    let bounding = out
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .unwrap_or_else(|| panic!("no CapBnd: {out}\n{stderr}"));
    assert_eq!(bounding & (1 << 25), 0, "CAP_SYS_TIME kept: {out}");
    assert_eq!(bounding & (1 << 35), 0, "CAP_WAKE_ALARM kept: {out}");
}
