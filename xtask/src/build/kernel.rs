//! The kernel step: the pinned Debian kernel (or `image.toml`'s own) and systemd-boot,
//! unpacked; the kernel's config held against `kernel-config/required.config`; and the
//! module dependency index generated, since the Debian package ships none.
//!
//! Outputs in the step folder: `vmlinuz`, `systemd-bootx64.efi`, `kernel.json`, and
//! `root/usr/lib/modules/<version>/` (the modules `[kernel.modules]` selects, with their
//! dependencies and stage 1's, compressed to `.ko.zst`, plus `modules.dep` and
//! `modules.alias` for them), an overlay for the rootfs step and the index the initramfs
//! step reads.
//!
//! Inputs: the boot packages (by sha256) or the custom kernel's files, and
//! `[kernel.modules]`.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use berth_image::spec::ImageSpec;
use berth_image::tree::{Owners, Tree};
use berth_layout::paths::{MODULES_ALIAS, MODULES_DEP};
use berth_rootfs::{deb, LockedPackage, Prune};
use serde::{Deserialize, Serialize};

use crate::step::{Code, Key, Step};
use crate::ui::Ui;
use crate::workspace::Workspace;

/// The kernel step.
pub struct Kernel<'a> {
    pub ws: &'a Workspace,
    pub spec: &'a ImageSpec,
    /// The pinned boot packages (kernel, systemd-boot) with their verified `.deb` files.
    pub debs: &'a [(LockedPackage, PathBuf)],
}

impl Step for Kernel<'_> {
    const NAME: &'static str = "kernel";
    const CODE: Code = Code {
        sources: &[
            "xtask/src/build/kernel.rs",
            "kernel-config/Cargo.toml",
            "kernel-config/src",
            "kernel-config/required.config",
            "rootfs/Cargo.toml",
            "rootfs/src",
            crate::step::code::IMAGE_SOURCES,
        ],
        exclude: crate::step::code::IMAGE_EXCLUDE,
        crates: &[
            "berth-kernel-config",
            "berth-rootfs",
            "berth-image",
            "berth-layout",
        ],
    };
    type Meta = KernelMeta;

    fn inputs(&self, mut key: Key) -> Result<Key> {
        for (pkg, _) in self.debs {
            key = key.add(&pkg.name, &pkg.sha256);
        }
        key = key.add("modules", format!("{:?}", self.spec.kernel.modules));
        if let Some(custom) = &self.spec.kernel.custom {
            let ws = self.ws;
            key = key
                .add("vmlinuz", super::file_sha256(&ws.path(&custom.vmlinuz))?)
                .add("config", super::file_sha256(&ws.path(&custom.config))?)
                .add(
                    "modules",
                    Tree::scan(&ws.path(&custom.modules), &Owners::new())?.digest()?,
                );
        }
        Ok(key)
    }

    fn run(&self, dir: &Path, ui: &Ui) -> Result<KernelMeta> {
        let step = ui.step(Self::NAME);
        let meta = build(self.ws, self.spec, self.debs, dir)?;
        step.finish(&format!(
            "{} ({} of {} modules), config checked",
            meta.version, meta.modules, meta.modules_in_kernel
        ));
        Ok(meta)
    }
}

/// What later steps need to know about the kernel.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KernelMeta {
    pub version: String,
    /// The package it came from (`custom` for a kernel of one's own).
    pub package: String,
    pub package_version: String,
    /// Modules kept for the root.
    pub modules: usize,
    /// Modules the kernel comes with.
    #[serde(default)]
    pub modules_in_kernel: usize,
}

impl KernelMeta {
    /// `root/usr/lib/modules/<version>` inside the step folder.
    pub fn modules_dir(&self, step: &Path) -> PathBuf {
        step.join("root/usr/lib/modules").join(&self.version)
    }
}

const LOADER_EFI: &str = "usr/lib/systemd/boot/efi/systemd-bootx64.efi";

