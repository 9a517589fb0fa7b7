//! The initramfs step: stage 1 and exactly the modules it may load (with their dependencies
//! from the kernel step's `modules.dep`, and their `modules.alias` lines), laid out and
//! compressed by `berth_image::boot::initramfs`.
//!
//! The modules go in expanded (`.ko`), not as the root's `.ko.zst`: the archive is zstd as
//! a whole already, and Debian's kernel cannot expand a module itself, so a compressed one
//! made stage 1 decompress it in userspace before `init_module`, on every boot (most of
//! stage 1's module time under TCG). Expanded, stage 1 hands the file to `finit_module`.
//!
//! Inputs: the kernel step, the init binary, SOURCE_DATE_EPOCH.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use berth_image::boot::initramfs::{self, Layout};
use berth_layout::module_alias::ModuleAliases;
use berth_layout::module_index::{ModuleIndex, STAGE1_MODULES};
use berth_layout::paths::{MODULES_ALIAS, MODULES_BUILTIN, MODULES_DEP};
use serde::{Deserialize, Serialize};

use super::kernel::KernelMeta;
use crate::step::code::{IMAGE_EXCLUDE, IMAGE_SOURCES};
use crate::step::{Code, Done, Key, Step};
use crate::ui::Ui;

/// The initramfs step.
pub struct Initramfs<'a> {
    pub kernel: &'a Done<KernelMeta>,
    /// Stage 1 (the init binary, which is also `/sbin/init`).
    pub init: &'a Path,
    pub epoch: u64,
}

/// What the initramfs step hands on.
#[derive(Serialize, Deserialize)]
pub struct InitramfsMeta {
    pub modules: Vec<String>,
    pub cpio_bytes: u64,
    pub compressed_bytes: u64,
}

/// The initramfs in the step folder.
pub fn image(dir: &Path) -> PathBuf {
    dir.join("initrd.img")
}

impl Step for Initramfs<'_> {
    const NAME: &'static str = "initramfs";
    const CODE: Code = Code {
        sources: &[
            "xtask/src/build/initramfs.rs",
            "kernel-config/Cargo.toml",
            "kernel-config/src",
            // The list of stage-1 modules is berth-layout's, under image/.
            IMAGE_SOURCES,
        ],
        exclude: IMAGE_EXCLUDE,
        crates: &["berth-kernel-config", "berth-image", "berth-layout"],
    };
    type Meta = InitramfsMeta;

    fn inputs(&self, key: Key) -> Result<Key> {
        Ok(key
            .add("kernel", &self.kernel.key)
            .add("init", super::file_sha256(self.init)?)
            .add("epoch", self.epoch.to_string()))
    }

    fn run(&self, dir: &Path, ui: &Ui) -> Result<InitramfsMeta> {
        let step = ui.step(Self::NAME);
        let kernel = &self.kernel.meta;
        let modules_dir = kernel.modules_dir(&self.kernel.dir);
        // The kernel step's index: its modules are the root's, already compressed.
        let read = |name: &str| {
            let path = modules_dir.join(name);
            std::fs::read_to_string(&path)
                .with_context(|| format!("cannot read {}", path.display()))
        };
        let builtin = match modules_dir.join(MODULES_BUILTIN).exists() {
            true => Some(read(MODULES_BUILTIN)?),
            false => None,
        };
        let index = ModuleIndex::parse(&read(MODULES_DEP)?, builtin.as_deref())
            .with_context(|| format!("{} of kernel {}", MODULES_DEP, kernel.version))?;
        let plan = index
            .resolve(STAGE1_MODULES, &|_| false)
            .with_context(|| format!("kernel {} cannot boot Berth", kernel.version))?;
        let order: Vec<String> = plan.load.iter().map(|m| m.name.clone()).collect();
        let wanted = order.iter().cloned().collect();
        // The same modules, expanded into the step folder, under their `.ko` names.
        let expanded_dir = dir.join("modules");
        let mut expanded = index.only(&wanted);
        let mut paths = Vec::new();
        for module in &plan.load {
            let rel = expanded_path(&module.path);
            let from = modules_dir.join(&module.path);
            let to = expanded_dir.join(&rel);
            expand(&from, &to)?;
            expanded.insert(&module.name, &rel, module.depends.clone());
            paths.push(PathBuf::from(rel));
        }
        let modules_dep = expanded.render_modules_dep(Some(&wanted))?;
        let aliases = ModuleAliases::parse(&read(MODULES_ALIAS)?)
            .with_context(|| format!("{} of kernel {}", MODULES_ALIAS, kernel.version))?;
        let modules_alias = aliases.only(&wanted).render();
        if let Some(builtin) = &builtin {
            let path = expanded_dir.join(MODULES_BUILTIN);
            std::fs::write(&path, builtin)
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
        let layout = Layout {
            init: self.init,
            kernel_version: &kernel.version,
            modules_dir: &expanded_dir,
            modules: &paths,
            modules_dep: &modules_dep,
            modules_alias: &modules_alias,
        };
        let tree = initramfs::tree(&layout, dir)?;
        let written = initramfs::write_compressed(&tree, self.epoch, &image(dir))?;
        let meta = InitramfsMeta {
            modules: order,
            cpio_bytes: written.cpio_bytes,
            compressed_bytes: written.compressed_bytes,
        };
        step.finish(&format!(
            "{} modules ({}), {} KiB zstd of {} KiB cpio",
            meta.modules.len(),
            meta.modules.join(" "),
            meta.compressed_bytes >> 10,
            meta.cpio_bytes >> 10
        ));
        Ok(meta)
    }
}

/// A module's path in the initramfs: the root's path without its compression suffix.
fn expanded_path(path: &str) -> String {
    path.strip_suffix(".zst").unwrap_or(path).to_owned()
}

/// Writes module `from` (`.ko.zst` or `.ko`) expanded to `to`.
fn expand(from: &Path, to: &Path) -> Result<()> {
    let bytes = std::fs::read(from).with_context(|| format!("cannot read {}", from.display()))?;
    let module = if from.extension().is_some_and(|e| e == "zst") {
        zstd::stream::decode_all(bytes.as_slice())
            .with_context(|| format!("cannot expand {}", from.display()))?
    } else {
        bytes
    };
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    std::fs::write(to, module).with_context(|| format!("cannot write {}", to.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modules_are_expanded_under_their_ko_names() {
        assert_eq!(
            expanded_path("kernel/drivers/md/dm-mod.ko.zst"),
            "kernel/drivers/md/dm-mod.ko"
        );
        assert_eq!(expanded_path("kernel/fs/ext4.ko"), "kernel/fs/ext4.ko");
        let dir = tempfile::tempdir().unwrap();
        let module = b"\x7fELF a module".repeat(100);
        let packed = dir.path().join("m.ko.zst");
        std::fs::write(&packed, zstd::bulk::compress(&module, 3).unwrap()).unwrap();
        let out = dir.path().join("out/kernel/m.ko");
        expand(&packed, &out).unwrap();
        assert_eq!(std::fs::read(&out).unwrap(), module);
        let err = expand(&dir.path().join("missing.ko.zst"), &out).unwrap_err();
        assert!(format!("{err:#}").contains("missing.ko.zst"), "{err:#}");
    }
}
