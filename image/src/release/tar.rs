//! GNU sparse tar, "oldgnu" format: the archive Compute Engine imports (`disk.raw` inside,
//! `tar --format=oldgnu -S` in Google's instructions).
//!
//! One entry of type `S`: the header carries the real size and a map of the data regions
//! (four in the header, 21 per extension block after it), and the archive stores only
//! those regions, one after the other. Holes cost nothing, so a 3 GiB disk holding 80 MiB
//! of data makes an 80 MiB tar. As GNU tar does, a file that ends in a hole gets a last,
//! empty region at its end so that extraction restores the full size. Owners, mode and
//! mtime are fixed (root, 0644, `SOURCE_DATE_EPOCH`): the bytes depend on the disk alone.

use std::io::Write;

use super::disk_image::{DiskImage, Region, CHUNK};
use super::ReleaseError;

const BLOCK: usize = 512;
/// GNU tar's default record: 20 blocks; archives are padded to a whole record.
const RECORD: u64 = 20 * BLOCK as u64;
const HEADER_MAP_ENTRIES: usize = 4;
const EXTENSION_MAP_ENTRIES: usize = 21;

/// Writes a one-entry sparse archive of `disk` named `name`, storing `regions` (in order,
/// non-overlapping, each a multiple of 512 bytes long). Returns the archive's length.
pub fn write_sparse(
    out: &mut dyn Write,
    name: &str,
    mtime: u64,
    disk: &DiskImage,
    regions: &[Region],
    progress: &dyn Fn(u64),
) -> Result<u64, ReleaseError> {
    let bad = |reason: String| ReleaseError::Format {
        path: disk.path().to_path_buf(),
        reason,
    };
    if name.len() >= 100 || name.is_empty() {
        return Err(bad(format!(
            "tar member name {name:?} must be 1 to 99 bytes"
        )));
    }
    let mut map: Vec<Region> = regions.to_vec();
    let mut previous_end = 0;
    for r in &map {
        if r.len % BLOCK as u64 != 0 || r.offset < previous_end || r.end() > disk.size() {
            return Err(bad(format!(
                "sparse region {}+{} is not a sorted 512-byte multiple inside the disk",
                r.offset, r.len
            )));
        }
        previous_end = r.end();
    }
    if previous_end < disk.size() || map.is_empty() {
        map.push(Region {
            offset: disk.size(),
            len: 0,
        });
    }
    let stored: u64 = map.iter().map(|r| r.len).sum();

    let io = |e| ReleaseError::Io {
        op: "write the archive of",
        path: disk.path().to_path_buf(),
        source: e,
    };
    let mut written = 0u64;
    let (head, rest) = map.split_at(map.len().min(HEADER_MAP_ENTRIES));
    let header = header(name, mtime, stored, disk.size(), head, !rest.is_empty());
    out.write_all(&header).map_err(io)?;
    written += BLOCK as u64;
    let mut groups = rest.chunks(EXTENSION_MAP_ENTRIES).peekable();
    while let Some(group) = groups.next() {
        let mut block = [0u8; BLOCK];
        for (i, r) in group.iter().enumerate() {
            put_number(&mut block[i * 24..i * 24 + 12], r.offset);
            put_number(&mut block[i * 24 + 12..i * 24 + 24], r.len);
        }
        block[504] = u8::from(groups.peek().is_some());
        out.write_all(&block).map_err(io)?;
        written += BLOCK as u64;
    }

    let mut buf = vec![0u8; CHUNK];
    let mut done = 0u64;
    for r in &map {
        let mut at = r.offset;
        while at < r.end() {
            let n = (r.end() - at).min(CHUNK as u64) as usize;
            disk.read_at(&mut buf[..n], at)?;
            out.write_all(&buf[..n]).map_err(io)?;
            at += n as u64;
            done += n as u64;
            progress(done);
        }
    }
    written += stored;
    // End of archive: two zero blocks, then zeros up to a whole record.
    let end = (written + 2 * BLOCK as u64).div_ceil(RECORD) * RECORD;
    let zeros = vec![0u8; (end - written) as usize];
    out.write_all(&zeros).map_err(io)?;
    Ok(end)
}

/// The oldgnu header block of a sparse file.
fn header(
    name: &str,
    mtime: u64,
    stored: u64,
    real_size: u64,
    map: &[Region],
    extended: bool,
) -> [u8; BLOCK] {
    let mut h = [0u8; BLOCK];
    h[..name.len()].copy_from_slice(name.as_bytes());
    put_number(&mut h[100..108], 0o644);
    put_number(&mut h[108..116], 0);
    put_number(&mut h[116..124], 0);
    put_number(&mut h[124..136], stored);
    put_number(&mut h[136..148], mtime);
    h[156] = b'S';
    h[257..265].copy_from_slice(b"ustar  \0");
    h[265..269].copy_from_slice(b"root");
    h[297..301].copy_from_slice(b"root");
    for (i, r) in map.iter().enumerate() {
        let at = 386 + i * 24;
        put_number(&mut h[at..at + 12], r.offset);
        put_number(&mut h[at + 12..at + 24], r.len);
    }
    h[482] = u8::from(extended);
    put_number(&mut h[483..495], real_size);
    // Checksum: the sum of all bytes with the field itself read as spaces; written as
    // six octal digits, NUL, space (as GNU tar does).
    h[148..156].fill(b' ');
    let sum: u32 = h.iter().map(|b| u32::from(*b)).sum();
    h[148..154].copy_from_slice(format!("{sum:06o}").as_bytes());
    h[154] = 0;
    h
}

/// A numeric field: zero-padded octal and a NUL when it fits, else GNU base-256 (first
/// byte 0x80, the value big-endian in the rest), which GNU tar reads for sizes over 8 GiB.
fn put_number(field: &mut [u8], value: u64) {
    let digits = field.len() - 1;
    let octal = format!("{value:0digits$o}");
    if octal.len() == digits {
        field[..digits].copy_from_slice(octal.as_bytes());
        field[digits] = 0;
    } else {
        field.fill(0);
        field[0] = 0x80;
        let bytes = value.to_be_bytes();
        let n = field.len();
        field[n - 8..].copy_from_slice(&bytes);
    }
}

#[cfg(test)]
#[path = "tar_tests.rs"]
mod tests;
