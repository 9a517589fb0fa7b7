//! `cargo xtask build`: fetch, compile, then the steps kernel, initramfs, rootfs, ext4,
//! verity, ESP, STATE, disk and debuginfo, each in its own file.
//!
//! Every step declares its inputs and the code that makes it and goes through the one
//! cache of `step.rs` (key, lookup, run, commit); fetch and compile have caches of their
//! own (the sha256-keyed `.deb` cache, cargo). Identities inside the image (filesystem
//! UUIDs, hash seed, verity salt) derive from content, never from the builder or the
//! clock: the disk is a function of the inputs and SOURCE_DATE_EPOCH.

mod debuginfo;
mod disk;
mod esp;
mod ext4;
mod initramfs;
mod kernel;
mod rootfs;
mod verity;

#[cfg(test)]
mod tests;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use berth_image::boot::loader::EntryInfo;
use berth_image::manifest;
use berth_image::spec::ImageSpec;
use berth_layout::partition::{Plan, Sizes};

use crate::step::Cache;
use crate::ui::Ui;
use crate::workspace::Workspace;
use crate::{compile, fetch, Variant};

pub struct Options {
    pub variant: Variant,
    pub config: PathBuf,
    pub work_dir: PathBuf,
    pub out_dir: PathBuf,
    /// cargo's target folder for the image's binaries; `None`: `<work_dir>/cargo`.
    pub binaries_target_dir: Option<PathBuf>,
}

/// Builds (or finds up to date) the image; returns the disk's path.
pub fn run(ws: &Workspace, ui: &Ui, opts: &Options) -> Result<PathBuf> {
    let started = Instant::now();
    let spec = ImageSpec::load(&ws.path(&opts.config))?;
    let epoch = source_date_epoch(ws)?;
    let variant = opts.variant;
    let work_root = ws.path(&opts.work_dir);
    let work = work_root.join(variant.name());
    let cache = Cache::new(work.clone(), &ws.root)?;
    let tools = vec![berth_image::ext4::tool_version()?];

    // fetch
    let mut names = spec.packages.include.clone();
    names.extend(variant.extra_packages(&spec.packages));
    let packages = fetch::fetch(ui, &spec, &ws.lock_file(), &names)?;
    let boot_debs = fetch::fetch(ui, &spec, &ws.kernel_lock_file(), &spec.boot_packages())?;

    // compile
    let step = ui.step("compile");
    // One target folder for every variant: their binaries are the same.
    let target_dir = match &opts.binaries_target_dir {
        Some(dir) => ws.path(dir),
        None => work_root.join("cargo"),
    };
    let binaries = compile::compile(ws, &target_dir, ui.quiet())?;
    step.finish(&format!("{} binaries", binaries.len()));
    let init_binary = binaries
        .iter()
        .find(|b| b.dest.ends_with("sbin/init"))
        .map(|b| b.path.clone())
        .context("the init binary was not built")?;

    let kernel = cache.ensure(
        ui,
        &kernel::Kernel {
            ws,
            spec: &spec,
            debs: &boot_debs,
        },
    )?;
    let initramfs = cache.ensure(
        ui,
        &initramfs::Initramfs {
            kernel: &kernel,
            init: &init_binary,
            epoch,
        },
    )?;
    let overlays: Vec<PathBuf> = spec.rootfs.overlays.iter().map(|o| ws.path(o)).collect();
    let rootfs = cache.ensure(
        ui,
        &rootfs::Rootfs {
            variant,
            binaries: &binaries,
            kernel: &kernel,
            packages: &packages,
            overlays: &overlays,
            cni: &spec.cni,
            units: &spec.units,
        },
    )?;
    let sizes = Sizes {
        esp: spec.partitions.esp.0.bytes(),
        root: spec.partitions.root.0.bytes(),
        verity: spec.partitions.verity.0.bytes(),
        state: spec.partitions.state.0.bytes(),
    };
    let root_ext4 = cache.ensure(
        ui,
        &ext4::RootExt4 {
            rootfs: &rootfs,
            image_name: &spec.image.name,
            sizes: &sizes,
            epoch,
            tools: &tools,
        },
    )?;
    let verity = cache.ensure(
        ui,
        &verity::Verity {
            ext4: &root_ext4,
            rootfs: &rootfs,
        },
    )?;
    let root_hash = verity.meta.root_hash()?;
    let plan = Plan::new(&sizes, &spec.image.name, &root_hash);
    let cmdline = crate::esp::cmdline(&spec, variant, &root_hash);
    let esp = cache.ensure(
        ui,
        &esp::Esp {
            kernel: &kernel,
            initramfs: &initramfs,
            entry: EntryInfo {
                image_name: &spec.image.name,
                version: &spec.image.version,
                tries: spec.boot.tries,
            },
            cmdline: &cmdline,
            plan: &plan,
            epoch,
        },
    )?;
    let state = cache.ensure(
        ui,
        &ext4::StateExt4 {
            image_name: &spec.image.name,
            version: &spec.image.version,
            size: sizes.state,
            epoch,
            tools: &tools,
        },
    )?;

    let out_dir = ws.path(&opts.out_dir);
    fs::create_dir_all(&out_dir).with_context(|| format!("cannot create {}", out_dir.display()))?;
    let suffix = variant.file_suffix();
    let disk_path = out_dir.join(format!("{}{suffix}.raw", spec.image.name));
    cache.ensure(
        ui,
        &disk::Disk {
            spec: &spec,
            variant,
            epoch,
            plan: &plan,
            cmdline: &cmdline,
            tools: &tools,
            kernel: &kernel,
            initramfs: &initramfs,
            rootfs: &rootfs,
            ext4: &root_ext4,
            verity: &verity,
            esp: &esp,
            state: &state,
            disk_path: disk_path.clone(),
            manifest_path: out_dir.join(format!("manifest{suffix}.json")),
        },
    )?;
    cache.ensure(
        ui,
        &debuginfo::Debuginfo {
            binaries: &binaries,
            target_dir: &target_dir,
            epoch,
            archive: out_dir.join(format!("{}{suffix}-debuginfo.tar.zst", spec.image.name)),
        },
    )?;
    ui.say(&format!(
        "built {} (root hash {}) in {:.1}s",
        disk_path.display(),
        verity.meta.root_hash,
        started.elapsed().as_secs_f64()
    ));
    if ui.quiet() {
        println!("{}", disk_path.display());
    }
    Ok(disk_path)
}

/// `--source-date-epoch`, else SOURCE_DATE_EPOCH from the environment, else the time of
/// the last commit.
fn source_date_epoch(ws: &Workspace) -> Result<u64> {
    if let Some(epoch) = ws.source_date_epoch {
        return Ok(epoch);
    }
    if let Ok(value) = std::env::var("SOURCE_DATE_EPOCH") {
        return value
            .trim()
            .parse()
            .with_context(|| format!("SOURCE_DATE_EPOCH={value:?} is not a number of seconds"));
    }
    let out = std::process::Command::new("git")
        .args(["log", "-1", "--format=%ct"])
        .current_dir(&ws.root)
        .output();
    match out {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .context("git log printed no commit time"),
        _ => bail!(
            "SOURCE_DATE_EPOCH is not set and the workspace has no git commit to take it from"
        ),
    }
}

fn file_sha256(path: &Path) -> Result<String> {
    Ok(manifest::sha256_file(path)?)
}
