//! The module dependency index. Debian's kernel package ships uncompressed `.ko` files but
//! no `modules.dep` (its postinst runs depmod); the build generates the index from each
//! module's `.modinfo` section (`name=`, `depends=`) in depmod's text format, uses it to
//! pick the initramfs modules, and ships it in the root for PID 1.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// Errors reading modules or resolving names.
#[derive(Debug, thiserror::Error)]
pub enum ModulesError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not a kernel module: {reason}")]
    BadModule { path: PathBuf, reason: String },
    #[error("{module} depends on {missing}, which is neither a module nor built in")]
    MissingDependency { module: String, missing: String },
    #[error("module {name} is neither a module of kernel {version} nor built into it")]
    NotFound { name: String, version: String },
}

/// Module names compare with '-' and '_' as the same character, as the kernel does.
pub fn normalize(name: &str) -> String {
    name.replace('-', "_")
}

/// The modules of one kernel: name → path relative to `/lib/modules/<version>`, their
/// direct dependencies, and the built-in list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModuleIndex {
    pub version: String,
    pub paths: BTreeMap<String, PathBuf>,
    pub depends: BTreeMap<String, Vec<String>>,
    pub builtin: BTreeSet<String>,
}

impl ModuleIndex {
    /// Scans `dir` (`lib/modules/<version>`): every `.ko`'s modinfo, and `modules.builtin`.
    pub fn scan(dir: &Path, version: &str) -> Result<ModuleIndex, ModulesError> {
        let mut index = ModuleIndex {
            version: version.to_string(),
            ..ModuleIndex::default()
        };
        let mut files = Vec::new();
        collect_ko(dir, Path::new(""), &mut files)?;
        for rel in files {
            let path = dir.join(&rel);
            let bytes = fs::read(&path).map_err(|source| ModulesError::Read {
                path: path.clone(),
                source,
            })?;
            let info = modinfo(&bytes).map_err(|reason| ModulesError::BadModule {
                path: path.clone(),
                reason,
            })?;
            let stem = rel
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            let name = normalize(info.get("name").map_or(stem.as_str(), String::as_str));
            let deps = info
                .get("depends")
                .map(|d| {
                    d.split(',')
                        .filter(|s| !s.is_empty())
                        .map(normalize)
                        .collect()
                })
                .unwrap_or_default();
            index.depends.insert(name.clone(), deps);
            index.paths.insert(name, rel);
        }
        let builtin = dir.join("modules.builtin");
        if let Ok(text) = fs::read_to_string(&builtin) {
            for line in text.lines() {
                let stem = Path::new(line.trim())
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned());
                if let Some(stem) = stem.filter(|s| !s.is_empty()) {
                    index.builtin.insert(normalize(&stem));
                }
            }
        }
        for (module, deps) in &index.depends {
            for dep in deps {
                if !index.paths.contains_key(dep) && !index.builtin.contains(dep) {
                    return Err(ModulesError::MissingDependency {
                        module: module.clone(),
                        missing: dep.clone(),
                    });
                }
            }
        }
        Ok(index)
    }

    /// Every module `names` need, dependencies first (a valid load order), without
    /// built-ins. A name that is neither a module nor built in is an error.
    pub fn load_order(&self, names: &[&str]) -> Result<Vec<String>, ModulesError> {
        let mut order = Vec::new();
        let mut seen = BTreeSet::new();
        for name in names {
            let name = normalize(name);
            if self.builtin.contains(&name) {
                continue;
            }
            if !self.paths.contains_key(&name) {
                return Err(ModulesError::NotFound {
                    name,
                    version: self.version.clone(),
                });
            }
            self.visit(&name, &mut seen, &mut order);
        }
        Ok(order)
    }

    fn visit(&self, name: &str, seen: &mut BTreeSet<String>, order: &mut Vec<String>) {
        if !seen.insert(name.to_string()) {
            return;
        }
        for dep in self.depends.get(name).into_iter().flatten() {
            if self.paths.contains_key(dep) {
                self.visit(dep, seen, order);
            }
        }
        order.push(name.to_string());
    }

    /// `modules.dep` in depmod's format, for the modules in `only` (all when `None`): one
    /// line per module, `path: dep-path ...` with every transitive dependency, listed so
    /// that loading them from last to first is a valid order (as modprobe does).
    pub fn modules_dep(&self, only: Option<&BTreeSet<String>>) -> String {
        let mut lines: Vec<(String, String)> = Vec::new();
        for (name, path) in &self.paths {
            if only.is_some_and(|set| !set.contains(name)) {
                continue;
            }
            let mut order = Vec::new();
            self.visit(name, &mut BTreeSet::new(), &mut order);
            order.pop(); // the module itself comes last in its own load order
            let deps: Vec<String> = order
                .iter()
                .rev()
                .filter_map(|d| self.paths.get(d))
                .map(|p| p.display().to_string())
                .collect();
            lines.push((path.display().to_string(), deps.join(" ")));
        }
        lines.sort();
        lines
            .into_iter()
            .map(|(path, deps)| {
                if deps.is_empty() {
                    format!("{path}:\n")
                } else {
                    format!("{path}: {deps}\n")
                }
            })
            .collect()
    }
}

