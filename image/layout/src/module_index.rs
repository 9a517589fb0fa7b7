//! The kernel module index (`modules.dep`, `modules.builtin`) and the one resolver that
//! turns module names into files to load, in order.
//!
//! The builder fills the index from each module's `.modinfo` (Debian's kernel package
//! ships no `modules.dep`), renders `modules.dep` for the root and the initramfs, and uses
//! [`ModuleIndex::resolve`] to pick the initramfs modules; PID 1 parses the shipped files and
//! uses the same resolver to load modules by name. A dependency that is neither a module
//! nor built in, or a dependency cycle, is an error on both sides.
//!
//! `modules.dep` is depmod's text format, one line per module, paths relative to
//! `/lib/modules/<release>/`, every dependency listed so that loading them from last to
//! first is a valid order (as modprobe does):
//!
//! ```text
//! kernel/drivers/md/dm-verity.ko: kernel/drivers/md/dm-bufio.ko kernel/drivers/md/dm-mod.ko
//! ```
//!
//! `modules.builtin` lists the modules compiled into the kernel, one path per line. A
//! module's name is its file name without `.ko` (and a compression suffix), with `-` and
//! `_` equivalent, as the kernel treats them.

use std::collections::{BTreeMap, BTreeSet};

/// Kernel modules stage 1 loads, in this order, unless the kernel has them built in
/// (`modules.builtin`) or already loaded; each is preceded by its dependencies. The builder
/// puts exactly these (and their dependencies) into the initramfs.
///
/// Disk drivers for every machine Berth targets (QEMU virtio-blk and virtio-scsi, GCE's
/// virtio-scsi, NVMe on AWS and GCE), ext4 with the crc32c its `metadata_csum` needs
/// (a soft dependency, so not in `modules.dep`), and device-mapper with the verity target
/// and its sha256. Every name must exist in the kernel, as a module or built in: the
/// builder refuses a kernel that lacks one, and stage 1 fails if it finds neither.
pub const STAGE1_MODULES: &[&str] = &[
    "virtio_pci",
    "virtio_blk",
    "virtio_scsi",
    "sd_mod",
    "nvme",
    "crc32c_generic",
    "ext4",
    "sha256_generic",
    "dm-mod",
    "dm-verity",
];

/// Errors in the index or in a request against it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModuleIndexError {
    #[error("modules.dep line {line}: expected `path.ko: dependency.ko ...`, got {text:?}")]
    Parse { line: usize, text: String },
    #[error("module {module} is neither in modules.dep nor built in (modules.builtin)")]
    NotFound { module: String },
    #[error("module {module} depends on {dependency}, which is neither a module nor built in")]
    MissingDependency { module: String, dependency: String },
    #[error("module {module} depends on itself through {path}")]
    Cycle { module: String, path: String },
}

/// The kernel's module name for `name`: `-` becomes `_`.
pub fn normalize(name: &str) -> String {
    name.replace('-', "_")
}

/// The module name of a path in `modules.dep` or `modules.builtin`, if it names a module.
pub fn name_of(path: &str) -> Option<String> {
    let file = path.rsplit('/').next()?;
    let stem = [".ko", ".ko.xz", ".ko.zst", ".ko.gz"]
        .iter()
        .find_map(|suffix| file.strip_suffix(suffix))?;
    (!stem.is_empty()).then(|| normalize(stem))
}

/// One module file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Module {
    /// Normalized name.
    pub name: String,
    /// Relative to `/lib/modules/<release>/`.
    pub path: String,
    /// Normalized names of the modules it needs, direct or transitive, as listed.
    pub depends: Vec<String>,
}

/// The modules of one kernel and its built-in list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModuleIndex {
    modules: BTreeMap<String, Module>,
    builtin: BTreeSet<String>,
}

/// What [`ModuleIndex::resolve`] decided.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadPlan {
    /// Module files to load, each after everything it depends on, no repeats.
    pub load: Vec<Module>,
    /// Requested names that are built into the kernel (or reported present).
    pub builtin: Vec<String>,
}

