//! The initramfs step: stage 1 and exactly the modules it loads (with their dependencies
//! from the kernel step's `modules.dep`), laid out and compressed by `berth_image::boot::initramfs`.
//!
//! Inputs: the kernel step, the init binary, SOURCE_DATE_EPOCH.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use berth_image::boot::initramfs::{self, Layout};
use berth_layout::module_index::{ModuleIndex, STAGE1_MODULES};
use berth_layout::paths::{MODULES_BUILTIN, MODULES_DEP};
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
        let paths: Vec<PathBuf> = plan.load.iter().map(|m| PathBuf::from(&m.path)).collect();
        let wanted = order.iter().cloned().collect();
        let modules_dep = index.render_modules_dep(Some(&wanted))?;
        let layout = Layout {
            init: self.init,
            kernel_version: &kernel.version,
            modules_dir: &modules_dir,
            modules: &paths,
            modules_dep: &modules_dep,
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
