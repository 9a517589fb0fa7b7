//! `systemctl status UNIT...`: the unit's state and main PID, the processes of its cgroup
//! and its last journal lines, laid out as systemd 252 lays them out.

use std::path::Path;
use std::time::{Duration, SystemTime};

use berth_init::unit::exec_record::{how_ended, signal_name};
use berth_init::unit::lifecycle::Exit;

use crate::{props, Ask, Outcome};

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
pub fn status(units: &[String], ask: &Ask) -> Outcome {
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
        let mark = crate::deps::glyph(&active);
        out.push_str(&format!("{mark} {unit} - {}\n", get("Description")));
        let path = get("FragmentPath");
        let note = if path.is_empty() {
            String::new()
        } else {
            crate::files::file_state_note(&get("Id"))
        };
        out.push_str(&loaded_line(&get("LoadState"), &path, &note));
        out.push_str(&drop_ins(&get("DropInPaths")));
        let since = since(&get("ActiveEnterTimestampMonotonic"));
        let mut line = format!("     Active: {active} ({})", get("SubState"));
        if active == "active" {
            line.push_str(&since);
        }
        let result = get("Result");
        if !result.is_empty() && result != "success" {
            line.push_str(&format!(" (Result: {result})"));
        }
        out.push_str(&format!("{line}\n"));
        for key in ["TriggeredBy", "Triggers"] {
            let units: Vec<String> = get(key).split_whitespace().map(str::to_owned).collect();
            let marked: Vec<String> = units
                .iter()
                .map(|u| {
                    let state = ask("show", std::slice::from_ref(u))
                        .map(|b| props(&b).get("ActiveState").cloned().unwrap_or_default())
                        .unwrap_or_default();
                    format!("{} {u}", crate::deps::glyph(&state))
                })
                .collect();
            out.push_str(&labelled(key, &marked));
        }
        let listen: Vec<String> = body
            .iter()
            .filter_map(|l| l.strip_prefix("Listen="))
            .map(str::to_owned)
            .collect();
        out.push_str(&labelled("Listen", &listen));
        out.push_str(&process_lines(&body));
        out.push_str(&pid_line(&get, comm));
        let status = get("StatusText");
        if !status.is_empty() {
            out.push_str(&format!("     Status: \"{status}\"\n"));
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

/// systemd 252's `Loaded:` line: `loaded (PATH; enabled; preset: enabled)` for a unit
/// file, and the bare load state for a unit without one (a built-in unit, as systemd
/// prints a unit that has no fragment).
fn loaded_line(load: &str, path: &str, file_state: &str) -> String {
    if path.is_empty() {
        format!("     Loaded: {load}\n")
    } else {
        format!("     Loaded: {load} ({path}{file_state})\n")
    }
}

/// systemd 252's `Process:` lines: every command of the run that ended, in the order of
/// its properties (`ExecStartPre=`, `ExecStart=`, ... `ExecStopPost=`).
/// systemd's `Label: first` with the others below it, `Label:` right-aligned to 12.
fn labelled(label: &str, values: &[String]) -> String {
    let mut out = String::new();
    for (i, v) in values.iter().enumerate() {
        match i {
            0 => out.push_str(&format!("{:>12} {v}\n", format!("{label}:"))),
            _ => out.push_str(&format!("{:>12} {v}\n", "")),
        }
    }
    out
}

fn process_lines(body: &[String]) -> String {
    use berth_init::unit::exec_record::{parse, property, SETS};
    let mut out = String::new();
    for set in SETS {
        let name = property(set);
        for line in body {
            let Some(value) = line
                .strip_prefix(name)
                .and_then(|rest| rest.strip_prefix('='))
            else {
                continue;
            };
            if let Some(shown) = parse(value) {
                if let Some(exit) = shown.exit {
                    out.push_str(&format!(
                        "    Process: {} {name}={} ({})\n",
                        shown.pid,
                        shown.argv,
                        how_ended(exit)
                    ));
                }
            }
        }
    }
    out
}

/// systemd 252's PID line: `Main PID:` with a control process (`ExecStartPre=`,
/// `ExecReload=`, `ExecStop=` ...) appended as `; Control PID: N (name)`, or, with no main
/// PID to show, the control process alone as `Cntrl PID:` (abbreviated to keep the
/// column); none when there is neither.
fn pid_line(get: &dyn Fn(&str) -> String, comm: fn(&str) -> String) -> String {
    let main = main_pid(get, comm);
    let control = get("ControlPID");
    if control.is_empty() || control == "0" {
        return main
            .map(|m| format!("   Main PID: {m}\n"))
            .unwrap_or_default();
    }
    let control = with_name(&control, comm);
    match main {
        Some(m) => format!("   Main PID: {m}; Control PID: {control}\n"),
        None => format!("  Cntrl PID: {control}\n"),
    }
}

/// `PID (name)`, or the PID alone when its name cannot be read.
fn with_name(pid: &str, comm: fn(&str) -> String) -> String {
    let name = comm(pid);
    if name.is_empty() {
        pid.to_owned()
    } else {
        format!("{pid} ({name})")
    }
}

/// What systemd 252 shows after `Main PID:`: the running main process and its name, or
/// the last one and how it ended (`code=exited, status=226/NAMESPACE`); `None` when there
/// was none.
fn main_pid(get: &dyn Fn(&str) -> String, comm: fn(&str) -> String) -> Option<String> {
    let running = get("MainPID");
    if !running.is_empty() && running != "0" {
        return Some(with_name(&running, comm));
    }
    let last = get("ExecMainPID");
    if last.is_empty() || last == "0" {
        return None;
    }
    let status: i32 = get("ExecMainStatus").parse().unwrap_or(0);
    let how = match get("ExecMainCode").parse::<i32>().unwrap_or(0) {
        nix::libc::CLD_EXITED => how_ended(Exit::Code(status)),
        nix::libc::CLD_KILLED => how_ended(Exit::Signal(status)),
        nix::libc::CLD_DUMPED => format!("code=dumped, signal={}", signal_name(status)),
        _ => return Some(last),
    };
    Some(format!("{last} ({how})"))
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

/// systemd 252's `Drop-In:` lines: each folder once, then its files on one line after a
/// tree glyph (`└─` for the last folder, `├─` before another).
fn drop_ins(paths: &str) -> String {
    let mut folders: Vec<(&str, Vec<&str>)> = Vec::new();
    for path in paths.split_whitespace() {
        let (dir, file) = path.rsplit_once('/').unwrap_or(("", path));
        match folders.last_mut() {
            Some((last, files)) if *last == dir => files.push(file),
            _ => folders.push((dir, vec![file])),
        }
    }
    let mut out = String::new();
    for (i, (dir, files)) in folders.iter().enumerate() {
        let head = if i == 0 {
            "    Drop-In: "
        } else {
            "             "
        };
        let glyph = if i + 1 == folders.len() {
            "└─"
        } else {
            "├─"
        };
        out.push_str(&format!(
            "{head}{dir}\n             {glyph}{}\n",
            files.join(", ")
        ));
    }
    out
}

#[cfg(test)]
mod drop_in_tests {
    use super::{drop_ins, labelled, loaded_line, pid_line, process_lines};

    fn props<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> String + 'a {
        move |k| {
            pairs
                .iter()
                .find(|(key, _)| *key == k)
                .map(|(_, v)| v.to_string())
                .unwrap_or_default()
        }
    }

    fn no_comm(_: &str) -> String {
        String::new()
    }

    fn sleep_comm(_: &str) -> String {
        "sleep".into()
    }

    #[test]
    fn main_pid_says_how_the_last_main_process_ended_as_systemd_does() {
        let failed_step = props(&[
            ("MainPID", "0"),
            ("ExecMainPID", "812"),
            ("ExecMainCode", "1"),
            ("ExecMainStatus", "226"),
        ]);
        assert_eq!(
            pid_line(&failed_step, no_comm),
            "   Main PID: 812 (code=exited, status=226/NAMESPACE)\n"
        );
        let killed = props(&[
            ("MainPID", "0"),
            ("ExecMainPID", "9"),
            ("ExecMainCode", "2"),
            ("ExecMainStatus", "15"),
        ]);
        assert_eq!(
            pid_line(&killed, no_comm),
            "   Main PID: 9 (code=killed, signal=TERM)\n"
        );
        let running = props(&[("MainPID", "77"), ("ExecMainPID", "77")]);
        assert_eq!(pid_line(&running, sleep_comm), "   Main PID: 77 (sleep)\n");
        assert_eq!(pid_line(&props(&[("MainPID", "0")]), no_comm), "");
    }

    #[test]
    fn a_running_control_process_is_shown_as_systemd_252_shows_it() {
        // ExecStartPre= runs: no main PID yet, so the abbreviated label keeps the column.
        let start_pre = props(&[("MainPID", "0"), ("ExecMainPID", "0"), ("ControlPID", "31")]);
        assert_eq!(
            pid_line(&start_pre, sleep_comm),
            "  Cntrl PID: 31 (sleep)\n"
        );
        assert_eq!(pid_line(&start_pre, no_comm), "  Cntrl PID: 31\n");
        // ExecReload= or ExecStop= beside a running main process.
        let reload = props(&[
            ("MainPID", "77"),
            ("ExecMainPID", "77"),
            ("ControlPID", "90"),
        ]);
        assert_eq!(
            pid_line(&reload, sleep_comm),
            "   Main PID: 77 (sleep); Control PID: 90 (sleep)\n"
        );
        // ExecStopPost= after the main process ended.
        let stop_post = props(&[
            ("MainPID", "0"),
            ("ExecMainPID", "9"),
            ("ExecMainCode", "2"),
            ("ExecMainStatus", "15"),
            ("ControlPID", "95"),
        ]);
        assert_eq!(
            pid_line(&stop_post, no_comm),
            "   Main PID: 9 (code=killed, signal=TERM); Control PID: 95\n"
        );
    }

    #[test]
    fn process_lines_show_each_ended_command_in_property_order() {
        let body: Vec<String> = [
            "Id=a.service",
            "ExecStart={ path=/usr/bin/a ; argv[]=/usr/bin/a --serve ; ignore_errors=no ; pid=12 ; code=(null) ; status=0/0 }",
            "ExecStartPre={ path=/bin/mkdir ; argv[]=/bin/mkdir -p /run/a ; ignore_errors=no ; pid=10 ; code=exited ; status=0 }",
            "ExecStartPre={ path=/usr/bin/check ; argv[]=/usr/bin/check ; ignore_errors=yes ; pid=11 ; code=exited ; status=203 }",
            "ExecStop={ path=/bin/kill ; argv[]=/bin/kill -TERM $MAINPID ; ignore_errors=no ; pid=0 ; code=(null) ; status=0/0 }",
            "ExecStopPost={ path=/bin/rm ; argv[]=/bin/rm /run/a/pid ; ignore_errors=no ; pid=14 ; code=killed ; status=9/KILL }",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(
            process_lines(&body),
            "    Process: 10 ExecStartPre=/bin/mkdir -p /run/a (code=exited, status=0/SUCCESS)\n\
             \x20   Process: 11 ExecStartPre=/usr/bin/check (code=exited, status=203/EXEC)\n\
             \x20   Process: 14 ExecStopPost=/bin/rm /run/a/pid (code=killed, signal=KILL)\n"
        );
    }

    #[test]
    fn labels_are_aligned_as_systemd_aligns_them() {
        let two = ["/run/a (Stream)".to_owned(), "/run/b (Datagram)".to_owned()];
        assert_eq!(
            labelled("Listen", &two),
            "     Listen: /run/a (Stream)\n             /run/b (Datagram)\n"
        );
        assert_eq!(
            labelled("TriggeredBy", &["● a.socket".to_owned()]),
            "TriggeredBy: ● a.socket\n"
        );
        assert_eq!(labelled("Triggers", &[]), "");
    }

    #[test]
    fn a_unit_without_a_file_is_loaded_without_a_path() {
        assert_eq!(loaded_line("loaded", "", ""), "     Loaded: loaded\n");
        assert_eq!(
            loaded_line(
                "loaded",
                "/etc/systemd/system/a.service",
                "; enabled; preset: enabled"
            ),
            "     Loaded: loaded (/etc/systemd/system/a.service; enabled; preset: enabled)\n"
        );
    }

    #[test]
    fn drop_ins_are_grouped_by_folder_as_systemd_shows_them() {
        assert_eq!(drop_ins(""), "");
        assert_eq!(
            drop_ins("/etc/systemd/system/kubelet.service.d/10-kubeadm.conf"),
            "    Drop-In: /etc/systemd/system/kubelet.service.d\n             └─10-kubeadm.conf\n"
        );
        assert_eq!(
            drop_ins(
                "/etc/systemd/system/a.service.d/x.conf /etc/systemd/system/a.service.d/y.conf \
                 /usr/lib/systemd/system/service.d/z.conf"
            ),
            "    Drop-In: /etc/systemd/system/a.service.d\n             ├─x.conf, y.conf\n\
             \x20            /usr/lib/systemd/system/service.d\n             └─z.conf\n"
        );
    }
}
