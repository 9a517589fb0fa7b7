//! Create, start, stop, remove and inspect a container. The daemon holds no state of its
//! own here: the OCI runtime's state, the monitor's files and the bundle tell everything,
//! so these calls work the same after a daemon restart.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use oci_spec::runtime::Spec;

use super::exit::{now_nanos, ExitStatus};
use super::procfs::ProcessId;
use super::{fsutil, rootfs, ContainerError, ContainerPaths, OciRuntime};
use crate::monitor_protocol::{MonitorArgs, READY};

/// What [`create`] started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CreatedContainer {
    /// The container's init (host pid namespace).
    pub init_pid: i32,
    /// Its monitor.
    pub monitor_pid: i32,
}

/// The CRI container states.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContainerState {
    Created,
    Running,
    Exited,
    Unknown,
}

/// What ContainerStatus reports from the runtime side (the store adds metadata, image,
/// mounts, log path and creation time).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerRuntimeState {
    pub state: ContainerState,
    /// The init's pid while it runs.
    pub pid: Option<i32>,
    pub exit_code: i32,
    /// Nanoseconds since the epoch; 0 if not started.
    pub started_at: i64,
    /// Nanoseconds since the epoch; 0 if not finished.
    pub finished_at: i64,
    /// `Completed`, `Error`, `OOMKilled`, or empty while not exited.
    pub reason: String,
    pub message: String,
}

/// How long to wait for the monitor's exit record once the runtime says the init is gone.
pub(super) const EXIT_RECORD_WAIT: Duration = Duration::from_secs(2);
pub(super) const POLL: Duration = Duration::from_millis(20);

/// Writes `bundle/config.json` and has a new monitor run the OCI runtime's `create`.
/// The overlay must already be mounted at `paths.rootfs`. An empty `log_path` discards
/// the container's output.
pub fn create(
    paths: &ContainerPaths,
    spec: &Spec,
    runtime: &OciRuntime,
    log_path: &Path,
    monitor_binary: &Path,
) -> Result<CreatedContainer, ContainerError> {
    if runtime.exists(&paths.id) {
        return Err(ContainerError::FailedPrecondition {
            id: paths.id.clone(),
            reason: "already exists in the OCI runtime".into(),
        });
    }
    for dir in [&paths.bundle, &runtime.root] {
        std::fs::create_dir_all(dir).map_err(|e| ContainerError::io("creating", dir, e))?;
    }
    for stale in [
        &paths.exit_file,
        &paths.pid_file,
        &paths.started_file,
        &paths.monitor_pid_file,
    ] {
        let _ = std::fs::remove_file(stale);
    }
    let json = serde_json::to_vec_pretty(spec).map_err(|source| ContainerError::Json {
        path: paths.config.clone(),
        source,
    })?;
    fsutil::atomic_write(&paths.config, &json)?;
    let log_path = if log_path.as_os_str().is_empty() {
        None
    } else {
        Some(log_path.to_path_buf())
    };
    if let Some(dir) = log_path.as_deref().and_then(Path::parent) {
        std::fs::create_dir_all(dir).map_err(|e| ContainerError::io("creating", dir, e))?;
    }
    let args = MonitorArgs {
        id: paths.id.clone(),
        bundle: paths.bundle.clone(),
        runtime: runtime.binary.clone(),
        runtime_exec: runtime.exec.clone(),
        runtime_root: runtime.root.clone(),
        log_path,
    };
    let out = super::oci_runtime::child_command(monitor_binary)
        .args(args.to_args())
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .map_err(|e| ContainerError::Monitor {
            id: paths.id.clone(),
            message: format!("running {}: {e}", monitor_binary.display()),
        })?;
    let line = String::from_utf8_lossy(&out.stdout);
    let line = line.trim();
    let mut words = line.split_whitespace();
    if words.next() == Some(READY) {
        let init_pid = words.next().and_then(|w| w.parse().ok());
        let monitor_pid = words.next().and_then(|w| w.parse().ok());
        if let (Some(init_pid), Some(monitor_pid)) = (init_pid, monitor_pid) {
            return Ok(CreatedContainer {
                init_pid,
                monitor_pid,
            });
        }
    }
    let message = line
        .strip_prefix(crate::monitor_protocol::FAILED)
        .unwrap_or(line)
        .trim();
    Err(ContainerError::Monitor {
        id: paths.id.clone(),
        message: if message.is_empty() {
            format!(
                "reported nothing ({}); see {}",
                out.status,
                paths.monitor_log.display()
            )
        } else {
            message.to_string()
        },
    })
}

/// Starts the created container and records when. The runtime's state is asked only
/// when `start` fails (one exec less on the pod start path), to say why.
pub fn start(paths: &ContainerPaths, runtime: &OciRuntime) -> Result<(), ContainerError> {
    let at = now_nanos();
    if let Err(error) = runtime.start(&paths.id) {
        return Err(match runtime.state(&paths.id) {
            Ok(None) => ContainerError::NotFound {
                id: paths.id.clone(),
            },
            Ok(Some(s)) if s.status != "created" => ContainerError::FailedPrecondition {
                id: paths.id.clone(),
                reason: format!("is {}, not created", s.status),
            },
            _ => error,
        });
    }
    fsutil::atomic_write(&paths.started_file, at.to_string().as_bytes())
}

