//! Making a release folder from a built disk: check the disk, write every artifact into a
//! staging folder, then the SBOM, the release manifest, its signature and `SHA256SUMS`,
//! and only then rename them into the output folder. A failure at any point leaves the
//! output folder as it was: the staging folder is removed, nothing half-written remains.
//!
//! The disk is checked before anything is written ([`check_disk`]); its sha256 is
//! computed while the VHD is written (one read of the disk for both) and compared with the
//! build manifest before anything reaches the output folder. qemu-img runs on a thread of
//! its own meanwhile: on two cores, the release takes the time of the slower half.

use std::fs;
use std::path::Path;

pub use super::check::check_disk;
use super::check::check_out_dir;
use super::crates::Crate;
use super::disk_image::DiskImage;
use super::manifest::ReleaseManifest;
use super::qemu_img::{self, QemuFormat};
use super::sign::SigningKey;
use super::verify::{MANIFEST, SIGNATURE, SUMS};
use super::{compress, spdx, sums, vhd, Artifact, ReleaseError, GIB, MIB};

/// The artifact formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Format {
    /// The disk itself, for AWS and others.
    Raw,
    /// `disk.raw` in a gzip'd GNU sparse tar, a whole number of GiB: Compute Engine.
    Gce,
    /// Fixed VHD: Azure.
    Vhd,
    /// Stream-optimized VMDK: AWS, VMware.
    Vmdk,
    /// qcow2: local QEMU.
    Qcow2,
    /// zstd-compressed raw disk: plain downloads.
    Zst,
}

impl Format {
    pub const ALL: [Format; 6] = [
        Format::Raw,
        Format::Gce,
        Format::Vhd,
        Format::Vmdk,
        Format::Qcow2,
        Format::Zst,
    ];

    /// The artifact's file name for a disk named `base` (`berth`) of `version`.
    pub fn file_name(self, base: &str, version: &str) -> String {
        match self {
            Format::Raw => format!("{base}.raw"),
            Format::Gce => format!("{base}-{version}.tar.gz"),
            Format::Vhd => format!("{base}.vhd"),
            Format::Vmdk => format!("{base}.vmdk"),
            Format::Qcow2 => format!("{base}.qcow2"),
            Format::Zst => format!("{base}.raw.zst"),
        }
    }
}

/// Reports progress of the steps of a release.
pub trait Progress: Sync {
    /// A step starts; `total` is its length in bytes (0 if unknown).
    fn begin(&self, step: &str, total: u64);
    fn advance(&self, done: u64);
    fn end(&self, summary: &str);
}

/// What to release.
pub struct Input<'a> {
    pub disk: &'a Path,
    /// The build manifest of `disk`.
    pub manifest: &'a ReleaseManifest,
    pub out_dir: &'a Path,
    pub formats: &'a [Format],
    pub crates: &'a [Crate],
    pub key: Option<&'a SigningKey>,
    /// The creating tool for the SBOM, `berth-xtask-0.1.0`.
    pub tool: &'a str,
    /// Host tools that shape the artifacts (qemu-img's version), for the manifest.
    pub tools: &'a [String],
    pub zstd_workers: u32,
}

/// Makes the release; returns the artifacts in `out_dir` (including the manifest's own
/// files), sorted by name.
pub fn make(input: &Input, progress: &dyn Progress) -> Result<Vec<Artifact>, ReleaseError> {
    check_out_dir(input.out_dir, input.disk)?;
    let staging = input.out_dir.join(".berth-release.partial");
    let _ = fs::remove_dir_all(&staging);
    fs::create_dir_all(&staging).map_err(ReleaseError::io("create", &staging))?;
    let result = stage(input, &staging, progress)
        .and_then(|names| publish(input.out_dir, &staging, names, input.key.is_some()));
    let _ = fs::remove_dir_all(&staging);
    result
}

