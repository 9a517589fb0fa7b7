//! The OCI runtime command line (crun by default, runc selectable per handler). Every
//! call passes `--root` so each handler keeps its state under `state/oci/<handler>`, and
//! errors carry the runtime's own message.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde::Deserialize;

use super::ContainerError;

/// A command for a program the daemon runs (the OCI runtime, the monitor), without the
/// service manager's `NOTIFY_SOCKET`: given it, crun and runc proxy the container's
/// sd_notify and `start` waits for a READY=1 that an ordinary container never sends, so
/// StartContainer hung on a node where the daemon runs as a `Type=notify` unit.
pub(crate) fn child_command(program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut cmd = Command::new(program);
    cmd.env_remove("NOTIFY_SOCKET");
    cmd
}

/// One OCI runtime binary with its state directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OciRuntime {
    /// The binary (e.g. `/usr/bin/crun`), as messages name it.
    pub binary: PathBuf,
    /// Its `--root` state directory.
    pub root: PathBuf,
    /// What to execute instead of `binary` (its argv\[0\] stays `binary`): the daemon's
    /// sealed copy of it, see [`super::sealed_binary`].
    pub exec: Option<PathBuf>,
}

/// What `<runtime> state` says about a container.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct RuntimeState {
    /// `creating`, `created`, `running`, `paused` or `stopped`.
    pub status: String,
    /// The init's pid (0 once stopped).
    #[serde(default)]
    pub pid: i32,
}

/// The result of a command run in a container.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ExecOutput {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub exit_code: i32,
}

/// Output beyond this is dropped (ExecSync answers in one gRPC message).
const MAX_EXEC_OUTPUT: usize = 16 << 20;

impl OciRuntime {
    /// The runtime for `handler`, state under `state/oci/<handler>` (`default` for the
    /// empty handler).
    pub fn for_handler(state: &Path, handler: &str, binary: &Path) -> Self {
        let name = if handler.is_empty() {
            "default"
        } else {
            handler
        };
        OciRuntime {
            binary: binary.to_path_buf(),
            root: state.join("oci").join(name),
            exec: None,
        }
    }

    /// The program, without options.
    fn program(&self) -> Command {
        let mut cmd = child_command(self.exec.as_deref().unwrap_or(&self.binary));
        std::os::unix::process::CommandExt::arg0(&mut cmd, &self.binary);
        cmd
    }

    /// A command with the global options.
    pub fn command(&self) -> Command {
        let mut cmd = self.program();
        cmd.arg("--root").arg(&self.root);
        cmd
    }

    /// Whether the runtime knows the container (both crun and runc keep a directory per
    /// container under their root).
    pub fn exists(&self, id: &str) -> bool {
        self.root.join(id).exists()
    }

    /// The `create` command the monitor runs; the container's stdio is the command's, or
    /// with `console` a pty whose master the runtime sends to that socket.
    pub fn create_command(
        &self,
        id: &str,
        bundle: &Path,
        pid_file: &Path,
        log: &Path,
        console: Option<&Path>,
    ) -> Command {
        let mut cmd = self.program();
        cmd.arg("--root")
            .arg(&self.root)
            .arg("--log")
            .arg(log)
            .arg("--log-format")
            .arg("json");
        cmd.arg("create");
        if let Some(console) = console {
            cmd.arg("--console-socket").arg(console);
        }
        cmd.arg("--bundle")
            .arg(bundle)
            .arg("--pid-file")
            .arg(pid_file)
            .arg(id);
        cmd
    }