/// Waits up to `timeout` for the exit record. If the monitor is dead and the runtime
/// says stopped, nobody will write it: record an unknown exit (255) instead.
pub(super) fn wait_exit(
    paths: &ContainerPaths,
    runtime: &OciRuntime,
    timeout: Duration,
) -> Result<bool, ContainerError> {
    let deadline = Instant::now() + timeout;
    loop {
        if ExitStatus::read(&paths.exit_file)?.is_some() {
            return Ok(true);
        }
        if !monitor_alive(paths) {
            let state = runtime.state(&paths.id)?;
            if state.as_ref().is_none_or(|s| s.status == "stopped") {
                if paths.bundle.exists() {
                    ExitStatus {
                        exit_code: 255,
                        finished_at_nanos: now_nanos(),
                        oom_killed: false,
                    }
                    .write(&paths.exit_file)?;
                }
                return Ok(true);
            }
        }
        if Instant::now() >= deadline {
            return Ok(false);
        }
        std::thread::sleep(POLL);
    }
}

/// Removes the container: deleted in the OCI runtime (killed if still running), rootfs
/// unmounted, upper/work and bundle directories removed. Gone already is fine.
pub fn remove(paths: &ContainerPaths, runtime: &OciRuntime) -> Result<(), ContainerError> {
    runtime.delete(&paths.id, true)?;
    // The monitor writes the exit record when the init dies; let it finish first.
    let deadline = Instant::now() + EXIT_RECORD_WAIT;
    while monitor_alive(paths) && Instant::now() < deadline {
        std::thread::sleep(POLL);
    }
    rootfs::remove_layer(paths)?;
    match std::fs::remove_dir_all(&paths.bundle) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(ContainerError::io("removing", &paths.bundle, e)),
    }
}

/// Whether the container's monitor process is alive (the pid file names it with its
/// start time, so a reused pid does not count). For re-listing containers after a
/// daemon restart.
pub fn monitor_alive(paths: &ContainerPaths) -> bool {
    std::fs::read_to_string(&paths.monitor_pid_file)
        .ok()
        .and_then(|s| ProcessId::parse(&s))
        .is_some_and(|p| p.is_alive())
}

