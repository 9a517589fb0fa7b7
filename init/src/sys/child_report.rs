//! Which step failed in a unit's child between `fork` and `execve`, and why.
//!
//! std's `Command::spawn` carries a failure of the child back as a bare errno, which the
//! caller can only report with the program's name (`/bin/sh: No such file or directory`,
//! when really a `ReadWritePaths=` bind mount failed). systemd names the step instead
//! (`Failed at step NAMESPACE spawning /bin/sh`, and the exit status `226/NAMESPACE`). So
//! the child writes one fixed-size record (step, index within the step, errno, its own
//! PID) into a close-on-exec pipe made before the fork: one `write(2)` of a stack buffer,
//! no allocation. The parent reads it once the spawn has failed and turns it into a
//! sentence that names the setting ([`describe`]); the PID and the step's exit status are
//! what systemd records of such a process (`Main PID: N (code=exited, status=226/NAMESPACE)`).

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use super::service_spawn::CommandSpawn;

/// A step of the child's set-up, with systemd's name and exit status (systemd.exec(5),
/// "Process Exit Codes").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum Step {
    Chdir = 200,
    Nice = 201,
    Fds = 202,
    Exec = 203,
    Limits = 205,
    OomAdjust = 206,
    SignalMask = 207,
    Stdin = 208,
    Stdout = 209,
    Group = 216,
    User = 217,
    Capabilities = 218,
    Cgroup = 219,
    Setsid = 220,
    Stderr = 222,
    Network = 225,
    Namespace = 226,
    NoNewPrivileges = 227,
    Seccomp = 228,
    AddressFamilies = 232,
}

const STEPS: [Step; 20] = [
    Step::Seccomp,
    Step::AddressFamilies,
    Step::Network,
    Step::Chdir,
    Step::Nice,
    Step::Fds,
    Step::Exec,
    Step::Limits,
    Step::OomAdjust,
    Step::SignalMask,
    Step::Stdin,
    Step::Stdout,
    Step::Group,
    Step::User,
    Step::Capabilities,
    Step::Cgroup,
    Step::Setsid,
    Step::Stderr,
    Step::Namespace,
    Step::NoNewPrivileges,
];

impl Step {
    /// systemd's name of the step (`NAMESPACE`).
    pub fn name(self) -> &'static str {
        crate::unit::exit_status::name(self as i32).unwrap_or("?")
    }

    /// The exit status systemd gives a child that fails at this step.
    pub fn exit_status(self) -> u8 {
        self as u32 as u8
    }

    fn from_code(code: u32) -> Option<Step> {
        STEPS.into_iter().find(|s| *s as u32 == code)
    }
}

/// Index value of a step that is not one of a list (the namespace's own `unshare`).
pub const NO_INDEX: u32 = u32::MAX;

/// The record: step, index (which mount, which limit, which capability), errno.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChildFailure {
    pub step: Step,
    pub index: u32,
    pub errno: i32,
}

/// Bytes of one record: four native-endian 32-bit words.
pub const RECORD_LEN: usize = 16;

/// What the child reports: its failure, and its PID (std reaps the child and keeps its
/// PID to itself when the spawn fails).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChildReport {
    pub failure: ChildFailure,
    pub pid: u32,
}

impl ChildReport {
    pub fn encode(&self) -> [u8; RECORD_LEN] {
        let f = &self.failure;
        let mut out = [0; RECORD_LEN];
        out[0..4].copy_from_slice(&(f.step as u32).to_ne_bytes());
        out[4..8].copy_from_slice(&f.index.to_ne_bytes());
        out[8..12].copy_from_slice(&f.errno.to_ne_bytes());
        out[12..16].copy_from_slice(&self.pid.to_ne_bytes());
        out
    }

    /// `None` for a short record or an unknown step.
    pub fn decode(bytes: &[u8]) -> Option<ChildReport> {
        let word = |i: usize| -> Option<[u8; 4]> { bytes.get(i..i + 4)?.try_into().ok() };
        Some(ChildReport {
            failure: ChildFailure {
                step: Step::from_code(u32::from_ne_bytes(word(0)?))?,
                index: u32::from_ne_bytes(word(4)?),
                errno: i32::from_ne_bytes(word(8)?),
            },
            pid: u32::from_ne_bytes(word(12)?),
        })
    }
}

impl ChildFailure {
    /// `e`'s errno (EIO when it has none) at `step`, item `index`.
    pub fn at(step: Step, index: u32, e: &io::Error) -> ChildFailure {
        ChildFailure {
            step,
            index,
            errno: e.raw_os_error().unwrap_or(nix::libc::EIO),
        }
    }

    pub fn error(&self) -> io::Error {
        io::Error::from_raw_os_error(self.errno)
    }
}

/// Shorthand for the child: the step of a result.
pub fn at<T, E: Into<io::Error>>(
    step: Step,
    index: u32,
    r: Result<T, E>,
) -> Result<T, ChildFailure> {
    r.map_err(|e| ChildFailure::at(step, index, &e.into()))
}

/// The pipe, both ends close-on-exec and non-blocking: an `execve` that succeeds closes
/// the child's end with nothing written.
pub struct ReportPipe {
    read: OwnedFd,
    write: OwnedFd,
}

/// The child's end, as a plain descriptor number (copied into the child's closure).
#[derive(Debug, Clone, Copy)]
pub struct Reporter(pub(super) RawFd);

