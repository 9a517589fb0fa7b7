//! The CA bundle `/etc/ssl/certs/ca-certificates.crt`.
//!
//! Debian's `ca-certificates` package ships the certificates but builds the bundle in its
//! maintainer script (`update-ca-certificates`), which never runs because packages are
//! extracted, not installed. Image pulls over HTTPS need the bundle, so it is generated
//! here the same way, with every certificate enabled, in a fixed order.

use crate::place::{self, PlaceError};
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Where the certificates are, relative to the root.
pub const SOURCE_DIR: &str = "usr/share/ca-certificates";
/// The generated bundle, relative to the root.
pub const BUNDLE: &str = "etc/ssl/certs/ca-certificates.crt";

/// Errors generating the bundle; each names the file.
#[derive(Debug, thiserror::Error)]
pub enum CertsError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot write the CA bundle: {0}")]
    Write(#[from] PlaceError),
}

/// Writes the bundle if the root has `usr/share/ca-certificates`; returns how many
/// certificates it holds (`None`: no certificates folder, nothing written).
pub fn generate_bundle(root: &Path) -> Result<Option<usize>, CertsError> {
    let source = root.join(SOURCE_DIR);
    match fs::symlink_metadata(&source) {
        Ok(m) if m.is_dir() => {}
        _ => return Ok(None),
    }
    let mut certs = Vec::new();
    collect(root, Path::new(SOURCE_DIR), &mut certs)?;
    // Byte order of the paths, as `LC_ALL=C sort` orders ca-certificates.conf.
    certs.sort_by(|a, b| a.as_os_str().as_bytes().cmp(b.as_os_str().as_bytes()));
    let mut bundle = Vec::new();
    for rel in &certs {
        let path = root.join(rel);
        let pem = fs::read(&path).map_err(|source| CertsError::Read { path, source })?;
        bundle.extend_from_slice(&pem);
        if !pem.is_empty() && !pem.ends_with(b"\n") {
            bundle.push(b'\n');
        }
    }
    place::make_dir(root, Path::new("etc/ssl/certs"), None)?;
    place::write_file(root, Path::new(BUNDLE), 0o644, &mut bundle.as_slice())?;
    Ok(Some(certs.len()))
}

/// Regular `*.crt` files under `dir` (relative to the root), symlinks not followed.
fn collect(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), CertsError> {
    let host = root.join(dir);
    let read_err = |source| CertsError::Read {
        path: host.clone(),
        source,
    };
    for dirent in fs::read_dir(&host).map_err(read_err)? {
        let dirent = dirent.map_err(read_err)?;
        let ft = dirent.file_type().map_err(read_err)?;
        let rel = dir.join(dirent.file_name());
        if ft.is_dir() {
            collect(root, &rel, out)?;
        } else if ft.is_file() && rel.extension().is_some_and(|e| e == "crt") {
            out.push(rel);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundle_is_sorted_concatenation() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        assert_eq!(generate_bundle(root).unwrap(), None);
        let w = |p: &str, s: &str| {
            place::write_file(root, Path::new(p), 0o644, &mut s.as_bytes()).unwrap();
        };
        w("usr/share/ca-certificates/mozilla/B.crt", "B\n");
        w("usr/share/ca-certificates/mozilla/A.crt", "A");
        w("usr/share/ca-certificates/mozilla/readme.txt", "no");
        w("usr/share/ca-certificates/a-local/C.crt", "C\n");
        assert_eq!(generate_bundle(root).unwrap(), Some(3));
        let bundle = fs::read_to_string(root.join(BUNDLE)).unwrap();
        assert_eq!(bundle, "C\nA\nB\n");
    }
}
