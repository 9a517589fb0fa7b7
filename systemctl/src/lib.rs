//! `systemctl` for Berth nodes: the command shapes people type (`status`, `start`, `stop`,
//! `restart`, `reload`, `kill`, `reset-failed`, `show -p`, `is-active`, `list-units
//! --failed`, `cat`, `reboot`), sent to PID 1's control socket ([`berth_init::control`])
//! and printed the way systemd 252 prints them, with systemctl's exit statuses (0 ok, 1
//! failure, 3 not active, 4 no such unit). Job verbs wait for their job to finish, as
//! systemctl does, unless `--no-block`. The unit-file verbs (`enable`, `reenable`,
//! `link`, `mask`, `preset`, `is-enabled`, `list-unit-files`) work on the files themselves
//! ([`files`], [`preset`]).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use berth_init::control::client::call;
use berth_init::control::{Reply, Request};

mod deps;
mod files;
mod power;
mod preset;
mod status;
mod terminal;

pub use power::power_command;

pub use status::utc;

/// Parsed command line.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Args {
    pub verb: String,
    pub units: Vec<String>,
    pub properties: Vec<String>,
    pub value_only: bool,
    pub quiet: bool,
    pub no_block: bool,
    pub failed: bool,
    pub all: bool,
    pub types: Vec<String>,
    pub states: Vec<String>,
    pub no_legend: bool,
    /// `enable --now`, `disable --now`, `mask --now`.
    pub now: bool,
    pub runtime: bool,
    /// `--root=DIR`: unit-file verbs on another tree, without PID 1.
    pub root: Option<std::path::PathBuf>,
    pub no_reload: bool,
    /// `kill -s SIGNAL`, `--kill-whom=`.
    pub signal: Option<String>,
    pub kill_whom: Option<String>,
    /// `list-dependencies --reverse`, `--plain`.
    pub reverse: bool,
    pub plain: bool,
    /// `-l`, `--full`: lines are not cut to the terminal's width.
    pub full: bool,
    /// `preset --preset-mode=full|enable-only|disable-only`.
    pub preset_mode: Option<String>,
    /// The words after the verb as typed (patterns of `list-unit-files`).
    pub words: Vec<String>,
}

/// Parses `argv` (without the program name). Pager and colour options are accepted and
/// ignored (there is no pager).
pub fn parse(argv: &[String]) -> Result<Args, String> {
    let mut a = Args::default();
    let mut words = Vec::new();
    let mut it = argv.iter();
    while let Some(arg) = it.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if arg.starts_with("--") => (f, Some(v.to_owned())),
            _ => (arg.as_str(), None),
        };
        let mut value = |name: &str| -> Result<String, String> {
            inline
                .clone()
                .or_else(|| it.next().cloned())
                .ok_or_else(|| format!("option '{name}' requires an argument"))
        };
        let list = |v: String| v.split(',').map(str::to_owned).collect::<Vec<_>>();
        match flag {
            "-p" | "--property" => a.properties.extend(list(value(flag)?)),
            "-t" | "--type" => a.types.extend(list(value(flag)?)),
            "--state" => a.states.extend(list(value(flag)?)),
            "--value" => a.value_only = true,
            "-q" | "--quiet" => a.quiet = true,
            "--no-block" => a.no_block = true,
            "--failed" => a.failed = true,
            "-a" | "--all" => a.all = true,
            "--no-legend" => a.no_legend = true,
            "--now" => a.now = true,
            "--runtime" => a.runtime = true,
            "--no-reload" => a.no_reload = true,
            "--reverse" => a.reverse = true,
            "--root" => a.root = Some(value(flag)?.into()),
            "-s" | "--signal" => a.signal = Some(value(flag)?),
            "--kill-whom" | "--kill-who" => a.kill_whom = Some(value(flag)?),
            "--plain" => a.plain = true,
            "--preset-mode" => a.preset_mode = Some(value(flag)?),
            "-l" | "--full" => a.full = true,
            "--no-pager" | "--no-ask-password" | "--system" => {}
            f if f.starts_with('-') && f.len() > 1 => {
                return Err(format!("unrecognized option '{f}'"))
            }
            _ => words.push(arg.clone()),
        }
    }
    let mut words = words.into_iter();
    a.verb = words.next().unwrap_or_else(|| "list-units".into());
    a.words = words.collect();
    a.units = a.words.iter().map(|u| with_suffix(u)).collect();
    Ok(a)
}

