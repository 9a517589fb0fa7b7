//! `cargo xtask build`: fetch, compile, rootfs, ext4, verity, ESP, STATE, disk.
//!
//! Each stage is cached by the hash of its inputs (see `stage.rs`); the builder's own
//! binary is one of those inputs, so a change to the format code rebuilds what it shapes.
//! Identities inside the image (filesystem UUIDs, hash seed, verity salt) derive from
//! content, never from the builder or the clock: the disk is a function of the inputs
//! and SOURCE_DATE_EPOCH.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use berth_image::disk::{self, Content};
use berth_image::ext4::{self, Ext4Params};
use berth_image::fat::{self, EspParams};
use berth_image::manifest::{
    self, Artifact, BuildManifest, DiskSummary, KernelSummary, PackageSummary, PartitionSummary,
    VeritySummary,
};
use berth_image::spec::ImageSpec;
use berth_image::tree::{Owners, Tree};
use berth_image::verity::{self, VerityParams};
use berth_layout::partition::{stable_uuid, Plan, Role, Sizes};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::kernel::{self, KernelMeta};
use crate::stage::{self, Cached, Key};
use crate::ui::Ui;
use crate::workspace::Workspace;
use crate::{compile, esp, fetch, initramfs, Variant};

pub struct Options {
    pub variant: Variant,
    pub config: PathBuf,
    pub work_dir: PathBuf,
    pub out_dir: PathBuf,
}

/// What the rootfs stage hands on.
#[derive(Serialize, Deserialize)]
struct RootfsMeta {
    owners: Owners,
    packages: Vec<PackageSummary>,
    tree_digest: String,
}

/// What the initramfs stage hands on.
#[derive(Serialize, Deserialize)]
struct InitramfsMeta {
    modules: Vec<String>,
    cpio_bytes: u64,
    compressed_bytes: u64,
}

/// What the verity stage hands on.
#[derive(Serialize, Deserialize)]
struct VerityMeta {
    root_hash: String,
    salt: String,
    uuid: String,
    data_blocks: u64,
    hash_size: u64,
}

