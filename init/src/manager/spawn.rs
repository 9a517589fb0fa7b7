//! From a unit's `[Service]` to one ready-to-start command: the program found in the fixed
//! search path, `$VAR` expanded with the unit's environment, the working folder, where
//! output goes, the user, limits and the cgroup.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::environment::{self, User};
use super::sandbox;
use super::{Slot, NOTIFY_SOCKET};
use crate::sys::journal_stream::StreamHeader;
use crate::sys::service_spawn::{CommandSpawn, Output};
use crate::sys::terminal::{TerminalMode, TerminalSpawn};
use crate::sys::Syscalls;
use crate::unit::exec::{self, ExecCommand, EXEC_SEARCH_PATH};
use crate::unit::lifecycle::{command_list, CommandSet};
use crate::unit::service::{ServiceType, Stdio};
use crate::unit::terminal::{StandardInput, Terminal};

/// `Limit*=` names to `setrlimit` resources.
fn rlimit_resource(name: &str) -> Option<i32> {
    crate::sys::child_report::RLIMITS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, r)| *r)
}

/// Where a standard stream goes; `journal` is systemd's stream to the journal, with the
/// unit's identifier and level (`journal+console` also asks the journal for the console).
/// With a terminal on standard input, `inherit` and `tty` are that terminal; without,
/// `tty` is `TTYPath=` and `inherit` the console.
fn output(stdio: &Stdio, journal: &StreamHeader, terminal: &Terminal) -> Output {
    match stdio {
        Stdio::Null => Output::Null,
        Stdio::Tty | Stdio::Inherit if terminal.is_input() => Output::Stdin,
        Stdio::Tty if terminal.path != "/dev/console" => {
            Output::Terminal(PathBuf::from(&terminal.path))
        }
        Stdio::Tty | Stdio::Inherit | Stdio::KmsgConsole => Output::Console,
        Stdio::Kmsg => Output::Append("/dev/kmsg".into()),
        Stdio::File(p) | Stdio::Append(p) => Output::Append(p.into()),
        Stdio::Truncate(p) => Output::Truncate(p.into()),
        Stdio::Journal => Output::Journal(journal.clone()),
        Stdio::JournalConsole => Output::Journal(StreamHeader {
            to_console: true,
            ..journal.clone()
        }),
    }
}

/// `StandardInput=tty*`: the terminal the command takes.
fn terminal(t: &Terminal) -> Option<TerminalSpawn> {
    let mode = match t.input {
        StandardInput::Null => return None,
        StandardInput::Tty => TerminalMode::Wait,
        StandardInput::TtyForce => TerminalMode::Force,
        StandardInput::TtyFail => TerminalMode::Fail,
    };
    Some(TerminalSpawn {
        path: PathBuf::from(&t.path),
        mode,
        reset: t.reset,
        vhangup: t.vhangup,
    })
}

/// The program of `cmd`: as written when absolute, else the first of the fixed search path
/// that has it.
fn program(sys: &dyn Syscalls, cmd: &ExecCommand) -> Result<PathBuf, String> {
    if cmd.path.starts_with('/') {
        return Ok(PathBuf::from(&cmd.path));
    }
    EXEC_SEARCH_PATH
        .iter()
        .map(|d| Path::new(d).join(&cmd.path))
        .find(|p| sys.exists(p))
        .ok_or_else(|| format!("{} not found in {}", cmd.path, EXEC_SEARCH_PATH.join(":")))
}

/// The empty, mode 0000 file bound over the files a sandbox hides, made once.
fn inaccessible_file(sys: &dyn Syscalls) -> Result<(), String> {
    let path = Path::new(sandbox::INACCESSIBLE_FILE);
    if sys.exists(path) {
        return Ok(());
    }
    let made = path
        .parent()
        .map_or(Ok(()), |dir| sys.mkdir_mode(dir, 0o755))
        .and_then(|()| sys.write_file(path, b""))
        .and_then(|()| sys.chmod(path, 0));
    made.map_err(|e| format!("{}: {e}", path.display()))
}

