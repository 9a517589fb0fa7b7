//! `cargo xtask keygen --out PREFIX`: a new Ed25519 key pair for signing releases,
//! `PREFIX.pk8` (PKCS#8, mode 0600: keep it secret) and `PREFIX.pub` (PEM: publish it).
//! Existing keys are never overwritten.

use std::path::PathBuf;

use anyhow::Result;
use berth_image::release::sign;

use crate::ui::Ui;
use crate::workspace::Workspace;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Path prefix of the two key files.
    #[arg(long, value_name = "PREFIX")]
    pub out: PathBuf,
}

pub fn run(ws: &Workspace, ui: &Ui, args: &Args) -> Result<()> {
    let (private, public, key) = sign::generate(&ws.path(&args.out))?;
    ui.say(&format!(
        "private key {} (mode 0600; keep it secret)\npublic key  {}\nfingerprint {}",
        private.display(),
        public.display(),
        key.fingerprint()
    ));
    if ui.quiet() {
        println!("{}", public.display());
    }
    Ok(())
}
