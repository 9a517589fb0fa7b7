//! `cargo xtask bench boot`: boots measured from the serial console.
//! - Alone: N boots of the built image; per boot, the wall time from QEMU's start to the
//!   kernel's first line (firmware + systemd-boot), the kernel's own time to `/init`, stage 1
//!   (its console timestamps) and the time to stage 2; medians side by side.
//! - `--against debian`: Berth's debug image and the Debian anchor (`anchor.rs`) booted
//!   alternately under the same QEMU settings, each probed in the guest (`probe.rs`) once
//!   its CRI socket serves and start-up has settled: the phases up to a serving CRI socket (berth-runtime's READY=1,
//!   containerd's), the time to default.target (Berth's `berth: ready`) and to
//!   network-online, the RSS of PID 1, of the logging daemon and of the runtime, the PSS of
//!   all of userspace, and the root's size; medians side by side with their ratio; and each
//!   system's slowest units by `systemd-analyze blame` (`blame.rs`), median per unit.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use berth_qemu::{Qemu, Vm};

use super::anchor::Anchor;
use super::blame;
use super::probe::{self, Processes};
use super::{median, stamp};
use crate::ui::Ui;

const LIMIT: Duration = Duration::from_secs(600);
const COMMAND: Duration = Duration::from_secs(120);
/// Memory is read this long after the CRI socket serves, on both systems, so that what
/// start-up alone runs (udev's workers, a runtime's first probe of crun) has ended.
const SETTLE: Duration = Duration::from_secs(10);
/// How many of each system's slowest units the summary names.
const SLOWEST_UNITS: usize = 12;

struct Boot {
    firmware: f64,
    kernel: f64,
    stage1: f64,
    to_stage2: f64,
}

fn one_boot(disk: &Path) -> Result<Boot> {
    let started = Instant::now();
    let mut vm = Qemu::builder().disk(disk).snapshot(true).spawn()?;
    vm.wait_for("Linux version", LIMIT)?;
    let firmware = started.elapsed().as_secs_f64();
    let init = stamp(&vm.wait_for("Run /init as init process", LIMIT)?)?;
    let s1 = stamp(&vm.wait_for("berth: stage1 started", LIMIT)?)?;
    let sw = stamp(&vm.wait_for("berth: switch-root", LIMIT)?)?;
    let s2 = stamp(&vm.wait_for("berth: stage2 started", LIMIT)?)?;
    vm.quit()?;
    Ok(Boot {
        firmware,
        kernel: init,
        stage1: sw - s1,
        to_stage2: s2,
    })
}

pub fn alone(ui: &Ui, disk: &Path, runs: usize) -> Result<()> {
    if let Some(reason) = berth_qemu::skip_reason() {
        bail!("cannot boot: {reason}");
    }
    ui.say(&format!(
        "{} boots of {} under {}",
        runs,
        disk.display(),
        berth_qemu::accel().as_str()
    ));
    let mut boots = Vec::new();
    for run in 1..=runs {
        let b = one_boot(disk)?;
        println!(
            "boot {run}: firmware+loader {:.2}s, kernel to /init {:.2}s, stage 1 {:.2}s, kernel start to stage 2 {:.2}s",
            b.firmware, b.kernel, b.stage1, b.to_stage2
        );
        boots.push(b);
    }
    println!(
        "median of {runs} ({}): firmware+loader {:.2}s | kernel {:.2}s | stage 1 {:.2}s | kernel start to stage 2 {:.2}s | QEMU start to stage 2 ~{:.2}s",
        berth_qemu::accel().as_str(),
        median(boots.iter().map(|b| b.firmware).collect()),
        median(boots.iter().map(|b| b.kernel).collect()),
        median(boots.iter().map(|b| b.stage1).collect()),
        median(boots.iter().map(|b| b.to_stage2).collect()),
        median(boots.iter().map(|b| b.firmware + b.to_stage2).collect()),
    );
    Ok(())
}

/// One boot of either system, up to a serving CRI socket and the probe after it.
#[derive(Debug, Clone, Default)]
struct Measured {
    /// QEMU's start to the kernel's first line (wall clock): OVMF, systemd-boot, loading.
    firmware: f64,
    /// The kernel's start to `Run /init` (kernel clock).
    kernel: f64,
    /// `/init` of the initramfs to PID 1 of the real root.
    initramfs: f64,
    /// PID 1 of the real root to READY=1 of the CRI runtime.
    pid1_to_cri: f64,
    /// All of userspace: `/init` to a serving CRI socket.
    userspace: f64,
    /// The kernel's start to default.target (multi-user.target; Berth says `berth: ready`).
    ready: f64,
    /// The kernel's start to network-online (an address and a default route by DHCP).
    online: f64,
    pid1_rss: u64,
    logging_rss: u64,
    runtime_rss: u64,
    pss: u64,
    root_used: u64,
    /// `name PSS` of every counted process, largest first (KiB).
    by_process: Vec<(String, u64)>,
    /// `(unit, seconds)` from `systemd-analyze blame`, slowest first.
    blame: Vec<(String, f64)>,
}

