//! Checking the verity partition against `roothash=` and writing the dm-verity table.
//!
//! The kernel verifies every block when it is read, and with `panic_on_corruption` a bad
//! block panics the machine — including a wrong `roothash=`, which makes the very first
//! read (mount reading the ext4 superblock) fail. So stage 1 checks, before it creates the
//! device, what it can check cheaply: the superblock (`berth_layout::verity`, the format the
//! builder writes), that the sizes fit the partitions, and that the top block of the hash
//! tree hashes to `roothash=`. A wrong `roothash=` or a replaced hash tree is then reported
//! as `berth: FAILED verity: root hash mismatch …`; tampered data below a correct tree is
//! left to the kernel, which reads and checks it block by block (full verification at boot
//! would read the whole root).

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;

use berth_layout::cmdline::{RootHash, VerityMode};
use berth_layout::verity::{self, Superblock, SuperblockError};
use sha2::{Digest, Sha256};

use crate::discover::{FoundRoot, OtherVerity};
use crate::sys::DmTarget;

/// 512-byte sectors per 4096-byte block, for dm table lengths.
const SECTORS_PER_BLOCK: u64 = 8;

/// What does not fit.
#[derive(Debug, thiserror::Error)]
pub enum VerityCheckError {
    #[error("cannot open {path}")]
    Open {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{device} ({label}) has no usable verity superblock")]
    Superblock {
        device: PathBuf,
        label: String,
        #[source]
        source: SuperblockError,
    },
    #[error("cannot read {what} of {device} at disk offset {offset}")]
    Read {
        what: &'static str,
        device: PathBuf,
        offset: u64,
        #[source]
        source: io::Error,
    },
    #[error(
        "{device}: the verity superblock covers {data_blocks} blocks ({bytes} bytes), \
         more than the {size}-byte root partition"
    )]
    DataTooLarge {
        device: PathBuf,
        data_blocks: u64,
        bytes: u64,
        size: u64,
    },
    #[error(
        "{device}: {size} bytes cannot hold a hash tree of {data_blocks} blocks ({needed} bytes)"
    )]
    HashTooSmall {
        device: PathBuf,
        data_blocks: u64,
        size: u64,
        needed: u64,
    },
    #[error(
        "root hash mismatch: roothash={expected}, but {what} of {device} ({label}) \
         hashes to {actual}"
    )]
    RootHashMismatch {
        what: &'static str,
        device: PathBuf,
        label: String,
        /// Boxed to keep every `Result` of this module small.
        expected: Box<RootHash>,
        actual: Box<RootHash>,
    },
    #[error(
        "root hash mismatch: no partitions with the UUIDs of roothash={expected}; \
         the root verity partitions found: {found}"
    )]
    NoPartitionsForRootHash { expected: RootHash, found: String },
}

/// A checked root, ready for device-mapper.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerityRoot {
    pub superblock: Superblock,
    /// The one-line table.
    pub target: DmTarget,
    /// The dm UUID, in cryptsetup's form so that tools recognize a verity device.
    pub dm_uuid: String,
}

/// Checks the verity partition of `found` against `root_hash` (reading through the whole
/// disk, the same bytes the partitions show) and returns the device-mapper table.
pub fn check(
    disk: &File,
    found: &FoundRoot,
    root_hash: &RootHash,
    mode: VerityMode,
) -> Result<VerityRoot, VerityCheckError> {
    let device = found.verity.path();
    let superblock = verity::read_superblock(disk, found.verity.offset).map_err(|source| {
        VerityCheckError::Superblock {
            device: device.clone(),
            label: found.verity.label.clone(),
            source,
        }
    })?;
    let data_blocks = superblock.data_blocks;
    let bytes = data_blocks.saturating_mul(verity::BLOCK_SIZE);
    if bytes > found.root.size {
        return Err(VerityCheckError::DataTooLarge {
            device: found.root.path(),
            data_blocks,
            bytes,
            size: found.root.size,
        });
    }
    let needed = verity::hash_device_size(data_blocks);
    if needed > found.verity.size {
        return Err(VerityCheckError::HashTooSmall {
            device,
            data_blocks,
            size: found.verity.size,
            needed,
        });
    }
    let actual = top_hash(
        disk,
        found.root.offset,
        found.verity.offset,
        &superblock,
        &device,
    )?;
    if actual != *root_hash {
        // A single data block is its own root; otherwise the tree's top block is.
        let (what, partition) = if data_blocks == 1 {
            ("the only data block", &found.root)
        } else {
            ("the top hash block", &found.verity)
        };
        return Err(VerityCheckError::RootHashMismatch {
            what,
            device: partition.path(),
            label: partition.label.clone(),
            expected: Box::new(*root_hash),
            actual: Box::new(actual),
        });
    }
    let salt = if superblock.salt.is_empty() {
        "-".to_owned()
    } else {
        hex::encode(&superblock.salt)
    };
    let params = format!(
        "1 {data} {hash} {dbs} {hbs} {data_blocks} 1 {alg} {root_hash} {salt} 1 {opt}",
        data = found.root.dev,
        hash = found.verity.dev,
        dbs = superblock.data_block_size,
        hbs = superblock.hash_block_size,
        alg = superblock.algorithm,
        opt = mode.table_option(),
    );
    Ok(VerityRoot {
        target: DmTarget {
            start: 0,
            length: data_blocks * SECTORS_PER_BLOCK,
            target_type: "verity".into(),
            params,
        },
        dm_uuid: format!("CRYPT-VERITY-{}-root", hex::encode(superblock.uuid)),
        superblock,
    })
}

