//! The disk step: the partition images assembled into the GPT disk at the plan's offsets,
//! and `manifest.json` beside it. Both are written into the out folder, not the step
//! folder (a disk is large; one copy is enough), so the step names them as outputs and
//! the cache remakes them when either was changed or removed after the build.
//!
//! Inputs: the ext4, verity, ESP and STATE steps and the whole image description; the
//! manifest's other facts come from the steps these depend on.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::Result;
use berth_image::disk::{self, Content};
use berth_image::manifest::{
    self, Artifact, BuildManifest, DiskSummary, KernelSummary, PartitionSummary, VeritySummary,
};
use berth_image::spec::ImageSpec;
use berth_image::verity;
use berth_layout::partition::{Plan, Role};

use super::esp::esp_image;
use super::ext4::{root_image, state_image};
use super::initramfs::InitramfsMeta;
use super::kernel::KernelMeta;
use super::rootfs::RootfsMeta;
use super::verity::{hash_image, VerityMeta};
use crate::step::code::{IMAGE_EXCLUDE, IMAGE_SOURCES};
use crate::step::{Code, Done, Key, Step};
use crate::ui::Ui;
use crate::Variant;

/// The disk step.
pub struct Disk<'a> {
    pub spec: &'a ImageSpec,
    pub variant: Variant,
    pub epoch: u64,
    pub plan: &'a Plan,
    pub cmdline: &'a str,
    pub tools: &'a [String],
    pub kernel: &'a Done<KernelMeta>,
    pub initramfs: &'a Done<InitramfsMeta>,
    pub rootfs: &'a Done<RootfsMeta>,
    pub ext4: &'a Done<()>,
    pub verity: &'a Done<VerityMeta>,
    pub esp: &'a Done<()>,
    pub state: &'a Done<()>,
    /// `out/<name>[-debug].raw` and `out/manifest[-debug].json`.
    pub disk_path: PathBuf,
    pub manifest_path: PathBuf,
}

impl Step for Disk<'_> {
    const NAME: &'static str = "disk";
    const CODE: Code = Code {
        sources: &["xtask/src/build/disk.rs", IMAGE_SOURCES],
        exclude: IMAGE_EXCLUDE,
        crates: &["berth-image", "berth-layout"],
    };
    type Meta = ();

    fn inputs(&self, key: Key) -> Result<Key> {
        Ok(key
            .add("ext4", &self.ext4.key)
            .add("verity", &self.verity.key)
            .add("esp", &self.esp.key)
            .add("state", &self.state.key)
            .add("kernel", &self.kernel.key)
            .add("initramfs", &self.initramfs.key)
            .add("rootfs", &self.rootfs.key)
            .add("variant", self.variant.name())
            .add("epoch", self.epoch.to_string())
            .add("tools", self.tools.join("\n"))
            .add("cmdline", self.cmdline)
            .add("spec", format!("{:?}", self.spec))
            .add("disk", self.disk_path.to_string_lossy().as_bytes())
            .add("manifest", self.manifest_path.to_string_lossy().as_bytes()))
    }

    fn outputs(&self) -> Vec<PathBuf> {
        vec![self.disk_path.clone(), self.manifest_path.clone()]
    }

    fn run(&self, _dir: &Path, ui: &Ui) -> Result<()> {
        let contents = [
            (Role::Esp, esp_image(&self.esp.dir)),
            (Role::RootA, root_image(&self.ext4.dir)),
            (Role::VerityA, hash_image(&self.verity.dir)),
            (Role::State, state_image(&self.state.dir)),
        ]
        .map(|(role, source)| Content { role, source });
        let total: u64 = contents
            .iter()
            .map(|c| fs::metadata(&c.source).map(|m| m.len()).unwrap_or(0))
            .sum();
        let plan = self.plan;
        let step = ui.step_bytes(Self::NAME, total);
        disk::assemble(&self.disk_path, plan, &contents, &|n| step.set_position(n))?;
        step.finish(&format!(
            "{} ({} MiB)",
            self.disk_path.display(),
            plan.disk_size >> 20
        ));

        let step = ui.step("manifest");
        self.manifest()?.write(&self.manifest_path)?;
        step.finish(&self.manifest_path.display().to_string());
        Ok(())
    }
}

impl Disk<'_> {
    fn manifest(&self) -> Result<BuildManifest> {
        let (spec, verity, kernel, initramfs) = (
            self.spec,
            &self.verity.meta,
            &self.kernel.meta,
            &self.initramfs.meta,
        );
        Ok(BuildManifest {
            name: spec.image.name.clone(),
            version: spec.image.version.clone(),
            variant: self.variant.name().into(),
            source_date_epoch: self.epoch,
            root_hash: verity.root_hash.clone(),
            verity: VeritySummary {
                algorithm: "sha256".into(),
                data_block_size: verity::BLOCK_SIZE,
                hash_block_size: verity::BLOCK_SIZE,
                data_blocks: verity.data_blocks,
                hash_size: verity.hash_size,
                salt: verity.salt.clone(),
                uuid: verity.uuid.clone(),
            },
            disk: disk_summary(self.plan),
            kernel: Some(KernelSummary {
                version: kernel.version.clone(),
                package: kernel.package.clone(),
                package_version: kernel.package_version.clone(),
                cmdline: self.cmdline.to_string(),
                initramfs_modules: initramfs.modules.clone(),
                initramfs_bytes: initramfs.compressed_bytes,
            }),
            packages: self.rootfs.meta.packages.clone(),
            tools: self.tools.to_vec(),
            artifacts: vec![Artifact {
                name: self
                    .disk_path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                size: self.plan.disk_size,
                sha256: manifest::sha256_file(&self.disk_path)?,
            }],
        })
    }
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
