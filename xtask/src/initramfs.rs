//! The initramfs: stage 1 as `/init` and exactly the modules it loads (with their
//! dependencies from the generated index), as a deterministic cpio (from `berth-image`)
//! compressed with zstd, which the kernel config requires (`CONFIG_RD_ZSTD`).

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use berth_image::cpio;
use berth_image::tree::{Entry, EntryKind, Owner, Tree};
use berth_kernel_config::modules::ModuleIndex;

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
    let index = ModuleIndex::scan(&modules_dir, &kernel.version)?;
    let order = index.load_order(berth_init::STAGE1_MODULES)?;
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
    entries.push(file("etc/initrd-release".into(), release, 0o644)?);

    let mut dirs = std::collections::BTreeSet::new();
    let wanted: std::collections::BTreeSet<String> = order.iter().cloned().collect();
    for name in &order {
        let rel = &index.paths[name];
        for ancestor in rel.ancestors().skip(1) {
            dirs.insert(base.join(ancestor));
        }
        entries.push(file(base.join(rel), modules_dir.join(rel), 0o644)?);
    }
    for d in dirs {
        entries.push(dir(d));
    }
    let dep = scratch.join("modules.dep");
    fs::write(&dep, index.modules_dep(Some(&wanted)))?;
    entries.push(file(base.join("modules.dep"), dep, 0o644)?);
    let builtin = modules_dir.join("modules.builtin");
    if builtin.exists() {
        entries.push(file(base.join("modules.builtin"), builtin, 0o644)?);
    }

    let tree = Tree::from_entries(entries);
    let mut archive = Vec::new();
    let mtime = u32::try_from(epoch).context("SOURCE_DATE_EPOCH does not fit a cpio mtime")?;
    cpio::write_tree(&tree, mtime, &mut archive)?;
    let compressed = zstd::bulk::compress(&archive, 19).context("zstd compression failed")?;
    fs::write(out, &compressed).with_context(|| format!("cannot write {}", out.display()))?;
    Ok(Initramfs {
        modules: order,
        cpio_bytes: archive.len() as u64,
        compressed_bytes: compressed.len() as u64,
    })
}
