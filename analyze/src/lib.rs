//! `systemd-analyze` for Berth nodes: `time`, `blame` and `critical-chain [UNIT]`, printed
//! as systemd 252 prints them, from what PID 1 records and serves on its control socket
//! (`systemctl show` of the manager for the boot's milestones, of each unit for its
//! InactiveExit/ActiveEnter timestamps, and the units each is ordered after).
//!
//! The answers are read through [`Source`], so the layout is tested on recorded data and
//! the node reads its PID 1 ([`socket::ControlSocket`]). There is no binary of its own:
//! `/usr/bin/systemd-analyze` is a link to `systemctl`, which answers as systemd-analyze
//! under that name (one static program instead of two saves 1.4 MiB of the root).

pub mod socket;
pub mod timespan;

use std::collections::{BTreeMap, BTreeSet};

use timespan::format;

/// What PID 1 answers.
pub trait Source {
    /// `Key=Value` properties of the manager (`None`) or of a unit.
    fn show(&self, unit: Option<&str>) -> Result<BTreeMap<String, String>, String>;
    /// The loaded units.
    fn units(&self) -> Result<Vec<String>, String>;
    /// The units `unit` is ordered after.
    fn after(&self, unit: &str) -> Result<Vec<String>, String>;
}

/// What one run printed and its exit status.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    pub stdout: String,
    pub stderr: String,
    pub code: u8,
}

fn failed(message: String) -> Outcome {
    Outcome {
        stderr: format!("{message}\n"),
        code: 1,
        ..Outcome::default()
    }
}

/// The boot's milestones in µs on the boot clock.
struct Boot {
    initrd: u64,
    userspace: u64,
    finish: u64,
}

/// One unit's start: when it left inactive, when it became active, and the difference.
#[derive(Debug, Clone, Copy)]
struct Times {
    activating: u64,
    activated: u64,
    time: u64,
}

fn micros(p: &BTreeMap<String, String>, key: &str) -> u64 {
    p.get(key).and_then(|v| v.parse().ok()).unwrap_or(0)
}

fn boot(source: &dyn Source) -> Result<Boot, Outcome> {
    let p = source.show(None).map_err(failed)?;
    let b = Boot {
        initrd: micros(&p, "InitRDTimestampMonotonic"),
        userspace: micros(&p, "UserspaceTimestampMonotonic"),
        finish: micros(&p, "FinishTimestampMonotonic"),
    };
    if b.finish == 0 {
        return Err(failed(format!(
            "Bootup is not yet finished (org.freedesktop.systemd1.Manager.FinishTimestampMonotonic={}).\nPlease try again later.\nHint: Use 'systemctl list-jobs' to see active jobs",
            b.finish
        )));
    }
    Ok(b)
}

fn times_of(p: &BTreeMap<String, String>) -> Times {
    let activating = micros(p, "InactiveExitTimestampMonotonic");
    let activated = micros(p, "ActiveEnterTimestampMonotonic");
    Times {
        activating,
        activated,
        time: activated.saturating_sub(activating),
    }
}

fn all_times(source: &dyn Source) -> Result<BTreeMap<String, Times>, Outcome> {
    let mut all = BTreeMap::new();
    for unit in source.units().map_err(failed)? {
        let p = source.show(Some(&unit)).map_err(failed)?;
        // By the unit's own name: PID 1 lists the boot's anchor as default.target.
        let id = p.get("Id").cloned().unwrap_or(unit);
        all.insert(id, times_of(&p));
    }
    Ok(all)
}

/// `systemd-analyze [time]`.
pub fn time(source: &dyn Source) -> Outcome {
    let b = match boot(source) {
        Ok(b) => b,
        Err(o) => return o,
    };
    let mut line = String::from("Startup finished in ");
    let kernel_done = if b.initrd > 0 { b.initrd } else { b.userspace };
    line.push_str(&format!("{} (kernel) + ", format(kernel_done)));
    if b.initrd > 0 {
        let initrd = b.userspace.saturating_sub(b.initrd);
        line.push_str(&format!("{} (initrd) + ", format(initrd)));
    }
    let userspace = b.finish.saturating_sub(b.userspace);
    line.push_str(&format!("{} (userspace) ", format(userspace)));
    line.push_str(&format!("= {} ", format(b.finish)));
    // The default target by its own name (default.target is an alias on most systems).
    let target = source
        .show(Some("default.target"))
        .ok()
        .filter(|p| p.contains_key("Id"));
    if let Some(p) = target {
        let id = p.get("Id").cloned().unwrap_or_default();
        let activated = micros(&p, "ActiveEnterTimestampMonotonic");
        if activated > 0 {
            line.push_str(&format!(
                "\n{id} reached after {} in userspace.",
                format(activated.saturating_sub(b.userspace))
            ));
        } else {
            line.push_str(&format!("\n{id} was never reached."));
        }
    }
    Outcome {
        stdout: format!("{line}\n"),
        ..Outcome::default()
    }
}

