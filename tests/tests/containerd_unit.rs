//! VM test of PID 1 running a real runtime's own unit (#10's "Tests"): Debian 12's
//! containerd package, in the test variant (`cargo xtask build --variant test`), runs from
//! its unmodified `containerd.service` as Type=notify, and `systemctl restart containerd`
//! leaves the shim of a running container, and the container, alive (the unit has
//! KillMode=process). Through the root shell on the serial console; no registry: the
//! container's root is a folder holding the image's static busybox. Run by `cargo xtask
//! test` (ignored by a plain `cargo test`).

use std::collections::BTreeMap;
use std::path::Path;

use berth_rootfs::{DebCache, Lockfile, Prune};
use berth_tests::shell::Shell;
use berth_tests::*;

/// The unit as the package ships it (`/lib/systemd/system`, `/usr/lib` once merged).
const UNIT: &str = "usr/lib/systemd/system/containerd.service";

/// The container's root: on `/var/lib/toolbox`, a STATE folder mounted with exec (the rest
/// of `/var` is noexec, `/usr` read-only).
const ROOTFS: &str = "/var/lib/toolbox/ctr-probe";

/// What `command` printed, without the kernel's console lines (`[   14.478526] ...`)
/// that may land among them.
fn run(sh: &mut Shell, command: &str) -> String {
    sh.run(command)
        .lines()
        .filter(|l| !(l.starts_with('[') && l.contains("] ")))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// Runs `command`; fails the test, with what it printed, unless it exits 0.
fn run_ok(sh: &mut Shell, command: &str) -> String {
    let out = run(sh, &format!("{command}; echo rc=$?"));
    let (text, rc) = out.trim_end().rsplit_once("rc=").unwrap_or(("", "?"));
    assert_eq!(rc.trim(), "0", "`{command}` failed:\n{out}");
    text.to_owned()
}

/// `systemctl show -p Type,ActiveState,SubState,MainPID containerd` as a map.
fn unit_state(sh: &mut Shell) -> BTreeMap<String, String> {
    let out = run_ok(
        sh,
        "systemctl show -p Type,ActiveState,SubState,MainPID containerd",
    );
    out.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.trim().to_owned()))
        .collect()
}

/// The unit is active and running, its main process containerd: (main PID, `Type=` as
/// `systemctl show` says it). `Type=` is checked by the caller at the end, so that a PID 1
/// that does not show it still has the rest of the test run and said.
fn assert_running(sh: &mut Shell, when: &str) -> (String, String) {
    let state = unit_state(sh);
    let field = |k: &str| state.get(k).map(String::as_str).unwrap_or("");
    assert_eq!(
        (field("ActiveState"), field("SubState")),
        ("active", "running"),
        "{when}: {state:?}"
    );
    let main = field("MainPID").to_owned();
    assert!(
        main.parse::<u32>().is_ok_and(|pid| pid > 1),
        "{when}: {state:?}"
    );
    let exe = run_ok(sh, &format!("busybox readlink /proc/{main}/exe"));
    assert_eq!(exe.trim(), "/usr/bin/containerd", "{when}: main PID {main}");
    (main, format!("{when}: Type={}", field("Type")))
}

/// `ctr task ls` rows: (task, pid, status).
fn tasks(sh: &mut Shell) -> Vec<(String, String, String)> {
    run_ok(sh, "ctr task ls")
        .lines()
        .skip(1)
        .filter_map(|l| match l.split_whitespace().collect::<Vec<_>>()[..] {
            [task, pid, status] => Some((task.into(), pid.into(), status.into())),
            _ => None,
        })
        .collect()
}

/// A process's identity that survives no PID reuse: its executable and its start time
/// (field 22 of `/proc/PID/stat`, in clock ticks since boot).
fn identity(sh: &mut Shell, pid: &str) -> (String, String) {
    let exe = run_ok(sh, &format!("busybox readlink /proc/{pid}/exe"));
    let stat = run_ok(sh, &format!("busybox cat /proc/{pid}/stat"));
    // The name (field 2) is in parentheses and may hold spaces: count after its end.
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let start = after_name.split_whitespace().nth(19).unwrap_or("");
    assert!(!start.is_empty(), "/proc/{pid}/stat: {stat}");
    (exe.trim().to_owned(), start.to_owned())
}

