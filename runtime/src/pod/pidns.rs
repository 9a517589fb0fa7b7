//! The pod-shared PID namespace (`NamespaceMode POD` for `pid`).
//!
//! Unlike network, IPC and UTS namespaces, a PID namespace cannot be held by a bind mount
//! alone: it dies with its first process (its init), and no process can enter it after.
//! Berth runs no pause container, so a pod that shares one PID namespace gets a tiny init
//! of its own: `berth-monitor pod-init`, started with `CLONE_NEWPID` unshared, forks once;
//! the child is PID 1 of the new namespace and only waits (with `SIGCHLD` ignored the
//! kernel reaps the orphans reparented to it), the parent prints the child's pid and exits.
//! The namespace is bind-mounted at `ns/pid` like the others, so containers join it by
//! path and a dead init makes their creation fail instead of joining a reused pid's
//! namespace. Killing the init (`SIGKILL`, at pod stop) kills every process of the pod.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};

use nix::sched::CloneFlags;
use nix::sys::signal::{kill, SigHandler, Signal};
use nix::unistd::Pid;

use super::{sys, PodError, PodPaths};
use crate::container::procfs::ProcessId;

/// The `berth-monitor` argument that runs [`run_init`].
pub const POD_INIT_ARG: &str = "pod-init";

fn pid_init_error(paths: &PodPaths, reason: impl Into<String>) -> PodError {
    PodError::PidInit {
        path: paths.dir().to_path_buf(),
        reason: reason.into(),
    }
}

/// Starts the pod's PID namespace init with `monitor` and bind-mounts its namespace at
/// [`PodPaths::pidns`], which it returns.
pub fn start(monitor: &Path, paths: &PodPaths) -> Result<PathBuf, PodError> {
    let ns_dir = paths.ns_dir();
    std::fs::create_dir_all(&ns_dir).map_err(|e| PodError::io("create", &ns_dir, e))?;
    let mut command = crate::container::oci_runtime::child_command(monitor);
    command
        .arg(POD_INIT_ARG)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: the closure runs in the forked child before exec and only makes the
    // unshare system call, which is async-signal-safe; it allocates nothing and takes no
    // lock, so the daemon's other threads cannot leave it deadlocked.
    unsafe {
        command.pre_exec(|| {
            nix::sched::unshare(CloneFlags::CLONE_NEWPID).map_err(std::io::Error::from)
        });
    }
    let mut child = command
        .spawn()
        .map_err(|e| pid_init_error(paths, format!("running {}: {e}", monitor.display())))?;
    // The init closes its copy of the pipes at once, so these reads end with the parent.
    let mut out = String::new();
    let mut err = String::new();
    if let Some(mut stdout) = child.stdout.take() {
        let _ = stdout.read_to_string(&mut out);
    }
    if let Some(mut stderr) = child.stderr.take() {
        let _ = stderr.read_to_string(&mut err);
    }
    let status = child
        .wait()
        .map_err(|e| pid_init_error(paths, format!("waiting for {}: {e}", monitor.display())))?;
    let pid = out
        .trim()
        .parse::<i32>()
        .ok()
        .filter(|_| status.success())
        .ok_or_else(|| {
            pid_init_error(
                paths,
                format!(
                    "{} {POD_INIT_ARG} failed ({status}): {}",
                    monitor.display(),
                    err.trim()
                ),
            )
        })?;
    let init = ProcessId::of(pid)
        .ok_or_else(|| pid_init_error(paths, format!("the init {pid} died at once")))?;
    let made = (|| {
        super::write_file(&paths.pid_init_file(), init.to_line().as_bytes())?;
        let target = paths.pidns();
        std::fs::File::create(&target).map_err(|e| PodError::io("create", &target, e))?;
        sys::bind(Path::new(&format!("/proc/{pid}/ns/pid")), &target)?;
        Ok(target)
    })();
    if made.is_err() {
        let _ = stop(paths);
    }
    made
}

/// Kills the pod's init (and with it every process of the pod's PID namespace) and
/// removes its namespace file. Idempotent; a pid that now belongs to another process is
/// left alone.
pub fn stop(paths: &PodPaths) -> Result<(), PodError> {
    let pid_file = paths.pid_init_file();
    match std::fs::read_to_string(&pid_file) {
        Ok(line) => {
            if let Some(init) = ProcessId::parse(&line).filter(ProcessId::is_alive) {
                let _ = kill(Pid::from_raw(init.pid), Signal::SIGKILL);
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(PodError::io("read", &pid_file, e)),
    }
    let target = paths.pidns();
    sys::detach(&target)?;
    for file in [target, pid_file] {
        match std::fs::remove_file(&file) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(PodError::io("remove", &file, e)),
        }
    }
    Ok(())
}

/// `berth-monitor pod-init`: must be called first thing in `main`, while the process has
/// one thread. Prints the pid of the namespace's init and returns; the init never returns.
pub fn run_init() -> ExitCode {
    match crate::fork::fork_single_threaded() {
        Ok(crate::fork::Side::Parent { child }) => {
            println!("{child}");
            ExitCode::SUCCESS
        }
        Ok(crate::fork::Side::Child) => init_loop(),
        Err(e) => {
            eprintln!("berth-monitor {POD_INIT_ARG}: fork: {e}");
            ExitCode::FAILURE
        }
    }
}

/// PID 1 of the pod: its own session, no stdio, orphans reaped by the kernel, then sleep
/// until killed. Signals sent from inside the namespace without a handler are dropped by
/// the kernel, so containers cannot end it; the daemon's `SIGKILL` from outside does.
fn init_loop() -> ! {
    let _ = nix::unistd::setsid();
    if let Ok(null) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
    {
        use std::os::fd::AsFd;
        let _ = nix::unistd::dup2_stdin(null.as_fd());
        let _ = nix::unistd::dup2_stdout(null.as_fd());
        let _ = nix::unistd::dup2_stderr(null.as_fd());
    }
    // SAFETY: SIG_IGN installs no handler code; ignoring SIGCHLD makes the kernel reap
    // exited children (orphans of the pod reparented here) without a wait call.
    let _ = unsafe { nix::sys::signal::signal(Signal::SIGCHLD, SigHandler::SigIgn) };
    loop {
        nix::unistd::pause();
    }
}
