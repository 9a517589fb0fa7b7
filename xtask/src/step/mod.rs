//! The one cache of `cargo xtask build`: every step declares its inputs and the code that
//! makes it, and runs through [`ensure`]: key, lookup, run, commit.
//!
//! A step's key is the hash of its declared inputs and of its code version (the source
//! files and locked dependencies that shape its output, see [`code`]), never of the xtask
//! binary: editing `publish/` or rebuilding xtask with other flags changes no step.
//!
//! Each step's outputs live in `<work>/<step>/` beside a `key` file. A step whose key
//! matches is skipped; otherwise it runs into a fresh `<step>.tmp/` that is renamed into
//! place only when complete, so an interrupted build never leaves a half-written step
//! that looks finished. A step that writes outside its folder (the disk, into `out/`)
//! names those files, and the key file also records their length and mtime, so that an
//! output changed after the build (a disk booted without snapshot) is made again.

pub mod code;
#[cfg(test)]
mod tests;

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::de::DeserializeOwned;
use serde::Serialize;
use sha2::{Digest, Sha256};

pub use code::Code;

use crate::ui::Ui;

/// A hash of named inputs; the name keeps `("a", "bc")` and `("ab", "c")` apart.
#[derive(Clone, Default)]
pub struct Key(Sha256);

impl Key {
    pub fn new(step: &str) -> Key {
        Key::default().add("step", step.as_bytes())
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

/// One step of the build.
pub trait Step {
    /// The step's folder under the work folder, and its name in the build's output.
    const NAME: &'static str;
    /// The code that makes the outputs: its version is part of the key.
    const CODE: Code;
    /// What the step hands on to later steps, kept as `<step>.json` in its folder.
    type Meta: Serialize + DeserializeOwned;

    /// Adds every input (files, settings, earlier steps' keys) to `key`.
    fn inputs(&self, key: Key) -> Result<Key>;

    /// Makes the outputs in `dir` (empty), showing its progress on `ui`; returns the
    /// metadata.
    fn run(&self, dir: &Path, ui: &Ui) -> Result<Self::Meta>;

    /// Files the step writes outside its folder.
    fn outputs(&self) -> Vec<PathBuf> {
        Vec::new()
    }
}

/// A step's outcome: its folder, its key (for the keys of later steps) and metadata.
pub struct Done<M> {
    pub dir: PathBuf,
    pub key: String,
    pub meta: M,
}

/// Where the steps of one build live, and the workspace whose code versions they use.
pub struct Cache {
    work: PathBuf,
    code: code::Versions,
}

impl Cache {
    pub fn new(work: PathBuf, workspace: &Path) -> Result<Cache> {
        fs::create_dir_all(&work).with_context(|| format!("cannot create {}", work.display()))?;
        Ok(Cache {
            work,
            code: code::Versions::new(workspace)?,
        })
    }

    /// The key of `step`: its name, its code version and its inputs.
    pub fn key<S: Step>(&self, step: &S) -> Result<Key> {
        let code = self.code.version(&S::CODE)?;
        step.inputs(Key::new(S::NAME).add("code", code))
    }

    /// Finds `step` up to date or runs it.
    pub fn ensure<S: Step>(&self, ui: &Ui, step: &S) -> Result<Done<S::Meta>> {
        let key = self.key(step)?.hex();
        let outputs = step.outputs();
        let meta_file = format!("{}.json", S::NAME);
        let dir = match lookup(&self.work, S::NAME, &key, &outputs)? {
            Cached::Hit(dir) => {
                ui.say(&format!("{:>10} cached", S::NAME));
                dir
            }
            Cached::Miss(pending) => {
                let meta = step.run(&pending.tmp, ui)?;
                write_json(&pending.tmp.join(&meta_file), &meta)?;
                pending.commit()?
            }
        };
        let meta = read_json(&dir.join(&meta_file))?;
        Ok(Done { dir, key, meta })
    }
}

/// A step's folder, found finished or to be made.
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
    outputs: Vec<PathBuf>,
}

impl Pending {
    /// Records the key (and the outside outputs' stamps) and moves the outputs into place.
    pub fn commit(self) -> Result<PathBuf> {
        let text = key_text(&self.key, &self.outputs)
            .context("a step's outputs vanished after it wrote them")?;
        fs::write(self.tmp.join("key"), text)
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

/// Looks up `step` under `base` with `key`; `outputs` are its files outside the folder.
pub fn lookup(base: &Path, step: &str, key: &str, outputs: &[PathBuf]) -> Result<Cached> {
    let dir = base.join(step);
    let want = key_text(key, outputs);
    let found = fs::read_to_string(dir.join("key")).ok();
    if want.is_some() && found == want {
        return Ok(Cached::Hit(dir));
    }
    let tmp = base.join(format!("{step}.tmp"));
    if tmp.exists() {
        make_writable(&tmp);
        fs::remove_dir_all(&tmp).with_context(|| format!("cannot remove {}", tmp.display()))?;
    }
    fs::create_dir_all(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
    Ok(Cached::Miss(Pending {
        tmp,
        dir,
        key: key.to_string(),
        outputs: outputs.to_vec(),
    }))
}

/// The key file: the key, then a line per outside output with its length and mtime;
/// `None` when an output is missing.
fn key_text(key: &str, outputs: &[PathBuf]) -> Option<String> {
    let mut text = key.to_string();
    for path in outputs {
        let meta = fs::metadata(path).ok()?;
        let mtime = meta
            .modified()
            .ok()?
            .duration_since(std::time::UNIX_EPOCH)
            .ok()?;
        text.push_str(&format!(
            "\n{} {} {}",
            path.display(),
            meta.len(),
            mtime.as_nanos()
        ));
    }
    Some(text)
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

fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let text = serde_json::to_string_pretty(value)?;
    fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T> {
    let text =
        fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is damaged; remove it", path.display()))
}