    fn run(&self, id: &str, what: &str, mut cmd: Command) -> Result<Vec<u8>, ContainerError> {
        let out =
            cmd.stdin(Stdio::null())
                .output()
                .map_err(|source| ContainerError::RuntimeSpawn {
                    runtime: self.binary.clone(),
                    command: what.to_string(),
                    source,
                })?;
        if out.status.success() {
            return Ok(out.stdout);
        }
        if !self.exists(id) {
            return Err(ContainerError::NotFound { id: id.to_string() });
        }
        Err(ContainerError::Runtime {
            runtime: self.binary.clone(),
            command: what.to_string(),
            id: id.to_string(),
            message: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }

    /// Starts the created container's process.
    pub fn start(&self, id: &str) -> Result<(), ContainerError> {
        let mut cmd = self.command();
        cmd.arg("start").arg(id);
        self.run(id, "start", cmd).map(drop)
    }

    /// The runtime's view of the container; `None` if it does not know it.
    pub fn state(&self, id: &str) -> Result<Option<RuntimeState>, ContainerError> {
        let mut cmd = self.command();
        cmd.arg("state").arg(id);
        match self.run(id, "state", cmd) {
            Ok(json) => {
                serde_json::from_slice(&json)
                    .map(Some)
                    .map_err(|source| ContainerError::Json {
                        path: self.root.join(id),
                        source,
                    })
            }
            Err(ContainerError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Sends `signal` (a name like `SIGTERM` or a number) to the init, or to every process
    /// of the container with `all`.
    pub fn kill(&self, id: &str, signal: &str, all: bool) -> Result<(), ContainerError> {
        let mut cmd = self.command();
        cmd.arg("kill");
        if all {
            cmd.arg("--all");
        }
        cmd.arg(id).arg(signal);
        self.run(id, "kill", cmd).map(drop)
    }

    /// Deletes the container (killing it first with `force`); unknown is fine.
    pub fn delete(&self, id: &str, force: bool) -> Result<(), ContainerError> {
        if !self.exists(id) {
            return Ok(());
        }
        let mut cmd = self.command();
        cmd.arg("delete");
        if force {
            cmd.arg("--force");
        }
        cmd.arg(id);
        match self.run(id, "delete", cmd) {
            Err(ContainerError::NotFound { .. }) => Ok(()),
            other => other.map(drop),
        }
    }

    /// Applies new cgroup limits from an OCI `LinuxResources` JSON file.
    pub fn update(&self, id: &str, resources_file: &Path) -> Result<(), ContainerError> {
        let mut cmd = self.command();
        cmd.arg("update")
            .arg("--resources")
            .arg(resources_file)
            .arg(id);
        self.run(id, "update", cmd).map(drop)
    }

    /// Runs the process described by `process_file` (an OCI `Process` JSON) in the
    /// container and collects its output. With a `timeout`, the process is killed when
    /// it passes and the call fails with [`ContainerError::Timeout`].
    pub fn exec(
        &self,
        id: &str,
        process_file: &Path,
        pid_file: &Path,
        timeout: Option<Duration>,
    ) -> Result<ExecOutput, ContainerError> {
        let mut cmd = self.command();
        cmd.arg("exec")
            .arg("--process")
            .arg(process_file)
            .arg("--pid-file")
            .arg(pid_file)
            .arg(id);
        // Its own process group: on a timeout the runtime and whatever it started that
        // is still in that group can be killed at once (see `kill_runtime_group`).
        use std::os::unix::process::CommandExt;
        cmd.process_group(0);
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| ContainerError::RuntimeSpawn {
                runtime: self.binary.clone(),
                command: "exec".into(),
                source,
            })?;
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        let runtime_pid = child.id() as i32;
        let (tx, rx) = mpsc::channel();
        let waiter = std::thread::spawn(move || {
            let err_reader = std::thread::spawn(move || read_capped(stderr));
            let out = read_capped(stdout);
            let err = err_reader.join().unwrap_or_default();
            let status = child.wait();
            let _ = tx.send(());
            (out, err, status)
        });
        let timed_out = match timeout {
            Some(t) => rx.recv_timeout(t).is_err(),
            None => rx.recv().is_err(),
        };
        if timed_out {
            // First the exec'd process and its process group, so the runtime (its parent
            // and a child subreaper) reaps them and exits by itself: nothing is left as a
            // zombie for the host's init to collect (`pgrep` inside the container would
            // still list it). The runtime's own group only if it does not end then.
            let killed = kill_exec_group(pid_file);
            if !killed || rx.recv_timeout(RUNTIME_EXIT_AFTER_KILL).is_err() {
                kill_runtime_group(runtime_pid);
            }
        }
        let (out, err, status) = waiter.join().map_err(|_| ContainerError::Runtime {
            runtime: self.binary.clone(),
            command: "exec".into(),
            id: id.into(),
            message: "output reader panicked".into(),
        })?;
        let _ = std::fs::remove_file(pid_file);
        if timed_out {
            return Err(ContainerError::Timeout {
                id: id.to_string(),
                what: "exec".into(),
                seconds: timeout.map(|t| t.as_secs()).unwrap_or(0),
            });
        }
        let status = status.map_err(|source| ContainerError::RuntimeSpawn {
            runtime: self.binary.clone(),
            command: "exec".into(),
            source,
        })?;
        use std::os::unix::process::ExitStatusExt;
        let exit_code = status
            .code()
            .unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
        Ok(ExecOutput {
            stdout: out,
            stderr: err,
            exit_code,
        })
    }
}

/// Reads a pipe to its end, keeping the first [`MAX_EXEC_OUTPUT`] bytes.
fn read_capped(pipe: Option<impl Read + Send + 'static>) -> Vec<u8> {
    let Some(mut pipe) = pipe else {
        return Vec::new();
    };
    let mut kept = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match pipe.read(&mut buf) {
            Ok(0) | Err(_) => return kept,
            Ok(n) => {
                let room = MAX_EXEC_OUTPUT.saturating_sub(kept.len());
                kept.extend_from_slice(&buf[..n.min(room)]);
            }
        }
    }
}

/// The mount options an OCI runtime binary lists in `<binary> features` (the OCI runtime
/// features document; crun and runc 1.2 have it). Empty when the command is missing or
/// says nothing usable, so a feature is only claimed when the runtime itself claims it.
pub fn mount_options(binary: &Path) -> Vec<String> {
    #[derive(Deserialize)]
    struct Features {
        #[serde(default, rename = "mountOptions")]
        mount_options: Vec<String>,
    }
    let Ok(out) = Command::new(binary)
        .arg("features")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
    else {
        return Vec::new();
    };
    if !out.status.success() {
        return Vec::new();
    }
    serde_json::from_slice::<Features>(&out.stdout)
        .map(|f| f.mount_options)
        .unwrap_or_default()
}

/// Whether the runtime applies the `rro` (recursive read-only) mount option: as its
/// `features` document says, or, for crun releases older than that command (Debian
/// bookworm's 1.8.1), from its version: crun 1.8 and later have `rro` in their mount
/// option table (checked on 1.8.1; the kernel side is `mount_setattr`, Linux 5.12).
pub fn supports_recursive_read_only(binary: &Path) -> bool {
    if mount_options(binary).iter().any(|o| o == "rro") {
        return true;
    }
    let Ok(out) = Command::new(binary)
        .arg("--version")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
    else {
        return false;
    };
    crun_version(&String::from_utf8_lossy(&out.stdout)).is_some_and(|v| v >= (1, 8))
}

/// `(major, minor)` from crun's `--version` text (`crun version 1.8.1`).
fn crun_version(text: &str) -> Option<(u32, u32)> {
    let version = text.lines().next()?.strip_prefix("crun version ")?;
    let mut parts = version.split('.');
    let major = parts.next()?.trim().parse().ok()?;
    let minor = parts.next()?.trim().parse().ok()?;
    Some((major, minor))
}

/// How long the runtime may take to reap a killed exec process and exit.
const RUNTIME_EXIT_AFTER_KILL: Duration = Duration::from_secs(5);

/// Kills the exec'd process (by the runtime's pid file) and its process group (the OCI
/// runtime gives it a session of its own; what it starts inherits the group). False if
/// the pid file is not written yet.
fn kill_exec_group(pid_file: &Path) -> bool {
    use nix::sys::signal::{kill, killpg, Signal};
    use nix::unistd::{getpgid, Pid};
    let Some(pid) = std::fs::read_to_string(pid_file)
        .ok()
        .and_then(|s| s.trim().parse::<i32>().ok())
        .filter(|pid| *pid > 1)
        .map(Pid::from_raw)
    else {
        return false;
    };
    if let Ok(group) = getpgid(Some(pid)) {
        // Never our own group (a runtime that did not start a session of its own).
        if group != nix::unistd::getpgrp() {
            let _ = killpg(group, Signal::SIGKILL);
        }
    }
    let _ = kill(pid, Signal::SIGKILL);
    true
}

/// Kills the runtime and everything still in its process group (its own: it is started
/// with `process_group(0)`). The runtime is our unreaped child, so its pid (the group id)
/// is not reused meanwhile.
fn kill_runtime_group(runtime_pid: i32) {
    let _ = nix::sys::signal::killpg(
        nix::unistd::Pid::from_raw(runtime_pid),
        nix::sys::signal::Signal::SIGKILL,
    );
}

#[cfg(test)]
mod version_tests {
    use super::crun_version;

    #[test]
    fn crun_versions() {
        assert_eq!(
            crun_version("crun version 1.8.1\ncommit: f8a0"),
            Some((1, 8))
        );
        assert_eq!(crun_version("crun version 1.19\n"), Some((1, 19)));
        assert_eq!(crun_version("runc version 1.1.5"), None);
        assert_eq!(crun_version(""), None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn children_never_see_the_service_managers_notify_socket() {
        let cmd = child_command("crun");
        assert!(cmd
            .get_envs()
            .any(|(key, value)| key == "NOTIFY_SOCKET" && value.is_none()));
        let runtime = OciRuntime::for_handler(Path::new("/run/x"), "crun", Path::new("crun"));
        assert!(runtime
            .command()
            .get_envs()
            .any(|(key, value)| key == "NOTIFY_SOCKET" && value.is_none()));
    }
}
