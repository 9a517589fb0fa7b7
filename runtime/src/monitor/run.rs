//! The detached monitor: create the container, then relay its output to the CRI log until
//! its init exits and its pipes close, and write the exit record.

use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use super::ctl;
use super::log::{CriLogWriter, Stream};
use super::{MonitorArgs, FAILED, READY};
use crate::container::cgroup::CgroupFs;
use crate::container::exit::{now_nanos, ExitStatus};
use crate::container::procfs::ProcessId;
use crate::container::{fsutil, ContainerPaths, OciRuntime};

/// How long output may still arrive after the init exited (from processes that
/// inherited its pipes) before the monitor stops reading.
const DRAIN: Duration = Duration::from_secs(5);

/// Runs the detached monitor to the container's end. Progress and errors go to stderr
/// (the bundle's `monitor.log`); readiness goes to stdout, once.
pub fn run_detached(args: &MonitorArgs) -> ExitCode {
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("berth-monitor {}: {e}", args.id);
            ExitCode::FAILURE
        }
    }
}

fn ready(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

fn run(args: &MonitorArgs) -> Result<(), String> {
    let fail = |msg: String| {
        ready(&format!("{FAILED} {msg}"));
        msg
    };
    let paths = ContainerPaths::from_bundle(&args.bundle, &args.id);
    nix::unistd::setsid().map_err(|e| fail(format!("setsid: {e}")))?;
    nix::sys::prctl::set_child_subreaper(true)
        .map_err(|e| fail(format!("becoming a child subreaper: {e}")))?;
    let me = ProcessId::of(std::process::id() as i32)
        .ok_or_else(|| fail("reading our own /proc entry".into()))?;
    fsutil::atomic_write(&paths.monitor_pid_file, me.to_line().as_bytes())
        .map_err(|e| fail(e.to_string()))?;

    let mut log = CriLogWriter::open(args.log_path.as_deref()).map_err(|e| {
        fail(format!(
            "opening the log {}: {e}",
            args.log_path
                .as_deref()
                .unwrap_or(std::path::Path::new(""))
                .display()
        ))
    })?;
    let _ = std::fs::remove_file(&paths.ctl_socket);
    let listener = crate::sockpath::bind(&paths.ctl_socket)
        .map_err(|e| fail(format!("binding {}: {e}", paths.ctl_socket.display())))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| fail(format!("control socket: {e}")))?;

    // Block the signals we handle before any child exists, so none is lost; children
    // start with an empty mask (std resets it).
    let mut mask = SigSet::empty();
    for s in [
        Signal::SIGCHLD,
        Signal::SIGUSR1,
        Signal::SIGTERM,
        Signal::SIGINT,
        Signal::SIGHUP,
    ] {
        mask.add(s);
    }
    mask.thread_block()
        .map_err(|e| fail(format!("blocking signals: {e}")))?;
    let signals = SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
        .map_err(|e| fail(format!("signalfd: {e}")))?;

    let (out_r, out_w) =
        nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| fail(format!("pipe: {e}")))?;
    let (err_r, err_w) =
        nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| fail(format!("pipe: {e}")))?;
    let runtime = OciRuntime {
        binary: args.runtime.clone(),
        root: args.runtime_root.clone(),
    };
    let _ = std::fs::remove_file(&paths.runtime_log);
    let status = runtime
        .create_command(&args.id, &args.bundle, &paths.pid_file, &paths.runtime_log)
        .stdin(Stdio::null())
        .stdout(Stdio::from(out_w))
        .stderr(Stdio::from(err_w))
        .status()
        .map_err(|e| fail(format!("running {}: {e}", args.runtime.display())))?;
    if !status.success() {
        return Err(fail(format!(
            "{} create: {}",
            args.runtime.display(),
            runtime_error(&paths)
        )));
    }
    let init = std::fs::read_to_string(&paths.pid_file)
        .ok()
        .and_then(|s| s.trim().parse::<i32>().ok())
        .ok_or_else(|| fail(format!("no pid in {}", paths.pid_file.display())))?;
    ready(&format!("{READY} {init} {}", me.pid));

    let exit_code = relay(init, [out_r, err_r], &signals, &listener, &mut log);
    let cgroup = cgroup_path(&paths);
    let oom_killed = cgroup
        .as_deref()
        .is_some_and(|c| CgroupFs::detect().oom_killed(c));
    let record = ExitStatus {
        exit_code,
        finished_at_nanos: now_nanos(),
        oom_killed,
    };
    let _ = std::fs::remove_file(&paths.ctl_socket);
    record.write(&paths.exit_file).map_err(|e| e.to_string())?;
    eprintln!(
        "berth-monitor {}: init {init} exited with {exit_code}",
        args.id
    );
    Ok(())
}