/// Writes everything into `staging`; returns the names to move and all artifacts.
fn stage(
    input: &Input,
    staging: &Path,
    progress: &dyn Progress,
) -> Result<(Vec<String>, Vec<Artifact>), ReleaseError> {
    let facts = &input.manifest.facts;
    let base = base_name(input.disk);
    let name = |f: Format| f.file_name(&base, &facts.version);
    let wants = |f: Format| input.formats.contains(&f);
    let mut artifacts = Vec::new();
    let mut moved = Vec::new();
    let disk = DiskImage::open(input.disk)?;

    // One read of the disk gives the VHD and the disk's sha256.
    let disk_sha256 = if wants(Format::Vhd) {
        progress.begin("vhd", disk.size());
        let out = staging.join(name(Format::Vhd));
        let written = vhd::write_fixed(
            &DiskImage::open(input.disk)?.rounded_up(MIB)?,
            &out,
            facts.source_date_epoch,
            &|n| progress.advance(n),
        )?;
        progress.end(&summary(&written.artifact));
        artifacts.push(written.artifact);
        moved.push(name(Format::Vhd));
        if disk.size() % MIB == 0 {
            written.disk_sha256
        } else {
            hash_file(input.disk, progress)?
        }
    } else {
        hash_file(input.disk, progress)?
    };
    if let Some(built) = facts.artifact(&super::file_name(input.disk)) {
        if built.sha256 != disk_sha256 {
            return Err(ReleaseError::BadDisk {
                path: input.disk.to_path_buf(),
                reason: format!("sha256 is {disk_sha256}, its build manifest says {}: the disk changed after the build", built.sha256),
            });
        }
    }
    // qemu-img runs on its own thread (one core) while the Rust formats use the other.
    let qemu_jobs: Vec<(Format, QemuFormat)> = [
        (Format::Vmdk, QemuFormat::Vmdk),
        (Format::Qcow2, QemuFormat::Qcow2),
    ]
    .into_iter()
    .filter(|(f, _)| wants(*f))
    .collect();
    let (rust, qemu) = std::thread::scope(|scope| {
        let background = scope.spawn(|| {
            let started = std::time::Instant::now();
            let mut done = Vec::new();
            for (format, qemu) in &qemu_jobs {
                done.push(qemu_img::convert(
                    input.disk,
                    &staging.join(name(*format)),
                    *qemu,
                    &disk_sha256,
                )?);
            }
            Ok::<_, ReleaseError>((done, started.elapsed()))
        });
        let rust = rust_formats(input, &disk, &disk_sha256, staging, progress);
        let qemu = background.join().unwrap_or_else(|_| {
            Err(ReleaseError::Format {
                path: input.disk.to_path_buf(),
                reason: "the qemu-img thread panicked".into(),
            })
        });
        (rust, qemu)
    });
    let (rust_artifacts, rust_moved) = rust?;
    artifacts.extend(rust_artifacts);
    moved.extend(rust_moved);
    let (qemu_artifacts, elapsed) = qemu?;
    for a in qemu_artifacts {
        progress.begin("qemu-img", 0);
        progress.end(&format!(
            "{} (in the background, {:.1}s for all)",
            summary(&a),
            elapsed.as_secs_f64()
        ));
        moved.push(a.name.clone());
        artifacts.push(a);
    }

    // The programs' debug files, packed by the build beside the disk.
    let debuginfo = input.disk.with_file_name(debuginfo_name(&base));
    if debuginfo.is_file() {
        let name = debuginfo_name(&base);
        let size = fs::metadata(&debuginfo)
            .map_err(ReleaseError::io("read", &debuginfo))?
            .len();
        if !same_dir(input.disk, input.out_dir) {
            let to = staging.join(&name);
            fs::copy(&debuginfo, &to).map_err(ReleaseError::io("copy", &to))?;
            moved.push(name.clone());
        }
        let sha256 = hash_file(&debuginfo, progress)?;
        artifacts.push(Artifact { name, size, sha256 });
    }

    let sbom = spdx::render(&spdx::SbomInput {
        facts,
        crates: input.crates,
        disk_sha256: &disk_sha256,
        tool: input.tool,
    });
    artifacts.push(write_file(staging, &format!("{base}.spdx.json"), &sbom)?);
    moved.push(format!("{base}.spdx.json"));

    let release = input
        .manifest
        .for_release(input.crates, input.tools, &artifacts);
    let bytes = release.to_bytes();
    let mut all = artifacts.clone();
    all.push(write_file(staging, MANIFEST, &bytes)?);
    moved.push(MANIFEST.into());
    if let Some(key) = input.key {
        write_file(staging, SIGNATURE, &key.sign(&bytes))?;
        moved.push(SIGNATURE.into());
    }
    write_file(staging, SUMS, sums::render(&all).as_bytes())?;
    moved.push(SUMS.into());
    all.sort_by(|a, b| a.name.cmp(&b.name));
    Ok((moved, all))
}

