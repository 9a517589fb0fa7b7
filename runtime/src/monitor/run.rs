//! The detached monitor: create the container (with pipes, or a pty when its spec asks
//! for a terminal), then relay its output to the CRI log and to attached clients until
//! its init exits and its outputs close, feed its stdin from attached clients when the
//! config keeps stdin open, and write the exit record.

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

use super::attach::{self, Attachments, StdinSink};
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

/// Reports readiness (or failure) to the daemon, then puts /dev/null on stdout: the
/// daemon reads the pipe to its end, which must come now, not when the container exits.
fn ready(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
    if let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") {
        let _ = nix::unistd::dup2_stdout(null.as_fd());
    }
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

    let stdio = StdioConfig::of(&paths);
    let runtime = OciRuntime {
        binary: args.runtime.clone(),
        root: args.runtime_root.clone(),
        exec: args.runtime_exec.clone(),
    };
    let _ = std::fs::remove_file(&paths.runtime_log);
    let console = stdio.tty.then(|| {
        std::env::temp_dir().join(format!(
            "berth-console-{}-{}.sock",
            &args.id[..args.id.len().min(12)],
            me.pid
        ))
    });
    let console_listener = match &console {
        Some(path) => {
            let _ = std::fs::remove_file(path);
            Some(
                UnixListener::bind(path)
                    .map_err(|e| fail(format!("binding {}: {e}", path.display())))?,
            )
        }
        None => None,
    };
    let mut create = runtime.create_command(
        &args.id,
        &args.bundle,
        &paths.pid_file,
        &paths.runtime_log,
        console.as_deref(),
    );
    let mut outputs = Vec::new();
    let mut stdin_sink = None;
    if stdio.tty {
        create
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
    } else {
        let (out_r, out_w) =
            nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| fail(format!("pipe: {e}")))?;
        let (err_r, err_w) =
            nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| fail(format!("pipe: {e}")))?;
        outputs.push((out_r, Stream::Stdout));
        outputs.push((err_r, Stream::Stderr));
        create.stdout(Stdio::from(out_w)).stderr(Stdio::from(err_w));
        if stdio.stdin {
            let (in_r, in_w) =
                nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| fail(format!("pipe: {e}")))?;
            create.stdin(Stdio::from(in_r));
            stdin_sink = Some(StdinSink::new(in_w));
        } else {
            create.stdin(Stdio::null());
        }
    }
    let status = create
        .status()
        .map_err(|e| fail(format!("running {}: {e}", args.runtime.display())));
    // Drop our copies of the child's pipe ends (the Command held them).
    drop(create);
    let status = status?;
    if !status.success() {
        if let Some(path) = &console {
            let _ = std::fs::remove_file(path);
        }
        return Err(fail(format!(
            "{} create: {}",
            args.runtime.display(),
            runtime_error(&paths)
        )));
    }
    let mut resize_fd = None;
    if let (Some(listener), Some(path)) = (console_listener, &console) {
        // The runtime connected and sent the master during `create`; it waits queued.
        let master = listener
            .accept()
            .map_err(|e| fail(format!("console socket: {e}")))
            .and_then(|(s, _)| {
                crate::stream::sys::recv_fd(&s).map_err(|e| fail(format!("receiving the pty: {e}")))
            });
        let _ = std::fs::remove_file(path);
        let master = master?;
        let dup = |fd: &OwnedFd| fd.try_clone().map_err(|e| fail(format!("dup: {e}")));
        stdin_sink = Some(StdinSink::new(dup(&master)?));
        resize_fd = Some(dup(&master)?);
        outputs.push((master, Stream::Stdout));
    }
    let init = std::fs::read_to_string(&paths.pid_file)
        .ok()
        .and_then(|s| s.trim().parse::<i32>().ok())
        .ok_or_else(|| fail(format!("no pid in {}", paths.pid_file.display())))?;
    ready(&format!("{READY} {init} {}", me.pid));

    let mut io = RelayIo {
        outputs,
        stdin: stdin_sink,
        stdin_once: stdio.stdin_once,
        resize: resize_fd,
        attachments: Attachments::default(),
    };
    let exit_code = relay(init, &mut io, &signals, &listener, &mut log);
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

/// The container's stdio as the monitor holds it.
struct RelayIo {
    /// Output descriptors (pipes, or the pty master as stdout).
    outputs: Vec<(OwnedFd, Stream)>,
    /// The container's stdin, when the config keeps it open for Attach.
    stdin: Option<StdinSink>,
    stdin_once: bool,
    /// The pty master, for terminal sizes.
    resize: Option<OwnedFd>,
    attachments: Attachments,
}

