//! The checks a release makes before it writes anything: the disk against its build
//! manifest (size, partition table, a full dm-verity check of the root against the root
//! hash), and the output folder (it must not hold another disk's release).

use std::path::Path;

use super::disk_image::DiskImage;
use super::make::{base_name, Progress};
use super::manifest::ReleaseManifest;
use super::verify::MANIFEST;
use super::ReleaseError;
use crate::inspect::{self, RootState};

/// Checks `disk` against its build manifest without writing anything: size, partition
/// table, and a full dm-verity check of the root against the manifest's root hash.
pub fn check_disk(
    disk: &Path,
    manifest: &ReleaseManifest,
    progress: &dyn Progress,
) -> Result<(), ReleaseError> {
    let bad = |reason: String| ReleaseError::BadDisk {
        path: disk.to_path_buf(),
        reason,
    };
    let image = DiskImage::open(disk)?;
    let want = manifest.facts.disk.size;
    if image.size() != want {
        return Err(bad(format!(
            "is {} bytes, its manifest says {want}",
            image.size()
        )));
    }
    progress.begin("check", 0);
    let (_, roots) =
        inspect::inspect(disk, &|n| progress.advance(n)).map_err(|e| bad(e.to_string()))?;
    let root_hash = &manifest.facts.root_hash;
    for root in &roots {
        match &root.state {
            RootState::Corrupt(why) => {
                return Err(bad(format!(
                    "{}: dm-verity check failed: {why}",
                    root.root.label
                )))
            }
            RootState::Verified { info, .. } if hex::encode(info.root_hash) == *root_hash => {
                progress.end(&format!(
                    "{} verifies against root hash {root_hash}",
                    root.root.label
                ));
                return Ok(());
            }
            _ => {}
        }
    }
    Err(bad(format!(
        "no root partition verifies against the manifest's root hash {root_hash}"
    )))
}

/// Refuses an output folder whose `manifest.json` describes another disk (the default
/// variant's, when releasing the debug variant into the same folder, say).
pub fn check_out_dir(out_dir: &Path, disk: &Path) -> Result<(), ReleaseError> {
    let path = out_dir.join(MANIFEST);
    let Ok(existing) = ReleaseManifest::read(&path) else {
        return Ok(());
    };
    let raw = format!("{}.raw", base_name(disk));
    if existing.facts.artifacts.iter().any(|a| a.name == raw) {
        return Ok(());
    }
    Err(ReleaseError::Format {
        path,
        reason: format!(
            "describes another disk, not {raw}; release into another folder (--out-dir)"
        ),
    })
}