/// The raw, GCE and zstd artifacts; returns them and the names to move.
fn rust_formats(
    input: &Input,
    disk: &DiskImage,
    disk_sha256: &str,
    staging: &Path,
    progress: &dyn Progress,
) -> Result<(Vec<Artifact>, Vec<String>), ReleaseError> {
    let facts = &input.manifest.facts;
    let base = base_name(input.disk);
    let name = |f: Format| f.file_name(&base, &facts.version);
    let wants = |f: Format| input.formats.contains(&f);
    let (mut artifacts, mut moved) = (Vec::new(), Vec::new());
    if wants(Format::Raw) {
        let raw = Artifact {
            name: name(Format::Raw),
            size: disk.size(),
            sha256: disk_sha256.to_string(),
        };
        if !same_dir(input.disk, input.out_dir) {
            copy_sparse(input.disk, &staging.join(&raw.name), progress)?;
            moved.push(raw.name.clone());
        }
        artifacts.push(raw);
    }
    if wants(Format::Gce) {
        let grown = DiskImage::open(input.disk)?.rounded_up(GIB)?;
        progress.begin("gce", grown.size());
        let a = compress::write_gce_tar_gz(
            &grown,
            &staging.join(name(Format::Gce)),
            facts.source_date_epoch,
            &|n| progress.advance(n),
        )?;
        progress.end(&summary(&a));
        moved.push(a.name.clone());
        artifacts.push(a);
    }
    if wants(Format::Zst) {
        progress.begin("zst", disk.size());
        let a = compress::write_zst(
            disk,
            &staging.join(name(Format::Zst)),
            input.zstd_workers,
            &|n| progress.advance(n),
        )?;
        progress.end(&summary(&a));
        moved.push(a.name.clone());
        artifacts.push(a);
    }
    Ok((artifacts, moved))
}

/// Renames the staged files into `out_dir`, the manifest and its signature last; removes a
/// signature left from an earlier release when this one is unsigned.
fn publish(
    out_dir: &Path,
    staging: &Path,
    (moved, all): (Vec<String>, Vec<Artifact>),
    signed: bool,
) -> Result<Vec<Artifact>, ReleaseError> {
    if !signed {
        let stale = out_dir.join(SIGNATURE);
        match fs::remove_file(&stale) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(ReleaseError::io("remove the stale", &stale)(e))
            }
            _ => {}
        }
    }
    for name in moved {
        let to = out_dir.join(&name);
        fs::rename(staging.join(&name), &to).map_err(ReleaseError::io("rename into place", &to))?;
    }
    Ok(all)
}

/// The build's archive of the programs' debug files for the disk named `base`.
pub fn debuginfo_name(base: &str) -> String {
    format!("{base}-debuginfo.tar.zst")
}

/// The disk's file name without `.raw`: `berth`, `berth-debug`.
pub fn base_name(disk: &Path) -> String {
    let name = super::file_name(disk);
    name.strip_suffix(".raw").unwrap_or(&name).to_string()
}

fn summary(a: &Artifact) -> String {
    format!("{} ({} MiB)", a.name, a.size.div_ceil(MIB))
}

fn hash_file(path: &Path, progress: &dyn Progress) -> Result<String, ReleaseError> {
    progress.begin("sha256", 0);
    let sha = crate::manifest::sha256_file(path).map_err(|e| ReleaseError::BadDisk {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    progress.end(&sha);
    Ok(sha)
}

fn write_file(dir: &Path, name: &str, bytes: &[u8]) -> Result<Artifact, ReleaseError> {
    let path = dir.join(name);
    fs::write(&path, bytes).map_err(ReleaseError::io("write", &path))?;
    Ok(Artifact {
        name: name.into(),
        size: bytes.len() as u64,
        sha256: hex::encode(<sha2::Sha256 as sha2::Digest>::digest(bytes)),
    })
}

fn same_dir(file: &Path, dir: &Path) -> bool {
    let parent = file
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    match (fs::canonicalize(parent), fs::canonicalize(dir)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// A sparse copy (not a hard link: `cargo xtask run --persistent` writes to the built disk
/// in place, and must not change a release made from it).
fn copy_sparse(from: &Path, to: &Path, progress: &dyn Progress) -> Result<(), ReleaseError> {
    let disk = DiskImage::open(from)?;
    progress.begin("raw", disk.size());
    let file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(to)
        .map_err(ReleaseError::io("create", to))?;
    file.set_len(disk.size())
        .map_err(ReleaseError::io("size", to))?;
    disk.for_each_chunk(&|n| progress.advance(n), |offset, bytes| {
        if !super::disk_image::is_zero(bytes) {
            std::os::unix::fs::FileExt::write_all_at(&file, bytes, offset)
                .map_err(ReleaseError::io("write", to))?;
        }
        Ok::<(), ReleaseError>(())
    })?;
    file.sync_all().map_err(ReleaseError::io("sync", to))?;
    progress.end(&super::file_name(to));
    Ok(())
}

#[cfg(test)]
#[path = "make_tests.rs"]
mod tests;