impl ReportPipe {
    pub fn new() -> io::Result<ReportPipe> {
        let mut fds = [0; 2];
        // SAFETY: pipe2 writes two descriptors into `fds`, which lives on this stack.
        let rc = unsafe {
            nix::libc::pipe2(
                fds.as_mut_ptr(),
                nix::libc::O_CLOEXEC | nix::libc::O_NONBLOCK,
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: both descriptors were just made by pipe2 and are owned by nothing else.
        let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        Ok(ReportPipe { read, write })
    }

    pub fn reporter(&self) -> Reporter {
        Reporter(self.write.as_raw_fd())
    }

    /// After a failed spawn: the child's record, if it wrote one (it does before its
    /// set-up returns the error to std, so before `spawn` returns).
    pub fn take(self) -> Option<ChildReport> {
        drop(self.write);
        let mut buf = [0u8; RECORD_LEN];
        // SAFETY: reads at most RECORD_LEN bytes into `buf` on this stack.
        let n =
            unsafe { nix::libc::read(self.read.as_raw_fd(), buf.as_mut_ptr().cast(), RECORD_LEN) };
        if n != RECORD_LEN as isize {
            return None;
        }
        ChildReport::decode(&buf)
    }
}

impl Reporter {
    /// In the child: one `write(2)` of the record with the child's PID (16 bytes into an
    /// empty pipe: never short, never blocking). Nothing to do if it fails: the errno
    /// still reaches std.
    pub fn report(&self, failure: &ChildFailure) {
        let pid = nix::unistd::getpid().as_raw() as u32;
        let bytes = ChildReport {
            failure: *failure,
            pid,
        }
        .encode();
        // SAFETY: `bytes` is a stack buffer of RECORD_LEN bytes; the descriptor was made
        // before the fork and is open in the child.
        let _ = unsafe { nix::libc::write(self.0, bytes.as_ptr().cast(), RECORD_LEN) };
    }
}

/// `Limit*=` names and their `setrlimit` resources, one table for both ways.
pub const RLIMITS: [(&str, i32); 16] = {
    use nix::libc::*;
    [
        ("CPU", RLIMIT_CPU as i32),
        ("FSIZE", RLIMIT_FSIZE as i32),
        ("DATA", RLIMIT_DATA as i32),
        ("STACK", RLIMIT_STACK as i32),
        ("CORE", RLIMIT_CORE as i32),
        ("RSS", RLIMIT_RSS as i32),
        ("NOFILE", RLIMIT_NOFILE as i32),
        ("AS", RLIMIT_AS as i32),
        ("NPROC", RLIMIT_NPROC as i32),
        ("MEMLOCK", RLIMIT_MEMLOCK as i32),
        ("LOCKS", RLIMIT_LOCKS as i32),
        ("SIGPENDING", RLIMIT_SIGPENDING as i32),
        ("MSGQUEUE", RLIMIT_MSGQUEUE as i32),
        ("NICE", RLIMIT_NICE as i32),
        ("RTPRIO", RLIMIT_RTPRIO as i32),
        ("RTTIME", RLIMIT_RTTIME as i32),
    ]
};

/// The setting and the operation that failed, in the unit's own words
/// (`ReadWritePaths=/srv/a: bind mount`); the errno follows in [`super::service_spawn::SpawnError`].
pub fn describe(spec: &CommandSpawn, f: &ChildFailure) -> String {
    let index = f.index as usize;
    match f.step {
        Step::Namespace => match &spec.sandbox {
            Some(s) if f.index != NO_INDEX => s.describe_mount(index),
            _ => "mount namespace: unshare".into(),
        },
        Step::Capabilities => match &spec.sandbox {
            Some(_) if f.index != NO_INDEX => format!(
                "CapabilityBoundingSet=: drop {}",
                crate::unit::capability::name_of(f.index)
            ),
            _ => "AmbientCapabilities=: raise".into(),
        },
        Step::Chdir => format!(
            "WorkingDirectory={}: chdir",
            spec.working_directory.display()
        ),
        Step::Nice => format!("Nice={}: setpriority", spec.nice.unwrap_or_default()),
        Step::Limits => {
            let name = spec
                .rlimits
                .get(index)
                .and_then(|(r, _, _)| RLIMITS.iter().find(|(_, n)| n == r))
                .map_or("?", |(name, _)| name);
            format!("Limit{name}=: setrlimit")
        }
        Step::OomAdjust => format!(
            "OOMScoreAdjust={}: /proc/self/oom_score_adj",
            spec.oom_score_adjust.unwrap_or_default()
        ),
        Step::Group => format!(
            "Group={}: setgid",
            spec.credentials.as_ref().map_or(0, |(_, g, _)| *g)
        ),
        Step::User => format!(
            "User={}: setuid",
            spec.credentials.as_ref().map_or(0, |(u, _, _)| *u)
        ),
        Step::Cgroup => match &spec.cgroup {
            Some(dir) => format!("cgroup {}: join", dir.display()),
            None => "cgroup: join".into(),
        },
        Step::Stdin => match &spec.stdin {
            Some(t) => format!(
                "TTYPath={}: {}",
                t.path.display(),
                super::terminal::TerminalStep::describe(f.index)
            ),
            None => "StandardInput=".into(),
        },
        Step::Stdout => "StandardOutput=journal: connect".into(),
        Step::Stderr => "StandardError=journal: connect".into(),
        Step::Setsid => "setsid".into(),
        Step::Network => "PrivateNetwork=yes: network namespace".into(),
        Step::Fds => format!("{} socket descriptors: dup2", spec.listen_fds.len()),
        Step::SignalMask => "signal mask".into(),
        Step::NoNewPrivileges => "NoNewPrivileges=yes: prctl".into(),
        Step::Seccomp | Step::AddressFamilies => match spec.seccomp.get(index) {
            Some(p) => format!("{} seccomp filter", p.setting),
            None => "seccomp filter".into(),
        },
        Step::Exec => format!("cannot start {}", spec.program.display()),
    }
}

#[cfg(test)]
#[path = "child_report_tests.rs"]
mod tests;
