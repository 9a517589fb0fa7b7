//! Which modules go into the root: `image.toml`'s `[kernel.modules]`, a table of purposes
//! (storage, NICs, netfilter, ...) each listing module names or module folders
//! (`kernel/net/netfilter/`, every module below it), closed over their dependencies from
//! the index. Debian's cloud kernel ships 1121 modules in 91 MiB; a node needs a few
//! hundred of them. Stage 1's modules are always kept (the initramfs takes them from here).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use berth_layout::confd::{self, BadModuleName};
use berth_layout::module_index::{ModuleIndex, ModuleIndexError, STAGE1_MODULES};
use berth_layout::paths::{CONFD_BASES, MODULES, MODULES_BUILTIN, MODULES_DEP};

/// A purpose's entry that selects nothing.
#[derive(Debug, thiserror::Error)]
pub enum SelectError {
    #[error("[kernel.modules] {purpose}: no module below {folder} in this kernel")]
    EmptyFolder { purpose: String, folder: String },
    #[error("[kernel.modules] {purpose}: {source}")]
    Module {
        purpose: String,
        #[source]
        source: ModuleIndexError,
    },
}

/// The names (normalized) of the modules to keep: every entry of every purpose, stage 1's
/// modules, and all their dependencies. A name built into the kernel needs nothing.
pub fn select(
    index: &ModuleIndex,
    purposes: &BTreeMap<String, Vec<String>>,
) -> Result<BTreeSet<String>, SelectError> {
    let mut keep = BTreeSet::new();
    for (purpose, entries) in purposes {
        for entry in entries {
            keep_entry(index, purpose, entry, &mut keep)?;
        }
    }
    for module in STAGE1_MODULES {
        keep_entry(index, "stage 1", module, &mut keep)?;
    }
    Ok(keep)
}

/// Adds `entry` (a module name, or a folder ending in `/`) and its dependencies to `keep`.
fn keep_entry(
    index: &ModuleIndex,
    purpose: &str,
    entry: &str,
    keep: &mut BTreeSet<String>,
) -> Result<(), SelectError> {
    let wanted: Vec<&str> = if entry.ends_with('/') {
        let below: Vec<&str> = index
            .modules()
            .filter(|m| m.path.starts_with(entry))
            .map(|m| m.name.as_str())
            .collect();
        if below.is_empty() {
            return Err(SelectError::EmptyFolder {
                purpose: purpose.to_owned(),
                folder: entry.to_owned(),
            });
        }
        below
    } else {
        vec![entry]
    };
    let plan = index
        .resolve(&wanted, &|_| false)
        .map_err(|source| SelectError::Module {
            purpose: purpose.to_owned(),
            source,
        })?;
    keep.extend(plan.load.into_iter().map(|m| m.name));
    Ok(())
}

/// A `modules-load.d` line that PID 1 could not load from the root.
#[derive(Debug, thiserror::Error)]
pub enum LoadListError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Index {
        path: PathBuf,
        #[source]
        source: ModuleIndexError,
    },
    #[error("{file}:{}: {source}", .source.line)]
    BadName {
        file: String,
        #[source]
        source: BadModuleName,
    },
    #[error("{file}:{line}: {source}; add it to [kernel.modules] in image.toml")]
    NotInRoot {
        file: String,
        line: usize,
        #[source]
        source: ModuleIndexError,
    },
}