fn collect_ko(base: &Path, rel: &Path, out: &mut Vec<PathBuf>) -> Result<(), ModulesError> {
    let dir = base.join(rel);
    let entries = fs::read_dir(&dir).map_err(|source| ModulesError::Read {
        path: dir.clone(),
        source,
    })?;
    let mut names: Vec<_> = entries
        .filter_map(Result::ok)
        .map(|e| e.file_name())
        .collect();
    names.sort();
    for name in names {
        let child = rel.join(&name);
        let meta =
            fs::symlink_metadata(base.join(&child)).map_err(|source| ModulesError::Read {
                path: base.join(&child),
                source,
            })?;
        if meta.is_dir() {
            collect_ko(base, &child, out)?;
        } else if meta.is_file() && child.extension().is_some_and(|e| e == "ko") {
            out.push(child);
        }
    }
    Ok(())
}

/// The `key=value` strings of a module's `.modinfo` section.
pub fn modinfo(bytes: &[u8]) -> Result<BTreeMap<String, String>, String> {
    let elf = goblin::elf::Elf::parse(bytes).map_err(|e| e.to_string())?;
    let section = elf
        .section_headers
        .iter()
        .find(|sh| elf.shdr_strtab.get_at(sh.sh_name) == Some(".modinfo"))
        .ok_or("no .modinfo section")?;
    let start = usize::try_from(section.sh_offset).map_err(|e| e.to_string())?;
    let len = usize::try_from(section.sh_size).map_err(|e| e.to_string())?;
    let data = bytes
        .get(start..start.saturating_add(len))
        .ok_or(".modinfo runs past the end of the file")?;
    let mut info = BTreeMap::new();
    for item in data.split(|b| *b == 0).filter(|s| !s.is_empty()) {
        let text = String::from_utf8_lossy(item);
        if let Some((key, value)) = text.split_once('=') {
            info.entry(key.to_string())
                .or_insert_with(|| value.to_string());
        }
    }
    Ok(info)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index() -> ModuleIndex {
        let mut index = ModuleIndex {
            version: "6.1.0-test".into(),
            ..ModuleIndex::default()
        };
        for (name, path, deps) in [
            (
                "dm_verity",
                "kernel/drivers/md/dm-verity.ko",
                vec!["dm_bufio", "dm_mod", "sha256_x"],
            ),
            ("dm_bufio", "kernel/drivers/md/dm-bufio.ko", vec!["dm_mod"]),
            ("dm_mod", "kernel/drivers/md/dm-mod.ko", vec![]),
        ] {
            index.paths.insert(name.into(), path.into());
            index
                .depends
                .insert(name.into(), deps.into_iter().map(String::from).collect());
        }
        index.builtin.insert("sha256_x".into());
        index.builtin.insert("virtio_blk".into());
        index
    }

    #[test]
    fn load_order_puts_dependencies_first_and_skips_builtins() {
        let order = index()
            .load_order(&["virtio_blk", "dm-verity", "dm-mod"])
            .unwrap();
        assert_eq!(order, ["dm_mod", "dm_bufio", "dm_verity"]);
        let err = index().load_order(&["nope"]).unwrap_err().to_string();
        assert!(err.contains("nope") && err.contains("6.1.0-test"), "{err}");
    }

    #[test]
    fn modules_dep_lists_transitive_deps_in_reverse_load_order() {
        let text = index().modules_dep(None);
        assert_eq!(
            text,
            "kernel/drivers/md/dm-bufio.ko: kernel/drivers/md/dm-mod.ko\n\
             kernel/drivers/md/dm-mod.ko:\n\
             kernel/drivers/md/dm-verity.ko: kernel/drivers/md/dm-bufio.ko kernel/drivers/md/dm-mod.ko\n"
        );
        let only: BTreeSet<String> = ["dm_mod".to_string()].into();
        assert_eq!(
            index().modules_dep(Some(&only)),
            "kernel/drivers/md/dm-mod.ko:\n"
        );
    }

    #[test]
    fn modinfo_rejects_non_elf() {
        assert!(modinfo(b"not an elf").is_err());
    }
}
