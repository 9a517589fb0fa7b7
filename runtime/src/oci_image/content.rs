//! The content-addressed blob store (`root/content`): every manifest, config and
//! compressed layer under `blobs/sha256/<hex>`, written only after its digest and size
//! were verified while streaming into `ingest/`, so a blob's name is proof of its bytes
//! and a lying registry leaves nothing behind.

use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use super::digest::{Digest, HashingWriter};
use super::error::ImageError;
use super::fsutil;

/// `root/content`.
#[derive(Debug, Clone)]
pub struct ContentStore {
    blobs: PathBuf,
    ingest: PathBuf,
}

impl ContentStore {
    /// Opens (creating) the store and drops ingest files left by a crash.
    pub fn open(dir: &Path) -> Result<Self, ImageError> {
        let store = ContentStore {
            blobs: dir.join("blobs/sha256"),
            ingest: dir.join("ingest"),
        };
        fsutil::create_dir_all(&store.blobs)?;
        fsutil::create_dir_all(&store.ingest)?;
        fsutil::empty_dir(&store.ingest)?;
        Ok(store)
    }

    /// Where blob `digest` lives (whether or not it is there).
    pub fn path(&self, digest: &Digest) -> PathBuf {
        self.blobs.join(digest.hex())
    }

    /// True if the blob is stored.
    pub fn has(&self, digest: &Digest) -> bool {
        self.path(digest).is_file()
    }

    /// Streams `reader` into the store as `digest`, failing (and leaving nothing) if the
    /// bytes do not hash to it or their count differs from `size`.
    pub fn ingest(
        &self,
        digest: &Digest,
        size: Option<u64>,
        reader: &mut dyn Read,
    ) -> Result<(), ImageError> {
        let partial = self
            .ingest
            .join(fsutil::unique_name(digest.hex(), ".partial"));
        let result = self.ingest_to(&partial, digest, size, reader);
        if result.is_err() {
            let _ = fs::remove_file(&partial);
        }
        result
    }

    fn ingest_to(
        &self,
        partial: &Path,
        digest: &Digest,
        size: Option<u64>,
        reader: &mut dyn Read,
    ) -> Result<(), ImageError> {
        let file = File::create(partial).map_err(|e| ImageError::io("create", partial, e))?;
        let mut writer = HashingWriter::new(file);
        // One byte past the announced size is enough to know the blob is too long.
        let limit = size.map_or(u64::MAX, |s| s.saturating_add(1));
        let copied = io::copy(&mut reader.take(limit), &mut writer);
        if let Err(e) = copied {
            // A short read from the network (connection closed early) lands here.
            return Err(ImageError::BlobRead {
                digest: digest.to_string(),
                got: writer.count(),
                source: e,
            });
        }
        let (actual, count, file) = writer.finish();
        if let Some(expected) = size.filter(|&s| s != count) {
            return Err(ImageError::SizeMismatch {
                digest: digest.to_string(),
                got: count,
                expected,
            });
        }
        if &actual != digest {
            return Err(ImageError::DigestMismatch {
                expected: digest.to_string(),
                actual: actual.to_string(),
            });
        }
        file.sync_all()
            .map_err(|e| ImageError::io("fsync", partial, e))?;
        let path = self.path(digest);
        fs::rename(partial, &path).map_err(|e| ImageError::io("rename into", &path, e))?;
        fsutil::sync_dir(&self.blobs)
    }

    /// Stores bytes already in memory (a manifest), verifying them the same way.
    pub fn put(&self, digest: &Digest, bytes: &[u8]) -> Result<(), ImageError> {
        if self.has(digest) {
            return Ok(());
        }
        self.ingest(digest, Some(bytes.len() as u64), &mut &bytes[..])
    }

    /// Reads a stored blob of at most `limit` bytes.
    pub fn read(&self, digest: &Digest, limit: u64) -> Result<Vec<u8>, ImageError> {
        let path = self.path(digest);
        let mut out = Vec::new();
        File::open(&path)
            .and_then(|f| f.take(limit.saturating_add(1)).read_to_end(&mut out))
            .map_err(|e| ImageError::io("read", &path, e))?;
        if out.len() as u64 > limit {
            return Err(ImageError::io(
                "read",
                &path,
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("larger than {limit} bytes"),
                ),
            ));
        }
        Ok(out)
    }

    /// Every stored blob.
    pub fn list(&self) -> Result<Vec<Digest>, ImageError> {
        let entries = fs::read_dir(&self.blobs)
            .map_err(|e| ImageError::io("read directory", &self.blobs, e))?;
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| ImageError::io("read directory", &self.blobs, e))?;
            if let Some(d) = entry.file_name().to_str().and_then(Digest::from_hex) {
                out.push(d);
            }
        }
        Ok(out)
    }

    /// Deletes a blob; missing is fine.
    pub fn remove(&self, digest: &Digest) -> Result<(), ImageError> {
        fsutil::remove_any(&self.path(digest))
    }

    /// The files ingest left behind (for tests and diagnostics).
    pub fn ingest_dir(&self) -> &Path {
        &self.ingest
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_blob_is_stored_bad_ones_leave_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = ContentStore::open(dir.path()).unwrap();
        let d = Digest::of(b"hello");
        store.ingest(&d, Some(5), &mut &b"hello"[..]).unwrap();
        assert_eq!(store.read(&d, 100).unwrap(), b"hello");

        let d2 = Digest::of(b"world");
        let err = store.ingest(&d2, Some(5), &mut &b"WORLD"[..]).unwrap_err();
        assert!(
            err.to_string().contains(d2.as_str())
                && err.to_string().contains(Digest::of(b"WORLD").as_str()),
            "{err}"
        );
        let err = store.ingest(&d2, Some(5), &mut &b"wor"[..]).unwrap_err();
        assert!(
            matches!(
                err,
                ImageError::SizeMismatch {
                    got: 3,
                    expected: 5,
                    ..
                }
            ),
            "{err}"
        );
        let err = store
            .ingest(&d2, Some(5), &mut &b"worldworld"[..])
            .unwrap_err();
        assert!(
            matches!(err, ImageError::SizeMismatch { got: 6, .. }),
            "{err}"
        );
        assert!(!store.has(&d2));
        assert_eq!(fs::read_dir(store.ingest_dir()).unwrap().count(), 0);
        assert_eq!(store.list().unwrap(), vec![d]);
    }
}