/// Which system a boot is, and how to read it.
#[derive(Clone, Copy)]
enum System {
    Berth,
    Debian,
}

impl System {
    fn name(self) -> &'static str {
        match self {
            System::Berth => "berth",
            System::Debian => "debian",
        }
    }
    fn logging(self) -> &'static str {
        match self {
            System::Berth => "berth-journald",
            System::Debian => "systemd-journal",
        }
    }
    fn runtime(self) -> &'static str {
        match self {
            System::Berth => "berth-runtime",
            System::Debian => "containerd",
        }
    }
}

fn measure(system: System, disk: &Path, console: &Path) -> Result<Measured> {
    let started = Instant::now();
    let mut vm = Qemu::builder()
        .name(&format!("bench-{}", system.name()))
        .serial_log(console)
        .disk(disk)
        .snapshot(true)
        .network(true)
        .spawn()?;
    vm.wait_for("Linux version", LIMIT)?;
    let firmware = started.elapsed().as_secs_f64();
    let init = stamp(&vm.wait_for("Run /init as init process", LIMIT)?)?;
    let (pid1, cri, ready, online) = match system {
        System::Berth => {
            vm.wait_for("berth: ready", LIMIT)?;
            let console = vm.console();
            // berth-networkd says READY=1 once the primary link has an address and a
            // default route: network-online.target follows at once.
            let at = |pattern: &str| -> Result<f64> {
                let line = console
                    .lines()
                    .find(|l| l.contains(pattern))
                    .with_context(|| format!("no {pattern:?} on Berth's console"))?;
                stamp(line)
            };
            let times = (
                at("berth: stage2 started")?,
                at("berth: started berth-runtime.service")?,
                at("berth: ready")?,
                at("berth: started berth-networkd.service")?,
            );
            vm.wait_for_shell(LIMIT)?;
            vm.run_in_shell(probe::QUIET_CONSOLE, COMMAND)?;
            times
        }
        System::Debian => {
            vm.wait_for_shell(LIMIT)?;
            vm.run_in_shell(probe::QUIET_CONSOLE, COMMAND)?;
            let state = vm.run_in_shell("systemctl is-system-running --wait", LIMIT)?;
            if !state.contains("running") && !state.contains("degraded") {
                bail!("the anchor did not finish starting: {state}");
            }
            let offset = probe::clock_offset(&vm.run_in_shell(probe::CLOCK, COMMAND)?)?;
            let monotonic = |vm: &mut Vm, args: &str| -> Result<f64> {
                let text = vm.run_in_shell(&format!("systemctl show -P {args}"), COMMAND)?;
                let usec =
                    probe::number(&text).with_context(|| format!("systemctl show -P {args}"))?;
                if usec == 0 {
                    bail!("systemctl show -P {args} is 0: it never happened");
                }
                Ok(usec as f64 / 1e6 + offset)
            };
            let pid1 = monotonic(&mut vm, "UserspaceTimestampMonotonic")?;
            let cri = monotonic(&mut vm, "ActiveEnterTimestampMonotonic containerd.service")?;
            let ready = monotonic(&mut vm, "ActiveEnterTimestampMonotonic default.target")?;
            let online = monotonic(
                &mut vm,
                "ActiveEnterTimestampMonotonic network-online.target",
            )?;
            (pid1, cri, ready, online)
        }
    };
    std::thread::sleep(SETTLE);
    let processes = Processes::parse(&vm.run_in_shell(probe::PROCESSES, COMMAND)?)?;
    let root_used = probe::root_used(&vm.run_in_shell(probe::ROOT_USED, COMMAND)?)?;
    // After memory: answering it makes PID 1 run code and grow (by 0.3 MiB on Berth).
    let blame = blame::parse(&vm.run_in_shell(blame::BLAME, COMMAND)?)?;
    vm.quit()?;
    let need = |what: &str, value: Option<u64>| {
        value.with_context(|| format!("{}: no {what} process was running", system.name()))
    };
    Ok(Measured {
        firmware,
        kernel: init,
        initramfs: pid1 - init,
        pid1_to_cri: cri - pid1,
        userspace: cri - init,
        ready,
        online,
        pid1_rss: need("PID 1", processes.pid1_rss())?,
        logging_rss: need(system.logging(), processes.rss_of(system.logging()))?,
        runtime_rss: need(system.runtime(), processes.rss_of(system.runtime()))?,
        pss: processes.userspace_pss(),
        root_used,
        by_process: processes.pss_by_process(),
        blame,
    })
}

