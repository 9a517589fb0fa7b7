//! Host integration test of containers: a busybox rootfs under overlayfs, run by crun
//! through berth-monitor. Needs root, crun and busybox-static; skips (saying why)
//! otherwise.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use berth_runtime::container::cgroup::CgroupFs;
use berth_runtime::container::monitor_alive;
use berth_runtime::container::{
    self, build_spec, rootfs, ContainerError, ContainerPaths, ContainerState, ImageDefaults,
    OciRuntime, SandboxFiles, SandboxNamespacePaths, SpecInput,
};
use berth_runtime::monitor::log::{parse_record, Stream, Tag};
use berth_runtime::proto::v1::{
    security_profile::ProfileType, ContainerConfig, KeyValue, LinuxContainerConfig,
    LinuxContainerResources, LinuxContainerSecurityContext, PodSandboxConfig, SecurityProfile,
};
use berth_runtime::server::spec_request;
use berth_runtime::service::records::pod_config;

const MONITOR: &str = env!("CARGO_BIN_EXE_berth-monitor");

/// Why this host cannot run the test, if it cannot.
fn skip_reason() -> Option<String> {
    if !nix::unistd::geteuid().is_root() {
        return Some("not root".into());
    }
    if !Path::new("/usr/bin/crun").exists() {
        return Some("crun is not installed (/usr/bin/crun)".into());
    }
    if !Path::new("/bin/busybox").exists() {
        return Some("busybox-static is not installed (/bin/busybox)".into());
    }
    None
}

macro_rules! skip_unless_able {
    () => {
        berth_testkit::skip_if!(skip_reason());
    };
}

/// One test's directories; removes its cgroup parent on drop.
struct TestEnv {
    dir: tempfile::TempDir,
    /// The runtime state folder (`--state`).
    state: PathBuf,
    runtime: OciRuntime,
    cgroup_parent: String,
}

impl TestEnv {
    fn new(name: &str) -> Self {
        Self::with_runtime(name, "", Path::new("/usr/bin/crun"))
    }

    fn with_runtime(name: &str, handler: &str, binary: &Path) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let layer = dir.path().join("layer");
        std::fs::create_dir_all(layer.join("bin")).unwrap();
        std::fs::create_dir_all(layer.join("etc")).unwrap();
        std::fs::copy("/bin/busybox", layer.join("bin/busybox")).unwrap();
        for tool in ["sh", "echo", "sleep", "cat", "true", "ls", "yes", "head"] {
            std::os::unix::fs::symlink("busybox", layer.join("bin").join(tool)).unwrap();
        }
        std::fs::write(layer.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
        std::fs::write(layer.join("etc/group"), "root:x:0:\n").unwrap();
        let state = dir.path().join("state");
        let runtime = OciRuntime::for_handler(&state, handler, binary);
        let cgroup_parent = format!("/berth-test-{}-{name}", std::process::id());
        TestEnv {
            dir,
            state,
            runtime,
            cgroup_parent,
        }
    }