pub(super) fn command_spawn(
    sys: &dyn Syscalls,
    slot: &Slot,
    set: CommandSet,
    index: usize,
    cgroup: &Path,
    own_env: &BTreeMap<String, String>,
    private_tmp: &[(PathBuf, PathBuf)],
) -> Result<CommandSpawn, String> {
    let unit = slot.unit.name.as_str();
    let svc = slot.unit.service.as_ref().ok_or("not a service")?;
    let cmd = command_list(svc, set).get(index).ok_or("no such command")?;
    let user: Option<User> = match (&svc.user, cmd.flags.full_privileges) {
        (Some(name), false) => Some(environment::user(sys, name).map_err(|e| e.to_string())?),
        _ => None,
    };
    let mut vars: Vec<(&str, String)> = Vec::new();
    let notify = matches!(
        svc.service_type,
        ServiceType::Notify | ServiceType::NotifyReload
    ) || svc.notify_access() != crate::unit::service::NotifyAccess::None;
    if notify {
        vars.push(("NOTIFY_SOCKET", NOTIFY_SOCKET.to_owned()));
    }
    if let Some(pid) = slot.run.main_pid {
        vars.push(("MAINPID", pid.to_string()));
    }
    // The main process of a service with a watchdog learns its period; `$WATCHDOG_PID`
    // (its own PID) is filled in by the child.
    let watchdog = match set {
        CommandSet::Start => slot.run.watchdog_period(svc),
        _ => None,
    };
    if let Some(period) = watchdog {
        vars.push(("WATCHDOG_USEC", period.as_micros().to_string()));
    }
    if !svc.runtime_directory.names.is_empty() {
        let dirs: Vec<String> = svc
            .runtime_directory
            .names
            .iter()
            .map(|n| format!("/run/{n}"))
            .collect();
        vars.push(("RUNTIME_DIRECTORY", dirs.join(":")));
    }
    if !svc.state_directory.names.is_empty() {
        let dirs: Vec<String> = svc
            .state_directory
            .names
            .iter()
            .map(|n| format!("/var/lib/{n}"))
            .collect();
        vars.push(("STATE_DIRECTORY", dirs.join(":")));
    }
    let env = environment::environment(sys, svc, &vars, user.as_ref(), own_env)
        .map_err(|e| e.to_string())?;
    let argv = if cmd.flags.no_env_expand {
        cmd.argv.clone()
    } else {
        exec::expand_argv(&cmd.argv, &env)
    };
    let credentials = match (&user, cmd.flags.full_privileges) {
        (Some(u), false) => {
            let gid = match &svc.group {
                Some(g) => environment::group(sys, g).map_err(|e| e.to_string())?,
                None => u.gid,
            };
            let mut groups = Vec::new();
            for g in &svc.supplementary_groups {
                groups.push(environment::group(sys, g).map_err(|e| e.to_string())?);
            }
            Some((u.uid, gid, groups))
        }
        _ => None,
    };
    for (dirs, base) in [
        (&svc.runtime_directory, "/run"),
        (&svc.state_directory, "/var/lib"),
        (&svc.cache_directory, "/var/cache"),
        (&svc.logs_directory, "/var/log"),
    ] {
        for n in &dirs.names {
            let dir = Path::new(base).join(n);
            sys.mkdir_mode(&dir, dirs.mode)
                .map_err(|e| format!("{}: {e}", dir.display()))?;
            if let Some((uid, gid, _)) = &credentials {
                sys.chown(&dir, *uid, *gid)
                    .map_err(|e| format!("{}: {e}", dir.display()))?;
            }
        }
    }
    // `~`: the home of User= (root's without one, as systemd's system manager).
    let (working_directory, working_directory_missing_ok) = match &svc.working_directory {
        Some(w) => (
            PathBuf::from(
                w.path
                    .as_deref()
                    .unwrap_or_else(|| user.as_ref().map_or("/root", |u| u.home.as_str())),
            ),
            w.missing_ok,
        ),
        None => (PathBuf::from("/"), false),
    };
    // The kernel refuses RLIMIT_NOFILE above fs.nr_open: `infinity` means that, as in
    // systemd.
    let nr_open = sys
        .read_to_string(Path::new("/proc/sys/fs/nr_open"))
        .ok()
        .and_then(|t| t.trim().parse::<u64>().ok())
        .unwrap_or(1024 * 1024);
    let rlimits = svc
        .limits
        .iter()
        .filter_map(|(name, (soft, hard))| {
            let (soft, hard) = if name == "NOFILE" {
                (Some(soft.unwrap_or(nr_open)), Some(hard.unwrap_or(nr_open)))
            } else {
                (*soft, *hard)
            };
            Some((rlimit_resource(name)?, soft, hard))
        })
        .collect();
    let program = program(sys, cmd)?;
    // `+` runs the command with full privileges: no sandbox (systemd.service(5)).
    let sandbox = if cmd.flags.full_privileges {
        None
    } else {
        if svc.protect_kernel_tunables || svc.protect_kernel_logs {
            inaccessible_file(sys)?;
        }
        let mountinfo = if sandbox::wants_mounts(svc) {
            sys.read_to_string(Path::new("/proc/self/mountinfo"))
                .map_err(|e| format!("/proc/self/mountinfo: {e}"))?
        } else {
            String::new()
        };
        sandbox::plan(svc, private_tmp, &|p| sys.exists(p), &mountinfo)?
    };
    // `+` runs without seccomp filters too (needs_sandboxing in systemd's exec_child).
    let seccomp = match cmd.flags.full_privileges || !svc.seccomp.any() {
        true => Vec::new(),
        false => super::seccomp::plan(&svc.seccomp, crate::sys::seccomp::current_personality()),
    };
    let journal = StreamHeader {
        identifier: svc.syslog_identifier.clone().unwrap_or_else(|| {
            program
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| unit.to_owned())
        }),
        unit: unit.to_owned(),
        priority: svc.syslog_level,
        level_prefix: svc.syslog_level_prefix,
        to_console: false,
    };
    Ok(CommandSpawn {
        unit: unit.to_owned(),
        program,
        argv,
        env: env.into_iter().collect(),
        working_directory,
        working_directory_missing_ok,
        cgroup: Some(cgroup.to_path_buf()),
        stdin: terminal(&svc.terminal),
        stdout: output(svc.stdout(), &journal, &svc.terminal),
        stderr: output(svc.stderr(), &journal, &svc.terminal),
        umask: svc.umask,
        nice: svc.nice,
        oom_score_adjust: svc.oom_score_adjust,
        rlimits,
        credentials,
        no_new_privileges: svc.no_new_privileges,
        ignore_sigpipe: svc.ignore_sigpipe,
        watchdog_pid: watchdog.is_some(),
        sandbox,
        seccomp_implies_no_new_privileges: !cmd.flags.full_privileges && svc.seccomp.any(),
        seccomp,
        ambient_capabilities: match cmd.flags.full_privileges {
            true => 0,
            false => crate::unit::capability::set_of(&svc.ambient_capabilities),
        },
        // The manager adds its sockets' descriptors to the main command.
        listen_fds: Vec::new(),
    })
}
