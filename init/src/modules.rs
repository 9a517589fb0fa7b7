//! Kernel module names and the depmod index: which files to load, in which order.
//!
//! `modules.dep` is depmod's text format, one line per module, paths relative to
//! `/lib/modules/<release>/`:
//!
//! ```text
//! kernel/drivers/md/dm-verity.ko: kernel/drivers/md/dm-bufio.ko kernel/drivers/md/dm-mod.ko
//! ```
//!
//! `modules.builtin` lists the modules compiled into the kernel, one path per line. A
//! module's name is its file name without `.ko` (and a compression suffix), with `-` and
//! `_` equivalent, as the kernel treats them. The resolution is pure so that stage 1 and
//! the image builder (picking initramfs modules) share it: [`ModulesDep::resolve`].

use std::collections::{BTreeMap, BTreeSet};

/// Errors in the index or in a request against it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModulesError {
    #[error("modules.dep line {line}: expected `path.ko: dependency.ko ...`, got {text:?}")]
    Parse { line: usize, text: String },
    #[error("module {module} is neither in modules.dep nor built in (modules.builtin)")]
    NotFound { module: String },
    #[error("module {module} depends on {dependency}, which is not in modules.dep")]
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

/// One line of `modules.dep`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleEntry {
    pub name: String,
    /// Relative to `/lib/modules/<release>/`.
    pub path: String,
    /// Paths of the modules it needs, as listed.
    pub depends: Vec<String>,
}

/// A parsed `modules.dep`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModulesDep {
    by_name: BTreeMap<String, ModuleEntry>,
    name_by_path: BTreeMap<String, String>,
}

/// What [`ModulesDep::resolve`] decided.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadPlan {
    /// Module files to load, each after everything it depends on, no repeats.
    pub load: Vec<ModuleEntry>,
    /// Requested names that are built into the kernel (or reported present).
    pub builtin: Vec<String>,
}

impl ModulesDep {
    /// Parses depmod's text format; blank lines and `#` comments are skipped.
    pub fn parse(text: &str) -> Result<ModulesDep, ModulesError> {
        let mut dep = ModulesDep::default();
        for (index, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let parse_error = || ModulesError::Parse {
                line: index + 1,
                text: line.to_owned(),
            };
            let (path, depends) = line.split_once(':').ok_or_else(parse_error)?;
            let path = path.trim();
            let name = name_of(path).ok_or_else(parse_error)?;
            let depends: Vec<String> = depends.split_whitespace().map(str::to_owned).collect();
            if depends.iter().any(|d| name_of(d).is_none()) {
                return Err(parse_error());
            }
            dep.name_by_path.insert(path.to_owned(), name.clone());
            dep.by_name.insert(
                name.clone(),
                ModuleEntry {
                    name,
                    path: path.to_owned(),
                    depends,
                },
            );
        }
        Ok(dep)
    }

    pub fn get(&self, name: &str) -> Option<&ModuleEntry> {
        self.by_name.get(&normalize(name))
    }

    pub fn len(&self) -> usize {
        self.by_name.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }

    /// The files to load for `wanted`, in order: each wanted module after its dependencies
    /// (followed transitively, whether depmod listed them all or only the direct ones).
    /// A wanted module not in the index is fine when `builtin` has it or `present(name)`
    /// says the running kernel already has it; otherwise it is [`ModulesError::NotFound`].
    pub fn resolve(
        &self,
        wanted: &[&str],
        builtin: &BTreeSet<String>,
        present: &dyn Fn(&str) -> bool,
    ) -> Result<LoadPlan, ModulesError> {
        let mut plan = LoadPlan::default();
        let mut done = BTreeSet::new();
        for module in wanted {
            let name = normalize(module);
            if builtin.contains(&name) {
                plan.builtin.push(name);
                continue;
            }
            match self.by_name.get(&name) {
                Some(entry) => self.visit(entry, &mut Vec::new(), &mut done, &mut plan.load)?,
                None if present(&name) => plan.builtin.push(name),
                None => return Err(ModulesError::NotFound { module: name }),
            }
        }
        Ok(plan)
    }

    /// Depth-first, dependencies first; `stack` holds the names being visited.
    fn visit(
        &self,
        entry: &ModuleEntry,
        stack: &mut Vec<String>,
        done: &mut BTreeSet<String>,
        load: &mut Vec<ModuleEntry>,
    ) -> Result<(), ModulesError> {
        if done.contains(&entry.name) {
            return Ok(());
        }
        if stack.contains(&entry.name) {
            stack.push(entry.name.clone());
            return Err(ModulesError::Cycle {
                module: entry.name.clone(),
                path: stack.join(" -> "),
            });
        }
        stack.push(entry.name.clone());
        // depmod lists the deepest dependency last (modprobe loads from the end), so walk
        // in reverse: the order is then the one modprobe would use.
        for path in entry.depends.iter().rev() {
            let dependency = self
                .name_by_path
                .get(path)
                .and_then(|name| self.by_name.get(name))
                .ok_or_else(|| ModulesError::MissingDependency {
                    module: entry.name.clone(),
                    dependency: path.clone(),
                })?;
            self.visit(dependency, stack, done, load)?;
        }
        stack.pop();
        done.insert(entry.name.clone());
        load.push(entry.clone());
        Ok(())
    }
}

