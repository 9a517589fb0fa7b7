//! Starting a unit's command (systemd.exec(5)).
//!
//! Everything that can fail for a reason worth naming (the program, the working folder,
//! the output file, the cgroup) is opened or checked before `fork`, so the error is PID
//! 1's to report with the path. Between `fork` and `exec` the child only makes
//! async-signal-safe system calls on values prepared before: its own session, the cgroup
//! (writing `0` to a `cgroup.procs` opened before), umask, nice, resource limits,
//! `oom_score_adj`, the sandbox, groups and user, the working folder, no_new_privs, default
//! signals (SIGPIPE ignored unless `IgnoreSIGPIPE=no`, as systemd), the socket descriptors,
//! the seccomp filters (last, as systemd loads them); then it calls `execve`
//! itself with the argv and environment prepared before ([`super::exec_env`]). A step that
//! fails there is named back to PID 1 ([`super::child_report`]): the error says
//! `ReadWritePaths=/srv/a: bind mount: ...`, not the program's name.

use std::ffi::CString;
use std::fs::OpenOptions;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use nix::sys::signal::{self, SigHandler, SigSet, SigmaskHow, Signal};

use super::child_report::{
    self, at, ChildFailure, ChildReport, ReportPipe, Reporter, Step, NO_INDEX,
};
use super::exec_env::PreparedExec;
use super::journal_stream::{PreparedStream, StreamHeader, JOURNAL_STDOUT_SOCKET};
use super::sandbox::Sandbox;
use super::seccomp::SeccompProgram;
use super::terminal::{PreparedTerminal, TerminalSpawn};

/// Where a standard stream of a unit's process goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    Null,
    /// `/dev/console` (StandardOutput=tty or +console).
    Console,
    /// A terminal, written to (StandardOutput=tty with standard input not a terminal).
    Terminal(PathBuf),
    /// Standard input's terminal (`inherit` or `tty` with StandardInput=tty).
    Stdin,
    /// A file, appended to (created 0644 if missing).
    Append(PathBuf),
    /// A file, truncated first.
    Truncate(PathBuf),
    /// The journal's stream socket, connected by the child (see [`super::journal_stream`]).
    Journal(StreamHeader),
}

/// One command of a unit, ready to start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandSpawn {
    /// The unit, for messages.
    pub unit: String,
    pub program: PathBuf,
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
    pub working_directory: PathBuf,
    /// `WorkingDirectory=-...`: a folder that cannot be entered is no error; the command
    /// runs in PID 1's own (`/`), as systemd's does in its manager's.
    pub working_directory_missing_ok: bool,
    /// The unit's cgroup folder (`/sys/fs/cgroup/system.slice/foo.service`), joined
    /// before `exec`.
    pub cgroup: Option<PathBuf>,
    /// The terminal on standard input (`StandardInput=tty*`); `/dev/null` without.
    pub stdin: Option<TerminalSpawn>,
    pub stdout: Output,
    pub stderr: Output,
    pub umask: u32,
    pub nice: Option<i32>,
    pub oom_score_adjust: Option<i32>,
    /// `(resource, soft, hard)`, `None` for infinity.
    pub rlimits: Vec<(i32, Option<u64>, Option<u64>)>,
    /// `(uid, gid, supplementary gids)`; `None` runs as root.
    pub credentials: Option<(u32, u32, Vec<u32>)>,
    pub no_new_privileges: bool,
    /// `IgnoreSIGPIPE=`: SIGPIPE ignored rather than at its default like every other signal.
    pub ignore_sigpipe: bool,
    /// Set `$WATCHDOG_PID` to the process's own PID (the main process of a service with a
    /// watchdog).
    pub watchdog_pid: bool,
    /// `AmbientCapabilities=` (bit n for capability n), kept through the change of user.
    pub ambient_capabilities: u64,
    /// Its own mount namespace and bounding set ([`super::sandbox`]).
    pub sandbox: Option<Sandbox>,
    /// Seccomp filters ([`super::seccomp`]), installed in this order right before `execve`.
    pub seccomp: Vec<SeccompProgram>,
    /// A seccomp setting asks for no_new_privs unless the process still has CAP_SYS_ADMIN
    /// when it gets there (after the change of user), as systemd 252 implies
    /// `NoNewPrivileges=yes` (context_has_no_new_privileges).
    pub seccomp_implies_no_new_privileges: bool,
    /// Socket units' descriptors (PID 1's, close-on-exec) and their names, handed over at
    /// 3.. with `$LISTEN_FDS`, `$LISTEN_FDNAMES` and `$LISTEN_PID` (sd_listen_fds(3)).
    pub listen_fds: Vec<(RawFd, String)>,
}

