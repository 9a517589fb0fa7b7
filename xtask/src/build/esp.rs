//! The ESP step: a FAT32 volume with systemd-boot, its configuration, slot A's loader
//! entry, kernel and initramfs (`berth_image::boot::loader`), its volume id derived from
//! the ESP partition's UUID.
//!
//! Inputs: SOURCE_DATE_EPOCH, the kernel and initramfs steps, the kernel command line,
//! the loader entry's fields (name, version, tries) and the ESP's size and volume id.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use berth_image::boot::identity;
use berth_image::boot::loader::{self, EntryInfo};
use berth_image::fat::{self, EspParams};
use berth_layout::partition::{Plan, Role};

use super::initramfs::{self, InitramfsMeta};
use super::kernel::KernelMeta;
use crate::step::code::{IMAGE_EXCLUDE, IMAGE_SOURCES};
use crate::step::{Code, Done, Key, Step};
use crate::ui::Ui;

/// The ESP step.
pub struct Esp<'a> {
    pub kernel: &'a Done<KernelMeta>,
    pub initramfs: &'a Done<InitramfsMeta>,
    pub entry: EntryInfo<'a>,
    pub cmdline: &'a str,
    pub plan: &'a Plan,
    pub epoch: u64,
}

/// The FAT volume in its step folder.
pub fn esp_image(dir: &Path) -> PathBuf {
    dir.join("esp.fat")
}

impl Esp<'_> {
    fn params(&self) -> Result<EspParams> {
        let part = self.plan.get(Role::Esp);
        Ok(EspParams {
            size_bytes: part.size,
            volume_id: identity::fat_volume_id(&part.uuid),
            label: "EFI-SYSTEM".into(),
            epoch: i64::try_from(self.epoch).context("SOURCE_DATE_EPOCH is too large")?,
        })
    }
}

impl Step for Esp<'_> {
    const NAME: &'static str = "esp";
    const CODE: Code = Code {
        sources: &["xtask/src/build/esp.rs", "xtask/src/esp.rs", IMAGE_SOURCES],
        exclude: IMAGE_EXCLUDE,
        crates: &["berth-image", "berth-layout"],
    };
    type Meta = ();

    fn inputs(&self, key: Key) -> Result<Key> {
        let params = self.params()?;
        Ok(key
            .add("epoch", self.epoch.to_string())
            .add("kernel", &self.kernel.key)
            .add("initramfs", &self.initramfs.key)
            .add("cmdline", self.cmdline)
            .add("name", self.entry.image_name)
            .add("version", self.entry.version)
            .add("tries", self.entry.tries.to_string())
            .add("size", params.size_bytes.to_string())
            .add("volume id", params.volume_id.to_string()))
    }

    fn run(&self, dir: &Path, ui: &Ui) -> Result<()> {
        let step = ui.step(Self::NAME);
        let params = self.params()?;
        let image = esp_image(dir);
        let file = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&image)
            .with_context(|| format!("cannot create {}", image.display()))?;
        file.set_len(params.size_bytes)?;
        let files = loader::esp_files(
            &self.entry,
            &self.kernel.dir.join("systemd-bootx64.efi"),
            &self.kernel.dir.join("vmlinuz"),
            &initramfs::image(&self.initramfs.dir),
            self.cmdline,
        );
        fat::write_esp(&file, 0, &params, &files)?;
        file.sync_all()?;
        step.finish("FAT32: systemd-boot, slot A kernel, initramfs and loader entry");
        Ok(())
    }
}
