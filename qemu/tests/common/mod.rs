//! Helpers shared by the harness's own tests.

#![allow(dead_code)] // Each test file uses a different subset.

use std::fs;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// A zero-filled raw disk of `mib` MiB: nothing on it boots, so OVMF reports and moves on.
pub fn zeroed_disk(dir: &Path, mib: u64) -> PathBuf {
    let path = dir.join("empty.raw");
    let file = fs::File::create(&path).unwrap();
    file.set_len(mib << 20).unwrap();
    path
}

pub fn sha256(path: &Path) -> String {
    hex::encode(Sha256::digest(fs::read(path).unwrap()))
}

/// Returns from the calling test, skipping it (`berth_testkit::skip`), when QEMU or OVMF
/// is missing.
#[macro_export]
macro_rules! skip_without_qemu {
    () => {
        berth_testkit::skip_if!(berth_qemu::skip_reason());
        let choice = berth_qemu::accel_choice();
        eprintln!("accelerator: {} ({})", choice.accel, choice.reason);
    };
}
