//! `cargo xtask verify DIR --key PUB`: checks a release folder as a user would after a
//! download: the manifest's signature, every checksum in the manifest and SHA256SUMS, and
//! the manifest's root hash against the raw disk's dm-verity tree. Prints each mismatch by
//! name and fails if there is any.

use std::path::PathBuf;

use anyhow::{bail, Result};
use berth_image::release::verify;

use crate::ui::Ui;
use crate::workspace::Workspace;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The release folder (what `cargo xtask release` wrote).
    pub dir: PathBuf,
    /// The public key the manifest must be signed with (PEM, from `cargo xtask keygen`).
    #[arg(long, value_name = "PUB")]
    pub key: Option<PathBuf>,
}

pub fn run(ws: &Workspace, ui: &Ui, args: &Args) -> Result<()> {
    let dir = ws.path(&args.dir);
    let key = args.key.as_ref().map(|k| ws.path(k));
    let step = ui.step("verify");
    let report = verify::verify_release(&dir, key.as_deref(), &|n| {
        step.message(&format!("{} MiB", n >> 20))
    })?;
    drop(step);
    if !ui.quiet() {
        for line in &report.passed {
            println!("ok       {line}");
        }
    }
    for line in &report.notes {
        println!("note     {line}");
    }
    for line in &report.problems {
        println!("MISMATCH {line}");
    }
    if !report.problems.is_empty() {
        bail!(
            "{}: {} problem(s) found",
            dir.display(),
            report.problems.len()
        );
    }
    ui.say(&format!("{}: release verified", dir.display()));
    Ok(())
}