/// Fills `dest` (an empty step folder) from the pinned packages or the custom kernel.
fn build(
    ws: &Workspace,
    spec: &ImageSpec,
    debs: &[(LockedPackage, PathBuf)],
    dest: &Path,
) -> Result<KernelMeta> {
    let loader = debs
        .iter()
        .find(|(p, _)| p.name == spec.boot.loader_package)
        .context("the boot loader package is not in kernel-config/kernel.lock")?;
    let unpacked = dest.join("unpacked");
    extract(&loader.1, &unpacked.join("loader"))?;
    fs::copy(
        unpacked.join("loader").join(LOADER_EFI),
        dest.join("systemd-bootx64.efi"),
    )
    .with_context(|| format!("{} has no {LOADER_EFI}", loader.0.pin()))?;

    let (meta, config) = match &spec.kernel.custom {
        Some(custom) => {
            let modules = ws.path(&custom.modules);
            let version = modules
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .context("[kernel] custom.modules must end in the kernel version")?;
            fs::copy(ws.path(&custom.vmlinuz), dest.join("vmlinuz"))
                .with_context(|| format!("cannot copy {}", custom.vmlinuz.display()))?;
            copy_tree(&modules, &dest.join("root/usr/lib/modules").join(&version))?;
            let config = fs::read_to_string(ws.path(&custom.config))
                .with_context(|| format!("cannot read {}", custom.config.display()))?;
            let meta = KernelMeta {
                version,
                package: "custom".into(),
                package_version: String::new(),
                modules: 0,
                modules_in_kernel: 0,
            };
            (meta, config)
        }
        None => {
            let (pkg, path) = debs
                .iter()
                .find(|(p, _)| p.name.starts_with("linux-image-"))
                .context("no kernel package in kernel-config/kernel.lock")?;
            let tree = unpacked.join("kernel");
            extract(path, &tree)?;
            let version = single_entry(&tree.join("usr/lib/modules"))?;
            let config = fs::read_to_string(tree.join(format!("boot/config-{version}")))
                .with_context(|| format!("{} ships no boot/config-{version}", pkg.pin()))?;
            fs::rename(
                tree.join(format!("boot/vmlinuz-{version}")),
                dest.join("vmlinuz"),
            )
            .with_context(|| format!("{} ships no boot/vmlinuz-{version}", pkg.pin()))?;
            fs::create_dir_all(dest.join("root/usr/lib/modules"))?;
            fs::rename(
                tree.join("usr/lib/modules").join(&version),
                dest.join("root/usr/lib/modules").join(&version),
            )?;
            let meta = KernelMeta {
                version,
                package: pkg.name.clone(),
                package_version: pkg.version.clone(),
                modules: 0,
                modules_in_kernel: 0,
            };
            (meta, config)
        }
    };
    berth_kernel_config::check::check(&config, berth_kernel_config::REQUIRED)
        .with_context(|| format!("kernel {} does not have what Berth needs", meta.version))?;
    let modules_dir = meta.modules_dir(dest);
    let index = berth_kernel_config::modinfo::scan(&modules_dir, &meta.version)?;
    let keep = match &spec.kernel.modules {
        Some(purposes) => {
            let keep = berth_kernel_config::select::select(&index, purposes)?;
            for module in index.modules().filter(|m| !keep.contains(&m.name)) {
                let path = modules_dir.join(&module.path);
                fs::remove_file(&path)
                    .with_context(|| format!("cannot remove {}", path.display()))?;
            }
            Some(keep)
        }
        None => None,
    };
    let kept = match &keep {
        Some(keep) => index.only(keep),
        None => index.clone(),
    };
    let aliases = berth_kernel_config::modinfo::aliases(&modules_dir, &kept)?;
    let kept = berth_kernel_config::compress::compress(&modules_dir, &kept)?;
    fs::write(
        modules_dir.join(MODULES_DEP),
        kept.render_modules_dep(None)?,
    )?;
    fs::write(modules_dir.join(MODULES_ALIAS), aliases.render())?;
    step_cleanup(&unpacked);
    Ok(KernelMeta {
        modules: keep.as_ref().map_or(index.len(), |k| k.len()),
        modules_in_kernel: index.len(),
        ..meta
    })
}

fn extract(deb_path: &Path, into: &Path) -> Result<()> {
    fs::create_dir_all(into)?;
    deb::extract(deb_path, into, &Prune::default())?;
    Ok(())
}

fn step_cleanup(dir: &Path) {
    crate::step::make_writable(dir);
    let _ = fs::remove_dir_all(dir);
}

/// The one folder in `dir` (the kernel version under `lib/modules`).
fn single_entry(dir: &Path) -> Result<String> {
    let names: Vec<String> = fs::read_dir(dir)
        .with_context(|| format!("cannot read {}", dir.display()))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    match names.as_slice() {
        [one] => Ok(one.clone()),
        _ => bail!(
            "expected one kernel version in {}, found {names:?}",
            dir.display()
        ),
    }
}

/// Copies a folder of regular files, folders and symlinks.
fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    fs::create_dir_all(to).with_context(|| format!("cannot create {}", to.display()))?;
    for entry in fs::read_dir(from).with_context(|| format!("cannot read {}", from.display()))? {
        let entry = entry?;
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        let kind = entry.file_type()?;
        if kind.is_dir() {
            copy_tree(&src, &dst)?;
        } else if kind.is_symlink() {
            std::os::unix::fs::symlink(fs::read_link(&src)?, &dst)?;
        } else {
            fs::copy(&src, &dst).with_context(|| format!("cannot copy {}", src.display()))?;
        }
    }
    Ok(())
}