impl CommandSpawn {
    /// `argv` of `program` for `unit`, with nothing else asked for: no terminal, output to
    /// `/dev/null`, as root in `/`, umask 022, no cgroup, limits or sandbox. Callers set
    /// the fields they need (PID 1 sets them all, from the unit).
    pub fn new(unit: &str, program: &Path, argv: Vec<String>) -> CommandSpawn {
        CommandSpawn {
            unit: unit.to_owned(),
            program: program.to_path_buf(),
            argv,
            env: Vec::new(),
            working_directory: PathBuf::from("/"),
            working_directory_missing_ok: false,
            cgroup: None,
            stdin: None,
            stdout: Output::Null,
            stderr: Output::Null,
            umask: 0o022,
            nice: None,
            oom_score_adjust: None,
            rlimits: Vec::new(),
            credentials: None,
            no_new_privileges: false,
            ignore_sigpipe: false,
            watchdog_pid: false,
            ambient_capabilities: 0,
            sandbox: None,
            seccomp: Vec::new(),
            seccomp_implies_no_new_privileges: false,
            listen_fds: Vec::new(),
        }
    }
}

fn open_output(out: &Output) -> io::Result<Stdio> {
    Ok(match out {
        Output::Null => Stdio::null(),
        Output::Console => Stdio::from(
            OpenOptions::new()
                .write(true)
                .custom_flags(nix::libc::O_NOCTTY)
                .open("/dev/console")?,
        ),
        Output::Terminal(p) => Stdio::from(
            OpenOptions::new()
                .write(true)
                .custom_flags(nix::libc::O_NOCTTY)
                .open(p)?,
        ),
        // Replaced in the child, by the terminal it takes.
        Output::Stdin => Stdio::null(),
        Output::Append(p) => Stdio::from(
            OpenOptions::new()
                .create(true)
                .append(true)
                .mode(0o644)
                .open(p)?,
        ),
        Output::Truncate(p) => Stdio::from(
            OpenOptions::new()
                .create(true)
                .write(true)
                .truncate(true)
                .mode(0o644)
                .open(p)?,
        ),
        // Replaced in the child, which connects to the journal itself.
        Output::Journal(_) => Stdio::null(),
    })
}

/// The journal streams to attach in the child: one connection shared by standard output
/// and error when both go to the journal with the same header (as systemd does).
fn journal_streams(spec: &CommandSpawn) -> io::Result<Vec<(PreparedStream, Vec<i32>)>> {
    let prepare = |h: &StreamHeader| PreparedStream::new(JOURNAL_STDOUT_SOCKET, h);
    Ok(match (&spec.stdout, &spec.stderr) {
        (Output::Journal(a), Output::Journal(b)) if a == b => vec![(prepare(a)?, vec![1, 2])],
        (out, err) => {
            let mut v = Vec::new();
            if let Output::Journal(h) = out {
                v.push((prepare(h)?, vec![1]));
            }
            if let Output::Journal(h) = err {
                v.push((prepare(h)?, vec![2]));
            }
            v
        }
    })
}

/// Why a command did not start.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    /// Before the fork (opening the output, the cgroup; a NUL byte), or the fork itself.
    #[error("cannot start {program}: {source}", program = program.display())]
    Prepare { program: PathBuf, source: io::Error },
    /// In the child (PID `pid`, reaped already), at `step`: `what` names the setting and
    /// the operation; the errno is said as strerror(3) words, as systemd says it.
    #[error("{what}: {}", errno_words(source))]
    Child {
        what: String,
        step: Step,
        pid: u32,
        source: io::Error,
    },
}

/// strerror(3)'s words alone, without std's ` (os error N)`.
pub fn errno_words(e: &io::Error) -> String {
    let text = e.to_string();
    match e.raw_os_error() {
        Some(n) => text
            .strip_suffix(&format!(" (os error {n})"))
            .map_or(text.clone(), str::to_owned),
        None => text,
    }
}

impl SpawnError {
    /// The `failure` of `spec`'s child `pid`, in the unit's words.
    pub fn child(spec: &CommandSpawn, failure: &ChildFailure, pid: u32) -> SpawnError {
        SpawnError::Child {
            what: child_report::describe(spec, failure),
            step: failure.step,
            pid,
            source: failure.error(),
        }
    }

