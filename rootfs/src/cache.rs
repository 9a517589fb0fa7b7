//! The `.deb` cache, keyed by sha256, outside the work tree.
//!
//! A pinned `.deb` never changes, so once fetched and verified it is kept under its hash and
//! shared by every checkout and `cargo clean`. A fully cached build runs no apt at all and
//! works offline; apt is only set up (and its indexes downloaded) when a pin is missing.
//! Nothing enters the cache unless its size and sha256 match the lock.

use crate::apt::{Apt, AptError};
use crate::hash::{file_digest, is_sha256_hex};
use crate::lock::{LockedPackage, Lockfile};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// Errors of the cache; each names the package or file.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("no cache folder: set BERTH_CACHE_DIR, XDG_CACHE_HOME or HOME")]
    NoCacheDir,
    #[error("package {package}: sha256 {sha256:?} is not a valid hash")]
    BadHash { package: String, sha256: String },
    #[error("cache {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "package {package}: downloaded .deb does not match the lock: expected sha256 \
         {expected} ({expected_size} bytes), got {actual} ({actual_size} bytes)"
    )]
    Mismatch {
        package: String,
        expected: String,
        expected_size: u64,
        actual: String,
        actual_size: u64,
    },
    #[error("package {package}: {source}")]
    Apt {
        package: String,
        #[source]
        source: AptError,
    },
    #[error("cannot prepare apt to fetch the missing packages: {0}")]
    AptSetup(#[source] AptError),
}

/// `.deb` files stored as `<dir>/debs/<sha256>.deb`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DebCache {
    dir: PathBuf,
}

impl DebCache {
    /// A cache rooted at `dir` (created on the first fetch).
    pub fn new(dir: impl Into<PathBuf>) -> DebCache {
        DebCache { dir: dir.into() }
    }

    /// `$BERTH_CACHE_DIR`, else `$XDG_CACHE_HOME/berth`, else `$HOME/.cache/berth`.
    pub fn default_dir() -> Result<PathBuf, CacheError> {
        let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
        if let Some(dir) = var("BERTH_CACHE_DIR") {
            return Ok(dir.into());
        }
        if let Some(xdg) = var("XDG_CACHE_HOME").filter(|v| Path::new(v).is_absolute()) {
            return Ok(Path::new(&xdg).join("berth"));
        }
        var("HOME")
            .map(|home| Path::new(&home).join(".cache/berth"))
            .ok_or(CacheError::NoCacheDir)
    }

    /// The cache's folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where the package's `.deb` is (or would be) stored.
    pub fn path_for(&self, pkg: &LockedPackage) -> Result<PathBuf, CacheError> {
        if !is_sha256_hex(&pkg.sha256) {
            return Err(CacheError::BadHash {
                package: pkg.name.clone(),
                sha256: pkg.sha256.clone(),
            });
        }
        Ok(self.dir.join("debs").join(format!("{}.deb", pkg.sha256)))
    }

    /// The cached `.deb`, if present with the locked size and hash. A corrupt entry is
    /// deleted and reported as missing.
    pub fn get(&self, pkg: &LockedPackage) -> Option<PathBuf> {
        let path = self.path_for(pkg).ok()?;
        let meta = fs::symlink_metadata(&path).ok()?;
        let good = meta.is_file()
            && meta.len() == pkg.size
            && file_digest(&path).is_ok_and(|d| d.sha256 == pkg.sha256);
        if good {
            Some(path)
        } else {
            let _ = fs::remove_file(&path);
            None
        }
    }

