//! The rootfs step: the root tree assembled by `berth_rootfs` from the packages, the
//! image's binaries, the kernel's modules and the overlays, with its owners and digest.
//!
//! Inputs: the variant, the binaries (by sha256), the kernel step, `[cni]`, the packages
//! (by sha256) and each overlay folder's content.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use berth_image::manifest::PackageSummary;
use berth_image::spec::{CniSection, UnitsSection};
use berth_image::tree::{Owners, Tree};
use berth_rootfs::LockedPackage;
use serde::{Deserialize, Serialize};

use super::kernel::KernelMeta;
use crate::compile::Built;
use crate::step::code::{IMAGE_EXCLUDE, IMAGE_SOURCES};
use crate::step::{Code, Done, Key, Step};
use crate::ui::Ui;
use crate::Variant;

/// The rootfs step.
pub struct Rootfs<'a> {
    pub variant: Variant,
    pub binaries: &'a [Built],
    pub kernel: &'a Done<KernelMeta>,
    pub packages: &'a [(LockedPackage, PathBuf)],
    /// The overlay folders, absolute, in order.
    pub overlays: &'a [PathBuf],
    /// `image.toml`'s `[cni]`.
    pub cni: &'a CniSection,
    /// `image.toml`'s `[units]`.
    pub units: &'a UnitsSection,
}

/// What the rootfs step hands on.
#[derive(Serialize, Deserialize)]
pub struct RootfsMeta {
    pub owners: Owners,
    pub packages: Vec<PackageSummary>,
    pub tree_digest: String,
}

/// The root tree in the step folder.
pub fn tree_dir(dir: &Path) -> PathBuf {
    dir.join("tree")
}

/// `[units] enable`: each unit's `[Install]` links in the tree's `/usr/lib/systemd/system`,
/// by the plan `systemctl enable` uses.
fn bake_units(tree: &Path, units: &UnitsSection) -> Result<()> {
    use berth_init::unit::enable::Installer;
    use berth_init::unit::name::UnitName;
    let names = units
        .enable
        .iter()
        .map(|n| UnitName::parse(n).with_context(|| format!("image.toml [units] enable: {n:?}")))
        .collect::<Result<Vec<_>>>()?;
    Installer::new(tree)
        .bake(&names)
        .with_context(|| format!("image.toml [units] enable: {}", units.enable.join(", ")))?;
    Ok(())
}

impl Step for Rootfs<'_> {
    const NAME: &'static str = "rootfs";
    const CODE: Code = Code {
        sources: &[
            "xtask/src/build/rootfs.rs",
            "rootfs/Cargo.toml",
            "rootfs/src",
            "kernel-config/Cargo.toml",
            "kernel-config/src",
            "init/Cargo.toml",
            "init/src/unit",
            IMAGE_SOURCES,
        ],
        exclude: IMAGE_EXCLUDE,
        crates: &[
            "berth-rootfs",
            "berth-image",
            "berth-layout",
            "berth-kernel-config",
            "berth-init",
        ],
    };
    type Meta = RootfsMeta;

    fn inputs(&self, mut key: Key) -> Result<Key> {
        key = key.add("variant", self.variant.name());
        for bin in self.binaries {
            key = key.add(&bin.dest.to_string_lossy(), super::file_sha256(&bin.path)?);
        }
        key = key.add("kernel", &self.kernel.key);
        key = key.add("cni", serde_json::to_string(self.cni)?);
        key = key.add("units", serde_json::to_string(self.units)?);
        for (pkg, _) in self.packages {
            key = key.add(&pkg.name, &pkg.sha256);
        }
        for dir in self.overlays {
            let digest = Tree::scan(dir, &Owners::new())
                .with_context(|| format!("overlay {}", dir.display()))?
                .digest()?;
            key = key.add(&dir.to_string_lossy(), digest);
        }
        Ok(key)
    }

    fn run(&self, dir: &Path, ui: &Ui) -> Result<RootfsMeta> {
        let step = ui.step(Self::NAME);
        let mut overlays = vec![self.kernel.dir.join("root")];
        overlays.extend(self.overlays.iter().cloned());
        let input = berth_rootfs::RootfsInput {
            packages: self.packages.to_vec(),
            binaries: self
                .binaries
                .iter()
                .map(|b| berth_rootfs::Binary {
                    source: b.path.clone(),
                    dest: b.dest.clone(),
                    mode: b.mode,
                })
                .collect(),
            overlays,
            cni: Some(self.cni.clone()),
        };
        let tree_dir = tree_dir(dir);
        let assembled =
            berth_rootfs::assemble(&input, &tree_dir, &|what: &str| step.message(what))?;
        bake_units(&tree_dir, self.units)?;
        let version = &self.kernel.meta.version;
        let loads = berth_kernel_config::select::check_load_lists(&tree_dir, version)?;
        step.message(&format!(
            "modules-load.d: {loads} modules found in the root"
        ));
        let tree = Tree::scan(&tree_dir, &assembled.owners)?;
        let meta = RootfsMeta {
            tree_digest: hex::encode(tree.digest()?),
            owners: assembled.owners,
            packages: assembled
                .packages
                .into_iter()
                .map(|p| PackageSummary {
                    name: p.name,
                    version: p.version,
                    architecture: p.architecture,
                    sha256: p.sha256,
                })
                .collect(),
        };
        step.finish(&format!(
            "{} entries, {} MiB",
            tree.entries().len(),
            tree.content_bytes() >> 20
        ));
        Ok(meta)
    }
}
