//! The stage cache: each stage's outputs live in `<work>/<variant>/<stage>/` beside a `key`
//! file holding the hash of every input. A stage whose key matches is skipped; otherwise it
//! runs into a fresh `<stage>.tmp/` that is renamed into place only when complete, so an
//! interrupted build never leaves a half-written stage that looks finished.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};

/// A hash of named inputs; the name keeps `("a", "bc")` and `("ab", "c")` apart.
#[derive(Clone, Default)]
pub struct Key(Sha256);

impl Key {
    pub fn new(stage: &str) -> Key {
        Key::default().add("stage", stage.as_bytes())
    }

    pub fn add(mut self, name: &str, value: impl AsRef<[u8]>) -> Key {
        for part in [name.as_bytes(), value.as_ref()] {
            self.0.update((part.len() as u64).to_le_bytes());
            self.0.update(part);
        }
        self
    }

    pub fn hex(&self) -> String {
        hex::encode(self.0.clone().finalize())
    }
}

/// A stage's folder, found finished or to be made.
pub enum Cached {
    /// Up to date: outputs are in the folder.
    Hit(PathBuf),
    /// Must run: write outputs into `tmp`, then call [`Pending::commit`].
    Miss(Pending),
}

pub struct Pending {
    pub tmp: PathBuf,
    dir: PathBuf,
    key: String,
}

impl Pending {
    /// Records the key and moves the finished outputs into place.
    pub fn commit(self) -> Result<PathBuf> {
        fs::write(self.tmp.join("key"), &self.key)
            .with_context(|| format!("cannot write {}/key", self.tmp.display()))?;
        if self.dir.exists() {
            make_writable(&self.dir);
            fs::remove_dir_all(&self.dir)
                .with_context(|| format!("cannot remove {}", self.dir.display()))?;
        }
        fs::rename(&self.tmp, &self.dir)
            .with_context(|| format!("cannot rename into {}", self.dir.display()))?;
        Ok(self.dir)
    }
}

/// Looks up `stage` under `base` with `key`.
pub fn lookup(base: &Path, stage: &str, key: &Key) -> Result<Cached> {
    let dir = base.join(stage);
    let key = key.hex();
    if fs::read_to_string(dir.join("key")).is_ok_and(|k| k == key) {
        return Ok(Cached::Hit(dir));
    }
    let tmp = base.join(format!("{stage}.tmp"));
    if tmp.exists() {
        make_writable(&tmp);
        fs::remove_dir_all(&tmp).with_context(|| format!("cannot remove {}", tmp.display()))?;
    }
    fs::create_dir_all(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
    Ok(Cached::Miss(Pending { tmp, dir, key }))
}

/// Staged roots can hold read-only folders from packages; make them removable.
pub fn make_writable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = fs::symlink_metadata(path) {
        if meta.is_dir() {
            let _ = fs::set_permissions(path, fs::Permissions::from_mode(0o755));
            if let Ok(entries) = fs::read_dir(path) {
                for entry in entries.flatten() {
                    make_writable(&entry.path());
                }
            }
        }
    }
}