    /// A crun environment whose state folder path is `len` bytes long.
    fn with_long_state(name: &str, len: usize) -> Self {
        let mut env = Self::new(name);
        let mut state = env.dir.path().join("state");
        while state.as_os_str().len() + 51 < len {
            state.push("s".repeat(50));
        }
        let pad = len - state.as_os_str().len() - 1;
        state.push("t".repeat(pad));
        assert_eq!(state.as_os_str().len(), len);
        env.runtime = OciRuntime::for_handler(&state, "", Path::new("/usr/bin/crun"));
        env.state = state;
        env
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    fn state(&self) -> PathBuf {
        self.state.clone()
    }

    fn paths(&self, id: &str) -> ContainerPaths {
        ContainerPaths::new(&self.root(), &self.state(), id).unwrap()
    }

    fn log(&self, id: &str) -> PathBuf {
        self.dir.path().join("logs").join(id).join("0.log")
    }

    /// Mounts the rootfs and writes the spec of a container running `script` with sh.
    fn prepare(&self, id: &str, script: &str) -> (ContainerPaths, oci_spec::runtime::Spec) {
        let paths = self.paths(id);
        rootfs::mount_rootfs(&paths, &[self.dir.path().join("layer")]).unwrap();
        let config = ContainerConfig {
            command: vec!["/bin/sh".into(), "-c".into(), script.into()],
            envs: vec![KeyValue {
                key: "GREETING".into(),
                value: "hello".into(),
            }],
            linux: Some(LinuxContainerConfig {
                resources: Some(LinuxContainerResources {
                    memory_limit_in_bytes: 256 << 20,
                    cpu_shares: 512,
                    ..Default::default()
                }),
                security_context: Some(LinuxContainerSecurityContext {
                    seccomp: Some(SecurityProfile {
                        profile_type: ProfileType::RuntimeDefault as i32,
                        localhost_ref: String::new(),
                    }),
                    no_new_privs: true,
                    ..Default::default()
                }),
            }),
            ..Default::default()
        };
        let spec = build_spec(&SpecInput {
            id,
            request: &spec_request::container_request(&config).unwrap(),
            pod: &pod_config::spec_context(&PodSandboxConfig::default()).unwrap(),
            image: &ImageDefaults {
                working_dir: "/".into(),
                ..Default::default()
            },
            rootfs: &paths.rootfs,
            namespaces: &SandboxNamespacePaths::default(),
            sandbox_files: &SandboxFiles::default(),
            cgroup_parent: &self.cgroup_parent,
            oom_score_adj_allowed: berth_runtime::container::procfs::oom_score_adj_allowed(),
        })
        .unwrap();
        (paths, spec)
    }
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        // A failed test may leave containers running and rootfs mounts behind.
        if let Ok(containers) = std::fs::read_dir(self.state().join("containers")) {
            for c in containers.flatten() {
                let _ =
                    container::remove(&self.paths(&c.file_name().to_string_lossy()), &self.runtime);
            }
        }
        // Leaf-first removal of the test's cgroup parent in every hierarchy.
        let Ok(controllers) = std::fs::read_dir("/sys/fs/cgroup") else {
            return;
        };
        for c in controllers.flatten() {
            remove_cgroup_tree(&c.path().join(self.cgroup_parent.trim_start_matches('/')));
        }
    }
}

fn remove_cgroup_tree(dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                remove_cgroup_tree(&e.path());
            }
        }
    }
    let _ = std::fs::remove_dir(dir);
}

/// Waits (generously) until `cond` holds; panics with `what` otherwise.
fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The log's records as (stream, tag, content).
fn records(log: &Path) -> Vec<(Stream, Tag, String)> {
    let text = std::fs::read(log).unwrap_or_default();
    text.split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (time, stream, tag, content) = parse_record(l)
                .unwrap_or_else(|| panic!("bad log line {:?}", String::from_utf8_lossy(l)));
            assert_eq!(time.len(), "2016-10-06T00:17:09.669794202Z".len(), "{time}");
            assert!(time.ends_with('Z'));
            (stream, tag, String::from_utf8_lossy(content).into_owned())
        })
        .collect()
}

fn has_record(log: &Path, stream: Stream, text: &str) -> bool {
    records(log)
        .iter()
        .any(|(s, t, c)| *s == stream && *t == Tag::Full && c == text)
}

fn mounted(path: &Path) -> bool {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    info.lines()
        .any(|l| l.split(' ').nth(4) == Some(path.to_str().unwrap()))
}

fn cgroup_of(env: &TestEnv, id: &str) -> String {
    format!("{}/{id}", env.cgroup_parent)
}

