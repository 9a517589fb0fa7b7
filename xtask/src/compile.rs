//! The compile step: the workspace's own binaries for the image (release, statically
//! linked so that they need nothing from the root's libc and also run from the initramfs),
//! built in a target folder of their own with paths remapped, so their bytes do not depend
//! on where the workspace or the cargo home is; then split into the stripped programs the
//! root ships and their debug files by build-id (`berth_rootfs::split`), which the build
//! packs as `<disk>-debuginfo.tar.zst` beside the disk.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::{bail, Context, Result};

use crate::workspace::Workspace;

/// The binaries that go into the root: (package, binary, path in the root, mode).
pub const IMAGE_BINARIES: &[(&str, &str, &str, u32)] = &[
    ("berth-init", "berth-init", "usr/sbin/init", 0o755),
    ("berth-systemctl", "systemctl", "usr/bin/systemctl", 0o755),
    (
        "berth-runtime",
        "berth-runtime",
        "usr/bin/berth-runtime",
        0o755,
    ),
    (
        "berth-runtime",
        "berth-monitor",
        "usr/bin/berth-monitor",
        0o755,
    ),
    (
        "berth-net",
        "berth-networkd",
        "usr/bin/berth-networkd",
        0o755,
    ),
    (
        "berth-journald",
        "berth-journald",
        "usr/bin/berth-journald",
        0o755,
    ),
    (
        "berth-journalctl",
        "journalctl",
        "usr/bin/journalctl",
        0o755,
    ),
    (
        "berth-timesync",
        "berth-timesync",
        "usr/bin/berth-timesync",
        0o755,
    ),
    (
        "berth-timesync",
        "berth-metadata",
        "usr/bin/berth-metadata",
        0o755,
    ),
];

/// Packages built in a cargo run of their own. Cargo unifies features within a run, so
/// berth-runtime's TLS (rustls, ring) would otherwise land in berth-metadata's plain-HTTP
/// client (1.5 MB). The other packages share one run: each dependency is compiled once
/// rather than once per feature set (nix had six), and both cores stay busy.
const BUILT_ALONE: &[&str] = &["berth-runtime"];

const TARGET: &str = "x86_64-unknown-linux-gnu";

/// The cargo runs of the compile step: every package of [`IMAGE_BINARIES`] once, those
/// of [`BUILT_ALONE`] each in its own run after the shared one.
fn cargo_runs() -> Vec<Vec<&'static str>> {
    let mut runs: Vec<Vec<&str>> = vec![Vec::new()];
    for (package, ..) in IMAGE_BINARIES {
        if runs.iter().any(|run| run.contains(package)) {
            continue;
        }
        if BUILT_ALONE.contains(package) {
            runs.push(vec![package]);
        } else {
            runs[0].push(package);
        }
    }
    runs
}

/// SOURCE_DATE_EPOCH for the compilers (1980-01-01, the ZIP epoch, as Debian's tools use).
const BINARIES_EPOCH: &str = "315532800";

/// One built binary, stripped for the root; its symbols are in its debug file.
pub struct Built {
    /// The stripped program.
    pub path: PathBuf,
    pub dest: PathBuf,
    pub mode: u32,
    /// Its debug file, relative to [`debug_root`]: `usr/lib/debug/.build-id/ab/cdef….debug`.
    pub debug_rel: PathBuf,
}

/// Where the binaries' debug files are kept, in cargo's target folder for the image.
pub fn debug_root(target_dir: &Path) -> PathBuf {
    target_dir.join("berth-debug")
}

/// Runs cargo (it has its own incremental cache) and returns the binaries.
pub fn compile(ws: &Workspace, target_dir: &Path, quiet: bool) -> Result<Vec<Built>> {
    let cargo_home = std::env::var("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|_| std::env::var("HOME").map(|home| Path::new(&home).join(".cargo")));
    let mut rustflags = format!(
        "-C target-feature=+crt-static --remap-path-prefix={}=/berth",
        ws.root.display()
    );
    if let Ok(home) = cargo_home {
        rustflags.push_str(&format!(" --remap-path-prefix={}=/cargo", home.display()));
    }
    // Generated code included from OUT_DIR (the CRI protos) carries its path into panic
    // locations; the target folder differs between work folders, so it is remapped too.
    // The last matching remap wins; cargo keeps RUSTFLAGS out of its metadata hashes.
    let target_abs = std::path::absolute(target_dir).unwrap_or_else(|_| target_dir.to_owned());
    rustflags.push_str(&format!(
        " --remap-path-prefix={}=/target",
        target_abs.display()
    ));
    for packages in cargo_runs() {
        let mut cmd = Workspace::cargo_command();
        cmd.args(["build", "--release", "--locked", "--target", TARGET])
            .arg("--target-dir")
            .arg(target_dir);
        for package in &packages {
            cmd.args(["--package", package]);
        }
        cmd.env("RUSTFLAGS", &rustflags)
            // The binaries do not depend on the image's build time; pinned, because the
            // build scripts of ring and zstd-sys (through cc) rerun when it changes, and a
            // test's epoch would otherwise make the user's next build recompile them.
            .env("SOURCE_DATE_EPOCH", BINARIES_EPOCH)
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            .stdout(Stdio::null());
        if quiet {
            cmd.arg("--quiet");
        }
        let status = cmd.status().context("cannot run cargo")?;
        if !status.success() {
            bail!(
                "cargo build of {} for the image failed ({status})",
                packages.join(", ")
            );
        }
    }
    let dir = target_dir.join(TARGET).join("release");
    let stripped_dir = target_dir.join("berth-stripped");
    IMAGE_BINARIES
        .iter()
        .map(|(_, bin, dest, mode)| {
            let path = dir.join(bin);
            if !path.is_file() {
                bail!("cargo did not produce {}", path.display());
            }
            let split = berth_rootfs::split::split(&path, &stripped_dir, &debug_root(target_dir))?;
            Ok(Built {
                path: split.stripped,
                dest: PathBuf::from(dest),
                mode: *mode,
                debug_rel: split.debug_rel,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_package_is_built_once_and_the_runtime_alone() {
        let runs = cargo_runs();
        let mut all: Vec<&str> = runs.concat();
        all.sort_unstable();
        let mut expected: Vec<&str> = IMAGE_BINARIES.iter().map(|b| b.0).collect();
        expected.sort_unstable();
        expected.dedup();
        assert_eq!(all, expected);
        assert!(runs.contains(&vec!["berth-runtime"]));
        assert_eq!(runs.len(), 2);
    }
}