/// The last message of the runtime's JSON log.
fn runtime_error(paths: &ContainerPaths) -> String {
    let text = std::fs::read_to_string(&paths.runtime_log).unwrap_or_default();
    text.lines()
        .rev()
        .find_map(|l| {
            serde_json::from_str::<serde_json::Value>(l)
                .ok()?
                .get("msg")?
                .as_str()
                .map(String::from)
        })
        .unwrap_or_else(|| format!("failed (no message in {})", paths.runtime_log.display()))
}

/// `linux.cgroupsPath` of the bundle's config.
fn cgroup_path(paths: &ContainerPaths) -> Option<String> {
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&paths.config).ok()?).ok()?;
    config
        .get("linux")?
        .get("cgroupsPath")?
        .as_str()
        .map(String::from)
}

/// Copies the container's output to the log until the init has exited and the pipes
/// closed (or [`DRAIN`] passed); returns the init's exit code (128 + signal if killed).
fn relay(
    init: i32,
    pipes: [OwnedFd; 2],
    signals: &SignalFd,
    listener: &UnixListener,
    log: &mut CriLogWriter,
) -> i32 {
    let streams = [Stream::Stdout, Stream::Stderr];
    let mut open = [true, true];
    let mut exit_code: Option<i32> = None;
    let mut exited_at: Option<Instant> = None;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        if let Some(code) = exit_code {
            let drained = exited_at.is_some_and(|t| t.elapsed() >= DRAIN);
            if !open.iter().any(|o| *o) || drained {
                for (i, s) in streams.iter().enumerate() {
                    let _ = log.finish(*s);
                    open[i] = false;
                }
                return code;
            }
        }
        let timeout = match exited_at {
            Some(t) => PollTimeout::try_from(DRAIN.saturating_sub(t.elapsed()))
                .unwrap_or(PollTimeout::ZERO),
            None => PollTimeout::NONE,
        };
        let (out_fd, err_fd) = (pipes[0].as_fd(), pipes[1].as_fd());
        let none = PollFlags::empty();
        let mut fds = [
            PollFd::new(out_fd, if open[0] { PollFlags::POLLIN } else { none }),
            PollFd::new(err_fd, if open[1] { PollFlags::POLLIN } else { none }),
            PollFd::new(signals.as_fd(), PollFlags::POLLIN),
            PollFd::new(listener.as_fd(), PollFlags::POLLIN),
        ];
        match poll(&mut fds, timeout) {
            Ok(_) => {}
            Err(Errno::EINTR) => continue,
            Err(e) => {
                eprintln!("poll: {e}");
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
        }
        let ready: Vec<bool> = fds
            .iter()
            .map(|f| f.revents().is_some_and(|r| !r.is_empty()))
            .collect();
        for i in 0..2 {
            if open[i] && ready[i] {
                match nix::unistd::read(&pipes[i], &mut buf) {
                    Ok(0) => {
                        open[i] = false;
                        let _ = log.finish(streams[i]);
                    }
                    Ok(n) => {
                        if let Err(e) = log.write(streams[i], &buf[..n]) {
                            eprintln!("writing the log: {e}");
                        }
                    }
                    Err(Errno::EINTR) | Err(Errno::EAGAIN) => {}
                    Err(e) => {
                        eprintln!("reading the container's {:?}: {e}", streams[i]);
                        open[i] = false;
                    }
                }
            }
        }
        if ready[2] {
            while let Ok(Some(info)) = signals.read_signal() {
                if info.ssi_signo == Signal::SIGUSR1 as u32 {
                    if let Err(e) = log.reopen() {
                        eprintln!("reopening the log: {e}");
                    }
                }
            }
            if exit_code.is_none() {
                exit_code = reap(init);
                if exit_code.is_some() {
                    exited_at = Some(Instant::now());
                }
            } else {
                let _ = reap(-1);
            }
        }
        if ready[3] {
            ctl::serve_one(listener, || log.reopen());
        }
    }
}

/// Reaps every exited child; returns the init's exit code if it was among them.
fn reap(init: i32) -> Option<i32> {
    let mut found = None;
    loop {
        match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(pid, code)) if pid.as_raw() == init => found = Some(code),
            Ok(WaitStatus::Signaled(pid, sig, _)) if pid.as_raw() == init => {
                found = Some(128 + sig as i32)
            }
            Ok(WaitStatus::StillAlive) | Err(_) => return found,
            Ok(_) => {}
        }
    }
}
