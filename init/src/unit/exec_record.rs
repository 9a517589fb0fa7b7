//! What each command of a service's run did, kept per command as systemd 252 keeps it
//! (its `ExecCommand`'s `exec_status`, reset when a start begins): the process and how it
//! ended. `systemctl show` prints one `ExecStartPre=` ... line per command from it, and
//! `systemctl status` its `Process: N ExecStartPre=... (code=exited, status=0/SUCCESS)`
//! lines, so the text written here is read back in [`parse`].

use super::exec::ExecCommand;
use super::exit_status;
use super::lifecycle::{CommandSet, Exit};

/// One command's process in this run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExecRecord {
    pub set: CommandSet,
    pub index: usize,
    pub pid: u32,
    /// `None` while it runs.
    pub exit: Option<Exit>,
}

/// The property of `set`, as systemd names it.
pub fn property(set: CommandSet) -> &'static str {
    match set {
        CommandSet::StartPre => "ExecStartPre",
        CommandSet::Start => "ExecStart",
        CommandSet::StartPost => "ExecStartPost",
        CommandSet::Reload => "ExecReload",
        CommandSet::Stop => "ExecStop",
        CommandSet::StopPost => "ExecStopPost",
    }
}

/// The command sets in the order systemd lists their properties.
pub const SETS: [CommandSet; 6] = [
    CommandSet::StartPre,
    CommandSet::Start,
    CommandSet::StartPost,
    CommandSet::Reload,
    CommandSet::Stop,
    CommandSet::StopPost,
];

/// A signal's name without `SIG` (`TERM`), as systemd's `signal_to_string`: a realtime
/// signal is `RTMIN+n` from the C library's `SIGRTMIN` (as PID 1's own signal handling
/// reads it), any other the number.
pub fn signal_name(signal: i32) -> String {
    if let Ok(s) = nix::sys::signal::Signal::try_from(signal) {
        return s.as_str().trim_start_matches("SIG").to_owned();
    }
    let rtmin = nix::libc::SIGRTMIN();
    if (rtmin..=nix::libc::SIGRTMAX()).contains(&signal) {
        return format!("RTMIN+{}", signal - rtmin);
    }
    signal.to_string()
}

/// `code=exited, status=0/SUCCESS` or `code=killed, signal=TERM`, as `systemctl status`
/// says how a process ended.
pub fn how_ended(exit: Exit) -> String {
    match exit {
        Exit::Code(c) => format!("code=exited, status={}", exit_status::with_name(c)),
        Exit::Signal(s) => format!("code=killed, signal={}", signal_name(s)),
    }
}

/// `systemctl show`'s value of one command: `{ path=/bin/x ; argv[]=/bin/x -a ;
/// ignore_errors=no ; pid=12 ; code=exited ; status=0 }` (`code=(null) ; status=0/0`
/// before it ran). systemd's `start_time=`/`stop_time=` fields are left out: the run's
/// commands are not timed.
pub fn show_value(command: &ExecCommand, record: Option<&ExecRecord>) -> String {
    let (pid, code, status) = match record.map(|r| (r.pid, r.exit)) {
        None => (0, "(null)", "0/0".to_owned()),
        Some((pid, None)) => (pid, "(null)", "0/0".to_owned()),
        Some((pid, Some(Exit::Code(c)))) => (pid, "exited", c.to_string()),
        Some((pid, Some(Exit::Signal(s)))) => (pid, "killed", format!("{s}/{}", signal_name(s))),
    };
    let ignore = if command.flags.ignore_failure {
        "yes"
    } else {
        "no"
    };
    format!(
        "{{ path={} ; argv[]={} ; ignore_errors={ignore} ; pid={pid} ; code={code} ; status={status} }}",
        command.path,
        command.argv.join(" ")
    )
}

/// A command as [`show_value`] wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shown {
    pub argv: String,
    pub pid: u32,
    /// `None`: it has not ended (or not run).
    pub exit: Option<Exit>,
}

/// Reads a [`show_value`] back; `None` for text it did not write. The argument list
/// may hold ` ; ` itself, so the fixed fields are taken from the end.
pub fn parse(value: &str) -> Option<Shown> {
    let inner = value.strip_prefix("{ ")?.strip_suffix(" }")?;
    let (head, tail) = inner.rsplit_once(" ; ignore_errors=")?;
    let argv = head.split_once(" ; argv[]=")?.1.to_owned();
    let mut pid = None;
    let mut code = None;
    let mut status = None;
    for field in tail.split(" ; ").skip(1) {
        match field.split_once('=')? {
            ("pid", v) => pid = v.parse::<u32>().ok(),
            ("code", v) => code = Some(v),
            ("status", v) => status = v.split('/').next()?.parse::<i32>().ok(),
            _ => {}
        }
    }
    let exit = match (code?, status?) {
        ("exited", s) => Some(Exit::Code(s)),
        ("killed", s) => Some(Exit::Signal(s)),
        _ => None,
    };
    Some(Shown {
        argv,
        pid: pid?,
        exit,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::unit::exec;

    fn command(text: &str) -> ExecCommand {
        exec::parse(text).expect("command").remove(0)
    }

    fn record(pid: u32, exit: Option<Exit>) -> ExecRecord {
        ExecRecord {
            set: CommandSet::StartPre,
            index: 0,
            pid,
            exit,
        }
    }

    #[test]
    fn show_values_are_systemds_and_read_back() {
        let c = command("-/usr/sbin/nginx -t -g \"daemon on; master_process on;\"");
        let exited = show_value(&c, Some(&record(12, Some(Exit::Code(0)))));
        assert_eq!(
            exited,
            "{ path=/usr/sbin/nginx ; argv[]=/usr/sbin/nginx -t -g daemon on; master_process on; ; \
             ignore_errors=yes ; pid=12 ; code=exited ; status=0 }"
        );
        let shown = parse(&exited).expect("parsed");
        assert_eq!(
            shown.argv,
            "/usr/sbin/nginx -t -g daemon on; master_process on;"
        );
        assert_eq!((shown.pid, shown.exit), (12, Some(Exit::Code(0))));

        let killed = show_value(&c, Some(&record(13, Some(Exit::Signal(15)))));
        assert!(
            killed.ends_with("pid=13 ; code=killed ; status=15/TERM }"),
            "{killed}"
        );
        assert_eq!(parse(&killed).map(|s| s.exit), Some(Some(Exit::Signal(15))));

        let never = show_value(&command("/bin/true"), None);
        assert!(
            never.ends_with("pid=0 ; code=(null) ; status=0/0 }"),
            "{never}"
        );
        assert_eq!(parse(&never).map(|s| s.exit), Some(None));
        assert_eq!(parse("/usr/bin/x"), None);
    }

    #[test]
    fn endings_are_said_as_systemctl_status_says_them() {
        assert_eq!(how_ended(Exit::Code(0)), "code=exited, status=0/SUCCESS");
        assert_eq!(how_ended(Exit::Code(203)), "code=exited, status=203/EXEC");
        assert_eq!(how_ended(Exit::Code(3)), "code=exited, status=3");
        assert_eq!(how_ended(Exit::Signal(9)), "code=killed, signal=KILL");
    }
}
