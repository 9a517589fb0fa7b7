//! The initramfs: stage 1 as `/init` and exactly the modules it loads (with their
//! dependencies from the generated index), as a deterministic cpio (from `berth-image`)
//! compressed with zstd, which the kernel config requires (`CONFIG_RD_ZSTD`).

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use berth_image::cpio;
use berth_image::tree::{Entry, EntryKind, Owner, Tree};
use berth_layout::module_index::STAGE1_MODULES;
use berth_layout::paths::{INITRD_RELEASE, MODULES_BUILTIN, MODULES_DEP};

use crate::kernel::KernelMeta;

/// What went in, for the manifest and the benchmark figures.
pub struct Initramfs {
    pub modules: Vec<String>,
    pub cpio_bytes: u64,
    pub compressed_bytes: u64,
}

/// Writes `out` (compressed cpio). `scratch` holds the generated `modules.dep`.
pub fn build(
    kernel: &KernelMeta,
    kernel_stage: &Path,
    init: &Path,
    epoch: u64,
    scratch: &Path,
    out: &Path,
) -> Result<Initramfs> {
    let modules_dir = kernel.modules_dir(kernel_stage);
    let index = berth_kernel_config::modinfo::scan(&modules_dir, &kernel.version)?;
    let plan = index
        .resolve(STAGE1_MODULES, &|_| false)
        .with_context(|| format!("kernel {} cannot boot Berth", kernel.version))?;
    let base = PathBuf::from("lib/modules").join(&kernel.version);

    let mut entries = Vec::new();
    let dir = |path: PathBuf| Entry {
        path,
        kind: EntryKind::Dir,
        mode: 0o755,
        owner: Owner::default(),
    };
    for d in [
        "dev",
        "proc",
        "sys",
        "run",
        "sysroot",
        "etc",
        "lib",
        "lib/modules",
    ] {
        entries.push(dir(d.into()));
    }
    let file = |path: PathBuf, source: PathBuf, mode: u32| -> Result<Entry> {
        let size = fs::metadata(&source)
            .with_context(|| format!("cannot read {}", source.display()))?
            .len();
        Ok(Entry {
            path,
            kind: EntryKind::File { source, size },
            mode,
            owner: Owner::default(),
        })
    };
    entries.push(file("init".into(), init.to_path_buf(), 0o755)?);
    let release = scratch.join("initrd-release");
    fs::write(&release, "NAME=\"Berth initramfs\"\nID=berth-initrd\n")?;
    entries.push(file(INITRD_RELEASE.into(), release, 0o644)?);

    let mut dirs = std::collections::BTreeSet::new();
    let wanted: std::collections::BTreeSet<String> =
        plan.load.iter().map(|m| m.name.clone()).collect();
    for module in &plan.load {
        let rel = Path::new(&module.path);
        for ancestor in rel.ancestors().skip(1) {
            dirs.insert(base.join(ancestor));
        }
        entries.push(file(base.join(rel), modules_dir.join(rel), 0o644)?);
    }
    for d in dirs {
        entries.push(dir(d));
    }
    let dep = scratch.join(MODULES_DEP);
    fs::write(&dep, index.render_modules_dep(Some(&wanted))?)?;
    entries.push(file(base.join(MODULES_DEP), dep, 0o644)?);
    let builtin = modules_dir.join(MODULES_BUILTIN);
    if builtin.exists() {
        entries.push(file(base.join(MODULES_BUILTIN), builtin, 0o644)?);
    }

    let tree = Tree::from_entries(entries);
    let mut archive = Vec::new();
    let mtime = u32::try_from(epoch).context("SOURCE_DATE_EPOCH does not fit a cpio mtime")?;
    cpio::write_tree(&tree, mtime, &mut archive)?;
    let compressed = zstd::bulk::compress(&archive, 19).context("zstd compression failed")?;
    fs::write(out, &compressed).with_context(|| format!("cannot write {}", out.display()))?;
    Ok(Initramfs {
        modules: plan.load.into_iter().map(|m| m.name).collect(),
        cpio_bytes: archive.len() as u64,
        compressed_bytes: compressed.len() as u64,
    })
}
