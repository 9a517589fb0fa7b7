//! `systemd-analyze` for Berth nodes: `time`, `blame` and `critical-chain [--fuzz=SEC]
//! [UNIT]`, printed as systemd 252 prints them, from what PID 1 records and serves on its
//! control socket (`systemctl show` of the manager for the boot's milestones, of each unit
//! for its InactiveExit/ActiveEnter timestamps, and the units each is ordered after), and
//! the firmware and loader times systemd-boot leaves in EFI variables ([`efi`]).
//!
//! The answers are read through [`Source`], so the layout is tested on recorded data and
//! the node reads its PID 1 ([`socket::ControlSocket`]). There is no binary of its own:
//! `/usr/bin/systemd-analyze` is a link to `systemctl`, which answers as systemd-analyze
//! under that name (one static program instead of two saves 1.4 MiB of the root).

pub mod efi;
pub mod socket;
pub mod timespan;

use std::collections::BTreeMap;

use timespan::format;

/// What PID 1 answers.
pub trait Source {
    /// `Key=Value` properties of the manager (`None`) or of a unit.
    fn show(&self, unit: Option<&str>) -> Result<BTreeMap<String, String>, String>;
    /// The loaded units.
    fn units(&self) -> Result<Vec<String>, String>;
    /// The units `unit` is ordered after.
    fn after(&self, unit: &str) -> Result<Vec<String>, String>;
    /// The efivarfs content of a Boot Loader Interface variable ([`efi`]), `None` when
    /// there is none.
    fn loader_variable(&self, name: &str) -> Option<Vec<u8>>;
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

/// The boot's milestones in µs on the boot clock, and what came before the kernel.
struct Boot {
    initrd: u64,
    userspace: u64,
    finish: u64,
    /// From systemd-boot's variables ([`efi`]); 0 when unknown.
    firmware: u64,
    loader: u64,
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
    let (firmware, loader) = efi::firmware_and_loader(
        source.loader_variable("LoaderTimeInitUSec").as_deref(),
        source.loader_variable("LoaderTimeExecUSec").as_deref(),
    )
    .unwrap_or((0, 0));
    let b = Boot {
        initrd: micros(&p, "InitRDTimestampMonotonic"),
        userspace: micros(&p, "UserspaceTimestampMonotonic"),
        finish: micros(&p, "FinishTimestampMonotonic"),
        firmware,
        loader,
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
    if b.firmware > 0 {
        line.push_str(&format!("{} (firmware) + ", format(b.firmware)));
    }
    if b.loader > 0 {
        line.push_str(&format!("{} (loader) + ", format(b.loader)));
    }
    let kernel_done = if b.initrd > 0 { b.initrd } else { b.userspace };
    line.push_str(&format!("{} (kernel) + ", format(kernel_done)));
    if b.initrd > 0 {
        let initrd = b.userspace.saturating_sub(b.initrd);
        line.push_str(&format!("{} (initrd) + ", format(initrd)));
    }
    let userspace = b.finish.saturating_sub(b.userspace);
    line.push_str(&format!("{} (userspace) ", format(userspace)));
    // From the firmware's start: systemd's FIRMWARE timestamp is init + loader.
    let total = b.firmware + b.loader + b.finish;
    line.push_str(&format!("= {} ", format(total)));
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

/// `systemd-analyze critical-chain [--fuzz=SEC] [UNIT...]` (default.target when none):
/// from the unit down through what it was ordered after, as systemd 252's
/// analyze-critical-chain.c walks it: at each level the dependencies that became active
/// last, and with `fuzz` (µs) also those within that much of the last; a unit already
/// walked is followed by a `...` line instead of its chain again.
pub fn critical_chain(source: &dyn Source, units: &[String], fuzz: u64) -> Outcome {
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
        // The root alone: `+TOOK` without `@` (list_dependencies()).
        match all.get(&id) {
            Some(t) if t.time > 0 => out.push_str(&format!("{id} +{}\n", format(t.time))),
            Some(t) if t.activated > b.userspace => {
                out.push_str(&format!("{id} @{}\n", format(t.activated - b.userspace)))
            }
            Some(_) => out.push_str(&format!("{id}\n")),
            None => {}
        }
        let mut walk = Chain {
            source,
            all: &all,
            boot: &b,
            fuzz,
            units: Vec::new(),
            out: &mut out,
        };
        if let Err(o) = walk.below(&id, 0, 0) {
            return o;
        }
    }
    Outcome {
        stdout: out,
        ..Outcome::default()
    }
}

/// `NAME @STARTED +TOOK`, `NAME @ACTIVE` or `NAME`, as systemd labels a chain's units.
fn label(name: &str, times: Option<&Times>, b: &Boot) -> String {
    match times {
        Some(t) if t.time > 0 => format!(
            "{name} @{} +{}",
            format(t.activating.saturating_sub(b.userspace)),
            format(t.time)
        ),
        Some(t) if t.activated > b.userspace => {
            format!("{name} @{}", format(t.activated - b.userspace))
        }
        _ => name.to_owned(),
    }
}

struct Chain<'a, 'o> {
    source: &'a dyn Source,
    all: &'a BTreeMap<String, Times>,
    boot: &'a Boot,
    fuzz: u64,
    /// Every unit walked so far (systemd never forgets one here).
    units: Vec<String>,
    out: &'o mut String,
}

impl Chain<'_, '_> {
    fn line(&mut self, name: &str, level: usize, branches: u64, last: bool, t: Option<&Times>) {
        for i in (1..=level).rev() {
            self.out.push_str(if branches & (1 << (i - 1)) != 0 {
                "\u{2502} "
            } else {
                "  "
            });
        }
        self.out.push_str(if last {
            "\u{2514}\u{2500}"
        } else {
            "\u{251c}\u{2500}"
        });
        self.out.push_str(&label(name, t, self.boot));
        self.out.push('\n');
    }

