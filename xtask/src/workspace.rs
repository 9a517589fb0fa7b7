//! Where the workspace is, so that every task works from any current directory.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};

/// The workspace root and the paths tasks share.
pub struct Workspace {
    pub root: PathBuf,
    /// `--source-date-epoch`, which wins over the environment's SOURCE_DATE_EPOCH.
    pub source_date_epoch: Option<u64>,
}

impl Workspace {
    /// Resolves `path` against the workspace root unless absolute.
    pub fn path(&self, path: &Path) -> PathBuf {
        self.root.join(path)
    }

    pub fn lock_file(&self) -> PathBuf {
        self.root.join("rootfs/packages.lock")
    }

    pub fn kernel_lock_file(&self) -> PathBuf {
        self.root.join("kernel-config/kernel.lock")
    }

    /// The cargo binary that runs us (so `cargo +toolchain xtask` stays consistent).
    pub fn cargo() -> String {
        std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
    }

    /// A cargo command with the environment a shell would give it: without the variables
    /// cargo sets for the program it runs (us, under `cargo run`).
    pub fn cargo_command() -> Command {
        let mut cmd = Command::new(Workspace::cargo());
        clean_cargo_env(&mut cmd);
        cmd
    }
}

/// Removes what cargo sets for a package's program (`cargo run`, tests, build scripts)
/// from `cmd`'s environment. A nested cargo would otherwise see them, and build scripts
/// that declare `rerun-if-env-changed` on them (ring does, for `CARGO_MANIFEST_DIR` and
/// `CARGO_PKG_*`) rerun and rebuild everything above them: that made the first `cargo
/// xtask build` after `cargo xtask test` recompile xtask and its dependencies.
pub fn clean_cargo_env(cmd: &mut Command) {
    const SET_BY_CARGO: [&str; 8] = [
        "CARGO_MANIFEST_DIR",
        "CARGO_MANIFEST_PATH",
        "CARGO_MANIFEST_LINKS",
        "CARGO_CRATE_NAME",
        "CARGO_BIN_NAME",
        "CARGO_PRIMARY_PACKAGE",
        "CARGO_TARGET_TMPDIR",
        "CARGO_RUSTC_CURRENT_DIR",
    ];
    for name in SET_BY_CARGO {
        cmd.env_remove(name);
    }
    for (name, _) in std::env::vars_os() {
        let text = name.to_string_lossy();
        if text.starts_with("CARGO_PKG_") || text.starts_with("CARGO_BIN_EXE_") {
            cmd.env_remove(&name);
        }
    }
}

/// Finds the workspace (xtask's parent folder) and makes it the current directory.
pub fn enter() -> Result<Workspace> {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let root = manifest_dir
        .parent()
        .context("xtask is not inside a workspace")?
        .to_path_buf();
    std::env::set_current_dir(&root)
        .with_context(|| format!("cannot enter the workspace {}", root.display()))?;
    Ok(Workspace {
        root,
        source_date_epoch: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_cargo_does_not_see_what_cargo_set_for_us() {
        // `cargo test` sets these for this test binary, as `cargo run` does for xtask.
        assert!(std::env::var_os("CARGO_MANIFEST_DIR").is_some());
        let cmd = Workspace::cargo_command();
        let removed: Vec<String> = cmd
            .get_envs()
            .filter(|(_, value)| value.is_none())
            .map(|(name, _)| name.to_string_lossy().into_owned())
            .collect();
        for name in [
            "CARGO_MANIFEST_DIR",
            "CARGO_PKG_NAME",
            "CARGO_PKG_VERSION_MAJOR",
        ] {
            assert!(removed.iter().any(|r| r == name), "{name} is passed on");
        }
        assert!(!removed
            .iter()
            .any(|r| r == "CARGO_HOME" || r == "CARGO_TARGET_DIR"));
    }
}
