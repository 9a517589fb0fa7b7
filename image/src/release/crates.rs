//! The Rust crates in the image, from `Cargo.lock`: the dependency closure of the image's
//! binaries (init, runtime) as the lock file records it, with versions, sources and the
//! registry checksums, for the manifest and the SBOM.
//!
//! The lock file does not say which dependencies are dev-only or for another platform, so
//! the closure may list a few crates that are not linked in: an SBOM may over-report, never
//! under-report.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use serde::{Deserialize, Serialize};

/// One locked crate.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Crate {
    pub name: String,
    pub version: String,
    /// `registry+https://…` for crates.io, absent for the workspace's own crates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// sha256 of the `.crate` file, for registry crates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum: Option<String>,
}

impl Crate {
    pub fn from_crates_io(&self) -> bool {
        self.source
            .as_deref()
            .is_some_and(|s| s.starts_with("registry+https://github.com/rust-lang/crates.io-index"))
    }
}

#[derive(Deserialize)]
struct Lock {
    #[serde(default)]
    package: Vec<LockedPackage>,
}

#[derive(Deserialize)]
struct LockedPackage {
    name: String,
    version: String,
    source: Option<String>,
    checksum: Option<String>,
    #[serde(default)]
    dependencies: Vec<String>,
}

/// The crates reachable from `roots` (package names) in the lock file `text`, sorted by
/// name and version; every crate when `roots` is empty.
pub fn from_lock(text: &str, roots: &[&str]) -> Result<Vec<Crate>, String> {
    let lock: Lock = toml::from_str(text).map_err(|e| format!("not a Cargo.lock: {e}"))?;
    let mut by_name: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, p) in lock.package.iter().enumerate() {
        by_name.entry(&p.name).or_default().push(i);
    }
    // A dependency is "name", or "name version" when several versions are locked.
    let resolve = |dep: &str| -> Result<usize, String> {
        let mut words = dep.split_whitespace();
        let name = words.next().unwrap_or_default();
        let version = words.next();
        let candidates = by_name.get(name).map(Vec::as_slice).unwrap_or_default();
        candidates
            .iter()
            .copied()
            .find(|i| version.is_none_or(|v| lock.package[*i].version == v))
            .ok_or_else(|| format!("Cargo.lock names {dep:?} but does not lock it"))
    };
    let mut seen = BTreeSet::new();
    let mut queue = VecDeque::new();
    if roots.is_empty() {
        seen.extend(0..lock.package.len());
    }
    for root in roots {
        let i = resolve(root)?;
        if seen.insert(i) {
            queue.push_back(i);
        }
    }
    while let Some(i) = queue.pop_front() {
        for dep in &lock.package[i].dependencies {
            let j = resolve(dep)?;
            if seen.insert(j) {
                queue.push_back(j);
            }
        }
    }
    let mut crates: Vec<Crate> = seen
        .into_iter()
        .map(|i| {
            let p = &lock.package[i];
            Crate {
                name: p.name.clone(),
                version: p.version.clone(),
                source: p.source.clone(),
                checksum: p.checksum.clone(),
            }
        })
        .collect();
    crates.sort();
    Ok(crates)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOCK: &str = r#"
version = 4

[[package]]
name = "app"
version = "0.1.0"
dependencies = ["dep 1.0.0", "solo"]

[[package]]
name = "dep"
version = "1.0.0"
source = "registry+https://github.com/rust-lang/crates.io-index"
checksum = "aa"

[[package]]
name = "dep"
version = "2.0.0"
source = "registry+https://github.com/rust-lang/crates.io-index"
checksum = "bb"

[[package]]
name = "solo"
version = "0.3.0"
source = "registry+https://github.com/rust-lang/crates.io-index"
checksum = "cc"
dependencies = ["dep 2.0.0"]

[[package]]
name = "unrelated"
version = "9.9.9"
"#;

    #[test]
    fn closure_follows_versioned_and_plain_dependencies() {
        let crates = from_lock(LOCK, &["app"]).unwrap();
        let names: Vec<String> = crates
            .iter()
            .map(|c| format!("{}@{}", c.name, c.version))
            .collect();
        assert_eq!(names, ["app@0.1.0", "dep@1.0.0", "dep@2.0.0", "solo@0.3.0"]);
        assert!(crates[1].from_crates_io() && !crates[0].from_crates_io());
        assert_eq!(from_lock(LOCK, &[]).unwrap().len(), 5);
        assert!(from_lock(LOCK, &["nope"]).unwrap_err().contains("nope"));
    }

    #[test]
    fn the_workspace_lock_parses() {
        let text =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.lock")).unwrap();
        let crates = from_lock(&text, &["berth-image"]).unwrap();
        assert!(crates
            .iter()
            .any(|c| c.name == "sha2" && c.checksum.is_some()));
    }
}
