//! Image records (`root/images/<id hex>.json`): what the CRI lists and reports for each
//! image, written atomically so a crash leaves either the old or the new record.

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::digest::Digest;
use super::error::ImageError;
use super::fsutil;
use super::manifest::ImageConfigSummary;

/// One image as the CRI sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageRecord {
    /// `sha256:<config digest hex>`.
    pub id: String,
    /// Normalized `registry/repo:tag` names pointing at this image.
    pub repo_tags: Vec<String>,
    /// `registry/repo@sha256:<digest>` of the manifest or index each pull resolved to.
    pub repo_digests: Vec<String>,
    /// Compressed layer sizes plus the config's, as containerd reports.
    pub size: u64,
    /// How to run it.
    pub config: ImageConfigSummary,
    /// The diff ids of its layers, bottom first; the keys of [`ImageStore::layer_dirs`](super::ImageStore::layer_dirs).
    pub layers: Vec<String>,
    /// Kept by kubelet image garbage collection (the sandbox image).
    pub pinned: bool,
    /// Every blob this image keeps in the content store (indexes, manifests, config, layers).
    #[serde(default)]
    pub blobs: Vec<String>,
}

/// `root/images`.
#[derive(Debug, Clone)]
pub struct Records {
    dir: PathBuf,
}

impl Records {
    /// Opens (creating) the folder.
    pub fn open(dir: &Path) -> Result<Self, ImageError> {
        fsutil::create_dir_all(dir)?;
        Ok(Records {
            dir: dir.to_path_buf(),
        })
    }

    fn path(&self, id: &Digest) -> PathBuf {
        self.dir.join(format!("{}.json", id.hex()))
    }

    /// Every record, sorted by id.
    pub fn load_all(&self) -> Result<Vec<ImageRecord>, ImageError> {
        let entries =
            fs::read_dir(&self.dir).map_err(|e| ImageError::io("read directory", &self.dir, e))?;
        let mut out = Vec::new();
        for entry in entries {
            let path = entry
                .map_err(|e| ImageError::io("read directory", &self.dir, e))?
                .path();
            let is_record = path.extension().is_some_and(|e| e == "json")
                && path
                    .file_stem()
                    .and_then(|s| s.to_str())
                    .is_some_and(super::digest::is_sha256_hex);
            if !is_record {
                continue; // temporary files of an interrupted write
            }
            out.push(self.read(&path)?);
        }
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }

    fn read(&self, path: &Path) -> Result<ImageRecord, ImageError> {
        let bytes = fs::read(path).map_err(|e| ImageError::io("read", path, e))?;
        serde_json::from_slice(&bytes).map_err(|e| ImageError::Record {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })
    }

    /// The record of image `id`, if any.
    pub fn get(&self, id: &Digest) -> Result<Option<ImageRecord>, ImageError> {
        let path = self.path(id);
        match path.exists() {
            true => self.read(&path).map(Some),
            false => Ok(None),
        }
    }

    /// Writes (replaces) a record.
    pub fn write(&self, record: &ImageRecord) -> Result<(), ImageError> {
        let id = Digest::parse(&record.id).ok_or_else(|| ImageError::Record {
            path: self.dir.clone(),
            reason: format!("bad image id {:?}", record.id),
        })?;
        let path = self.path(&id);
        let json = serde_json::to_vec_pretty(record).map_err(|e| ImageError::Record {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        fsutil::write_atomic(&path, &json)
    }

    /// Deletes a record; missing is fine.
    pub fn delete(&self, id: &Digest) -> Result<(), ImageError> {
        let path = self.path(id);
        match fs::remove_file(&path) {
            Ok(()) => fsutil::sync_dir(&self.dir),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(ImageError::io("remove", &path, e)),
        }
    }
}
