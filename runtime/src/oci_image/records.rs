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
    /// Opens (creating) the folder. A record that cannot be read (damaged by a power
    /// loss) is said once here; listings skip it, so the other images stay usable, and
    /// the next pull of that image writes it again.
    pub fn open(dir: &Path) -> Result<Self, ImageError> {
        fsutil::create_dir_all(dir)?;
        let records = Records {
            dir: dir.to_path_buf(),
        };
        for path in records.paths()? {
            if let Err(e) = records.read(&path) {
                eprintln!("berth-runtime: warning: {e}; the image is left out until pulled again");
            }
        }
        Ok(records)
    }

    fn path(&self, id: &Digest) -> PathBuf {
        self.dir.join(format!("{}.json", id.hex()))
    }

    /// The record files (temporary files of an interrupted write left out).
    fn paths(&self) -> Result<Vec<PathBuf>, ImageError> {
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
            if is_record {
                out.push(path);
            }
        }
        Ok(out)
    }

    /// Every readable record, sorted by id (unreadable ones were said at [`open`](Self::open)).
    pub fn load_all(&self) -> Result<Vec<ImageRecord>, ImageError> {
        let mut out: Vec<ImageRecord> = self
            .paths()?
            .iter()
            .filter_map(|path| self.read(path).ok())
            .collect();
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

#[cfg(test)]
mod tests {
    use super::*;

    fn record(hex_digit: char) -> ImageRecord {
        ImageRecord {
            id: format!("sha256:{}", hex_digit.to_string().repeat(64)),
            repo_tags: vec![format!("registry.test/img:{hex_digit}")],
            repo_digests: Vec::new(),
            size: 1,
            config: ImageConfigSummary::default(),
            layers: Vec::new(),
            pinned: false,
            blobs: Vec::new(),
        }
    }

    #[test]
    fn a_damaged_record_is_left_out_and_replaced_by_the_next_write() {
        let dir = tempfile::tempdir().unwrap();
        let records = Records::open(dir.path()).unwrap();
        let (good, damaged) = (record('a'), record('b'));
        records.write(&good).unwrap();
        records.write(&damaged).unwrap();
        let path = dir.path().join(format!("{}.json", "b".repeat(64)));
        fs::write(&path, b"{\"id\": \"sha").unwrap();

        let records = Records::open(dir.path()).unwrap();
        assert_eq!(records.load_all().unwrap(), vec![good.clone()]);
        let id = Digest::parse(&damaged.id).unwrap();
        let err = records.get(&id).unwrap_err().to_string();
        assert!(err.contains(&path.display().to_string()), "{err}");

        records.write(&damaged).unwrap();
        assert_eq!(records.load_all().unwrap(), vec![good, damaged]);
    }
}
