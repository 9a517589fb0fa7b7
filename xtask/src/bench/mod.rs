//! `cargo xtask bench`: measurements for the closing notes, never thresholds.
//! - `boot` (`boot.rs`): boots under QEMU (TCG or KVM, as probed), alone or alternately
//!   with a Debian anchor (`anchor.rs`, probed by `probe.rs`).
//! - `verity`: our dm-verity hashing against `veritysetup format` (the `verity` cargo bench).
//! - `cri`: the CRI runtime against containerd (the runtime's `cri` cargo bench).

mod anchor;
mod blame;
mod boot;
mod probe;

use std::path::Path;

use anyhow::{bail, Context, Result};
use berth_image::spec::ImageSpec;

use crate::build;
use crate::ui::Ui;
use crate::workspace::Workspace;
use crate::Variant;

/// The seconds of a `[    4.463861] ...` console line: the first `[seconds]` in it, since
/// the debug shell's prompt (`/ # `, a terminal query `ESC[6n`) can come first on the line
/// when a kernel line is printed while it waits.
pub(crate) fn stamp(line: &str) -> Result<f64> {
    line.match_indices('[')
        .find_map(|(at, _)| {
            let (inner, _) = line[at + 1..].split_once(']')?;
            inner.trim().parse().ok()
        })
        .with_context(|| format!("no timestamp in {line:?}"))
}

pub(crate) fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

/// `bench boot`: the built image alone, or Berth's debug image against an anchor.
pub fn boot(
    ws: &Workspace,
    ui: &Ui,
    image: Option<&Path>,
    runs: usize,
    against: Option<Against>,
) -> Result<()> {
    match against {
        None => boot::alone(
            ui,
            &ws.path(image.unwrap_or(Path::new("out/berth.raw"))),
            runs,
        ),
        Some(Against::Debian) => {
            let opts = build::Options {
                variant: Variant::Debug,
                config: "image.toml".into(),
                work_dir: "target/berth".into(),
                out_dir: "out".into(),
                binaries_target_dir: None,
            };
            let berth = match image {
                Some(image) => ws.path(image),
                None => build::run(ws, ui, &opts)?,
            };
            let spec = ImageSpec::load(&ws.path(&opts.config))?;
            let anchor = anchor::debian(ws, ui, &spec)?;
            boot::against(
                ui,
                &berth,
                &anchor,
                runs,
                &ws.path(Path::new("target/bench-boot")),
            )
        }
    }
}

/// What `bench boot --against` compares Berth with.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum Against {
    /// Debian 12 with systemd 252, containerd 1.6 and runc (debootstrap; root needed).
    Debian,
}

/// Our dm-verity hashing next to `veritysetup format`.
pub fn verity() -> Result<()> {
    cargo_bench("berth-image", "verity")
}

/// The CRI runtime next to containerd: pod start latency and memory (root only).
pub fn cri() -> Result<()> {
    cargo_bench("berth-runtime", "cri")
}

/// `cargo bench -p PACKAGE --bench BENCH`, its output on this terminal.
fn cargo_bench(package: &str, bench: &str) -> Result<()> {
    let status = Workspace::cargo_command()
        .args(["bench", "-p", package, "--bench", bench])
        .status()
        .context("cannot run cargo bench")?;
    if !status.success() {
        bail!("the {bench} benchmark failed ({status})");
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
        assert_eq!(
            stamp("/ # \u{1b}[6n[    3.925965] berth: started berth-runtime.service").unwrap(),
            3.925965
        );
        assert!(stamp("/ # \u{1b}[6n berth: [x] no stamp").is_err());
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
    }
}