/// The parent of `pid` (`PPid:` of `/proc/PID/status`).
fn parent(sh: &mut Shell, pid: &str) -> String {
    let status = run_ok(sh, &format!("busybox cat /proc/{pid}/status"));
    status
        .lines()
        .find_map(|l| l.strip_prefix("PPid:"))
        .map(|p| p.trim().to_owned())
        .unwrap_or_else(|| panic!("no PPid in /proc/{pid}/status:\n{status}"))
}

/// The containerd unit file of the pinned `.deb` (the one the image was built from, left
/// in Berth's package cache by the build), extracted on the host.
fn unit_of_the_package() -> Vec<u8> {
    let lock = Lockfile::load(&workspace().join("rootfs/packages.lock")).unwrap();
    let pkg = lock
        .get("containerd")
        .expect("rootfs/packages.lock pins containerd");
    let cache = DebCache::new(DebCache::default_dir().unwrap());
    let deb = cache
        .get(pkg)
        .expect("the image build left containerd's .deb in the cache");
    let root = tempfile::tempdir().unwrap();
    berth_rootfs::deb::extract(&deb, root.path(), &Prune::default()).unwrap();
    let shipped = ["lib/systemd/system/containerd.service", UNIT]
        .iter()
        .map(|p| root.path().join(p))
        .find(|p| p.is_file())
        .expect("the package ships containerd.service");
    std::fs::read(shipped).unwrap()
}

/// sha256 of `bytes` by the host's `sha256sum`, the same tool as busybox's in the guest.
fn sha256(bytes: &[u8], dir: &Path) -> String {
    let file = dir.join("unit");
    std::fs::write(&file, bytes).unwrap();
    let out = tool("sha256sum", &[path_str(&file).unwrap()], "coreutils").unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_owned()
}