    /// systemd's step (`NAMESPACE`) for a failure in the child.
    pub fn step(&self) -> Option<Step> {
        match self {
            SpawnError::Child { step, .. } => Some(*step),
            SpawnError::Prepare { .. } => None,
        }
    }

    /// The child that failed before `execve` and the exit status systemd records for it
    /// (the step's); `None` when no child ran.
    pub fn exited_child(&self) -> Option<(u32, i32)> {
        match self {
            SpawnError::Child { step, pid, .. } => Some((*pid, i32::from(step.exit_status()))),
            SpawnError::Prepare { .. } => None,
        }
    }
}

/// Starts `spec`; returns its PID. PID 1 reaps it from SIGCHLD.
pub fn spawn(spec: &CommandSpawn) -> Result<u32, SpawnError> {
    let prepare = |source: io::Error| SpawnError::Prepare {
        program: spec.program.clone(),
        source,
    };
    let pid = spawn_child(spec).map_err(prepare)?;
    pid.map_err(|r| SpawnError::child(spec, &r.failure, r.pid))
}

fn spawn_child(spec: &CommandSpawn) -> io::Result<Result<u32, ChildReport>> {
    let with = |what: &str, path: &Path, e: io::Error| {
        io::Error::new(e.kind(), format!("{what} {}: {e}", path.display()))
    };
    let cgroup_procs = match &spec.cgroup {
        Some(dir) => {
            let p = dir.join("cgroup.procs");
            Some(
                OpenOptions::new()
                    .write(true)
                    .open(&p)
                    .map_err(|e| with("cannot open", &p, e))?,
            )
        }
        None => None,
    };
    // Written by the child to its own /proc/self (a descriptor opened here would be PID
    // 1's); the text is prepared before the fork.
    let oom = spec.oom_score_adjust.map(|v| format!("{v}\n").into_bytes());
    let stdout = open_output(&spec.stdout)
        .map_err(|e| io::Error::new(e.kind(), format!("standard output: {e}")))?;
    let stderr = open_output(&spec.stderr)
        .map_err(|e| io::Error::new(e.kind(), format!("standard error: {e}")))?;
    let journal = journal_streams(spec)?;
    let terminal = match &spec.stdin {
        Some(t) => Some(PreparedTerminal::new(
            t,
            spec.stdout == Output::Stdin,
            spec.stderr == Output::Stdin,
        )?),
        None => None,
    };
    let groups: Vec<nix::unistd::Gid> = spec
        .credentials
        .as_ref()
        .map(|(_, _, g)| g.iter().map(|g| nix::unistd::Gid::from_raw(*g)).collect())
        .unwrap_or_default();
    let sandbox = match &spec.sandbox {
        Some(s) => {
            let last_cap = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
                .ok()
                .and_then(|t| t.trim().parse::<u32>().ok())
                .unwrap_or(63);
            Some(s.prepare(last_cap).map_err(|e| {
                io::Error::new(io::ErrorKind::InvalidInput, format!("sandbox path: {e}"))
            })?)
        }
        None => None,
    };
    let nul = |e| io::Error::new(io::ErrorKind::InvalidInput, format!("NUL byte: {e}"));
    let mut env = spec.env.clone();
    let mut pid_vars = Vec::new();
    if spec.watchdog_pid {
        pid_vars.push("WATCHDOG_PID");
    }
    let listen: Vec<RawFd> = spec.listen_fds.iter().map(|(fd, _)| *fd).collect();
    env.retain(|(k, _)| !k.starts_with("LISTEN_"));
    if !listen.is_empty() {
        let names: Vec<&str> = spec.listen_fds.iter().map(|(_, n)| n.as_str()).collect();
        env.push(("LISTEN_FDS".into(), listen.len().to_string()));
        env.push(("LISTEN_FDNAMES".into(), names.join(":")));
        pid_vars.push("LISTEN_PID");
    }
    let mut exec = PreparedExec::new(&spec.program, &spec.argv, &env, &pid_vars).map_err(nul)?;
    let working_directory =
        CString::new(spec.working_directory.as_os_str().as_bytes()).map_err(nul)?;
    let working_directory_missing_ok = spec.working_directory_missing_ok;
    let report = ReportPipe::new()?;
    let reporter = report.reporter();
    // std sets up the standard streams; the closure below does the rest and executes.
    let mut command = Command::new(&spec.program);
    command.stdin(Stdio::null()).stdout(stdout).stderr(stderr);
    let umask = spec.umask;
    let nice = spec.nice;
    let rlimits = spec.rlimits.clone();
    let credentials = spec.credentials.as_ref().map(|(u, g, _)| (*u, *g));
    let no_new_privs = spec.no_new_privileges;
    let implied_no_new_privs = spec.seccomp_implies_no_new_privileges;
    let seccomp = spec.seccomp.clone();
    let ignore_sigpipe = spec.ignore_sigpipe;
    let ambient = spec.ambient_capabilities;
    // The strings for `write` are prepared here; the child only calls write(2).
    let procs_fd = cgroup_procs.as_ref().map(|f| f.as_raw_fd());

    let prepare_child = move || -> Result<(), ChildFailure> {
        at(Step::Setsid, NO_INDEX, nix::unistd::setsid())?;
        // The new session's controlling terminal, on the standard descriptors std set.
        if let Some(t) = &terminal {
            t.attach_in_child()?;
        }
        if let Some(fd) = procs_fd {
            at(Step::Cgroup, NO_INDEX, write_fd(fd, b"0"))?;
        }
        // After joining the cgroup, so the journal attributes the stream to the unit.
        for (stream, targets) in &journal {
            let step = match targets.contains(&1) {
                true => Step::Stdout,
                false => Step::Stderr,
            };
            at(step, NO_INDEX, stream.attach_in_child(targets))?;
        }
        // Still root with every capability: mounts, then the bounding set.
        if let Some(s) = &sandbox {
            s.apply_in_child()?;
        }
        if let Some(value) = &oom {
            // SAFETY: a NUL-terminated literal; open(2) is async-signal-safe.
            let fd = unsafe {
                nix::libc::open(
                    c"/proc/self/oom_score_adj".as_ptr(),
                    nix::libc::O_WRONLY | nix::libc::O_CLOEXEC,
                )
            };
            if fd < 0 {
                return at(Step::OomAdjust, NO_INDEX, Err(io::Error::last_os_error()));
            }
            let written = write_fd(fd, value);
            // SAFETY: `fd` was opened just above and is closed once.
            unsafe { nix::libc::close(fd) };
            at(Step::OomAdjust, NO_INDEX, written)?;
        }
        nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(umask));
        if let Some(n) = nice {
            // SAFETY: setpriority takes plain integers; PRIO_PROCESS with 0 is this process.
            let rc = unsafe { nix::libc::setpriority(nix::libc::PRIO_PROCESS, 0, n) };
            if rc < 0 {
                return at(Step::Nice, NO_INDEX, Err(io::Error::last_os_error()));
            }
        }
        for (index, (resource, soft, hard)) in rlimits.iter().enumerate() {
            let lim = nix::libc::rlimit {
                rlim_cur: soft.unwrap_or(nix::libc::RLIM_INFINITY),
                rlim_max: hard.unwrap_or(nix::libc::RLIM_INFINITY),
            };
            // SAFETY: `lim` is a valid rlimit on the stack; the resource is a plain int.
            let rc = unsafe { nix::libc::setrlimit(*resource as _, &lim) };
            if rc < 0 {
                return at(Step::Limits, index as u32, Err(io::Error::last_os_error()));
            }
        }
        if ambient != 0 {
            at(
                Step::Capabilities,
                NO_INDEX,
                super::caps::keep_through_setuid(),
            )?;
        }
        if let Some((uid, gid)) = credentials {
            at(Step::Group, NO_INDEX, nix::unistd::setgroups(&groups))?;
            at(
                Step::Group,
                NO_INDEX,
                nix::unistd::setgid(nix::unistd::Gid::from_raw(gid)),
            )?;
            at(
                Step::User,
                NO_INDEX,
                nix::unistd::setuid(nix::unistd::Uid::from_raw(uid)),
            )?;
        }
        // After the mounts (the folder may be a private or bound one) and as the user, as
        // systemd does (the folder may be on a share only the user can read).
        let entered = nix::unistd::chdir(working_directory.as_c_str());
        if !(entered.is_err() && working_directory_missing_ok) {
            at(Step::Chdir, NO_INDEX, entered)?;
        }
        if ambient != 0 {
            at(
                Step::Capabilities,
                NO_INDEX,
                super::caps::raise_ambient(ambient),
            )?;
        }
        if no_new_privs
            || (implied_no_new_privs && !super::caps::effective_has(super::caps::CAP_SYS_ADMIN))
        {
            at(
                Step::NoNewPrivileges,
                NO_INDEX,
                nix::sys::prctl::set_no_new_privs(),
            )?;
        }
        at(
            Step::SignalMask,
            NO_INDEX,
            signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None),
        )?;
        for sig in Signal::iterator() {
            if !matches!(sig, Signal::SIGKILL | Signal::SIGSTOP) {
                // SAFETY: SIG_DFL installs no handler code.
                let _ = unsafe { signal::signal(sig, SigHandler::SigDfl) };
            }
        }
        if ignore_sigpipe {
            // SAFETY: SIG_IGN installs no handler code; an ignored signal stays ignored
            // across execve(2).
            let _ = unsafe { signal::signal(Signal::SIGPIPE, SigHandler::SigIgn) };
        }
        Ok(())
    };
    let mut reporter = reporter;
    let mut high: Vec<RawFd> = vec![0; listen.len()];
    let setup = move || -> io::Result<()> {
        // Last, after every step that may still use a descriptor of PID 1's.
        let placed = prepare_child()
            .and_then(|()| {
                let placed = place_fds(&listen, &mut high, &mut reporter);
                at(Step::Fds, NO_INDEX, placed)
            })
            // The filters last, so that nothing of the set-up runs under them.
            .and_then(|()| install_seccomp(&seccomp));
        let failure = match placed {
            Ok(()) => ChildFailure::at(Step::Exec, NO_INDEX, &exec.exec_in_child()),
            Err(f) => f,
        };
        reporter.report(&failure);
        Err(failure.error())
    };
    // SAFETY: PID 1 is single-threaded, so the forked child holds no lock another thread
    // could own; `setup` makes only async-signal-safe calls on values captured before the
    // fork (setgroups takes a prepared slice) and allocates nothing.
    unsafe { command.pre_exec(setup) };
    let spawned = command.spawn();
    drop(cgroup_procs);
    match spawned {
        Ok(child) => Ok(Ok(child.id())),
        // The child's record, written before the error reached std; none when std's own
        // set-up (the standard streams) or the fork failed.
        Err(e) => match report.take() {
            Some(failure) => Ok(Err(failure)),
            None => Err(e),
        },
    }
}

