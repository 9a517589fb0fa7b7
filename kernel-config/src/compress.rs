//! The root's modules, compressed. Debian ships its modules as plain `.ko` files, which
//! were the largest part of the root; the kept ones become `.ko.zst` (zstd level 19, as
//! kmod names them) and the index points at the new files. Debian 12's kernel has no
//! `CONFIG_MODULE_DECOMPRESS`, so PID 1 expands them itself before `init_module`
//! (`berth_init::module_loader::decompress`). The output is a pure function of the input
//! bytes: one frame per file, no dictionary, no threads.

use std::fs;
use std::path::{Path, PathBuf};

use berth_layout::module_index::ModuleIndex;

/// zstd's level for module files: they are compressed once per build and read once per
/// boot, so the highest non-"ultra" level.
pub const LEVEL: i32 = 19;

/// An error compressing one module file.
#[derive(Debug, thiserror::Error)]
#[error("cannot compress module {path}")]
pub struct CompressError {
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

/// Replaces each module's `.ko` under `dir` with `.ko.zst` and returns the index with
/// the new paths. Files already compressed (another suffix) are left as they are. A
/// file is written beside its module and renamed into place before the `.ko` goes, so an
/// interrupted run never leaves a half-written module under either name.
pub fn compress(dir: &Path, index: &ModuleIndex) -> Result<ModuleIndex, CompressError> {
    let mut compressed = index.clone();
    for module in index.modules() {
        if !module.path.ends_with(".ko") {
            continue;
        }
        let from = dir.join(&module.path);
        let to_rel = format!("{}.zst", module.path);
        let to = dir.join(&to_rel);
        let partial = dir.join(format!("{to_rel}.partial"));
        let failed = |source| CompressError {
            path: from.clone(),
            source,
        };
        let bytes = fs::read(&from).map_err(failed)?;
        let packed = zstd::bulk::compress(&bytes, LEVEL).map_err(failed)?;
        fs::write(&partial, packed).map_err(failed)?;
        fs::rename(&partial, &to).map_err(failed)?;
        fs::remove_file(&from).map_err(failed)?;
        compressed.insert(&module.name, &to_rel, module.depends.clone());
    }
    Ok(compressed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modules_become_ko_zst_with_the_same_bytes_inside_and_the_index_follows() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path();
        fs::create_dir_all(base.join("kernel/net")).unwrap();
        let module: Vec<u8> = (0..50_000u32)
            .flat_map(|i| (i % 97).to_le_bytes())
            .collect();
        fs::write(base.join("kernel/net/a.ko"), &module).unwrap();
        fs::write(base.join("kernel/net/b.ko.xz"), b"already").unwrap();
        let mut index = ModuleIndex::default();
        index.insert("a", "kernel/net/a.ko", vec!["b".into()]);
        index.insert("b", "kernel/net/b.ko.xz", vec![]);
        index.insert_builtin("ext4");

        let out = compress(base, &index).unwrap();
        assert!(!base.join("kernel/net/a.ko").exists());
        let packed = fs::read(base.join("kernel/net/a.ko.zst")).unwrap();
        assert!(packed.len() < module.len() / 4, "{}", packed.len());
        assert_eq!(zstd::decode_all(&packed[..]).unwrap(), module);
        assert_eq!(
            out.render_modules_dep(None).unwrap(),
            "kernel/net/a.ko.zst: kernel/net/b.ko.xz\nkernel/net/b.ko.xz:\n"
        );
        assert!(out.is_builtin("ext4"));
        // The same input gives the same bytes.
        fs::write(base.join("kernel/net/a.ko"), &module).unwrap();
        compress(base, &index).unwrap();
        assert_eq!(fs::read(base.join("kernel/net/a.ko.zst")).unwrap(), packed);
    }

    #[test]
    fn a_missing_module_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let mut index = ModuleIndex::default();
        index.insert("gone", "kernel/gone.ko", vec![]);
        let err = compress(dir.path(), &index).unwrap_err();
        assert!(err.to_string().contains("kernel/gone.ko"), "{err}");
    }
}