#[test]
#[ignore = "boots VMs; run by `cargo xtask test`"]
fn debians_containerd_unit_runs_and_restart_keeps_its_shims() {
    if vm_tests_skipped() {
        return;
    }
    let (disk, _) = shared_test_image();
    let dir = tempfile::tempdir().unwrap();
    let want = sha256(&unit_of_the_package(), dir.path());
    let mut sh = Shell::boot("containerd_unit", disk, true);

    // The image's unit is the package's, byte for byte, and nothing drops in on it.
    let got = run_ok(&mut sh, &format!("busybox sha256sum /{UNIT}"));
    assert_eq!(
        got.split_whitespace().next(),
        Some(want.as_str()),
        "/{UNIT} is not the package's: {got}"
    );
    // Not enabled in the image, so not loaded at boot: systemd's `show` loads such a unit
    // and says it inactive. Checked at the end (as `Type=`), the rest runs first.
    let before = run(
        &mut sh,
        "systemctl show -p LoadState,ActiveState containerd 2>&1; echo rc=$?",
    );
    let before = before.trim().to_owned();
    let (out, rc) = {
        let out = run(&mut sh, "systemctl is-active containerd; echo rc=$?");
        let (text, rc) = out.trim_end().rsplit_once("rc=").unwrap_or(("", "?"));
        (text.trim().to_owned(), rc.trim().to_owned())
    };
    assert_eq!((out.as_str(), rc.as_str()), ("inactive", "3"));

    // Started by hand: `systemctl start` returns once READY=1 has come (Type=notify).
    run_ok(&mut sh, "systemctl start containerd");
    let (first, type_first) = assert_running(&mut sh, "after start");
    let files = run_ok(
        &mut sh,
        "systemctl show -p FragmentPath,DropInPaths containerd",
    );
    let mut files: Vec<&str> = files.lines().collect();
    files.sort_unstable();
    assert_eq!(files, ["DropInPaths=", &format!("FragmentPath=/{UNIT}")]);
    let version = run_ok(&mut sh, "ctr version");
    assert!(version.contains("Server:"), "{version}");

    // A container from a folder root: busybox sleeping, under a runc v2 shim.
    run_ok(
        &mut sh,
        &format!(
            "busybox mkdir -p {ROOTFS}/bin && busybox cp /usr/bin/busybox {ROOTFS}/bin/busybox"
        ),
    );
    run_ok(
        &mut sh,
        &format!("ctr run -d --null-io --rootfs {ROOTFS} probe /bin/busybox sleep 100000"),
    );
    let listed = tasks(&mut sh);
    let [(task, pid, status)] = &listed[..] else {
        panic!("one task expected: {listed:?}");
    };
    assert_eq!((task.as_str(), status.as_str()), ("probe", "RUNNING"));
    let container = identity(&mut sh, pid);
    assert!(container.0.ends_with("/bin/busybox"), "{container:?}");
    let shim_pid = parent(&mut sh, pid);
    let shim = identity(&mut sh, &shim_pid);
    assert_eq!(shim.0, "/usr/bin/containerd-shim-runc-v2");
    // The shim is in the unit's cgroup: exactly what KillMode=process spares.
    let cgroup = run_ok(&mut sh, &format!("busybox cat /proc/{shim_pid}/cgroup"));
    assert_eq!(cgroup.trim(), "0::/system.slice/containerd.service");

    // The restart: a new main process that says READY=1 again; the shim and the
    // container are the same processes as before, and containerd finds the task again.
    run_ok(&mut sh, "systemctl restart containerd");
    let (second, type_second) = assert_running(&mut sh, "after restart");
    assert_ne!(first, second, "restart must start a new containerd");
    assert_eq!(
        identity(&mut sh, &shim_pid),
        shim,
        "the shim survives the restart"
    );
    assert_eq!(
        identity(&mut sh, pid),
        container,
        "the container survives the restart"
    );
    let listed = tasks(&mut sh);
    assert_eq!(
        listed,
        [("probe".into(), pid.clone(), "RUNNING".into())],
        "containerd lists the task again after its restart"
    );

    // Clean stop: the task killed and deleted (its shim exits), the container removed,
    // then the unit stopped with nothing left in its cgroup.
    run_ok(&mut sh, "ctr task kill -s SIGKILL probe");
    let stopped = run(
        &mut sh,
        "for i in $(busybox seq 60); do ctr task ls | busybox grep -q 'probe.*STOPPED' && break; busybox sleep 1; done; ctr task ls",
    );
    assert!(stopped.contains("STOPPED"), "{stopped}");
    run_ok(
        &mut sh,
        "ctr task delete probe && ctr container delete probe",
    );
    let gone = run(
        &mut sh,
        &format!("for i in $(busybox seq 60); do [ -e /proc/{shim_pid} ] || break; busybox sleep 1; done; [ -e /proc/{shim_pid} ] && echo shim-alive || echo shim-gone"),
    );
    assert_eq!(
        gone.trim(),
        "shim-gone",
        "the shim exits once its task is deleted"
    );
    run_ok(&mut sh, "systemctl stop containerd");
    let state = unit_state(&mut sh);
    assert_eq!(
        state.get("ActiveState").map(String::as_str),
        Some("inactive"),
        "{state:?}"
    );
    let left = run(
        &mut sh,
        "busybox cat /sys/fs/cgroup/system.slice/containerd.service/cgroup.procs 2>/dev/null | busybox wc -l",
    );
    assert_eq!(left.trim(), "0", "nothing of the unit is left");
    let console = sh.power_off();
    assert!(!console.contains("berth: FAILED containerd"), "{console}");
    // What systemd 252's systemctl says for the same unit and commands.
    assert_eq!(
        [before.as_str(), &type_first, &type_second],
        [
            "LoadState=loaded\nActiveState=inactive\nrc=0",
            "after start: Type=notify",
            "after restart: Type=notify"
        ],
        "`systemctl show` of an installed unit not loaded yet, and `show -p Type`"
    );
}
