//! Fixed VHD, the format Azure imports: the raw disk followed by a 512-byte footer.
//!
//! The footer is the one `qemu-img convert -O vpc -o subformat=fixed,force_size` writes
//! (Azure's documented command): creator "qem2", which tells readers to take the size
//! from the footer rather than from the CHS geometry, and the maximum geometry. Two fields
//! of qemu-img's footer vary from run to run; here they come from the build instead: the
//! time stamp is `SOURCE_DATE_EPOCH` (seconds since 2000-01-01) and the UUID is derived
//! from the disk's sha256. Azure requires the virtual size to be a whole number of MiB.

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::Path;

use sha2::{Digest, Sha256};

use super::disk_image::{is_zero, DiskImage};
use super::{file_name, Artifact, ReleaseError, MIB};
use berth_layout::partition::stable_uuid;

pub const FOOTER_SIZE: usize = 512;
/// 2000-01-01T00:00:00Z, the VHD time origin, in Unix time.
pub const VHD_EPOCH: u64 = 946_684_800;

/// What varies between footers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FooterFields {
    /// Virtual size in bytes.
    pub size: u64,
    /// Seconds since [`VHD_EPOCH`].
    pub timestamp: u32,
    pub uuid: [u8; 16],
}

/// The footer of a fixed VHD.
pub fn footer(fields: &FooterFields) -> [u8; FOOTER_SIZE] {
    let mut f = [0u8; FOOTER_SIZE];
    f[0..8].copy_from_slice(b"conectix");
    f[8..12].copy_from_slice(&2u32.to_be_bytes()); // features: reserved bit, always set
    f[12..16].copy_from_slice(&0x0001_0000u32.to_be_bytes()); // format version 1.0
    f[16..24].copy_from_slice(&u64::MAX.to_be_bytes()); // data offset: none (fixed disk)
    f[24..28].copy_from_slice(&fields.timestamp.to_be_bytes());
    f[28..32].copy_from_slice(b"qem2");
    f[32..36].copy_from_slice(&0x0005_0003u32.to_be_bytes()); // creator version
    f[36..40].copy_from_slice(b"Wi2k"); // creator host OS
    f[40..48].copy_from_slice(&fields.size.to_be_bytes()); // original size
    f[48..56].copy_from_slice(&fields.size.to_be_bytes()); // current size
    f[56..58].copy_from_slice(&65535u16.to_be_bytes()); // cylinders
    f[58] = 16; // heads
    f[59] = 255; // sectors per track
    f[60..64].copy_from_slice(&2u32.to_be_bytes()); // disk type: fixed
    f[68..84].copy_from_slice(&fields.uuid);
    let sum = f
        .iter()
        .fold(0u32, |acc, b| acc.wrapping_add(u32::from(*b)));
    f[64..68].copy_from_slice(&(!sum).to_be_bytes());
    f
}

/// Seconds since 2000-01-01 for a Unix time (0 before 2000, saturating in 2136).
pub fn timestamp(unix: u64) -> u32 {
    u32::try_from(unix.saturating_sub(VHD_EPOCH)).unwrap_or(u32::MAX)
}

/// What [`write_fixed`] produced.
pub struct Written {
    pub artifact: Artifact,
    /// sha256 of the disk bytes (the VHD without its footer).
    pub disk_sha256: String,
}

