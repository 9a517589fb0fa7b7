//! Where the workspace is, so that every task works from any current directory.

use std::path::{Path, PathBuf};
use std::process::Command;

use berth_testkit::cargo_env::clean_cargo_env;

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