/// What the bundle's spec says about the container's stdio.
struct StdioConfig {
    tty: bool,
    stdin: bool,
    stdin_once: bool,
}

impl StdioConfig {
    fn of(paths: &ContainerPaths) -> Self {
        let config: serde_json::Value = std::fs::read(&paths.config)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        let annotation = |name: &str| config["annotations"][name].as_str() == Some("true");
        StdioConfig {
            tty: config["process"]["terminal"].as_bool().unwrap_or(false),
            stdin: annotation(super::ANNOTATION_STDIN),
            stdin_once: annotation(super::ANNOTATION_STDIN_ONCE),
        }
    }
}

/// Copies the container's output to the log (and attached clients) until the init has
/// exited and the outputs closed (or [`DRAIN`] passed); returns the init's exit code
/// (128 + signal if killed).
fn relay(
    init: i32,
    io: &mut RelayIo,
    signals: &SignalFd,
    listener: &UnixListener,
    log: &mut CriLogWriter,
) -> i32 {
    let mut open: Vec<bool> = io.outputs.iter().map(|_| true).collect();
    let mut exit_code: Option<i32> = None;
    let mut exited_at: Option<Instant> = None;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        if let Some(code) = exit_code {
            let drained = exited_at.is_some_and(|t| t.elapsed() >= DRAIN);
            if !open.iter().any(|o| *o) || drained {
                for (_, s) in &io.outputs {
                    let _ = log.finish(*s);
                }
                io.attachments.close_all();
                return code;
            }
        }
        let timeout = match exited_at {
            Some(t) => PollTimeout::try_from(DRAIN.saturating_sub(t.elapsed()))
                .unwrap_or(PollTimeout::ZERO),
            None => PollTimeout::NONE,
        };
        let none = PollFlags::empty();
        let mut fds: Vec<PollFd> = io
            .outputs
            .iter()
            .zip(&open)
            .map(|((fd, _), open)| {
                PollFd::new(fd.as_fd(), if *open { PollFlags::POLLIN } else { none })
            })
            .collect();
        let n_out = fds.len();
        fds.push(PollFd::new(signals.as_fd(), PollFlags::POLLIN));
        fds.push(PollFd::new(listener.as_fd(), PollFlags::POLLIN));
        let stdin_waiting = io.stdin.as_ref().and_then(|s| s.waiting());
        fds.push(match stdin_waiting {
            Some(fd) => PollFd::new(fd, PollFlags::POLLOUT),
            None => PollFd::new(signals.as_fd(), none),
        });
        let clients = io.attachments.fds();
        let n_clients = clients.len();
        for (fd, pending) in clients {
            let mut flags = PollFlags::POLLIN;
            if pending {
                flags |= PollFlags::POLLOUT;
            }
            fds.push(PollFd::new(fd, flags));
        }
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
        drop(fds);
        for i in 0..n_out {
            if open[i] && ready[i] {
                let stream = io.outputs[i].1;
                match nix::unistd::read(&io.outputs[i].0, &mut buf) {
                    Ok(0) | Err(Errno::EIO) => {
                        // EIO: every process holding the pty's other end has exited.
                        open[i] = false;
                        let _ = log.finish(stream);
                    }
                    Ok(n) => {
                        if let Err(e) = log.write(stream, &buf[..n]) {
                            eprintln!("writing the log: {e}");
                        }
                        let kind = match stream {
                            Stream::Stdout => attach::FRAME_STDOUT,
                            Stream::Stderr => attach::FRAME_STDERR,
                        };
                        io.attachments.broadcast(kind, &buf[..n]);
                    }
                    Err(Errno::EINTR) | Err(Errno::EAGAIN) => {}
                    Err(e) => {
                        eprintln!("reading the container's {stream:?}: {e}");
                        open[i] = false;
                    }
                }
            }
        }
        if ready[n_out] {
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
        if ready[n_out + 1] {
            if let Some(client) = ctl::serve_one(listener, || log.reopen()) {
                if exit_code.is_none() {
                    io.attachments.add(client, io.stdin.is_some());
                }
            }
        }
        if ready[n_out + 2] {
            if let Some(stdin) = &mut io.stdin {
                stdin.flush();
            }
        }
        if n_clients > 0 {
            let readable = &ready[n_out + 3..n_out + 3 + n_clients];
            let requests = io.attachments.ready(readable, io.stdin_once);
            if let Some(stdin) = &mut io.stdin {
                if !requests.stdin.is_empty() {
                    stdin.write(&requests.stdin);
                }
                if requests.close_stdin {
                    stdin.close();
                }
            }
            if let (Some((cols, rows)), Some(fd)) = (requests.resize, &io.resize) {
                let _ = crate::stream::sys::set_winsize(fd.as_fd(), cols, rows);
            }
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