/// A row of the table: label, unit, and how to read the value from a boot.
type Row = (&'static str, &'static str, fn(&Measured) -> f64);

const ROWS: &[Row] = &[
    ("firmware + loader (wall)", "s", |m| m.firmware),
    ("kernel to /init", "s", |m| m.kernel),
    ("initramfs to PID 1", "s", |m| m.initramfs),
    ("PID 1 to CRI ready", "s", |m| m.pid1_to_cri),
    ("userspace to CRI ready", "s", |m| m.userspace),
    ("kernel to default.target", "s", |m| m.ready),
    ("kernel to network online", "s", |m| m.online),
    ("RSS of PID 1", "MiB", |m| m.pid1_rss as f64 / 1024.0),
    ("RSS of logging", "MiB", |m| m.logging_rss as f64 / 1024.0),
    ("RSS of the runtime", "MiB", |m| {
        m.runtime_rss as f64 / 1024.0
    }),
    ("userspace PSS", "MiB", |m| m.pss as f64 / 1024.0),
    ("root used", "MiB", |m| m.root_used as f64 / 1024.0),
];

/// Berth's debug image and the Debian anchor, booted alternately `runs` times each; each
/// boot's console is kept as `logs/<system>-<run>.log`.
pub fn against(ui: &Ui, berth: &Path, anchor: &Anchor, runs: usize, logs: &Path) -> Result<()> {
    if let Some(reason) = berth_qemu::skip_reason() {
        bail!("cannot boot: {reason}");
    }
    let versions: Vec<String> = ["systemd", "containerd", "runc"]
        .iter()
        .map(|n| format!("{n} {}", anchor.version(n).unwrap_or("?")))
        .collect();
    ui.say(&format!(
        "{runs} boots each of {} and the Debian anchor ({}), alternately, under {}; consoles in {}",
        berth.display(),
        versions.join(", "),
        berth_qemu::accel().as_str(),
        logs.display()
    ));
    std::fs::create_dir_all(logs).with_context(|| format!("cannot create {}", logs.display()))?;
    let mut results: [Vec<Measured>; 2] = [Vec::new(), Vec::new()];
    for run in 1..=runs {
        for (i, (system, disk)) in [(System::Berth, berth), (System::Debian, &*anchor.disk)]
            .into_iter()
            .enumerate()
        {
            let console = logs.join(format!("{}-{run}.log", system.name()));
            let m = measure(system, disk, &console)
                .with_context(|| format!("boot {run} of {}", system.name()))?;
            println!(
                "boot {run} {:<6}: firmware {:.2}s, kernel {:.2}s, initramfs {:.2}s, PID 1 to CRI {:.2}s, userspace {:.2}s, PSS {:.1} MiB",
                system.name(),
                m.firmware,
                m.kernel,
                m.initramfs,
                m.pid1_to_cri,
                m.userspace,
                m.pss as f64 / 1024.0
            );
            results[i].push(m);
        }
    }
    println!(
        "\nmedian of {runs} boots each ({}):\n{:<26} {:>10} {:>10} {:>14}",
        berth_qemu::accel().as_str(),
        "",
        "berth",
        "debian",
        "berth/debian"
    );
    for (system, boots) in ["berth", "debian"].iter().zip(&results) {
        if let Some(last) = boots.last() {
            let list: Vec<String> = last
                .by_process
                .iter()
                .map(|(name, kib)| format!("{name} {:.1}", *kib as f64 / 1024.0))
                .collect();
            println!(
                "PSS by process, {system}'s last boot (MiB): {}",
                list.join(", ")
            );
        }
    }
    for (system, boots) in ["berth", "debian"].iter().zip(&results) {
        let blames: Vec<Vec<(String, f64)>> = boots.iter().map(|m| m.blame.clone()).collect();
        let list: Vec<String> = blame::medians(&blames, SLOWEST_UNITS)
            .iter()
            .map(|(unit, seconds)| format!("{unit} {seconds:.3}"))
            .collect();
        println!(
            "slowest units, {system}, median of {runs} (s, systemd-analyze blame): {}",
            list.join(", ")
        );
    }
    for (label, unit, read) in ROWS {
        let b = median(results[0].iter().map(read).collect());
        let d = median(results[1].iter().map(read).collect());
        let precision = if *unit == "s" { 3 } else { 1 };
        println!(
            "{:<26} {:>8.prec$} {unit:<3} {:>6.prec$} {unit:<3} {:>10.3}",
            label,
            b,
            d,
            b / d,
            prec = precision
        );
    }
    Ok(())
}
