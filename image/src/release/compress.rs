//! The compressed artifacts: the GCE `tar.gz` and `berth.raw.zst`.
//!
//! gzip: flate2 (the zlib-rs backend, three times miniz's speed) with the header
//! `gzip -n` writes: no file name, mtime 0, OS Unix; nothing of the host or the clock.
//! zstd: multithreaded, with the content size and a checksum in the frame; zstd's
//! multithreaded output depends on the level and parameters but not on the number of
//! workers, so any host makes the same bytes (a test holds it to that).

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::Path;

use flate2::{Compression, GzBuilder};

use super::disk_image::DiskImage;
use super::{file_name, tar, Artifact, HashingWriter, ReleaseError};

/// The name Compute Engine requires inside the archive.
pub const GCE_MEMBER: &str = "disk.raw";
/// Granularity of hole detection for the sparse tar.
pub const SPARSE_BLOCK: usize = 4096;
/// zstd level: 3 (zstd's default) is within a few percent of 19 on a disk image that is
/// mostly compressed packages already, at a tenth of the time.
pub const ZSTD_LEVEL: i32 = 3;

fn create(out: &Path) -> Result<HashingWriter<BufWriter<File>>, ReleaseError> {
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(out)
        .map_err(ReleaseError::io("create", out))?;
    Ok(HashingWriter::new(BufWriter::with_capacity(1 << 20, file)))
}

fn close(out: &Path, writer: HashingWriter<BufWriter<File>>) -> Result<Artifact, ReleaseError> {
    let (buffered, size, sha256) = writer.finish();
    let file = buffered
        .into_inner()
        .map_err(|e| ReleaseError::io("write", out)(e.into_error()))?;
    file.sync_all().map_err(ReleaseError::io("sync", out))?;
    Ok(Artifact {
        name: file_name(out),
        size,
        sha256,
    })
}

/// Writes `disk` as `disk.raw` in a gzip'd GNU sparse tar (the disk must already be a
/// whole number of GiB for GCE; see [`DiskImage::rounded_up`]). `progress` goes from 0 to
/// the disk size twice: while finding the holes, then while compressing.
pub fn write_gce_tar_gz(
    disk: &DiskImage,
    out: &Path,
    mtime: u64,
    progress: &dyn Fn(u64),
) -> Result<Artifact, ReleaseError> {
    let regions = disk.data_regions(SPARSE_BLOCK, progress)?;
    let mut writer = create(out)?;
    let mut gz = GzBuilder::new()
        .mtime(0)
        .operating_system(3)
        .write(&mut writer, Compression::default());
    let size = disk.size();
    let stored: u64 = regions.iter().map(|r| r.len).sum::<u64>().max(1);
    tar::write_sparse(&mut gz, GCE_MEMBER, mtime, disk, &regions, &|done| {
        progress(done * size / stored)
    })?;
    gz.finish().map_err(ReleaseError::io("compress", out))?;
    close(out, writer)
}

/// Writes `disk` zstd-compressed with `workers` threads.
pub fn write_zst(
    disk: &DiskImage,
    out: &Path,
    workers: u32,
    progress: &dyn Fn(u64),
) -> Result<Artifact, ReleaseError> {
    let io = |op| ReleaseError::io(op, out);
    let mut writer = create(out)?;
    {
        let mut enc = zstd::stream::Encoder::new(&mut writer, ZSTD_LEVEL).map_err(io("start"))?;
        enc.multithread(workers.max(1)).map_err(io("configure"))?;
        enc.include_checksum(true).map_err(io("configure"))?;
        enc.include_contentsize(true).map_err(io("configure"))?;
        enc.set_pledged_src_size(Some(disk.size()))
            .map_err(io("configure"))?;
        disk.for_each_chunk(progress, |_, bytes| {
            enc.write_all(bytes)
                .map_err(ReleaseError::io("compress", out))
        })?;
        enc.finish().map_err(io("compress"))?;
    }
    writer.flush().map_err(io("write"))?;
    close(out, writer)
}

#[cfg(test)]
#[path = "compress_tests.rs"]
mod tests;
