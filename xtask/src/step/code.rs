//! The version of the code that makes a step: a hash of the source files it declares (the
//! workspace's own crates and xtask files that shape its output) and of the locked versions
//! of the crates.io dependencies of the crates it names, from `Cargo.lock`.
//!
//! Why source files and not the xtask binary: the binary changes with anything in xtask
//! (`publish/`, the CLI) and with the flags it was compiled with, and a rebuilt binary is
//! not byte-identical to the last one, so keying by it rebuilt the kernel, the root and
//! its hash tree after every unrelated edit or `cargo test`. `cargo xtask` always compiles
//! xtask from the sources it runs, so the sources are the code.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// The code of a step.
#[derive(Debug, Clone, Copy)]
pub struct Code {
    /// Files and folders, relative to the workspace root. A folder counts every file in it
    /// but those under `exclude`, `target` and hidden names.
    pub sources: &'static [&'static str],
    /// Paths under `sources` that do not shape the step (release formats, benches).
    pub exclude: &'static [&'static str],
    /// Workspace crates whose locked dependency tree is part of the version.
    pub crates: &'static [&'static str],
}

/// The format library every step uses, without what only releases use.
pub const IMAGE_SOURCES: &str = "image";
pub const IMAGE_EXCLUDE: &[&str] = &["image/src/release", "image/benches", "image/tests"];

/// Code versions of one workspace, each source path hashed at most once.
pub struct Versions {
    root: PathBuf,
    lock: Option<Vec<LockedPackage>>,
    hashed: RefCell<BTreeMap<(String, Vec<String>), String>>,
}

#[derive(Deserialize)]
struct Lock {
    #[serde(default)]
    package: Vec<LockedPackage>,
}

#[derive(Debug, Clone, Deserialize)]
struct LockedPackage {
    name: String,
    version: String,
    #[serde(default)]
    checksum: Option<String>,
    #[serde(default)]
    dependencies: Vec<String>,
}

impl Versions {
    pub fn new(root: &Path) -> Result<Versions> {
        let path = root.join("Cargo.lock");
        let lock = match fs::read_to_string(&path) {
            Ok(text) => Some(
                toml::from_str::<Lock>(&text)
                    .with_context(|| format!("{} is not a Cargo.lock", path.display()))?
                    .package,
            ),
            Err(_) => None,
        };
        Ok(Versions {
            root: root.to_path_buf(),
            lock,
            hashed: RefCell::default(),
        })
    }

    /// The hex digest of `code`.
    pub fn version(&self, code: &Code) -> Result<String> {
        let mut hasher = Sha256::new();
        for source in code.sources {
            let excluded: Vec<String> = code
                .exclude
                .iter()
                .filter(|e| Path::new(e).starts_with(source))
                .map(|e| e.to_string())
                .collect();
            let key = (source.to_string(), excluded);
            let cached = self.hashed.borrow().get(&key).cloned();
            let digest = match cached {
                Some(digest) => digest,
                None => {
                    let digest = self.hash_source(source, &key.1)?;
                    self.hashed.borrow_mut().insert(key, digest.clone());
                    digest
                }
            };
            field(&mut hasher, source.as_bytes());
            field(&mut hasher, digest.as_bytes());
        }
        field(&mut hasher, self.dependencies(code.crates).as_bytes());
        Ok(hex::encode(hasher.finalize()))
    }

    /// Every file under `source` (path and bytes), sorted; a missing path hashes as such.
    fn hash_source(&self, source: &str, exclude: &[String]) -> Result<String> {
        let mut files = Vec::new();
        collect(&self.root, Path::new(source), exclude, &mut files)?;
        files.sort();
        let mut hasher = Sha256::new();
        if files.is_empty() {
            field(&mut hasher, b"missing or empty");
        }
        for rel in files {
            let path = self.root.join(&rel);
            let bytes =
                fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
            field(&mut hasher, rel.to_string_lossy().as_bytes());
            field(&mut hasher, &Sha256::digest(&bytes));
        }
        Ok(hex::encode(hasher.finalize()))
    }

    /// `name version checksum` of every locked package `crates` depend on, sorted.
    fn dependencies(&self, crates: &[&str]) -> String {
        let Some(lock) = &self.lock else {
            return "no Cargo.lock".into();
        };
        let mut seen = BTreeSet::new();
        let mut todo: Vec<(String, Option<String>)> =
            crates.iter().map(|c| (c.to_string(), None)).collect();
        while let Some((name, version)) = todo.pop() {
            let found = lock
                .iter()
                .filter(|p| p.name == name && version.as_ref().is_none_or(|v| *v == p.version));
            for package in found {
                let line = format!(
                    "{} {} {}",
                    package.name,
                    package.version,
                    package.checksum.as_deref().unwrap_or("workspace")
                );
                if seen.insert(line) {
                    for dep in &package.dependencies {
                        let mut words = dep.split_whitespace();
                        let dep_name = words.next().unwrap_or_default().to_string();
                        todo.push((dep_name, words.next().map(str::to_string)));
                    }
                }
            }
        }
        seen.into_iter().collect::<Vec<_>>().join("\n")
    }
}

fn field(hasher: &mut Sha256, bytes: &[u8]) {
    hasher.update((bytes.len() as u64).to_le_bytes());
    hasher.update(bytes);
}

fn collect(root: &Path, rel: &Path, exclude: &[String], out: &mut Vec<PathBuf>) -> Result<()> {
    if exclude.iter().any(|e| rel == Path::new(e)) {
        return Ok(());
    }
    let path = root.join(rel);
    let Ok(meta) = fs::symlink_metadata(&path) else {
        return Ok(());
    };
    if meta.is_file() {
        out.push(rel.to_path_buf());
    } else if meta.is_dir() {
        for entry in
            fs::read_dir(&path).with_context(|| format!("cannot read {}", path.display()))?
        {
            let name = entry?.file_name();
            let text = name.to_string_lossy();
            if text.starts_with('.') || text == "target" {
                continue;
            }
            collect(root, &rel.join(&name), exclude, out)?;
        }
    }
    Ok(())
}