#[test]
fn container_lifecycle_logs_exec_stats_stop_remove() {
    skip_unless_able!();
    let env = TestEnv::new("life");
    let id = "c-life";
    // The trap comes first: the test waits for the output, so a SIGTERM after it always
    // finds the trap (set after it, a loaded host could race it).
    let script = r#"trap "exit 3" TERM; echo "$GREETING"; echo oops >&2; printf 'no newline' >&2; while true; do sleep 0.1; done"#;
    let (paths, spec) = env.prepare(id, script);
    let log = env.log(id);
    let created = container::create(&paths, &spec, &env.runtime, &log, Path::new(MONITOR)).unwrap();
    assert!(created.init_pid > 0 && created.monitor_pid > 0);
    assert_eq!(
        container::status(&paths, &env.runtime).unwrap().state,
        ContainerState::Created
    );
    container::start(&paths, &env.runtime).unwrap();
    let st = container::status(&paths, &env.runtime).unwrap();
    assert_eq!(st.state, ContainerState::Running);
    assert_eq!(st.pid, Some(created.init_pid));
    assert!(st.started_at > 0);
    assert!(matches!(
        container::start(&paths, &env.runtime),
        Err(ContainerError::FailedPrecondition { .. })
    ));

    wait_for("the container's output in the CRI log", || {
        has_record(&log, Stream::Stdout, "hello") && has_record(&log, Stream::Stderr, "oops")
    });

    // ExecSync: output, exit code, and a timeout that kills.
    let sh = |s: &str| vec!["/bin/sh".to_string(), "-c".to_string(), s.to_string()];
    let out = container::exec_sync(
        &paths,
        &env.runtime,
        &sh("echo out; echo err >&2; exit 4"),
        Duration::from_secs(20),
    )
    .unwrap();
    assert_eq!(
        (out.stdout.as_slice(), out.stderr.as_slice(), out.exit_code),
        (&b"out\n"[..], &b"err\n"[..], 4)
    );
    let out =
        container::exec_sync(&paths, &env.runtime, &sh("echo $GREETING"), Duration::ZERO).unwrap();
    assert_eq!(out.stdout, b"hello\n", "exec sees the container's env");
    let err = container::exec_sync(
        &paths,
        &env.runtime,
        &sh("yes > /dev/null"),
        Duration::from_secs(1),
    )
    .unwrap_err();
    assert!(matches!(err, ContainerError::Timeout { .. }), "{err}");
    // Nothing the timed-out exec started is left, not even a zombie (whose stat still
    // names it): it was killed with its process group and reaped before the call
    // returned.
    let left: Vec<String> = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read_to_string(e.path().join("stat")).ok())
        .filter(|stat| stat.contains(" (yes) "))
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");

    // Log rotation: the old file keeps what was written, the new one gets what follows.
    std::fs::rename(&log, log.with_extension("log.1")).unwrap();
    container::reopen_log(&paths).unwrap();
    let out = container::exec_sync(
        &paths,
        &env.runtime,
        &sh("echo rotated > /proc/1/fd/1"),
        Duration::from_secs(20),
    )
    .unwrap();
    assert_eq!(out.exit_code, 0, "{}", String::from_utf8_lossy(&out.stderr));
    wait_for("output in the reopened log", || {
        has_record(&log, Stream::Stdout, "rotated")
    });
    assert!(has_record(
        &log.with_extension("log.1"),
        Stream::Stdout,
        "hello"
    ));

    // Stats from the cgroup.
    let cgroup = cgroup_of(&env, id);
    assert!(CgroupFs::detect().exists(&cgroup));
    let stats = container::stats(&paths).unwrap();
    assert!(stats.cgroup.cpu_usage_nanos > 0, "{stats:?}");
    assert!(stats.cgroup.memory_usage_bytes > 0, "{stats:?}");
    assert!(stats.timestamp_nanos > 0);

    // Resources can change while it runs.
    let more = container::Resources {
        memory_limit_in_bytes: Some(300 << 20),
        ..Default::default()
    };
    container::update_resources(&paths, &env.runtime, &more).unwrap();

    // Stop: SIGTERM runs the trap, exit code 3; the unterminated line is a final P record.
    container::stop(&paths, &env.runtime, Duration::from_secs(20), "").unwrap();
    let st = container::status(&paths, &env.runtime).unwrap();
    assert_eq!(
        (st.state, st.exit_code, st.reason.as_str()),
        (ContainerState::Exited, 3, "Error")
    );
    assert!(st.finished_at >= st.started_at);
    let new = records(&log);
    assert!(
        new.contains(&(Stream::Stderr, Tag::Partial, "no newline".to_string())),
        "{new:?}"
    );
    container::stop(&paths, &env.runtime, Duration::from_secs(1), "").unwrap();
    wait_for("the monitor to exit", || !monitor_alive(&paths));
    assert!(matches!(
        container::reopen_log(&paths),
        Err(ContainerError::FailedPrecondition { .. })
    ));

    // Remove: nothing left behind; removing again is fine.
    container::remove(&paths, &env.runtime).unwrap();
    assert!(!mounted(&paths.rootfs), "rootfs still mounted");
    assert!(
        !CgroupFs::detect().exists(&cgroup),
        "cgroup {cgroup} left behind"
    );
    assert!(!paths.bundle.exists() && !paths.layer_dir.exists());
    assert!(!env.runtime.exists(id));
    container::remove(&paths, &env.runtime).unwrap();
    container::stop(&paths, &env.runtime, Duration::from_secs(1), "").unwrap();
    assert!(matches!(
        container::status(&paths, &env.runtime),
        Err(ContainerError::NotFound { .. })
    ));
}