/// In the child: `fds` at 3, 4, ... without close-on-exec, as sd_listen_fds(3) expects.
/// Everything still needed (the descriptors and the report pipe) is first moved above the
/// target range, so that no `dup2` closes one that is still to be placed.
/// `high` is room for the moved numbers, allocated before the fork.
fn place_fds(fds: &[RawFd], high: &mut [RawFd], reporter: &mut Reporter) -> io::Result<()> {
    if fds.is_empty() {
        return Ok(());
    }
    const FIRST: RawFd = 3;
    let above = FIRST + fds.len() as RawFd;
    let moved = |fd: RawFd| -> io::Result<RawFd> {
        // SAFETY: fcntl(F_DUPFD_CLOEXEC) takes an open descriptor and a plain integer;
        // it is async-signal-safe and returns the lowest free number >= `above`.
        let new = unsafe { nix::libc::fcntl(fd, nix::libc::F_DUPFD_CLOEXEC, above) };
        if new < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(new)
    };
    if reporter.0 < above {
        reporter.0 = moved(reporter.0)?;
    }
    for (slot, fd) in high.iter_mut().zip(fds) {
        *slot = moved(*fd)?;
    }
    for (i, fd) in high[..fds.len()].iter().enumerate() {
        // SAFETY: dup2 of an open descriptor onto a number in the target range; the copy
        // is without close-on-exec. Whatever was at that number is no longer needed.
        if unsafe { nix::libc::dup2(*fd, FIRST + i as RawFd) } < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// In the child: each filter in order. A refusal (EPERM, EACCES) ends the start at the
/// filter's step; any other error (a kernel without seccomp) skips it, as systemd does.
fn install_seccomp(programs: &[SeccompProgram]) -> Result<(), ChildFailure> {
    for (index, p) in programs.iter().enumerate() {
        if let Err(e) = super::seccomp::install(&p.insns) {
            if super::seccomp::is_fatal(&e) {
                return Err(ChildFailure::at(p.step, index as u32, &e));
            }
        }
    }
    Ok(())
}

fn write_fd(fd: i32, bytes: &[u8]) -> io::Result<()> {
    // SAFETY: `bytes` is a valid slice; `fd` was opened by the parent before the fork and
    // is open in the child.
    let rc = unsafe { nix::libc::write(fd, bytes.as_ptr().cast(), bytes.len()) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