/// The init's pid while its monitor lives. The monitor is the init's parent (child
/// subreaper) and writes the exit record as soon as it reaps it, so while the monitor is
/// alive and no exit record exists the pid in the pid file is the init's and cannot have
/// been reused. `None` when the monitor is gone or the pid file holds no pid.
pub(super) fn monitored_init(paths: &ContainerPaths) -> Option<i32> {
    if !monitor_alive(paths) {
        return None;
    }
    std::fs::read_to_string(&paths.pid_file)
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// The container's state, pid, exit code and times. While its monitor lives, the
/// monitor's files answer (created until `start` recorded its time, then running until
/// the exit record); only a container whose monitor is gone is asked of the OCI
/// runtime, which costs an exec.
pub fn status(
    paths: &ContainerPaths,
    runtime: &OciRuntime,
) -> Result<ContainerRuntimeState, ContainerError> {
    let started_at = std::fs::read_to_string(&paths.started_file)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0);
    let exited = |exit: ExitStatus| ContainerRuntimeState {
        state: ContainerState::Exited,
        pid: None,
        exit_code: exit.exit_code,
        started_at,
        finished_at: exit.finished_at_nanos,
        reason: if exit.oom_killed {
            "OOMKilled"
        } else if exit.exit_code == 0 {
            "Completed"
        } else {
            "Error"
        }
        .to_string(),
        message: String::new(),
    };
    if let Some(exit) = ExitStatus::read(&paths.exit_file)? {
        return Ok(exited(exit));
    }
    let base = ContainerRuntimeState {
        state: ContainerState::Unknown,
        pid: None,
        exit_code: 0,
        started_at,
        finished_at: 0,
        reason: String::new(),
        message: String::new(),
    };
    if let Some(init) = monitored_init(paths) {
        if super::procfs::is_running(init) {
            return Ok(ContainerRuntimeState {
                state: if started_at == 0 {
                    ContainerState::Created
                } else {
                    ContainerState::Running
                },
                pid: Some(init),
                ..base
            });
        }
        // The init has exited; its monitor is about to write the record.
        if wait_exit(paths, runtime, EXIT_RECORD_WAIT)? {
            if let Some(exit) = ExitStatus::read(&paths.exit_file)? {
                return Ok(exited(exit));
            }
        }
    }
    match runtime.state(&paths.id)? {
        Some(s) if s.status == "created" || s.status == "creating" => Ok(ContainerRuntimeState {
            state: ContainerState::Created,
            pid: Some(s.pid),
            ..base
        }),
        Some(s) if s.status == "running" || s.status == "paused" => Ok(ContainerRuntimeState {
            state: ContainerState::Running,
            pid: Some(s.pid),
            ..base
        }),
        Some(_) => {
            if wait_exit(paths, runtime, EXIT_RECORD_WAIT)? {
                if let Some(exit) = ExitStatus::read(&paths.exit_file)? {
                    return Ok(exited(exit));
                }
            }
            Ok(ContainerRuntimeState {
                message: "the init exited but its monitor recorded no status".into(),
                ..base
            })
        }
        None if paths.bundle.exists() => Ok(ContainerRuntimeState {
            message: "unknown to the OCI runtime".into(),
            ..base
        }),
        None => Err(ContainerError::NotFound {
            id: paths.id.clone(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::container::stop::{has_exited, parse_signal, stop};

    #[test]
    fn signals_parse_in_every_spelling() {
        assert_eq!(parse_signal("").unwrap(), 15);
        assert_eq!(parse_signal("SIGTERM").unwrap(), 15);
        assert_eq!(parse_signal("quit").unwrap(), 3);
        assert_eq!(parse_signal("9").unwrap(), 9);
        assert!(parse_signal("SIGNOPE").is_err());
        assert!(parse_signal("999").is_err());
    }

    #[test]
    fn status_of_an_unknown_container_is_not_found() {
        let dir = tempfile::tempdir().unwrap();
        let paths = ContainerPaths::new(dir.path(), dir.path(), "c1").unwrap();
        let runtime = OciRuntime {
            binary: "/bin/false".into(),
            root: dir.path().join("oci"),
            exec: None,
        };
        assert!(matches!(
            status(&paths, &runtime),
            Err(ContainerError::NotFound { .. })
        ));
        stop(&paths, &runtime, Duration::from_secs(1), "").unwrap();
        remove(&paths, &runtime).unwrap();
        assert!(!monitor_alive(&paths));
    }

    #[test]
    fn status_reads_the_exit_record() {
        let dir = tempfile::tempdir().unwrap();
        let paths = ContainerPaths::new(dir.path(), dir.path(), "c1").unwrap();
        std::fs::create_dir_all(&paths.bundle).unwrap();
        let runtime = OciRuntime {
            binary: "/bin/false".into(),
            root: dir.path().join("oci"),
            exec: None,
        };
        std::fs::write(&paths.started_file, "5").unwrap();
        ExitStatus {
            exit_code: 0,
            finished_at_nanos: 7,
            oom_killed: false,
        }
        .write(&paths.exit_file)
        .unwrap();
        let s = status(&paths, &runtime).unwrap();
        assert_eq!(
            (
                s.state,
                s.exit_code,
                s.started_at,
                s.finished_at,
                s.reason.as_str()
            ),
            (ContainerState::Exited, 0, 5, 7, "Completed")
        );
        ExitStatus {
            exit_code: 137,
            finished_at_nanos: 7,
            oom_killed: true,
        }
        .write(&paths.exit_file)
        .unwrap();
        assert_eq!(status(&paths, &runtime).unwrap().reason, "OOMKilled");
        ExitStatus {
            exit_code: 2,
            finished_at_nanos: 7,
            oom_killed: false,
        }
        .write(&paths.exit_file)
        .unwrap();
        assert_eq!(status(&paths, &runtime).unwrap().reason, "Error");
    }

    #[test]
    fn a_live_monitor_answers_status_from_its_files() {
        let dir = tempfile::tempdir().unwrap();
        let paths = ContainerPaths::new(dir.path(), dir.path(), "c1").unwrap();
        std::fs::create_dir_all(&paths.bundle).unwrap();
        // An OCI runtime that cannot answer: the state must come from the files alone.
        let runtime = OciRuntime {
            binary: "/nonexistent/crun".into(),
            root: dir.path().join("oci"),
            exec: None,
        };
        std::fs::create_dir_all(runtime.root.join("c1")).unwrap();
        // This test process stands in for both the monitor and the init.
        let me = std::process::id() as i32;
        std::fs::write(
            &paths.monitor_pid_file,
            ProcessId::of(me).unwrap().to_line(),
        )
        .unwrap();
        std::fs::write(&paths.pid_file, me.to_string()).unwrap();
        let s = status(&paths, &runtime).unwrap();
        assert_eq!(
            (s.state, s.pid, s.started_at),
            (ContainerState::Created, Some(me), 0)
        );
        std::fs::write(&paths.started_file, "9").unwrap();
        let s = status(&paths, &runtime).unwrap();
        assert_eq!(
            (s.state, s.pid, s.started_at),
            (ContainerState::Running, Some(me), 9)
        );
        assert!(!has_exited(&paths, &runtime).unwrap());
        // A monitor pid file naming another process start is a dead monitor: the OCI
        // runtime is asked, and it cannot be run.
        let mut stale = ProcessId::of(me).unwrap();
        stale.start_time += 1;
        std::fs::write(&paths.monitor_pid_file, stale.to_line()).unwrap();
        assert!(status(&paths, &runtime).is_err());
    }
}