/// `systemd-analyze blame`: each unit's start time, longest first, right-aligned.
pub fn blame(source: &dyn Source) -> Outcome {
    let all = match all_times(source) {
        Ok(a) => a,
        Err(o) => return o,
    };
    let mut rows: Vec<(u64, &String)> = all
        .iter()
        .filter(|(_, t)| t.time > 0 && t.activating > 0)
        .map(|(n, t)| (t.time, n))
        .collect();
    rows.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(b.1)));
    let shown: Vec<(String, &String)> = rows.iter().map(|(t, n)| (format(*t), *n)).collect();
    let width = shown.iter().map(|(t, _)| t.len()).max().unwrap_or(0);
    let stdout = shown
        .iter()
        .map(|(t, n)| format!("{t:>width$} {n}\n"))
        .collect();
    Outcome {
        stdout,
        ..Outcome::default()
    }
}

const CHAIN_HEADER: &str = "The time when unit became active or started is printed after the \"@\" character.\nThe time the unit took to start is printed after the \"+\" character.\n\n";

/// `systemd-analyze critical-chain [UNIT...]` (default.target when none): from the unit,
/// down through whatever it was ordered after that became active last, as systemd walks
/// it (its default `--fuzz=0` keeps one branch a level).
pub fn critical_chain(source: &dyn Source, units: &[String]) -> Outcome {
    let b = match boot(source) {
        Ok(b) => b,
        Err(o) => return o,
    };
    let all = match all_times(source) {
        Ok(a) => a,
        Err(o) => return o,
    };
    let roots = if units.is_empty() {
        vec!["default.target".to_owned()]
    } else {
        units.to_vec()
    };
    let mut out = String::from(CHAIN_HEADER);
    for root in roots {
        let id = source
            .show(Some(&root))
            .ok()
            .and_then(|p| p.get("Id").cloned())
            .unwrap_or(root);
        out.push_str(&label(&id, all.get(&id), &b));
        out.push('\n');
        let mut seen = BTreeSet::new();
        if let Err(o) = chain(source, &id, 0, 0, &all, &b, &mut seen, &mut out) {
            return o;
        }
    }
    Outcome {
        stdout: out,
        ..Outcome::default()
    }
}

/// `NAME @WHEN +TOOK`, `NAME @WHEN` or `NAME`, as systemd labels a chain's units.
fn label(name: &str, times: Option<&Times>, b: &Boot) -> String {
    match times {
        Some(t) if t.time > 0 => format!(
            "{name} @{} +{}",
            format(t.activated.saturating_sub(b.userspace)),
            format(t.time)
        ),
        Some(t) if t.activated > b.userspace => {
            format!("{name} @{}", format(t.activated - b.userspace))
        }
        _ => name.to_owned(),
    }
}

#[allow(clippy::too_many_arguments)]
fn chain(
    source: &dyn Source,
    unit: &str,
    level: usize,
    branches: u64,
    all: &BTreeMap<String, Times>,
    b: &Boot,
    seen: &mut BTreeSet<String>,
    out: &mut String,
) -> Result<(), Outcome> {
    let in_range = |n: &String| {
        all.get(n)
            .filter(|t| t.activated > 0 && t.activated <= b.finish)
            .copied()
    };
    let mut deps = source.after(unit).map_err(failed)?;
    // Latest activated first.
    deps.sort_by_key(|n| std::cmp::Reverse(all.get(n).map_or(0, |t| t.activated)));
    let Some((next, times)) = deps.iter().find_map(|n| Some((n, in_range(n)?))) else {
        return Ok(());
    };
    for i in (1..=level).rev() {
        out.push_str(if branches & (1 << (i - 1)) != 0 {
            "\u{2502} "
        } else {
            "  "
        });
    }
    out.push_str("\u{2514}\u{2500}");
    out.push_str(&label(next, Some(&times), b));
    out.push('\n');
    if !seen.insert(next.clone()) || level >= 63 {
        return Ok(());
    }
    chain(source, next, level + 1, branches << 1, all, b, seen, out)
}

/// Runs `argv` (without the program name) against `source`.
pub fn run(argv: &[String], source: &dyn Source) -> Outcome {
    let words: Vec<&String> = argv
        .iter()
        .filter(|a| !matches!(a.as_str(), "--no-pager" | "--system"))
        .collect();
    if let Some(flag) = words.iter().find(|w| w.starts_with('-')) {
        return failed(format!("systemd-analyze: unrecognized option '{flag}'"));
    }
    let verb = words.first().map_or("time", |w| w.as_str());
    let rest: Vec<String> = words.iter().skip(1).map(|w| w.to_string()).collect();
    match verb {
        "time" => time(source),
        "blame" => blame(source),
        "critical-chain" => critical_chain(source, &rest),
        other => failed(format!("Unknown command verb '{other}'.")),
    }
}

#[cfg(test)]
mod tests;