/// Builds (or finds up to date) the image; returns the disk's path.
pub fn run(ws: &Workspace, ui: &Ui, opts: &Options) -> Result<PathBuf> {
    let started = Instant::now();
    let spec = ImageSpec::load(&ws.path(&opts.config))?;
    let epoch = source_date_epoch(ws)?;
    let variant = opts.variant;
    let work = ws.path(&opts.work_dir).join(variant.name());
    fs::create_dir_all(&work).with_context(|| format!("cannot create {}", work.display()))?;
    let builder = builder_digest()?;
    let tools = vec![ext4::tool_version()?];

    // 1. fetch
    let mut names = spec.packages.include.clone();
    if variant == Variant::Debug {
        names.extend(spec.packages.debug.iter().cloned());
    }
    let packages = fetch::fetch(ui, &spec, &ws.lock_file(), &names)?;
    let boot_debs = fetch::fetch(ui, &spec, &ws.kernel_lock_file(), &spec.boot_packages())?;

    // 2. compile
    let step = ui.step("compile");
    let binaries = compile::compile(ws, &work.join("cargo"), ui.quiet())?;
    let mut bin_key = Key::new("binaries");
    for bin in &binaries {
        bin_key = bin_key.add(&bin.dest.to_string_lossy(), file_sha256(&bin.path)?);
    }
    step.finish(&format!("{} binaries", binaries.len()));
    let init_binary = binaries
        .iter()
        .find(|b| b.dest.ends_with("sbin/init"))
        .map(|b| b.path.clone())
        .context("the init binary was not built")?;

    // kernel and boot loader
    let mut key = Key::new("kernel").add("builder", &builder);
    for (pkg, _) in &boot_debs {
        key = key.add(&pkg.name, &pkg.sha256);
    }
    if let Some(custom) = &spec.kernel.custom {
        key = key
            .add("vmlinuz", file_sha256(&ws.path(&custom.vmlinuz))?)
            .add("config", file_sha256(&ws.path(&custom.config))?)
            .add(
                "modules",
                Tree::scan(&ws.path(&custom.modules), &Owners::new())?.digest()?,
            );
    }
    let kernel_key = key;
    let kernel_dir = match stage::lookup(&work, "kernel", &kernel_key)? {
        Cached::Hit(dir) => cached(ui, "kernel", dir),
        Cached::Miss(pending) => {
            let step = ui.step("kernel");
            let meta = kernel::build(ws, &spec, &boot_debs, &pending.tmp)?;
            write_json(&pending.tmp.join("kernel.json"), &meta)?;
            step.finish(&format!(
                "{} ({} modules), config checked",
                meta.version, meta.modules
            ));
            pending.commit()?
        }
    };
    let kernel_meta: KernelMeta = read_json(&kernel_dir.join("kernel.json"))?;

    // initramfs
    let initramfs_key = Key::new("initramfs")
        .add("builder", &builder)
        .add("kernel", kernel_key.hex())
        .add("init", file_sha256(&init_binary)?)
        .add("epoch", epoch.to_string());
    let initramfs_dir = match stage::lookup(&work, "initramfs", &initramfs_key)? {
        Cached::Hit(dir) => cached(ui, "initramfs", dir),
        Cached::Miss(pending) => {
            let step = ui.step("initramfs");
            let out = pending.tmp.join("initrd.img");
            let built = initramfs::build(
                &kernel_meta,
                &kernel_dir,
                &init_binary,
                epoch,
                &pending.tmp,
                &out,
            )?;
            let meta = InitramfsMeta {
                modules: built.modules,
                cpio_bytes: built.cpio_bytes,
                compressed_bytes: built.compressed_bytes,
            };
            write_json(&pending.tmp.join("initramfs.json"), &meta)?;
            step.finish(&format!(
                "{} modules ({}), {} KiB zstd of {} KiB cpio",
                meta.modules.len(),
                meta.modules.join(" "),
                meta.compressed_bytes >> 10,
                meta.cpio_bytes >> 10
            ));
            pending.commit()?
        }
    };
    let initramfs_meta: InitramfsMeta = read_json(&initramfs_dir.join("initramfs.json"))?;

    // 3. rootfs: packages, binaries, the kernel's modules, then the overlays
    let mut overlays = vec![kernel_dir.join("root")];
    let mut key = Key::new("rootfs")
        .add("builder", &builder)
        .add("variant", variant.name())
        .add("binaries", bin_key.hex())
        .add("kernel", kernel_key.hex());
    for pkg in &packages {
        key = key.add(&pkg.0.name, &pkg.0.sha256);
    }
    for overlay in &spec.rootfs.overlays {
        let dir = ws.path(overlay);
        let digest = Tree::scan(&dir, &Owners::new())
            .with_context(|| format!("overlay {}", dir.display()))?
            .digest()?;
        key = key.add(&overlay.to_string_lossy(), digest);
        overlays.push(dir);
    }
    let rootfs_key = key;
    let rootfs_dir = match stage::lookup(&work, "rootfs", &rootfs_key)? {
        Cached::Hit(dir) => cached(ui, "rootfs", dir),
        Cached::Miss(pending) => {
            let step = ui.step("rootfs");
            let input = berth_rootfs::RootfsInput {
                packages: packages.clone(),
                binaries: binaries
                    .iter()
                    .map(|b| berth_rootfs::Binary {
                        source: b.path.clone(),
                        dest: b.dest.clone(),
                        mode: b.mode,
                    })
                    .collect(),
                overlays: overlays.clone(),
            };
            let tree_dir = pending.tmp.join("tree");
            let assembled =
                berth_rootfs::assemble(&input, &tree_dir, &|what: &str| step.message(what))?;
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
            write_json(&pending.tmp.join("rootfs.json"), &meta)?;
            step.finish(&format!(
                "{} entries, {} MiB",
                tree.entries().len(),
                tree.content_bytes() >> 20
            ));
            pending.commit()?
        }
    };
    let rootfs: RootfsMeta = read_json(&rootfs_dir.join("rootfs.json"))?;

    // 4. ext4
    let sizes = Sizes {
        esp: spec.partitions.esp.0.bytes(),
        root: spec.partitions.root.0.bytes(),
        verity: spec.partitions.verity.0.bytes(),
        state: spec.partitions.state.0.bytes(),
    };
    let ext4_key = Key::new("ext4")
        .add("rootfs", rootfs_key.hex())
        .add("epoch", epoch.to_string())
        .add("tools", tools.join("\n"))
        .add("name", &spec.image.name)
        .add("root", sizes.root.to_string());
    let ext4_dir = match stage::lookup(&work, "ext4", &ext4_key)? {
        Cached::Hit(dir) => cached(ui, "ext4", dir),
        Cached::Miss(pending) => {
            let step = ui.step("ext4");
            let tree = Tree::scan(&rootfs_dir.join("tree"), &rootfs.owners)?;
            let size = ext4::estimate_size(&tree);
            let image = pending.tmp.join("root.ext4");
            disk::check_fits(
                &dummy_plan(&sizes),
                Role::RootA,
                "the root filesystem",
                &image,
                size,
            )?;
            let seed = rootfs.tree_digest.as_bytes();
            let params = Ext4Params {
                label: "ROOT".into(),
                uuid: stable_uuid(&[spec.image.name.as_bytes(), seed, b"ext4-uuid"]),
                hash_seed: stable_uuid(&[spec.image.name.as_bytes(), seed, b"ext4-hash-seed"]),
                epoch,
                journal: false,
            };
            ext4::write(&tree, &image, size, &params)?;
            step.finish(&format!("{} MiB, e2fsck clean", size >> 20));
            pending.commit()?
        }
    };
    let root_image = ext4_dir.join("root.ext4");

    // 5. verity
    let verity_key = Key::new("verity")
        .add("ext4", ext4_key.hex())
        .add("builder", &builder);
    let verity_dir = match stage::lookup(&work, "verity", &verity_key)? {
        Cached::Hit(dir) => cached(ui, "verity", dir),
        Cached::Miss(pending) => {
            let data_len = fs::metadata(&root_image)?.len();
            let step = ui.step_bytes("verity", data_len);
            let params = VerityParams {
                salt: Sha256::new()
                    .chain_update(b"berth verity salt")
                    .chain_update(rootfs.tree_digest.as_bytes())
                    .finalize()
                    .to_vec(),
                uuid: *stable_uuid(&[rootfs.tree_digest.as_bytes(), b"verity-uuid"]).as_bytes(),
            };
            let data = fs::File::open(&root_image)?;
            let hash_path = pending.tmp.join("root.verity");
            let hash = fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .open(&hash_path)?;
            let info = verity::format(&data, 0, data_len, &hash, 0, &params, &|n| {
                step.set_position(n)
            })?;
            hash.sync_all()?;
            let meta = VerityMeta {
                root_hash: hex::encode(info.root_hash),
                salt: hex::encode(&info.salt),
                uuid: uuid::Uuid::from_bytes(info.uuid).to_string(),
                data_blocks: info.data_blocks,
                hash_size: info.hash_size,
            };
            write_json(&pending.tmp.join("verity.json"), &meta)?;
            step.finish(&format!("root hash {}", meta.root_hash));
            pending.commit()?
        }
    };
    let verity_meta: VerityMeta = read_json(&verity_dir.join("verity.json"))?;
    let root_hash = parse_hash(&verity_meta.root_hash)?;
    let plan = Plan::new(&sizes, &spec.image.name, &root_hash);
    let cmdline = esp::cmdline(&spec, variant, &root_hash);

    // 6. ESP
    let esp_key = Key::new("esp")
        .add("builder", &builder)
        .add("epoch", epoch.to_string())
        .add("root_hash", &verity_meta.root_hash)
        .add("kernel", kernel_key.hex())
        .add("initramfs", initramfs_key.hex())
        .add("cmdline", &cmdline)
        .add("size", sizes.esp.to_string());
    let esp_dir = match stage::lookup(&work, "esp", &esp_key)? {
        Cached::Hit(dir) => cached(ui, "esp", dir),
        Cached::Miss(pending) => {
            let step = ui.step("esp");
            let image = pending.tmp.join("esp.fat");
            let file = fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .open(&image)?;
            file.set_len(sizes.esp)?;
            let params = EspParams {
                size_bytes: sizes.esp,
                volume_id: u32::from_le_bytes(plan.get(Role::Esp).uuid.as_bytes()[..4].try_into()?),
                label: "EFI-SYSTEM".into(),
                epoch: i64::try_from(epoch)?,
            };
            let files = esp::files(
                &spec,
                &kernel_dir.join("systemd-bootx64.efi"),
                &kernel_dir.join("vmlinuz"),
                &initramfs_dir.join("initrd.img"),
                &cmdline,
            );
            fat::write_esp(&file, 0, &params, &files)?;
            file.sync_all()?;
            step.finish("FAT32: systemd-boot, slot A kernel, initramfs and loader entry");
            pending.commit()?
        }
    };

    // 7. STATE (empty, journalled; grown on first boot)
    let state_key = Key::new("state")
        .add("builder", &builder)
        .add("epoch", epoch.to_string())
        .add("tools", tools.join("\n"))
        .add("id", format!("{}\n{}", spec.image.name, spec.image.version))
        .add("size", sizes.state.to_string());
    let state_dir = match stage::lookup(&work, "state", &state_key)? {
        Cached::Hit(dir) => cached(ui, "state", dir),
        Cached::Miss(pending) => {
            let step = ui.step("state");
            let id = format!("{}\n{}", spec.image.name, spec.image.version);
            let params = Ext4Params {
                label: "STATE".into(),
                uuid: stable_uuid(&[id.as_bytes(), b"state-uuid"]),
                hash_seed: stable_uuid(&[id.as_bytes(), b"state-hash-seed"]),
                epoch,
                journal: true,
            };
            ext4::write(
                &Tree::default(),
                &pending.tmp.join("state.ext4"),
                sizes.state,
                &params,
            )?;
            step.finish("ext4 with journal");
            pending.commit()?
        }
    };

    // 8. disk + manifest
    let out_dir = ws.path(&opts.out_dir);
    fs::create_dir_all(&out_dir).with_context(|| format!("cannot create {}", out_dir.display()))?;
    let suffix = match variant {
        Variant::Default => String::new(),
        Variant::Debug => "-debug".into(),
    };
    let disk_path = out_dir.join(format!("{}{suffix}.raw", spec.image.name));
    let manifest_path = out_dir.join(format!("manifest{suffix}.json"));
    let disk_key = Key::new("disk")
        .add("builder", &builder)
        .add("ext4", ext4_key.hex())
        .add("verity", verity_key.hex())
        .add("esp", esp_key.hex())
        .add("state", state_key.hex())
        .add("spec", format!("{spec:?}"));
    let stamp = work.join("disk.stamp");
    if disk_up_to_date(&stamp, &disk_key, &disk_path, &manifest_path) {
        ui.say(&format!(
            "{:>10} {} is up to date",
            "disk",
            disk_path.display()
        ));
    } else {
        let _ = fs::remove_file(&stamp);
        let contents = [
            Content {
                role: Role::Esp,
                source: esp_dir.join("esp.fat"),
            },
            Content {
                role: Role::RootA,
                source: root_image.clone(),
            },
            Content {
                role: Role::VerityA,
                source: verity_dir.join("root.verity"),
            },
            Content {
                role: Role::State,
                source: state_dir.join("state.ext4"),
            },
        ];
        let total: u64 = contents
            .iter()
            .map(|c| fs::metadata(&c.source).map(|m| m.len()).unwrap_or(0))
            .sum();
        let step = ui.step_bytes("disk", total);
        disk::assemble(&disk_path, &plan, &contents, &|n| step.set_position(n))?;
        step.finish(&format!(
            "{} ({} MiB)",
            disk_path.display(),
            plan.disk_size >> 20
        ));

        let step = ui.step("manifest");
        let manifest = BuildManifest {
            name: spec.image.name.clone(),
            version: spec.image.version.clone(),
            variant: variant.name().into(),
            source_date_epoch: epoch,
            root_hash: verity_meta.root_hash.clone(),
            verity: VeritySummary {
                algorithm: "sha256".into(),
                data_block_size: verity::BLOCK_SIZE,
                hash_block_size: verity::BLOCK_SIZE,
                data_blocks: verity_meta.data_blocks,
                hash_size: verity_meta.hash_size,
                salt: verity_meta.salt.clone(),
                uuid: verity_meta.uuid.clone(),
            },
            disk: disk_summary(&plan),
            kernel: Some(KernelSummary {
                version: kernel_meta.version.clone(),
                package: kernel_meta.package.clone(),
                package_version: kernel_meta.package_version.clone(),
                cmdline: cmdline.clone(),
                initramfs_modules: initramfs_meta.modules.clone(),
                initramfs_bytes: initramfs_meta.compressed_bytes,
            }),
            packages: rootfs.packages.clone(),
            tools: tools.clone(),
            artifacts: vec![Artifact {
                name: file_name(&disk_path),
                size: plan.disk_size,
                sha256: manifest::sha256_file(&disk_path)?,
            }],
        };
        manifest.write(&manifest_path)?;
        write_stamp(&stamp, &disk_key, &disk_path, &manifest_path)?;
        step.finish(&manifest_path.display().to_string());
    }
    ui.say(&format!(
        "built {} (root hash {}) in {:.1}s",
        disk_path.display(),
        verity_meta.root_hash,
        started.elapsed().as_secs_f64()
    ));
    if ui.quiet() {
        println!("{}", disk_path.display());
    }
    Ok(disk_path)
}