/// Checks every name in the root's `modules-load.d` files (parsed as PID 1 parses them,
/// [`confd::module_names`]) against the root's own module index of kernel
/// `version`, so that a module left out of `[kernel.modules]` fails the build, not the
/// boot. Returns how many names were checked.
pub fn check_load_lists(root: &Path, version: &str) -> Result<usize, LoadListError> {
    let release = root.join(MODULES.trim_start_matches('/')).join(version);
    let read = |path: PathBuf| {
        fs::read_to_string(&path).map_err(|source| LoadListError::Read { path, source })
    };
    let dep_path = release.join(MODULES_DEP);
    let builtin = read(release.join(MODULES_BUILTIN)).ok();
    let index =
        ModuleIndex::parse(&read(dep_path.clone())?, builtin.as_deref()).map_err(|source| {
            LoadListError::Index {
                path: dep_path,
                source,
            }
        })?;
    let mut checked = 0;
    for base in CONFD_BASES {
        let dir = root
            .join(base.trim_start_matches('/'))
            .join("modules-load.d");
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "conf"))
            .collect();
        files.sort();
        for file in files {
            let text = read(file.clone())?;
            let shown = file
                .strip_prefix(root)
                .unwrap_or(&file)
                .display()
                .to_string();
            for parsed in confd::module_names(&text) {
                let (line, name) = parsed.map_err(|e| LoadListError::BadName {
                    file: shown.clone(),
                    source: e,
                })?;
                index
                    .resolve(&[&name], &|_| false)
                    .map_err(|source| LoadListError::NotInRoot {
                        file: shown.clone(),
                        line,
                        source,
                    })?;
                checked += 1;
            }
        }
    }
    Ok(checked)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index() -> ModuleIndex {
        let mut index = ModuleIndex::default();
        for (name, path, deps) in [
            (
                "nf_tables",
                "kernel/net/netfilter/nf_tables.ko",
                vec!["nfnetlink"],
            ),
            ("nfnetlink", "kernel/net/netfilter/nfnetlink.ko", vec![]),
            ("nf_nat", "kernel/net/netfilter/nf_nat.ko", vec![]),
            (
                "vxlan",
                "kernel/drivers/net/vxlan/vxlan.ko",
                vec!["udp_tunnel"],
            ),
            ("udp_tunnel", "kernel/net/ipv4/udp_tunnel.ko", vec![]),
            ("comedi", "kernel/drivers/comedi/comedi.ko", vec![]),
        ] {
            index.insert(name, path, deps.into_iter().map(String::from).collect());
        }
        for name in STAGE1_MODULES {
            index.insert_builtin(name);
        }
        index
    }

    fn purposes(list: &[(&str, &[&str])]) -> BTreeMap<String, Vec<String>> {
        list.iter()
            .map(|(p, e)| (p.to_string(), e.iter().map(|s| s.to_string()).collect()))
            .collect()
    }

    #[test]
    fn folders_and_names_bring_their_dependencies_and_nothing_else() {
        let keep = select(
            &index(),
            &purposes(&[
                ("netfilter", &["kernel/net/netfilter/"]),
                ("overlay networks", &["vxlan"]),
            ]),
        )
        .unwrap();
        let keep: Vec<&str> = keep.iter().map(String::as_str).collect();
        assert_eq!(
            keep,
            ["nf_nat", "nf_tables", "nfnetlink", "udp_tunnel", "vxlan"]
        );
    }

    #[test]
    fn a_load_list_naming_a_module_left_out_fails_with_file_and_line() {
        let root = tempfile::tempdir().unwrap();
        let release = root.path().join("usr/lib/modules/6.1.0");
        fs::create_dir_all(&release).unwrap();
        fs::write(release.join(MODULES_DEP), "kernel/drivers/net/veth.ko:\n").unwrap();
        fs::write(
            release.join(MODULES_BUILTIN),
            "kernel/net/packet/af_packet.ko\n",
        )
        .unwrap();
        let lists = root.path().join("usr/lib/modules-load.d");
        fs::create_dir_all(&lists).unwrap();
        fs::write(
            lists.join("a.conf"),
            "# pods\nveth\n; raw sockets\naf_packet\n",
        )
        .unwrap();
        assert_eq!(check_load_lists(root.path(), "6.1.0").unwrap(), 2);
        fs::write(lists.join("b.conf"), "\nvirtio-net\n").unwrap();
        let err = check_load_lists(root.path(), "6.1.0")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("usr/lib/modules-load.d/b.conf:2: module virtio_net is neither"),
            "{err}"
        );
    }

    #[test]
    fn an_unknown_name_or_empty_folder_names_its_purpose() {
        let err = select(&index(), &purposes(&[("nics", &["e1000"])])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "[kernel.modules] nics: module e1000 is neither in modules.dep nor built in (modules.builtin)"
        );
        let err = select(&index(), &purposes(&[("fs", &["kernel/fs/btrfs/"])])).unwrap_err();
        assert!(
            err.to_string()
                .contains("fs: no module below kernel/fs/btrfs/"),
            "{err}"
        );
    }
}
