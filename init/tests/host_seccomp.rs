//! Seccomp settings on this host, as root: a unit's `[Service]` lines read by the unit
//! parser, planned into filters (`berth_init::manager::seccomp::plan`) and installed by the
//! real fork/exec path (`berth_init::sys::service_spawn::spawn`) before Python runs a
//! check. Each check tells the filter's answer from the kernel's own (EPERM where the
//! kernel would say EINVAL or succeed), so it fails without the filter.
//!
//! Skipped, with the reason printed (failing under CI), when not root: without root,
//! unshare(2) fails with EPERM anyway.

use std::path::Path;

use berth_init::manager::seccomp;
use berth_init::sys::service_spawn::{self, CommandSpawn, Output};
use berth_init::unit::load::Loader;
use berth_init::unit::model::Unit;
use berth_init::unit::specifier::Host;
use nix::sys::signal::Signal;
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;

/// Runs `python3 -c script` under the seccomp settings of `lines`; its wait status and
/// its output.
fn run(lines: &str, script: &str) -> (WaitStatus, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let unit = dir.path().join("etc/systemd/system/sec.service");
    std::fs::create_dir_all(unit.parent().expect("parent")).expect("mkdir");
    std::fs::write(&unit, format!("[Service]\nExecStart=/bin/true\n{lines}\n")).expect("unit");
    let files = Loader::system(dir.path())
        .load("sec.service")
        .expect("loads");
    let u = Unit::from_files(files, &Host::default());
    assert!(u.warnings.is_empty(), "{:?}", u.warnings);
    let settings = u.service.expect("a service").seccomp;
    let out = dir.path().join("out");
    let spec = CommandSpawn {
        stdout: Output::Truncate(out.clone()),
        stderr: Output::Append(out.clone()),
        seccomp: seccomp::plan(&settings, 0),
        seccomp_implies_no_new_privileges: settings.any(),
        ..CommandSpawn::new(
            "sec.service",
            Path::new("/usr/bin/python3"),
            vec!["python3".into(), "-c".into(), script.into()],
        )
    };
    let pid = service_spawn::spawn(&spec).expect("spawned");
    let status = waitpid(Pid::from_raw(pid as i32), None).expect("waitpid");
    (status, std::fs::read_to_string(&out).unwrap_or_default())
}

/// Prints the errno of `call` (Python, raising OSError) or `ok`.
fn errno_of(call: &str) -> String {
    format!(
        "import ctypes, mmap, socket, time\nlibc = ctypes.CDLL(None, use_errno=True)\n\
         def c(rc):\n    if rc != 0: raise OSError(ctypes.get_errno(), 'libc')\n\
         try:\n    {call}\n    print('ok')\nexcept OSError as e:\n    print(e.errno)\n"
    )
}

fn exited(status: WaitStatus) -> bool {
    matches!(status, WaitStatus::Exited(_, 0))
}

fn root() -> bool {
    if !nix::unistd::geteuid().is_root() {
        berth_testkit::skip("not root: unshare(2) fails without the filter too");
        return false;
    }
    true
}

#[test]
#[ignore = "host test: root, seccomp filters; run with --include-ignored"]
fn a_clock_deny_list_fails_or_kills_setting_the_clock() {
    if !root() {
        return;
    }
    let eperm = nix::libc::EPERM.to_string();
    // CLOCK_MONOTONIC cannot be set: the kernel says EINVAL, the filter EPERM first.
    let set_monotonic = errno_of("time.clock_settime(time.CLOCK_MONOTONIC, 1.0)");
    // settimeofday(NULL, NULL) changes nothing and succeeds without the filter (the system
    // call: the C library's wrapper would dereference NULL).
    let settimeofday = errno_of(&format!(
        "c(libc.syscall({}, None, None))",
        nix::libc::SYS_settimeofday
    ));
    let (status, out) = run("", &set_monotonic);
    assert!(exited(status), "{out}");
    assert_eq!(
        out.trim(),
        nix::libc::EINVAL.to_string(),
        "the kernel's own answer"
    );
    let (_, out) = run("", &settimeofday);
    assert_eq!(out.trim(), "ok");

    let lines = "SystemCallFilter=~@clock\nSystemCallErrorNumber=EPERM";
    for script in [&set_monotonic, &settimeofday] {
        let (status, out) = run(lines, script);
        assert!(exited(status), "the program still runs: {status:?} {out}");
        assert_eq!(out.trim(), eperm);
    }
    // Without an error number, the call ends the process with SIGSYS.
    let (status, out) = run("SystemCallFilter=~@clock", &settimeofday);
    assert!(
        matches!(status, WaitStatus::Signaled(_, Signal::SIGSYS, _)),
        "{status:?} {out}"
    );
    // An allow-list: Python runs, a call outside it fails.
    let (status, out) = run(
        "SystemCallFilter=@system-service\nSystemCallErrorNumber=EPERM",
        &settimeofday,
    );
    assert!(exited(status), "{status:?} {out}");
    assert_eq!(out.trim(), eperm);
}

#[test]
#[ignore = "host test: root, seccomp filters; run with --include-ignored"]
fn address_families_memory_namespaces_and_architectures() {
    if !root() {
        return;
    }
    let inet = errno_of("socket.socket(socket.AF_INET, socket.SOCK_STREAM).close()");
    let unix = errno_of("socket.socket(socket.AF_UNIX, socket.SOCK_STREAM).close()");
    let (_, out) = run("", &inet);
    assert_eq!(out.trim(), "ok");
    let (_, out) = run("RestrictAddressFamilies=AF_UNIX", &inet);
    assert_eq!(out.trim(), nix::libc::EAFNOSUPPORT.to_string());
    let (_, out) = run("RestrictAddressFamilies=AF_UNIX", &unix);
    assert_eq!(out.trim(), "ok");

    let wx =
        errno_of("mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)");
    let (_, out) = run("", &wx);
    assert_eq!(out.trim(), "ok");
    let (status, out) = run("MemoryDenyWriteExecute=yes", &wx);
    assert!(exited(status), "{out}");
    assert_eq!(out.trim(), nix::libc::EPERM.to_string());

    let uts = errno_of(&format!("c(libc.unshare({}))", nix::libc::CLONE_NEWUTS));
    let (_, out) = run("", &uts);
    assert_eq!(out.trim(), "ok");
    let (_, out) = run("RestrictNamespaces=yes", &uts);
    assert_eq!(out.trim(), nix::libc::EPERM.to_string());
    let (_, out) = run("RestrictNamespaces=uts", &uts);
    assert_eq!(out.trim(), "ok", "an allowed type");

    let (status, out) = run(
        "SystemCallArchitectures=native\nLockPersonality=yes\nRestrictRealtime=yes\nRestrictSUIDSGID=yes",
        &errno_of("print('running')"),
    );
    assert!(exited(status), "{status:?} {out}");
    assert_eq!(out, "running\nok\n");
}