impl ModuleIndex {
    /// Parses `modules.dep` and, when there is one, `modules.builtin`; in `modules.dep`
    /// blank lines and `#` comments are skipped.
    pub fn parse(
        modules_dep: &str,
        modules_builtin: Option<&str>,
    ) -> Result<Self, ModuleIndexError> {
        let mut index = ModuleIndex::default();
        for (number, line) in modules_dep.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let parse_error = || ModuleIndexError::Parse {
                line: number + 1,
                text: line.to_owned(),
            };
            let (path, depends) = line.split_once(':').ok_or_else(parse_error)?;
            let path = path.trim();
            let name = name_of(path).ok_or_else(parse_error)?;
            let depends = depends
                .split_whitespace()
                .map(name_of)
                .collect::<Option<Vec<_>>>()
                .ok_or_else(parse_error)?;
            index.insert(&name, path, depends);
        }
        for line in modules_builtin.unwrap_or_default().lines() {
            if let Some(name) = name_of(line.trim()) {
                index.builtin.insert(name);
            }
        }
        Ok(index)
    }

    /// Adds (or replaces) a module; `name` and `depends` are normalized.
    pub fn insert(&mut self, name: &str, path: &str, depends: Vec<String>) {
        let name = normalize(name);
        let depends = depends.iter().map(|d| normalize(d)).collect();
        self.modules.insert(
            name.clone(),
            Module {
                name,
                path: path.to_owned(),
                depends,
            },
        );
    }

    /// Records a module built into the kernel.
    pub fn insert_builtin(&mut self, name: &str) {
        self.builtin.insert(normalize(name));
    }

    /// The index of the modules named in `keep` only (built-ins stay): what a root that
    /// ships a subset of the kernel's modules describes.
    pub fn only(&self, keep: &BTreeSet<String>) -> ModuleIndex {
        ModuleIndex {
            modules: self
                .modules
                .iter()
                .filter(|(name, _)| keep.contains(*name))
                .map(|(name, module)| (name.clone(), module.clone()))
                .collect(),
            builtin: self.builtin.clone(),
        }
    }

    pub fn get(&self, name: &str) -> Option<&Module> {
        self.modules.get(&normalize(name))
    }

    pub fn is_builtin(&self, name: &str) -> bool {
        self.builtin.contains(&normalize(name))
    }

    pub fn modules(&self) -> impl Iterator<Item = &Module> {
        self.modules.values()
    }

    pub fn len(&self) -> usize {
        self.modules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.modules.is_empty()
    }

    /// The files to load for `wanted`, in order: each wanted module after its dependencies
    /// (followed transitively, whether the index lists them all or only the direct ones;
    /// built-in dependencies need nothing). A wanted module not in the index is fine when
    /// it is built in or `present(name)` says the running kernel already has it; otherwise
    /// it is [`ModuleIndexError::NotFound`]. A dependency that is neither a module nor built
    /// in, and a cycle, are errors.
    pub fn resolve(
        &self,
        wanted: &[&str],
        present: &dyn Fn(&str) -> bool,
    ) -> Result<LoadPlan, ModuleIndexError> {
        let mut plan = LoadPlan::default();
        let mut done = BTreeSet::new();
        for module in wanted {
            let name = normalize(module);
            if self.builtin.contains(&name) {
                plan.builtin.push(name);
                continue;
            }
            match self.modules.get(&name) {
                Some(entry) => self.visit(entry, &mut Vec::new(), &mut done, &mut plan.load)?,
                None if present(&name) => plan.builtin.push(name),
                None => return Err(ModuleIndexError::NotFound { module: name }),
            }
        }
        Ok(plan)
    }

    /// Checks that every module resolves: no missing dependency, no cycle.
    pub fn check(&self) -> Result<(), ModuleIndexError> {
        let names: Vec<&str> = self.modules.keys().map(String::as_str).collect();
        self.resolve(&names, &|_| false).map(|_| ())
    }

    /// `modules.dep` for the modules in `only` (all when `None`): one line per module,
    /// sorted by path, `path: dep-path ...` with every transitive dependency that is a
    /// file, listed so that loading them from last to first is a valid order.
    pub fn render_modules_dep(
        &self,
        only: Option<&BTreeSet<String>>,
    ) -> Result<String, ModuleIndexError> {
        let mut lines = Vec::new();
        for module in self.modules.values() {
            if only.is_some_and(|set| !set.contains(&module.name)) {
                continue;
            }
            let mut order = self.resolve(&[&module.name], &|_| false)?.load;
            order.pop(); // the module itself comes last in its own load order
            let deps: Vec<&str> = order.iter().rev().map(|m| m.path.as_str()).collect();
            lines.push((module.path.as_str(), deps.join(" ")));
        }
        lines.sort();
        Ok(lines
            .into_iter()
            .map(|(path, deps)| {
                if deps.is_empty() {
                    format!("{path}:\n")
                } else {
                    format!("{path}: {deps}\n")
                }
            })
            .collect())
    }

    /// Depth-first, dependencies first; `stack` holds the names being visited.
    fn visit(
        &self,
        entry: &Module,
        stack: &mut Vec<String>,
        done: &mut BTreeSet<String>,
        load: &mut Vec<Module>,
    ) -> Result<(), ModuleIndexError> {
        if done.contains(&entry.name) {
            return Ok(());
        }
        if stack.contains(&entry.name) {
            stack.push(entry.name.clone());
            return Err(ModuleIndexError::Cycle {
                module: entry.name.clone(),
                path: stack.join(" -> "),
            });
        }
        stack.push(entry.name.clone());
        // depmod lists the deepest dependency last (modprobe loads from the end), so walk
        // in reverse: the order is then the one modprobe would use.
        for dependency in entry.depends.iter().rev() {
            match self.modules.get(dependency) {
                Some(module) => self.visit(module, stack, done, load)?,
                None if self.builtin.contains(dependency) => {}
                None => {
                    return Err(ModuleIndexError::MissingDependency {
                        module: entry.name.clone(),
                        dependency: dependency.clone(),
                    })
                }
            }
        }
        stack.pop();
        done.insert(entry.name.clone());
        load.push(entry.clone());
        Ok(())
    }
}

#[cfg(test)]
mod tests;