/// systemctl appends `.service` to a name without a unit type.
fn with_suffix(name: &str) -> String {
    const TYPES: [&str; 11] = [
        ".service",
        ".socket",
        ".target",
        ".device",
        ".mount",
        ".automount",
        ".swap",
        ".timer",
        ".path",
        ".slice",
        ".scope",
    ];
    if TYPES.iter().any(|t| name.ends_with(t)) {
        name.to_owned()
    } else {
        format!("{name}.service")
    }
}

/// What one run printed and its exit status.
#[derive(Debug)]
pub struct Outcome {
    pub stdout: String,
    pub stderr: String,
    pub code: u8,
}

impl Outcome {
    pub(crate) fn ok(stdout: String) -> Outcome {
        Outcome {
            stdout,
            stderr: String::new(),
            code: 0,
        }
    }
    pub(crate) fn fail(code: u8, stderr: String) -> Outcome {
        Outcome {
            stdout: String::new(),
            stderr,
            code,
        }
    }
}

/// Runs `args` against the control socket at `socket`.
pub fn run(socket: &Path, args: &Args) -> Outcome {
    let ask = |verb: &str, units: &[String]| -> Result<Vec<String>, Outcome> {
        match call(socket, &Request::new(verb, units)) {
            Ok(Reply::Ok(body)) => Ok(body),
            Ok(Reply::Error { code, message }) => Err(Outcome::fail(code, format!("{message}\n"))),
            Err(e) => Err(Outcome::fail(1, format!("{e}\n"))),
        }
    };
    let result = match args.verb.as_str() {
        "start" | "stop" | "restart" | "try-restart" | "reload" | "reload-or-restart" => {
            ask(&args.verb, &args.units).and_then(|_| {
                if args.no_block {
                    Ok(Outcome::ok(String::new()))
                } else {
                    wait_for_jobs(&ask, &args.verb, &args.units)
                }
            })
        }
        "kill" => kill(&ask, args),
        "list-dependencies" => return deps::list(&ask, args),
        "reset-failed" => ask("reset-failed", &args.units).map(|_| Outcome::ok(String::new())),
        "show" => ask("show", &args.units).map(|body| Outcome::ok(show(&body, args))),
        "status" => return status::status(&args.units, &ask),
        "is-active" | "is-failed" => is_state(&ask, args),
        "is-system-running" => ask("is-system-running", &[]).map(|b| {
            let state = b.join("");
            let code = u8::from(state != "running");
            Outcome {
                stdout: if args.quiet {
                    String::new()
                } else {
                    format!("{state}\n")
                },
                stderr: String::new(),
                code,
            }
        }),
        "list-units" => ask("list-units", &[]).map(|rows| Outcome::ok(list_units(&rows, args))),
        "enable" | "disable" | "reenable" | "link" | "mask" | "unmask" => {
            return files::change(args, &ask)
        }
        "preset" | "preset-all" => return preset::preset(args, &ask),
        "is-enabled" => return files::is_enabled(args),
        "list-unit-files" => return files::list(args, &args.words),
        "cat" => ask("show", &args.units).and_then(|body| cat(&body)),
        "poweroff" | "reboot" | "halt" | "daemon-reload" => {
            ask(&args.verb, &[]).map(|_| Outcome::ok(String::new()))
        }
        other => Err(Outcome::fail(
            1,
            format!("Unknown command verb '{other}'.\n"),
        )),
    };
    result.unwrap_or_else(|o| o)
}

