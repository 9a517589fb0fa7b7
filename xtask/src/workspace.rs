//! Where the workspace is, so that every task works from any current directory.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// The workspace root and the paths tasks share.
pub struct Workspace {
    pub root: PathBuf,
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
    Ok(Workspace { root })
}