/// The root hash the hash device claims: `sha256(salt || top block)`, where the top block
/// is block 1 of the hash device (veritysetup stores the top level first, after the
/// superblock) or, for a single data block, the data block itself.
fn top_hash(
    disk: &File,
    data_offset: u64,
    verity_offset: u64,
    superblock: &Superblock,
    device: &std::path::Path,
) -> Result<RootHash, VerityCheckError> {
    let (what, offset) = if superblock.data_blocks == 1 {
        ("the only data block", data_offset)
    } else {
        (
            "the top hash block",
            verity_offset + verity::TOP_HASH_BLOCK_OFFSET,
        )
    };
    let mut block = vec![0; verity::BLOCK_SIZE as usize];
    disk.read_exact_at(&mut block, offset)
        .map_err(|source| VerityCheckError::Read {
            what,
            device: device.to_path_buf(),
            offset,
            source,
        })?;
    let mut hasher = Sha256::new();
    hasher.update(&superblock.salt);
    hasher.update(&block);
    Ok(RootHash(hasher.finalize().into()))
}

/// The report for a `roothash=` that names no partition: the root hash each root verity
/// partition found claims, or why it has none. `open` opens a whole disk by kernel name.
pub fn describe_others(others: &[OtherVerity], open: &dyn Fn(&str) -> io::Result<File>) -> String {
    if others.is_empty() {
        return "none".into();
    }
    let describe = |o: &OtherVerity| -> String {
        let device = PathBuf::from(format!("/dev/{}", o.disk));
        let disk = match open(&o.disk) {
            Ok(disk) => disk,
            Err(e) => return format!("unreadable ({e})"),
        };
        let offset = o.partition.offset(o.sector_size);
        let superblock = match verity::read_superblock(&disk, offset) {
            Ok(s) => s,
            Err(e) => return format!("no verity superblock ({e})"),
        };
        let data_offset = o.root.as_ref().map_or(0, |r| r.offset(o.sector_size));
        match top_hash(&disk, data_offset, offset, &superblock, &device) {
            Ok(hash) => format!("root hash {hash}"),
            Err(e) => e.to_string(),
        }
    };
    others
        .iter()
        .map(|o| {
            format!(
                "{} partition {} ({}, {}): {}",
                o.disk,
                o.partition.number,
                o.partition.label,
                o.partition.uuid,
                describe(o)
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discover::Partition;
    use crate::sys::DevNum;
    use berth_image::verity::{self as image_verity, VerityParams};

    /// A file with `blocks` data blocks at 0 and their hash device right after.
    fn image(blocks: u64, salt: &[u8]) -> (tempfile::NamedTempFile, FoundRoot, RootHash) {
        let file = tempfile::NamedTempFile::new().unwrap();
        let data_len = blocks * verity::BLOCK_SIZE;
        let data: Vec<u8> = (0..data_len).map(|i| (i * 7 % 256) as u8).collect();
        file.as_file().write_all_at(&data, 0).unwrap();
        let params = VerityParams {
            salt: salt.to_vec(),
            uuid: [7; 16],
        };
        let info = image_verity::format(
            file.as_file(),
            0,
            data_len,
            file.as_file(),
            data_len,
            &params,
            &|_| {},
        )
        .unwrap();
        let partition = |name: &str, minor, offset, size| Partition {
            name: name.into(),
            dev: DevNum { major: 8, minor },
            number: minor,
            label: name.to_uppercase(),
            offset,
            size,
        };
        let found = FoundRoot {
            disk: "sda".into(),
            root: partition("sda2", 2, 0, data_len),
            verity: partition("sda3", 3, data_len, info.hash_size),
        };
        (file, found, RootHash(info.root_hash))
    }

    #[test]
    fn single_block_and_empty_salt() {
        let (file, found, hash) = image(1, &[]);
        let root = check(file.as_file(), &found, &hash, VerityMode::Panic).unwrap();
        assert_eq!(
            root.target.to_string(),
            format!("0 8 verity 1 8:2 8:3 4096 4096 1 1 sha256 {hash} - 1 panic_on_corruption")
        );
        assert_eq!(
            root.dm_uuid,
            format!("CRYPT-VERITY-{}-root", "07".repeat(16))
        );
    }

    #[test]
    fn sizes_must_fit_the_partitions() {
        let (file, mut found, hash) = image(3, b"salt");
        found.root.size = 2 * verity::BLOCK_SIZE;
        let e = check(file.as_file(), &found, &hash, VerityMode::Panic).unwrap_err();
        assert!(
            matches!(e, VerityCheckError::DataTooLarge { data_blocks: 3, .. }),
            "{e}"
        );
        let (file, mut found, hash) = image(3, b"salt");
        found.verity.size = verity::BLOCK_SIZE;
        let e = check(file.as_file(), &found, &hash, VerityMode::Panic).unwrap_err();
        assert!(matches!(e, VerityCheckError::HashTooSmall { .. }), "{e}");
    }

    #[test]
    fn a_changed_data_block_of_a_one_block_root_is_caught() {
        let (file, found, hash) = image(1, b"s");
        file.as_file().write_all_at(b"x", 100).unwrap();
        let e = check(file.as_file(), &found, &hash, VerityMode::Panic).unwrap_err();
        assert!(
            e.to_string().starts_with(&format!(
                "root hash mismatch: roothash={hash}, but the only data block of /dev/sda2 (SDA2)"
            )),
            "{e}"
        );
    }
}
