//! `cargo xtask bench`: measurements for the closing notes, never thresholds.
//! - `boot`: N boots of the built image under QEMU (TCG or KVM, as probed); per boot, the
//!   wall time from QEMU's start to the kernel's first line (firmware + systemd-boot), the
//!   kernel's own time to `/init`, stage 1 (its console timestamps) and the time to stage 2;
//!   medians printed side by side.
//! - `verity`: our dm-verity hashing against `veritysetup format` (the `verity` cargo bench).

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use berth_qemu::Qemu;

use crate::ui::Ui;
use crate::workspace::Workspace;

const LIMIT: Duration = Duration::from_secs(600);

/// The seconds of a `[    4.463861] ...` console line.
fn stamp(line: &str) -> Result<f64> {
    let inner = line
        .trim_start()
        .strip_prefix('[')
        .and_then(|rest| rest.split_once(']'))
        .map(|(t, _)| t.trim())
        .with_context(|| format!("no timestamp in {line:?}"))?;
    inner
        .parse()
        .with_context(|| format!("bad timestamp in {line:?}"))
}

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

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

pub fn boot(ui: &Ui, disk: &Path, runs: usize) -> Result<()> {
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

pub fn verity() -> Result<()> {
    let status = Workspace::cargo_command()
        .args(["bench", "-p", "berth-image", "--bench", "verity"])
        .status()
        .context("cannot run cargo bench")?;
    if !status.success() {
        bail!("the verity benchmark failed ({status})");
    }
    Ok(())
}

/// The CRI runtime next to containerd: pod start latency and memory (root only).
pub fn cri() -> Result<()> {
    let status = Workspace::cargo_command()
        .args(["bench", "-p", "berth-runtime", "--bench", "cri"])
        .status()
        .context("cannot run cargo bench")?;
    if !status.success() {
        bail!("the CRI benchmark failed ({status})");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn console_timestamps_parse() {
        assert_eq!(
            stamp("[    4.463861] berth: stage1 started").unwrap(),
            4.463861
        );
        assert!(stamp("berth: no stamp").is_err());
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
    }
}