    fn below(&mut self, unit: &str, level: usize, branches: u64) -> Result<(), Outcome> {
        self.units.push(unit.to_owned());
        let in_range = |n: &String| {
            self.all
                .get(n)
                .filter(|t| t.activated > 0 && t.activated <= self.boot.finish)
                .copied()
        };
        let mut deps = self.source.after(unit).map_err(failed)?;
        // Latest activated first.
        deps.sort_by_key(|n| std::cmp::Reverse(self.all.get(n).map_or(0, |t| t.activated)));
        let shown: Vec<(String, Times)> = {
            let longest = deps.iter().filter_map(in_range).map(|t| t.activated).max();
            let Some(longest) = longest.filter(|l| *l > 0) else {
                return Ok(());
            };
            deps.iter()
                .filter_map(|n| Some((n.clone(), in_range(n)?)))
                .filter(|(_, t)| longest - t.activated <= self.fuzz)
                .collect()
        };
        let count = shown.len();
        for (i, (name, times)) in shown.into_iter().enumerate() {
            let last = i + 1 == count;
            let below = (branches << 1) | u64::from(!last);
            self.line(&name, level, branches, last, Some(&times));
            if self.units.contains(&name) {
                self.line("...", level + 1, below, true, None);
                continue;
            }
            // The branch bits run out past 64 levels; real chains end far earlier.
            if level < 63 {
                self.below(&name, level + 1, below)?;
            }
        }
        Ok(())
    }
}

/// `--fuzz=SEC` (or `--fuzz SEC`), a systemd time span (`2s`, `500ms`; seconds without a
/// unit), in µs.
fn parse_fuzz(v: &str) -> Result<u64, Outcome> {
    match berth_init::unit::values::timespan(v) {
        Ok(Some(d)) => Ok(u64::try_from(d.as_micros()).unwrap_or(u64::MAX)),
        Ok(None) => Ok(u64::MAX),
        Err(_) => Err(failed(format!("Failed to parse timespan '{v}'."))),
    }
}

/// Runs `argv` (without the program name) against `source`.
pub fn run(argv: &[String], source: &dyn Source) -> Outcome {
    let mut words: Vec<&String> = Vec::new();
    let mut fuzz = 0;
    let mut it = argv.iter();
    while let Some(a) = it.next() {
        let value = match a.as_str() {
            "--no-pager" | "--system" => continue,
            "--fuzz" => it.next().map(String::as_str).unwrap_or_default(),
            other => match other.strip_prefix("--fuzz=") {
                Some(v) => v,
                None if other.starts_with('-') => {
                    return failed(format!("systemd-analyze: unrecognized option '{other}'"))
                }
                None => {
                    words.push(a);
                    continue;
                }
            },
        };
        fuzz = match parse_fuzz(value) {
            Ok(f) => f,
            Err(o) => return o,
        };
    }
    let verb = words.first().map_or("time", |w| w.as_str());
    let rest: Vec<String> = words.iter().skip(1).map(|w| w.to_string()).collect();
    match verb {
        "time" => time(source),
        "blame" => blame(source),
        "critical-chain" => critical_chain(source, &rest, fuzz),
        other => failed(format!("Unknown command verb '{other}'.")),
    }
}

#[cfg(test)]
mod tests;
