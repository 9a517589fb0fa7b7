//! The ext4 steps: the read-only root from the rootfs step's tree, and the empty,
//! journalled STATE (grown on first boot). Their identities come from
//! `berth_image::boot::identity`.
//!
//! Root inputs: the rootfs step, SOURCE_DATE_EPOCH, mke2fs's version, the image name and
//! the root partition's size. STATE inputs: SOURCE_DATE_EPOCH, mke2fs's version, the image
//! name and version, STATE's size.

use std::path::{Path, PathBuf};

use anyhow::Result;
use berth_image::boot::identity;
use berth_image::disk;
use berth_image::ext4::{self, Ext4Params};
use berth_image::tree::Tree;
use berth_layout::partition::{Plan, Role, Sizes};

use super::rootfs::{self, RootfsMeta};
use crate::step::code::{IMAGE_EXCLUDE, IMAGE_SOURCES};
use crate::step::{Code, Done, Key, Step};
use crate::ui::Ui;

const CODE: Code = Code {
    sources: &["xtask/src/build/ext4.rs", IMAGE_SOURCES],
    exclude: IMAGE_EXCLUDE,
    crates: &["berth-image", "berth-layout"],
};

/// The root filesystem step.
pub struct RootExt4<'a> {
    pub rootfs: &'a Done<RootfsMeta>,
    pub image_name: &'a str,
    pub sizes: &'a Sizes,
    pub epoch: u64,
    /// Versions of the tools that write the filesystems (mke2fs).
    pub tools: &'a [String],
}

/// The root filesystem in its step folder.
pub fn root_image(dir: &Path) -> PathBuf {
    dir.join("root.ext4")
}

impl Step for RootExt4<'_> {
    const NAME: &'static str = "ext4";
    const CODE: Code = CODE;
    type Meta = ();

    fn inputs(&self, key: Key) -> Result<Key> {
        Ok(key
            .add("rootfs", &self.rootfs.key)
            .add("epoch", self.epoch.to_string())
            .add("tools", self.tools.join("\n"))
            .add("name", self.image_name)
            .add("root", self.sizes.root.to_string()))
    }

    fn run(&self, dir: &Path, ui: &Ui) -> Result<()> {
        let step = ui.step(Self::NAME);
        let meta = &self.rootfs.meta;
        let tree = Tree::scan(&rootfs::tree_dir(&self.rootfs.dir), &meta.owners)?;
        let size = ext4::estimate_size(&tree);
        let image = root_image(dir);
        // The plan's sizes do not depend on the root hash; this one is for the check only.
        let plan = Plan::new(self.sizes, "", &[0; 32]);
        disk::check_fits(&plan, Role::RootA, "the root filesystem", &image, size)?;
        let ids = identity::root_ext4(self.image_name, &meta.tree_digest);
        let params = Ext4Params {
            label: "ROOT".into(),
            uuid: ids.uuid,
            hash_seed: ids.hash_seed,
            epoch: self.epoch,
            writable: false,
        };
        ext4::write(&tree, &image, size, &params)?;
        step.finish(&format!("{} MiB, e2fsck clean", size >> 20));
        Ok(())
    }
}

/// The STATE step.
pub struct StateExt4<'a> {
    pub image_name: &'a str,
    pub version: &'a str,
    pub size: u64,
    pub epoch: u64,
    pub tools: &'a [String],
}

/// STATE in its step folder.
pub fn state_image(dir: &Path) -> PathBuf {
    dir.join("state.ext4")
}

impl Step for StateExt4<'_> {
    const NAME: &'static str = "state";
    const CODE: Code = CODE;
    type Meta = ();

    fn inputs(&self, key: Key) -> Result<Key> {
        Ok(key
            .add("epoch", self.epoch.to_string())
            .add("tools", self.tools.join("\n"))
            .add("id", format!("{}\n{}", self.image_name, self.version))
            .add("size", self.size.to_string()))
    }

    fn run(&self, dir: &Path, ui: &Ui) -> Result<()> {
        let step = ui.step(Self::NAME);
        let ids = identity::state_ext4(self.image_name, self.version);
        let params = Ext4Params {
            label: "STATE".into(),
            uuid: ids.uuid,
            hash_seed: ids.hash_seed,
            epoch: self.epoch,
            writable: true,
        };
        ext4::write(&Tree::default(), &state_image(dir), self.size, &params)?;
        step.finish("ext4 with journal");
        Ok(())
    }
}