/// Writes `disk` (a whole number of MiB) as a fixed VHD to `out`, a new file, sparse
/// where the disk is zero. Hashes the disk on the way, for the UUID and for the caller.
pub fn write_fixed(
    disk: &DiskImage,
    out: &Path,
    source_date_epoch: u64,
    progress: &dyn Fn(u64),
) -> Result<Written, ReleaseError> {
    if !disk.size().is_multiple_of(MIB) {
        return Err(ReleaseError::Format {
            path: out.to_path_buf(),
            reason: format!(
                "Azure needs a whole number of MiB; the disk is {} bytes",
                disk.size()
            ),
        });
    }
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(out)
        .map_err(ReleaseError::io("create", out))?;
    file.set_len(disk.size() + FOOTER_SIZE as u64)
        .map_err(ReleaseError::io("size", out))?;
    let mut hasher = Sha256::new();
    disk.for_each_chunk(progress, |offset, bytes| {
        hasher.update(bytes);
        if !is_zero(bytes) {
            file.write_all_at(bytes, offset)
                .map_err(ReleaseError::io("write", out))?;
        }
        Ok::<(), ReleaseError>(())
    })?;
    let disk_digest = hasher.clone().finalize();
    let uuid = stable_uuid(&[b"berth vhd", disk_digest.as_slice()]);
    let footer = footer(&FooterFields {
        size: disk.size(),
        timestamp: timestamp(source_date_epoch),
        uuid: *uuid.as_bytes(),
    });
    file.write_all_at(&footer, disk.size())
        .map_err(ReleaseError::io("write", out))?;
    file.sync_all().map_err(ReleaseError::io("sync", out))?;
    hasher.update(footer);
    Ok(Written {
        artifact: Artifact {
            name: file_name(out),
            size: disk.size() + FOOTER_SIZE as u64,
            sha256: hex::encode(hasher.finalize()),
        },
        disk_sha256: hex::encode(disk_digest),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::release::testdisk;
    use std::process::Command;

    fn qemu_img(args: &[&str]) -> std::process::Output {
        let out = Command::new("qemu-img")
            .args(args)
            .output()
            .expect("qemu-img (install the Debian package qemu-utils)");
        assert!(
            out.status.success(),
            "qemu-img {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    #[test]
    fn footer_checksum_and_fields() {
        let f = footer(&FooterFields {
            size: 64 * MIB,
            timestamp: 0x3295_3dbb,
            uuid: [0xab; 16],
        });
        assert_eq!(&f[..8], b"conectix");
        assert_eq!(&f[40..56], &hex_bytes("00000000040000000000000004000000"));
        assert_eq!(&f[56..60], &[0xff, 0xff, 0x10, 0xff]);
        let sum = f
            .iter()
            .enumerate()
            .filter(|(i, _)| !(64..68).contains(i))
            .fold(0u32, |acc, (_, b)| acc.wrapping_add(u32::from(*b)));
        assert_eq!(u32::from_be_bytes(f[64..68].try_into().unwrap()), !sum);
    }

    fn hex_bytes(text: &str) -> Vec<u8> {
        hex::decode(text).unwrap()
    }

    #[test]
    fn qemu_img_reads_it_as_vpc_equal_to_the_raw_disk() {
        let dir = tempfile::tempdir().unwrap();
        let t = testdisk::make(dir.path());
        let disk = DiskImage::open(&t.path).unwrap();
        let out = dir.path().join("berth.vhd");
        let written = write_fixed(&disk, &out, 1_700_000_000, &|_| {}).unwrap();
        assert_eq!(
            written.disk_sha256,
            hex::encode(sha2::Sha256::digest(std::fs::read(&t.path).unwrap()))
        );
        assert_eq!(
            written.artifact.sha256,
            crate::manifest::sha256_file(&out).unwrap()
        );
        let vhd = out.to_str().unwrap();
        let raw = t.path.to_str().unwrap();
        let info = qemu_img(&["info", "-f", "vpc", "--output=json", vhd]);
        let info: serde_json::Value = serde_json::from_slice(&info.stdout).unwrap();
        assert_eq!(info["format"], "vpc");
        assert_eq!(info["virtual-size"], disk.size());
        let cmp = qemu_img(&["compare", "-f", "raw", "-F", "vpc", raw, vhd]);
        assert!(String::from_utf8_lossy(&cmp.stdout).contains("identical"));
    }

    #[test]
    fn footer_matches_qemu_img_but_for_time_and_uuid() {
        let dir = tempfile::tempdir().unwrap();
        let t = testdisk::make(dir.path());
        let ours = dir.path().join("ours.vhd");
        write_fixed(&DiskImage::open(&t.path).unwrap(), &ours, 0, &|_| {}).unwrap();
        let theirs = dir.path().join("theirs.vhd");
        let args = [
            "convert",
            "-f",
            "raw",
            "-O",
            "vpc",
            "-o",
            "subformat=fixed,force_size",
        ];
        let mut args: Vec<&str> = args.to_vec();
        args.extend([t.path.to_str().unwrap(), theirs.to_str().unwrap()]);
        qemu_img(&args);
        let (a, b) = (
            std::fs::read(&ours).unwrap(),
            std::fs::read(&theirs).unwrap(),
        );
        assert_eq!(a.len(), b.len());
        let tail = a.len() - FOOTER_SIZE;
        assert!(a[..tail] == b[..tail], "disk bytes differ");
        let (fa, fb) = (&a[tail..], &b[tail..]);
        for range in [0..24, 28..64, 84..512] {
            assert_eq!(
                fa[range.clone()],
                fb[range.clone()],
                "footer bytes {range:?}"
            );
        }
    }

    #[test]
    fn timestamps_count_from_2000() {
        assert_eq!(timestamp(VHD_EPOCH + 5), 5);
        assert_eq!(timestamp(0), 0);
    }
}