#[test]
fn kill_timeout_and_create_failure() {
    skip_unless_able!();
    let env = TestEnv::new("kill");
    // Ignores SIGTERM: stop must fall back to SIGKILL (137).
    let (paths, spec) = env.prepare("c-kill", r#"trap "" TERM; while true; do sleep 0.1; done"#);
    container::create(
        &paths,
        &spec,
        &env.runtime,
        &env.log("c-kill"),
        Path::new(MONITOR),
    )
    .unwrap();
    container::start(&paths, &env.runtime).unwrap();
    container::stop(&paths, &env.runtime, Duration::from_secs(1), "SIGTERM").unwrap();
    let st = container::status(&paths, &env.runtime).unwrap();
    assert_eq!((st.state, st.exit_code), (ContainerState::Exited, 137));
    container::remove(&paths, &env.runtime).unwrap();

    // A command that does not exist: create or start fails with the runtime's message,
    // and removing cleans up.
    let (paths, mut spec) = env.prepare("c-bad", "true");
    if let Some(p) = spec.process_mut() {
        p.set_args(Some(vec!["/no/such/binary".into()]));
    }
    let created = container::create(
        &paths,
        &spec,
        &env.runtime,
        &env.log("c-bad"),
        Path::new(MONITOR),
    );
    let started = created.and_then(|_| container::start(&paths, &env.runtime));
    let err = started.unwrap_err().to_string();
    assert!(
        err.contains("no/such/binary") || err.contains("No such file"),
        "{err}"
    );
    container::remove(&paths, &env.runtime).unwrap();
    assert!(!mounted(&paths.rootfs));
}

#[test]
fn container_outlives_the_process_that_started_it() {
    skip_unless_able!();
    let env = TestEnv::new("survive");
    let id = "c-survive";
    let (paths, spec) = env.prepare(
        id,
        r#"trap "exit 7" TERM; i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.2; done"#,
    );
    std::fs::create_dir_all(&paths.bundle).unwrap();
    std::fs::create_dir_all(&env.runtime.root).unwrap();
    std::fs::write(&paths.config, serde_json::to_vec(&spec).unwrap()).unwrap();
    let log = env.log(id);
    std::fs::create_dir_all(log.parent().unwrap()).unwrap();

    // A stand-in daemon: launches the monitor, then lingers until we SIGKILL it.
    let args = berth_runtime::monitor::MonitorArgs {
        id: id.into(),
        bundle: paths.bundle.clone(),
        runtime: env.runtime.binary.clone(),
        runtime_exec: None,
        runtime_root: env.runtime.root.clone(),
        log_path: Some(log.clone()),
    };
    let mut daemon = Command::new("/bin/sh")
        .arg("-c")
        .arg(r#""$0" "$@" > "$READY_FILE" && exec sleep 1000"#)
        .arg(MONITOR)
        .args(args.to_args())
        .env("READY_FILE", env.dir.path().join("ready"))
        .spawn()
        .unwrap();
    wait_for("the monitor's readiness line", || {
        std::fs::read_to_string(env.dir.path().join("ready"))
            .unwrap_or_default()
            .starts_with("created ")
    });
    container::start(&paths, &env.runtime).unwrap();
    daemon.kill().unwrap();
    daemon.wait().unwrap();

    // The monitor has its own session and keeps logging.
    let monitor_pid: i32 = std::fs::read_to_string(&paths.monitor_pid_file)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        nix::unistd::getsid(Some(nix::unistd::Pid::from_raw(monitor_pid)))
            .unwrap()
            .as_raw(),
        monitor_pid
    );
    assert!(monitor_alive(&paths));
    let ticks = records(&log).len();
    wait_for("more output after the daemon died", || {
        records(&log).len() > ticks + 2
    });
    assert_eq!(
        container::status(&paths, &env.runtime).unwrap().state,
        ContainerState::Running
    );

    // A "restarted daemon" (this process) stops it and reads the exit code from files.
    container::stop(&paths, &env.runtime, Duration::from_secs(20), "TERM").unwrap();
    let st = container::status(&paths, &env.runtime).unwrap();
    assert_eq!(
        (st.state, st.exit_code, st.reason.as_str()),
        (ContainerState::Exited, 7, "Error")
    );
    container::remove(&paths, &env.runtime).unwrap();
    assert!(!mounted(&paths.rootfs));
    assert!(!CgroupFs::detect().exists(&cgroup_of(&env, id)));
}

#[test]
fn runc_handler_runs_a_container() {
    skip_unless_able!();
    let runc = Path::new("/usr/sbin/runc");
    if !runc.exists() {
        berth_testkit::skip(&format!("runc is not installed ({})", runc.display()));
        return;
    }
    let env = TestEnv::with_runtime("runc", "runc", runc);
    assert!(env.runtime.root.ends_with("oci/runc"));
    let id = "c-runc";
    let (paths, spec) = env.prepare(
        id,
        r#"trap "exit 5" TERM; echo from-runc; while true; do sleep 0.1; done"#,
    );
    let log = env.log(id);
    container::create(&paths, &spec, &env.runtime, &log, Path::new(MONITOR)).unwrap();
    container::start(&paths, &env.runtime).unwrap();
    wait_for("runc container output", || {
        has_record(&log, Stream::Stdout, "from-runc")
    });
    let out = container::exec_sync(
        &paths,
        &env.runtime,
        &["/bin/echo".into(), "hi".into()],
        Duration::from_secs(20),
    )
    .unwrap();
    assert_eq!((out.stdout.as_slice(), out.exit_code), (&b"hi\n"[..], 0));
    container::stop(&paths, &env.runtime, Duration::from_secs(20), "").unwrap();
    assert_eq!(
        container::status(&paths, &env.runtime).unwrap().exit_code,
        5
    );
    container::remove(&paths, &env.runtime).unwrap();
    assert!(!mounted(&paths.rootfs));
    assert!(!CgroupFs::detect().exists(&cgroup_of(&env, id)));
}

#[test]
fn a_200_byte_state_folder_works() {
    skip_unless_able!();
    // The monitor's control socket is <state>/containers/<64 hex>/ctl, far beyond the
    // 107 bytes of a unix socket address.
    let env = TestEnv::with_long_state("long", 200);
    let id = "c".repeat(64);
    let (paths, spec) = env.prepare(&id, "echo started; while true; do sleep 0.1; done");
    assert!(paths.ctl_socket.as_os_str().len() > 107);
    let log = env.log(&id);
    container::create(&paths, &spec, &env.runtime, &log, Path::new(MONITOR)).unwrap();
    container::start(&paths, &env.runtime).unwrap();
    wait_for("the container's output", || {
        has_record(&log, Stream::Stdout, "started")
    });
    // Reopening the log goes through the control socket.
    std::fs::rename(&log, log.with_extension("log.1")).unwrap();
    container::reopen_log(&paths).unwrap();
    assert!(log.exists());
    let out = container::exec_sync(
        &paths,
        &env.runtime,
        &["/bin/sh".into(), "-c".into(), "echo in".into()],
        Duration::from_secs(20),
    )
    .unwrap();
    assert_eq!(out.stdout, b"in\n");
    container::stop(&paths, &env.runtime, Duration::from_secs(5), "").unwrap();
    container::remove(&paths, &env.runtime).unwrap();
}
