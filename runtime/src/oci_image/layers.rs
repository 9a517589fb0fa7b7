//! Unpacked layers (`root/layers/sha256/<diff id hex>/`), one folder per layer, shared by
//! every image that has it and used directly as overlayfs lowerdirs.
//!
//! A layer is keyed by its diff id, not a chain id: each is unpacked on its own (not on
//! top of its parent), so the same tar gives the same folder under any parent, and
//! overlayfs stacks them. Unpacking happens in `root/layers/tmp/` and the folder is
//! renamed into place only once complete and synced, so a half-unpacked layer never
//! looks done; removal renames out first for the same reason.

use std::fs::{self, File};
use std::path::{Path, PathBuf};

use super::digest::Digest;
use super::error::ImageError;
use super::fsutil;
use super::unpack::{unpack_layer, UnpackOptions};

/// `root/layers`.
#[derive(Debug, Clone)]
pub struct LayerStore {
    done: PathBuf,
    tmp: PathBuf,
    opts: UnpackOptions,
}

impl LayerStore {
    /// Opens (creating) the store and removes unpacks a crash interrupted.
    pub fn open(dir: &Path, opts: UnpackOptions) -> Result<Self, ImageError> {
        let store = LayerStore {
            done: dir.join("sha256"),
            tmp: dir.join("tmp"),
            opts,
        };
        fsutil::create_dir_all(&store.done)?;
        fsutil::create_dir_all(&store.tmp)?;
        fsutil::empty_dir(&store.tmp)?;
        Ok(store)
    }

    /// The folder of layer `diff_id` (whether or not it exists).
    pub fn dir(&self, diff_id: &Digest) -> PathBuf {
        self.done.join(diff_id.hex())
    }

    /// True if the layer is unpacked.
    pub fn has(&self, diff_id: &Digest) -> bool {
        self.dir(diff_id).is_dir()
    }

    /// Unpacks `blob` (stored compressed layer `blob_digest`) as layer `diff_id` unless it
    /// is there already; fails, leaving nothing, if the tar does not hash to `diff_id`.
    pub fn ensure(
        &self,
        diff_id: &Digest,
        blob: &Path,
        blob_digest: &Digest,
    ) -> Result<PathBuf, ImageError> {
        let dir = self.dir(diff_id);
        if dir.is_dir() {
            return Ok(dir);
        }
        let work = self.tmp.join(fsutil::unique_name(diff_id.hex(), ""));
        let result = self.unpack_into(&work, &dir, diff_id, blob, blob_digest);
        if result.is_err() {
            let _ = fsutil::remove_any(&work);
        }
        result.map(|()| dir)
    }

    fn unpack_into(
        &self,
        work: &Path,
        dir: &Path,
        diff_id: &Digest,
        blob: &Path,
        blob_digest: &Digest,
    ) -> Result<(), ImageError> {
        fs::create_dir(work).map_err(|e| ImageError::io("create directory", work, e))?;
        let file = File::open(blob).map_err(|e| ImageError::io("open", blob, e))?;
        let actual = unpack_layer(file, work, blob_digest.as_str(), self.opts)?;
        if &actual != diff_id {
            return Err(ImageError::DiffIdMismatch {
                blob: blob_digest.to_string(),
                expected: diff_id.to_string(),
                actual: actual.to_string(),
            });
        }
        let handle = File::open(work).map_err(|e| ImageError::io("open", work, e))?;
        nix::unistd::syncfs(&handle).map_err(|e| ImageError::io("syncfs", work, e.into()))?;
        match fs::rename(work, dir) {
            Ok(()) => fsutil::sync_dir(&self.done),
            // Another pull unpacked the same layer first: theirs is as good as ours.
            Err(_) if dir.is_dir() => fsutil::remove_any(work),
            Err(e) => Err(ImageError::io("rename into", dir, e)),
        }
    }

    /// Every unpacked layer's diff id.
    pub fn list(&self) -> Result<Vec<Digest>, ImageError> {
        let entries = fs::read_dir(&self.done)
            .map_err(|e| ImageError::io("read directory", &self.done, e))?;
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| ImageError::io("read directory", &self.done, e))?;
            if let Some(d) = entry.file_name().to_str().and_then(Digest::from_hex) {
                out.push(d);
            }
        }
        Ok(out)
    }

    /// Deletes a layer: renamed out of sight first, then removed.
    pub fn remove(&self, diff_id: &Digest) -> Result<(), ImageError> {
        let dir = self.dir(diff_id);
        if !dir.exists() {
            return Ok(());
        }
        let gone = self
            .tmp
            .join(fsutil::unique_name(diff_id.hex(), ".removing"));
        fs::rename(&dir, &gone).map_err(|e| ImageError::io("rename out", &dir, e))?;
        fsutil::remove_any(&gone)
    }
}
