//! `cargo xtask test`: every layer of tests, as CI runs them: formatting, clippy, the unit
//! tests against the reference tools, and the tests that build or boot whole images or
//! change the host's network (marked `#[ignore]` so that a plain `cargo test` stays fast
//! and side-effect free; run here with `--include-ignored`).
//!
//! Skipped tests (see `tests/testkit`) are listed and counted at the end; under CI they
//! have already failed unless `.ci/skips-allowed` allows them.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::ui::Ui;
use crate::workspace::Workspace;

pub fn run(_ws: &Workspace, ui: &Ui) -> Result<()> {
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
    let record = target_dir()?.join(berth_testkit::RECORD);
    match fs::remove_file(&record) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("cannot remove {}", record.display())),
    }
    for (name, args) in steps {
        ui.say(&format!("==> cargo {}", args.join(" ")));
        let status = Workspace::cargo_command()
            .args(&args)
            .status()
            .with_context(|| format!("cannot run cargo {name}"))?;
        if name == "tests" {
            report_skips(ui, &record);
        }
        if !status.success() {
            bail!("{name} failed ({status})");
        }
    }
    Ok(())
}

/// Prints every recorded skip and their count.
fn report_skips(ui: &Ui, record: &Path) {
    let text = fs::read_to_string(record).unwrap_or_default();
    let lines = summary(&text);
    for line in &lines {
        ui.say(line);
    }
}

/// The skip lines, sorted, then `N tests skipped`.
fn summary(text: &str) -> Vec<String> {
    let mut lines: Vec<String> = text
        .lines()
        .filter(|l| l.starts_with("SKIPPED "))
        .map(str::to_string)
        .collect();
    lines.sort();
    let count = lines.len();
    lines.push(match count {
        1 => "1 test skipped".to_string(),
        n => format!("{n} tests skipped"),
    });
    lines
}

/// cargo's target folder: the nearest ancestor of this executable holding `CACHEDIR.TAG`
/// (the test binaries, built by the same cargo, find the same one).
fn target_dir() -> Result<PathBuf> {
    let exe = std::env::current_exe().context("cannot find the xtask executable")?;
    exe.ancestors()
        .find(|dir| dir.join("CACHEDIR.TAG").is_file())
        .map(Path::to_path_buf)
        .with_context(|| format!("{} is not in a cargo target folder", exe.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skips_are_listed_sorted_and_counted() {
        let text = "SKIPPED pod::b: no bridge\nnoise\nSKIPPED cri::a: no crun\n";
        assert_eq!(
            summary(text),
            [
                "SKIPPED cri::a: no crun",
                "SKIPPED pod::b: no bridge",
                "2 tests skipped"
            ]
        );
        assert_eq!(summary(""), ["0 tests skipped"]);
    }
}