pub(crate) type Ask<'a> = dyn Fn(&str, &[String]) -> Result<Vec<String>, Outcome> + 'a;

/// `Key=Value` lines to a map (one unit's block).
pub(crate) fn props(body: &[String]) -> BTreeMap<String, String> {
    body.iter()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// Polls the units until none has a job, then fails like systemctl if a job failed (a
/// unit that failed after its job was done, as a `Type=simple` service whose program is
/// missing, is no failure of the job, as on systemd).
pub(crate) fn wait_for_jobs(ask: &Ask, verb: &str, units: &[String]) -> Result<Outcome, Outcome> {
    const POLL: Duration = Duration::from_millis(100);
    loop {
        let mut busy = false;
        for unit in units {
            let p = props(&ask("show", std::slice::from_ref(unit))?);
            let reload_failed =
                verb.starts_with("reload") && p.get("ReloadResult").is_some_and(|r| r != "success");
            if p.get("Job").map(String::as_str) == Some("true") {
                busy = true;
            } else if reload_failed {
                let result = p.get("ReloadResult").cloned().unwrap_or_default();
                return Err(job_failed(unit, &result));
            } else if verb != "stop" && p.get("JobResult").map(String::as_str) == Some("failed") {
                let result = p.get("Result").cloned().unwrap_or_default();
                return Err(job_failed(unit, &result));
            }
        }
        if !busy {
            return Ok(Outcome::ok(String::new()));
        }
        std::thread::sleep(POLL);
    }
}

/// systemctl's message for a job that failed with the unit's (or reload's) `result`.
fn job_failed(unit: &str, result: &str) -> Outcome {
    let why = match result {
        "exit-code" => "the control process exited with error code".to_owned(),
        "timeout" => "a timeout was exceeded".to_owned(),
        "start-limit-hit" => "the start limit was hit".to_owned(),
        other => format!("of {other}"),
    };
    Outcome::fail(
        1,
        format!(
            "Job for {unit} failed because {why}.\nSee \"systemctl status {unit}\" and \"journalctl -xeu {unit}\" for details.\n"
        ),
    )
}

/// `kill [-s SIGNAL] [--kill-whom=main|control|all] UNIT...` (SIGTERM to all by default).
fn kill(ask: &Ask, args: &Args) -> Result<Outcome, Outcome> {
    let signal = args.signal.as_deref().unwrap_or("SIGTERM");
    let number = signal_number(signal)
        .ok_or_else(|| Outcome::fail(1, format!("Failed to parse signal string {signal}.\n")))?;
    let whom = args.kill_whom.clone().unwrap_or_else(|| "all".into());
    if !matches!(whom.as_str(), "main" | "control" | "all") {
        return Err(Outcome::fail(
            1,
            format!("Invalid kill-whom value: {whom}\n"),
        ));
    }
    let mut request = vec![whom, number.to_string()];
    request.extend(args.units.iter().cloned());
    ask("kill", &request).map(|_| Outcome::ok(String::new()))
}

/// `SIGKILL`, `KILL` or `9`, as systemd's signal_from_string takes them.
fn signal_number(s: &str) -> Option<i32> {
    if let Ok(n) = s.parse::<i32>() {
        return (1..=64).contains(&n).then_some(n);
    }
    let name = if s.starts_with("SIG") {
        s.to_owned()
    } else {
        format!("SIG{s}")
    };
    name.parse::<nix::sys::signal::Signal>()
        .ok()
        .map(|sig| sig as i32)
}

/// `show`'s lines: the properties asked for with `-p` (all without it), each as
/// `Key=value` or, with `--value`, the value alone. As systemd 252's systemctl (its
/// `BUS_PRINT_PROPERTY_SHOW_EMPTY` flag), a property with an empty value (an empty
/// string, list or exit status set) is left out unless `--all` or `-p` asks for it.
fn show(body: &[String], args: &Args) -> String {
    let show_empty = args.all || !args.properties.is_empty();
    let mut out = String::new();
    for line in body {
        let Some((k, v)) = line.split_once('=') else {
            out.push('\n');
            continue;
        };
        if !args.properties.is_empty() && !args.properties.iter().any(|p| p == k) {
            continue;
        }
        if v.is_empty() && !show_empty {
            continue;
        }
        if args.value_only {
            out.push_str(&format!("{v}\n"));
        } else {
            out.push_str(&format!("{k}={v}\n"));
        }
    }
    out
}

fn is_state(ask: &Ask, args: &Args) -> Result<Outcome, Outcome> {
    let want = if args.verb == "is-active" {
        "active"
    } else {
        "failed"
    };
    let mut out = String::new();
    let mut any = false;
    for unit in &args.units {
        let state = match ask("show", std::slice::from_ref(unit)) {
            Ok(body) => props(&body).remove("ActiveState").unwrap_or_default(),
            Err(_) => "inactive".into(),
        };
        any |= state == want;
        out.push_str(&format!("{state}\n"));
    }
    let code = if any { 0 } else { 3 };
    let stdout = if args.quiet { String::new() } else { out };
    Ok(Outcome {
        stdout,
        stderr: String::new(),
        code,
    })
}

fn list_units(rows: &[String], args: &Args) -> String {
    let rows: Vec<Vec<&str>> = rows
        .iter()
        .map(|r| r.splitn(5, '\t').collect::<Vec<_>>())
        .filter(|r| r.len() == 5)
        .filter(|r| args.all || r[2] != "inactive" || args.states.iter().any(|s| s == "inactive"))
        .filter(|r| !args.failed || r[2] == "failed")
        .filter(|r| args.states.is_empty() || args.states.iter().any(|s| s == r[2] || s == r[3]))
        .filter(|r| {
            args.types.is_empty() || args.types.iter().any(|t| r[0].ends_with(&format!(".{t}")))
        })
        .collect();
    let width = rows.iter().map(|r| r[0].len()).max().unwrap_or(4).max(4);
    let mut out = String::new();
    if !args.no_legend {
        out.push_str(&format!(
            "  {:width$} LOAD   ACTIVE   SUB          DESCRIPTION\n",
            "UNIT"
        ));
    }
    for r in &rows {
        let mark = if r[2] == "failed" { '●' } else { ' ' };
        out.push_str(&format!(
            "{mark} {:width$} {:6} {:8} {:12} {}\n",
            r[0], r[1], r[2], r[3], r[4]
        ));
    }
    if !args.no_legend {
        out.push_str(&format!("\n{} loaded units listed.\n", rows.len()));
    }
    out
}

fn cat(body: &[String]) -> Result<Outcome, Outcome> {
    let p = props(body);
    let mut out = String::new();
    let files = p
        .get("FragmentPath")
        .into_iter()
        .chain(p.get("DropInPaths"))
        .flat_map(|v| v.split(' '))
        .filter(|f| !f.is_empty());
    for file in files {
        let text = std::fs::read_to_string(file)
            .map_err(|e| Outcome::fail(1, format!("Failed to read {file}: {e}\n")))?;
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(&format!("# {file}\n{text}"));
    }
    if out.is_empty() {
        // A unit without a file (a built-in one), as systemd says it.
        let id = p.get("Id").cloned().unwrap_or_default();
        return Err(Outcome::fail(1, format!("No files found for {id}.\n")));
    }
    Ok(Outcome::ok(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn a_start_fails_when_its_job_failed_not_when_the_unit_failed_after() {
        let answer = |job: &'static str| {
            move |_: &str, _: &[String]| -> Result<Vec<String>, Outcome> {
                Ok(vec![
                    "Job=false".to_owned(),
                    format!("JobResult={job}"),
                    "ActiveState=failed".into(),
                    "Result=exit-code".into(),
                ])
            }
        };
        let units = ["x.service".to_owned()];
        // Type=simple whose program is missing: started, then failed. systemd's
        // systemctl start says nothing and exits 0.
        let done = wait_for_jobs(&answer("done"), "start", &units).expect("job done");
        assert_eq!(done.code, 0);
        let failed = wait_for_jobs(&answer("failed"), "start", &units).expect_err("job failed");
        assert_eq!(failed.code, 1);
        assert!(failed.stderr.starts_with(
            "Job for x.service failed because the control process exited with error code."
        ));
    }

    #[test]
    fn command_lines() {
        let a = parse(&argv("restart --no-block berth-runtime")).expect("parse");
        assert_eq!(a.verb, "restart");
        assert_eq!(a.units, vec!["berth-runtime.service"]);
        assert!(a.no_block);
        let a = parse(&argv(
            "show multi-user.target -p ActiveState,SubState --value",
        ))
        .expect("parse");
        assert_eq!(a.properties, vec!["ActiveState", "SubState"]);
        assert!(a.value_only);
        let a = parse(&argv("--no-pager list-units --type=service --state=failed")).expect("parse");
        assert_eq!(
            (a.types[0].as_str(), a.states[0].as_str()),
            ("service", "failed")
        );
        assert_eq!(parse(&argv("")).expect("parse").verb, "list-units");
        assert!(parse(&argv("status --frobnicate")).is_err());
        assert!(parse(&argv("show -p")).is_err());
    }

    #[test]
    fn show_filters_properties() {
        let body = vec![
            "Id=a.service".to_owned(),
            "ActiveState=active".into(),
            "MainPID=4".into(),
        ];
        let a = parse(&argv("show a -p MainPID,ActiveState --value")).expect("parse");
        assert_eq!(show(&body, &a), "active\n4\n");
    }

    #[test]
    fn show_leaves_out_empty_values_unless_asked_for() {
        let body = vec![
            "Id=a.service".to_owned(),
            "StatusText=".into(),
            "RestartPreventExitStatus=".into(),
            "SuccessExitStatus=75 TERM".into(),
        ];
        let all =
            "Id=a.service\nStatusText=\nRestartPreventExitStatus=\nSuccessExitStatus=75 TERM\n";
        let shown = |line: &str| show(&body, &parse(&argv(line)).expect("parse"));
        assert_eq!(shown("show a"), "Id=a.service\nSuccessExitStatus=75 TERM\n");
        assert_eq!(shown("show a --all"), all);
        assert_eq!(
            shown("show a -p RestartPreventExitStatus,SuccessExitStatus"),
            "RestartPreventExitStatus=\nSuccessExitStatus=75 TERM\n"
        );
        assert_eq!(shown("show a -p StatusText --value"), "\n");
    }

    #[test]
    fn list_units_filters_and_aligns() {
        let rows = vec![
            "a.service\tloaded\tactive\trunning\tA".to_owned(),
            "b.service\tloaded\tfailed\tfailed\tB".into(),
            "c.target\tloaded\tinactive\tdead\tC".into(),
        ];
        let all = list_units(&rows, &parse(&argv("list-units --no-legend")).expect("p"));
        assert_eq!(all.lines().count(), 2, "{all}");
        let failed = list_units(
            &rows,
            &parse(&argv("list-units --failed --no-legend")).expect("p"),
        );
        assert!(failed.starts_with("● b.service"), "{failed}");
    }

    #[test]
    fn kill_signals_by_name_or_number() {
        assert_eq!(signal_number("SIGKILL"), Some(9));
        assert_eq!(signal_number("HUP"), Some(1));
        assert_eq!(signal_number("10"), Some(10));
        assert_eq!(signal_number("SIGNOPE"), None);
        assert_eq!(signal_number("0"), None);
        let a = parse(&argv("kill -s USR1 --kill-whom=main berth-runtime")).expect("parse");
        assert_eq!(
            (
                a.signal.as_deref(),
                a.kill_whom.as_deref(),
                a.units[0].as_str()
            ),
            (Some("USR1"), Some("main"), "berth-runtime.service")
        );
    }

    #[test]
    fn utc_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(1_764_892_800), "2025-12-05 00:00:00 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00 UTC");
    }
}