fn cached(ui: &Ui, stage: &str, dir: PathBuf) -> PathBuf {
    ui.say(&format!("{stage:>10} cached"));
    dir
}

/// SOURCE_DATE_EPOCH from the environment, else the time of the last commit.
fn source_date_epoch(ws: &Workspace) -> Result<u64> {
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

/// The builder's own executable: the format code that shapes every stage after fetch.
fn builder_digest() -> Result<String> {
    let exe = std::env::current_exe().context("cannot find the xtask executable")?;
    file_sha256(&exe)
}

fn file_sha256(path: &Path) -> Result<String> {
    Ok(manifest::sha256_file(path)?)
}

/// The plan's sizes do not depend on the root hash; this one is for size checks only.
fn dummy_plan(sizes: &Sizes) -> Plan {
    Plan::new(sizes, "", &[0; 32])
}

fn disk_summary(plan: &Plan) -> DiskSummary {
    DiskSummary {
        size: plan.disk_size,
        sector_size: berth_layout::partition::SECTOR,
        guid: plan.disk_guid.to_string(),
        partitions: plan
            .partitions
            .iter()
            .map(|p| PartitionSummary {
                number: p.number,
                label: p.label.into(),
                type_guid: p.type_guid.to_string(),
                uuid: p.uuid.to_string(),
                offset: p.offset,
                size: p.size,
                attributes: p.attributes,
            })
            .collect(),
    }
}

fn parse_hash(text: &str) -> Result<[u8; 32]> {
    let bytes = hex::decode(text).context("bad root hash in the verity stage")?;
    bytes
        .try_into()
        .map_err(|_| anyhow::anyhow!("root hash is not 32 bytes"))
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The disk stamp: the key plus the length and mtime of the outputs it vouches for, so a
/// disk changed after the build (booted without snapshot, say) is rebuilt.
fn stamp_text(key: &Key, disk: &Path, manifest: &Path) -> Option<String> {
    let mut text = key.hex();
    for path in [disk, manifest] {
        let meta = fs::metadata(path).ok()?;
        let mtime = meta
            .modified()
            .ok()?
            .duration_since(std::time::UNIX_EPOCH)
            .ok()?;
        text.push_str(&format!(
            "\n{} {} {}",
            path.display(),
            meta.len(),
            mtime.as_nanos()
        ));
    }
    Some(text)
}

fn disk_up_to_date(stamp: &Path, key: &Key, disk: &Path, manifest: &Path) -> bool {
    match (fs::read_to_string(stamp), stamp_text(key, disk, manifest)) {
        (Ok(old), Some(new)) => old == new,
        _ => false,
    }
}

fn write_stamp(stamp: &Path, key: &Key, disk: &Path, manifest: &Path) -> Result<()> {
    let text = stamp_text(key, disk, manifest).context("outputs vanished after writing")?;
    fs::write(stamp, text).with_context(|| format!("cannot write {}", stamp.display()))
}

fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let text = serde_json::to_string_pretty(value)?;
    fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T> {
    let text =
        fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is damaged; remove it", path.display()))
}