    /// Downloads the package with `apt`, checks it against the lock and stores it.
    pub fn fetch(&self, pkg: &LockedPackage, apt: &Apt) -> Result<PathBuf, CacheError> {
        let dest = self.path_for(pkg)?;
        let io_err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| CacheError::Io { path, source }
        };
        let partial =
            self.dir
                .join("partial")
                .join(format!("{}-{}", std::process::id(), pkg.sha256));
        if partial.exists() {
            fs::remove_dir_all(&partial).map_err(io_err(&partial))?;
        }
        fs::create_dir_all(&partial).map_err(io_err(&partial))?;
        let result = (|| {
            let downloaded = apt
                .download(pkg, &partial)
                .map_err(|source| CacheError::Apt {
                    package: pkg.name.clone(),
                    source,
                })?;
            let digest = file_digest(&downloaded).map_err(io_err(&downloaded))?;
            if digest.size != pkg.size || digest.sha256 != pkg.sha256 {
                return Err(CacheError::Mismatch {
                    package: pkg.pin(),
                    expected: pkg.sha256.clone(),
                    expected_size: pkg.size,
                    actual: digest.sha256,
                    actual_size: digest.size,
                });
            }
            let debs = self.dir.join("debs");
            fs::create_dir_all(&debs).map_err(io_err(&debs))?;
            fs::rename(&downloaded, &dest).map_err(io_err(&dest))?;
            Ok(dest.clone())
        })();
        let _ = fs::remove_dir_all(&partial);
        result
    }

    /// Every package of the lock, in lock order, from the cache. Only if some are missing
    /// is `make_apt` called (once) for an updated [`Apt`] to fetch them; `progress` gets one
    /// line per download.
    pub fn ensure_all<F>(
        &self,
        lock: &Lockfile,
        make_apt: F,
        progress: &dyn Fn(&str),
    ) -> Result<Vec<(LockedPackage, PathBuf)>, CacheError>
    where
        F: FnOnce() -> Result<Apt, AptError>,
    {
        let cached: Vec<Option<PathBuf>> = lock.packages().iter().map(|p| self.get(p)).collect();
        let apt = if cached.iter().any(Option::is_none) {
            Some(make_apt().map_err(CacheError::AptSetup)?)
        } else {
            None
        };
        let mut out = Vec::with_capacity(cached.len());
        for (pkg, cached) in lock.packages().iter().zip(cached) {
            let path = match (cached, &apt) {
                (Some(path), _) => path,
                (None, Some(apt)) => {
                    progress(&format!("download {} ({} bytes)", pkg.pin(), pkg.size));
                    self.fetch(pkg, apt)?
                }
                (None, None) => unreachable!("apt is set up whenever a package is missing"),
            };
            out.push((pkg.clone(), path));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    fn pkg_for(content: &[u8]) -> LockedPackage {
        use sha2::{Digest, Sha256};
        LockedPackage {
            name: "hello".into(),
            version: "1.0-1".into(),
            architecture: "amd64".into(),
            filename: "pool/main/h/hello/hello_1.0-1_amd64.deb".into(),
            size: content.len() as u64,
            sha256: hex::encode(Sha256::digest(content)),
        }
    }

    #[test]
    fn cached_packages_need_no_apt_and_corrupt_entries_are_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let cache = DebCache::new(dir.path());
        let pkg = pkg_for(b"a deb");
        let path = cache.path_for(&pkg).unwrap();
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, b"a deb").unwrap();
        assert_eq!(cache.get(&pkg), Some(path.clone()));

        let lock = Lockfile::new(vec![pkg.clone()], Path::new("l")).unwrap();
        let called = Cell::new(false);
        let got = cache
            .ensure_all(
                &lock,
                || {
                    called.set(true);
                    Err(AptError::AptMissing)
                },
                &|_| {},
            )
            .unwrap();
        assert_eq!(got, vec![(pkg.clone(), path.clone())]);
        assert!(!called.get(), "apt must not run when everything is cached");

        // Same size, different bytes: deleted and missing; apt is then asked for.
        fs::write(&path, b"b deb").unwrap();
        assert_eq!(cache.get(&pkg), None);
        assert!(!path.exists());
        let err = cache
            .ensure_all(&lock, || Err(AptError::AptMissing), &|_| {})
            .unwrap_err();
        assert!(
            err.to_string().contains("install the Debian package `apt`"),
            "{err}"
        );
    }

    #[test]
    fn default_dir_prefers_berth_cache_dir() {
        // Only reads the environment; set nothing to stay safe with parallel tests.
        let dir = DebCache::default_dir();
        if let Some(v) = std::env::var_os("BERTH_CACHE_DIR").filter(|v| !v.is_empty()) {
            assert_eq!(dir.unwrap(), PathBuf::from(v));
        } else if std::env::var_os("HOME").is_some() {
            assert!(dir.unwrap().ends_with("berth"));
        }
    }
}