/// The module names in a `modules.builtin` text.
pub fn parse_builtin(text: &str) -> BTreeSet<String> {
    text.lines().filter_map(|l| name_of(l.trim())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const DEP: &str = "\
kernel/drivers/md/dm-verity.ko: kernel/drivers/md/dm-bufio.ko kernel/drivers/md/dm-mod.ko
kernel/drivers/md/dm-bufio.ko:
kernel/drivers/md/dm-mod.ko:
kernel/drivers/block/virtio_blk.ko.xz:
kernel/drivers/scsi/sd_mod.ko: kernel/drivers/scsi/scsi_common.ko kernel/drivers/scsi/scsi_mod.ko
kernel/drivers/scsi/scsi_mod.ko: kernel/drivers/scsi/scsi_common.ko
kernel/drivers/scsi/scsi_common.ko:
";

    fn names(plan: &LoadPlan) -> Vec<&str> {
        plan.load.iter().map(|e| e.name.as_str()).collect()
    }

    #[test]
    fn names_follow_the_kernel() {
        assert_eq!(name_of("kernel/drivers/md/dm-mod.ko").unwrap(), "dm_mod");
        assert_eq!(name_of("a/virtio_blk.ko.zst").unwrap(), "virtio_blk");
        assert_eq!(name_of("a/readme.txt"), None);
        assert_eq!(name_of(".ko"), None);
    }

    #[test]
    fn dependencies_come_first_once() {
        let dep = ModulesDep::parse(DEP).unwrap();
        let builtin = parse_builtin("kernel/drivers/virtio/virtio_pci.ko\n");
        let plan = dep
            .resolve(
                &["virtio_pci", "sd_mod", "dm-mod", "dm_verity", "scsi-mod"],
                &builtin,
                &|_| false,
            )
            .unwrap();
        assert_eq!(
            names(&plan),
            [
                "scsi_common",
                "scsi_mod",
                "sd_mod",
                "dm_mod",
                "dm_bufio",
                "dm_verity"
            ]
        );
        assert_eq!(plan.builtin, ["virtio_pci"]);
        assert_eq!(plan.load[5].path, "kernel/drivers/md/dm-verity.ko");
    }

    #[test]
    fn missing_modules_and_dependencies_are_named() {
        let dep = ModulesDep::parse(DEP).unwrap();
        let none = BTreeSet::new();
        assert_eq!(
            dep.resolve(&["nvme"], &none, &|_| false),
            Err(ModulesError::NotFound {
                module: "nvme".into()
            })
        );
        let plan = dep.resolve(&["nvme"], &none, &|n| n == "nvme").unwrap();
        assert_eq!(plan.builtin, ["nvme"]);
        let broken = ModulesDep::parse("a.ko: b.ko\n").unwrap();
        assert_eq!(
            broken.resolve(&["a"], &none, &|_| false),
            Err(ModulesError::MissingDependency {
                module: "a".into(),
                dependency: "b.ko".into()
            })
        );
    }

    #[test]
    fn cycles_and_garbage_are_errors() {
        let cyclic = ModulesDep::parse("a.ko: b.ko\nb.ko: a.ko\n").unwrap();
        let e = cyclic
            .resolve(&["a"], &BTreeSet::new(), &|_| false)
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "module a depends on itself through a -> b -> a"
        );
        assert_eq!(
            ModulesDep::parse("\n# comment\nnot a module line\n"),
            Err(ModulesError::Parse {
                line: 3,
                text: "not a module line".into()
            })
        );
    }

    /// A random DAG: module `i` may depend only on modules with a larger index.
    fn dag() -> impl Strategy<Value = Vec<Vec<usize>>> {
        (1usize..12).prop_flat_map(|n| {
            (0..n)
                .map(|i| proptest::collection::vec(i + 1..n + 1, 0..4))
                .collect::<Vec<_>>()
                .prop_map(move |deps| {
                    deps.into_iter()
                        .map(|d| d.into_iter().filter(|&j| j < n).collect())
                        .collect()
                })
        })
    }

    proptest! {
        #[test]
        fn every_module_loads_after_its_dependencies(graph in dag(), wanted in proptest::collection::vec(0usize..12, 1..5)) {
            let text: String = graph
                .iter()
                .enumerate()
                .map(|(i, deps)| {
                    let deps: Vec<String> = deps.iter().map(|d| format!("k/m-{d}.ko")).collect();
                    format!("k/m-{i}.ko: {}\n", deps.join(" "))
                })
                .collect();
            let dep = ModulesDep::parse(&text).unwrap();
            let wanted: Vec<String> = wanted.iter().map(|w| format!("m_{}", w % graph.len())).collect();
            let wanted: Vec<&str> = wanted.iter().map(String::as_str).collect();
            let plan = dep.resolve(&wanted, &BTreeSet::new(), &|_| false).unwrap();
            let order = names(&plan);
            let unique: BTreeSet<_> = order.iter().collect();
            prop_assert_eq!(unique.len(), order.len());
            for w in &wanted {
                prop_assert!(order.contains(w));
            }
            for (at, entry) in plan.load.iter().enumerate() {
                for d in &entry.depends {
                    let d = name_of(d).unwrap();
                    let pos = order.iter().position(|n| *n == d);
                    prop_assert!(matches!(pos, Some(p) if p < at));
                }
            }
        }

        #[test]
        fn parsing_never_panics(text in "\\PC{0,300}") {
            if let Ok(dep) = ModulesDep::parse(&text) {
                let _ = dep.resolve(&["a", "b"], &parse_builtin(&text), &|_| false);
            }
        }
    }
}
