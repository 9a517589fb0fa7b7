//! The verity step: the dm-verity hash tree of the root filesystem (the format
//! `veritysetup format` writes), with salt and UUID derived from the root tree's digest.
//!
//! Inputs: the ext4 step and the rootfs step's tree digest (through the ext4 key).

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use berth_image::boot::identity;
use berth_image::verity::{self, VerityParams};
use serde::{Deserialize, Serialize};

use super::ext4::root_image;
use super::rootfs::RootfsMeta;
use crate::step::code::{IMAGE_EXCLUDE, IMAGE_SOURCES};
use crate::step::{Code, Done, Key, Step};
use crate::ui::Ui;

/// The verity step.
pub struct Verity<'a> {
    pub ext4: &'a Done<()>,
    pub rootfs: &'a Done<RootfsMeta>,
}

/// What the verity step hands on.
#[derive(Serialize, Deserialize)]
pub struct VerityMeta {
    pub root_hash: String,
    pub salt: String,
    pub uuid: String,
    pub data_blocks: u64,
    pub hash_size: u64,
}

impl VerityMeta {
    pub fn root_hash(&self) -> Result<[u8; 32]> {
        let bytes = hex::decode(&self.root_hash).context("bad root hash in the verity step")?;
        bytes
            .try_into()
            .map_err(|_| anyhow::anyhow!("root hash is not 32 bytes"))
    }
}

/// The hash tree in its step folder.
pub fn hash_image(dir: &Path) -> PathBuf {
    dir.join("root.verity")
}

impl Step for Verity<'_> {
    const NAME: &'static str = "verity";
    const CODE: Code = Code {
        sources: &["xtask/src/build/verity.rs", IMAGE_SOURCES],
        exclude: IMAGE_EXCLUDE,
        crates: &["berth-image", "berth-layout"],
    };
    type Meta = VerityMeta;

    fn inputs(&self, key: Key) -> Result<Key> {
        Ok(key.add("ext4", &self.ext4.key))
    }

    fn run(&self, dir: &Path, ui: &Ui) -> Result<VerityMeta> {
        let root = root_image(&self.ext4.dir);
        let data_len = fs::metadata(&root)
            .with_context(|| format!("cannot read {}", root.display()))?
            .len();
        let step = ui.step_bytes(Self::NAME, data_len);
        let digest = &self.rootfs.meta.tree_digest;
        let params = VerityParams {
            salt: identity::verity_salt(digest),
            uuid: identity::verity_uuid(digest),
        };
        let data = fs::File::open(&root)?;
        let hash_path = hash_image(dir);
        let hash = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&hash_path)
            .with_context(|| format!("cannot create {}", hash_path.display()))?;
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
        step.finish(&format!("root hash {}", meta.root_hash));
        Ok(meta)
    }
}
