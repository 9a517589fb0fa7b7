//! `cargo xtask test`: every layer of tests, as CI runs them: formatting, clippy, the unit
//! tests against the reference tools, and the tests that build whole images (marked
//! `#[ignore]` so that a plain `cargo test` stays fast; run here with `--include-ignored`).

use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::ui::Ui;
use crate::workspace::Workspace;

pub fn run(_ws: &Workspace, ui: &Ui) -> Result<()> {
    let cargo = Workspace::cargo();
    let steps: [(&str, Vec<&str>); 3] = [
        ("fmt", vec!["fmt", "--all", "--", "--check"]),
        (
            "clippy",
            vec![
                "clippy",
                "--workspace",
                "--all-targets",
                "--locked",
                "--",
                "-D",
                "warnings",
            ],
        ),
        (
            "tests",
            vec![
                "test",
                "--workspace",
                "--locked",
                "--no-fail-fast",
                "--",
                "--include-ignored",
            ],
        ),
    ];
    for (name, args) in steps {
        ui.say(&format!("==> cargo {}", args.join(" ")));
        let status = Command::new(&cargo)
            .args(&args)
            .status()
            .with_context(|| format!("cannot run cargo {name}"))?;
        if !status.success() {
            bail!("{name} failed ({status})");
        }
    }
    Ok(())
}
