//! Building the module index of a kernel from its `.ko` files. Debian's kernel package
//! ships uncompressed `.ko` files but no `modules.dep` (its postinst runs depmod); the
//! build reads each module's `.modinfo` section (`name=`, `depends=`) into a
//! [`ModuleIndex`] (the contract type, with the one resolver PID 1 uses too), checks that
//! every dependency resolves, and renders `modules.dep` from it for the root and the
//! initramfs.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use berth_layout::module_alias::ModuleAliases;
use berth_layout::module_index::{ModuleIndex, ModuleIndexError};
use berth_layout::paths::MODULES_BUILTIN;

/// Errors reading modules or checking the index.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not a kernel module: {reason}")]
    BadModule { path: PathBuf, reason: String },
    #[error("the modules of kernel {version}")]
    Index {
        version: String,
        #[source]
        source: ModuleIndexError,
    },
}

/// Scans `dir` (`lib/modules/<version>`): every `.ko`'s modinfo, and `modules.builtin`;
/// refuses an index in which a dependency is neither a module nor built in, or which has
/// a cycle.
pub fn scan(dir: &Path, version: &str) -> Result<ModuleIndex, ScanError> {
    let mut index = ModuleIndex::default();
    let mut files = Vec::new();
    collect_ko(dir, Path::new(""), &mut files)?;
    for rel in files {
        let path = dir.join(&rel);
        let bytes = fs::read(&path).map_err(|source| ScanError::Read {
            path: path.clone(),
            source,
        })?;
        let info = modinfo(&bytes).map_err(|reason| ScanError::BadModule {
            path: path.clone(),
            reason,
        })?;
        let stem = rel
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let name = info.get("name").map_or(stem.as_str(), String::as_str);
        let deps = info
            .get("depends")
            .map(|d| {
                d.split(',')
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        index.insert(name, &rel.to_string_lossy(), deps);
    }
    if let Ok(text) = fs::read_to_string(dir.join(MODULES_BUILTIN)) {
        for line in text.lines() {
            let stem = Path::new(line.trim())
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned());
            if let Some(stem) = stem.filter(|s| !s.is_empty()) {
                index.insert_builtin(&stem);
            }
        }
    }
    index.check().map_err(|source| ScanError::Index {
        version: version.to_owned(),
        source,
    })?;
    Ok(index)
}

fn collect_ko(base: &Path, rel: &Path, out: &mut Vec<PathBuf>) -> Result<(), ScanError> {
    let dir = base.join(rel);
    let entries = fs::read_dir(&dir).map_err(|source| ScanError::Read {
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
        let meta = fs::symlink_metadata(base.join(&child)).map_err(|source| ScanError::Read {
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

/// The `key=value` strings of a module's `.modinfo` section (the first of a repeated key).
pub fn modinfo(bytes: &[u8]) -> Result<BTreeMap<String, String>, String> {
    let mut info = BTreeMap::new();
    for (key, value) in modinfo_items(bytes)? {
        info.entry(key).or_insert(value);
    }
    Ok(info)
}

/// Every `key=value` of a module's `.modinfo` section, in order (`alias` repeats).
pub fn modinfo_items(bytes: &[u8]) -> Result<Vec<(String, String)>, String> {
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
    Ok(data
        .split(|b| *b == 0)
        .filter(|s| !s.is_empty())
        .filter_map(|item| {
            let text = String::from_utf8_lossy(item);
            text.split_once('=')
                .map(|(key, value)| (key.to_owned(), value.to_owned()))
        })
        .collect())
}

/// The `alias=` entries of the (uncompressed) modules of `index` under `dir`, as depmod
/// writes them into `modules.alias`.
pub fn aliases(dir: &Path, index: &ModuleIndex) -> Result<ModuleAliases, ScanError> {
    let mut aliases = ModuleAliases::default();
    for module in index.modules() {
        let path = dir.join(&module.path);
        let bytes = fs::read(&path).map_err(|source| ScanError::Read {
            path: path.clone(),
            source,
        })?;
        let items = modinfo_items(&bytes).map_err(|reason| ScanError::BadModule {
            path: path.clone(),
            reason,
        })?;
        for (_, pattern) in items.iter().filter(|(key, _)| key == "alias") {
            aliases.insert(pattern, &module.name);
        }
    }
    Ok(aliases)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modinfo_rejects_non_elf() {
        assert!(modinfo(b"not an elf").is_err());
    }

    #[test]
    fn scan_of_a_folder_without_modules_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(
            dir.path().join("modules.builtin"),
            "kernel/fs/ext4/ext4.ko\n",
        )
        .unwrap();
        let index = scan(dir.path(), "6.1.0-test").unwrap();
        assert!(index.is_empty());
        assert!(index.is_builtin("ext4"));
        let err = scan(&dir.path().join("nope"), "6.1.0-test").unwrap_err();
        assert!(matches!(err, ScanError::Read { .. }), "{err}");
    }
}
