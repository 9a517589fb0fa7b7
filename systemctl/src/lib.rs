//! `systemctl` for Berth nodes: the command shapes people type (`status`, `start`, `stop`,
//! `restart`, `show -p`, `is-active`, `list-units --failed`, `cat`, `reboot`), sent to
//! PID 1's control socket ([`crate::control`]) and printed the way systemd 252 prints
//! them, with systemctl's exit statuses (0 ok, 1 failure, 3 not active, 4 no such unit).
//! Job verbs wait for their job to finish, as systemctl does, unless `--no-block`.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, SystemTime};

use berth_init::control::client::call;
use berth_init::control::{Reply, Request};

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
            "--no-pager" | "--plain" | "-l" | "--full" | "--no-ask-password" | "--system" => {}
            f if f.starts_with('-') && f.len() > 1 => {
                return Err(format!("unrecognized option '{f}'"))
            }
            _ => words.push(arg.clone()),
        }
    }
    let mut words = words.into_iter();
    a.verb = words.next().unwrap_or_else(|| "list-units".into());
    a.units = words.map(|u| with_suffix(&u)).collect();
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
pub struct Outcome {
    pub stdout: String,
    pub stderr: String,
    pub code: u8,
}

impl Outcome {
    fn ok(stdout: String) -> Outcome {
        Outcome {
            stdout,
            stderr: String::new(),
            code: 0,
        }
    }
    fn fail(code: u8, stderr: String) -> Outcome {
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
        "start" | "stop" | "restart" | "try-restart" | "reload-or-restart" => {
            let verb = if args.verb == "reload-or-restart" {
                "restart"
            } else {
                &args.verb
            };
            ask(verb, &args.units).and_then(|_| {
                if args.no_block {
                    Ok(Outcome::ok(String::new()))
                } else {
                    wait_for_jobs(&ask, verb, &args.units)
                }
            })
        }
        "show" => ask("show", &args.units).map(|body| Outcome::ok(show(&body, args))),
        "status" => return status(&args.units, &ask),
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

type Ask<'a> = dyn Fn(&str, &[String]) -> Result<Vec<String>, Outcome> + 'a;

/// `Key=Value` lines to a map (one unit's block).
fn props(body: &[String]) -> BTreeMap<String, String> {
    body.iter()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// Polls the units until none has a job, then fails like systemctl if one did not get
/// where the verb meant it to.
fn wait_for_jobs(ask: &Ask, verb: &str, units: &[String]) -> Result<Outcome, Outcome> {
    const POLL: Duration = Duration::from_millis(100);
    loop {
        let mut busy = false;
        for unit in units {
            let p = props(&ask("show", std::slice::from_ref(unit))?);
            if p.get("Job").map(String::as_str) == Some("true") {
                busy = true;
            } else if verb != "stop" && p.get("ActiveState").map(String::as_str) == Some("failed") {
                let result = p.get("Result").cloned().unwrap_or_default();
                return Err(Outcome::fail(
                    1,
                    format!(
                        "Job for {unit} failed because {}.\nSee \"systemctl status {unit}\" and \"journalctl -xeu {unit}\" for details.\n",
                        match result.as_str() {
                            "exit-code" => "the control process exited with error code".to_owned(),
                            "timeout" => "a timeout was exceeded".to_owned(),
                            "start-limit-hit" => "the start limit was hit".to_owned(),
                            other => format!("of {other}"),
                        }
                    ),
                ));
            }
        }
        if !busy {
            return Ok(Outcome::ok(String::new()));
        }
        std::thread::sleep(POLL);
    }
}

fn show(body: &[String], args: &Args) -> String {
    let mut out = String::new();
    for line in body {
        let Some((k, v)) = line.split_once('=') else {
            out.push('\n');
            continue;
        };
        if !args.properties.is_empty() && !args.properties.iter().any(|p| p == k) {
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
    Ok(Outcome::ok(out))
}

/// The unit's last ten journal lines of this boot, as `systemctl status` shows them.
fn journal_tail(unit: &str) -> String {
    let options = berth_journalctl::args::Options {
        units: vec![unit.to_owned()],
        boot: Some(berth_journalctl::args::BootArg::Offset(0)),
        lines: Some(10),
        quiet: true,
        ..Default::default()
    };
    let mut source = berth_journalctl::files::Files::Directories(
        berth_journalctl::files::NODE_DIRECTORIES
            .iter()
            .map(std::path::PathBuf::from)
            .collect(),
    );
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0);
    let this_boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .ok()
        .map(|s| s.trim().replace('-', ""));
    let mut out = Vec::new();
    berth_journalctl::run(&options, &mut source, now, this_boot.as_deref(), &mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// `systemctl status UNIT...`: state, main PID, the processes of its cgroup, and the
/// unit's last journal lines.
fn status(units: &[String], ask: &Ask) -> Outcome {
    let mut out = String::new();
    let mut code = 0;
    for (i, unit) in units.iter().enumerate() {
        let body = match ask("show", std::slice::from_ref(unit)) {
            Ok(b) => b,
            Err(o) => {
                code = 4;
                out.push_str(&o.stderr);
                continue;
            }
        };
        let p = props(&body);
        let get = |k: &str| p.get(k).cloned().unwrap_or_default();
        if i > 0 {
            out.push('\n');
        }
        let active = get("ActiveState");
        if active != "active" && code == 0 {
            code = 3;
        }
        let mark = match active.as_str() {
            "active" => '●',
            "failed" => '×',
            _ => '○',
        };
        out.push_str(&format!("{mark} {unit} - {}\n", get("Description")));
        out.push_str(&format!(
            "     Loaded: {} ({})\n",
            get("LoadState"),
            get("FragmentPath")
        ));
        let since = since(&get("ActiveEnterTimestampMonotonic"));
        let mut line = format!("     Active: {active} ({})", get("SubState"));
        if active == "active" {
            line.push_str(&since);
        }
        if active == "failed" {
            line.push_str(&format!(" (Result: {})", get("Result")));
        }
        out.push_str(&format!("{line}\n"));
        let status = get("StatusText");
        if !status.is_empty() {
            out.push_str(&format!("     Status: \"{status}\"\n"));
        }
        let main = get("MainPID");
        if !main.is_empty() && main != "0" {
            out.push_str(&format!("   Main PID: {main} ({})\n", comm(&main)));
        }
        let cgroup = get("ControlGroup");
        if !cgroup.is_empty() {
            let procs = std::fs::read_to_string(Path::new(&cgroup).join("cgroup.procs"))
                .unwrap_or_default();
            let shown = cgroup
                .strip_prefix(berth_init::manager::CGROUP_ROOT)
                .unwrap_or(&cgroup);
            out.push_str(&format!("     CGroup: {shown}\n"));
            for pid in procs.split_whitespace() {
                out.push_str(&format!("             └─{pid} {}\n", cmdline(pid)));
            }
        }
        let tail = journal_tail(unit);
        if !tail.is_empty() {
            out.push('\n');
            out.push_str(&tail);
        }
    }
    Outcome {
        stdout: out,
        stderr: String::new(),
        code,
    }
}

/// ` since <UTC time>; <N>s ago` from a boot-clock timestamp in µs.
fn since(micros: &str) -> String {
    let Ok(at) = micros.parse::<u64>() else {
        return String::new();
    };
    if at == 0 {
        return String::new();
    }
    let boot_now = nix::time::clock_gettime(nix::time::ClockId::CLOCK_BOOTTIME)
        .map(Duration::from)
        .unwrap_or_default();
    let ago = boot_now.saturating_sub(Duration::from_micros(at));
    let wall = SystemTime::now()
        .checked_sub(ago)
        .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
        .map(|d| d.as_secs())
        .unwrap_or(0);
    format!(" since {}; {}s ago", utc(wall), ago.as_secs())
}

/// `YYYY-MM-DD HH:MM:SS UTC` for seconds since the epoch (the calendar of journalctl's time module).
pub fn utc(secs: u64) -> String {
    let (y, m, d, h, min, s, _, _) = berth_journalctl::time::civil(secs.saturating_mul(1_000_000));
    format!("{y:04}-{m:02}-{d:02} {h:02}:{min:02}:{s:02} UTC")
}

fn comm(pid: &str) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

fn cmdline(pid: &str) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| {
            b.split(|c| *c == 0)
                .filter(|w| !w.is_empty())
                .map(|w| String::from_utf8_lossy(w).into_owned())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
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
    fn utc_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(1_764_892_800), "2025-12-05 00:00:00 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00 UTC");
    }
}
