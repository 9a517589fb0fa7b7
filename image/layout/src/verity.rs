//! The dm-verity on-disk contract: the 512-byte superblock (cryptsetup's `struct
//! verity_sb`, little endian: signature, version, hash type, uuid, algorithm, block sizes,
//! data block count, salt) in block 0 of the hash device, and the geometry of the hash
//! tree after it. The builder (`berth_image::verity`) writes both; stage 1 reads the
//! superblock and the top hash block to check `roothash=` before it creates the device.
//!
//! The format is `veritysetup format`'s: version 1, hash type 1, sha256, 4096-byte data and
//! hash blocks, the tree from block 1 with its top level first.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

/// Size of the data blocks and of the hash blocks, and of the superblock's block.
pub const BLOCK_SIZE: u64 = 4096;
/// Longest salt the superblock can hold.
pub const MAX_SALT_SIZE: usize = 256;
/// Bytes of a sha256 digest: one entry of a hash block.
pub const DIGEST_SIZE: usize = 32;
/// Hashes per hash block.
pub const FANOUT: u64 = BLOCK_SIZE / DIGEST_SIZE as u64;
/// Bytes of the superblock proper; the rest of block 0 of the hash device is zero.
pub const SUPERBLOCK_SIZE: usize = 512;
/// The only hash algorithm supported.
pub const ALGORITHM: &str = "sha256";

/// A superblock that cannot be read or is not one Berth writes; offsets are absolute
/// offsets in the file read.
#[derive(Debug, thiserror::Error)]
pub enum SuperblockError {
    #[error("cannot read the verity superblock at offset {offset}")]
    Read {
        offset: u64,
        #[source]
        source: io::Error,
    },
    #[error("no verity superblock at offset {offset}: bad signature")]
    BadSignature { offset: u64 },
    #[error("verity superblock at offset {offset}: unsupported format version {version} (only 1)")]
    UnsupportedVersion { offset: u64, version: u32 },
    #[error("verity superblock at offset {offset}: unsupported hash type {hash_type} (only 1)")]
    UnsupportedHashType { offset: u64, hash_type: u32 },
    #[error("verity superblock at offset {offset}: unsupported hash algorithm {algorithm:?} (only sha256)")]
    UnsupportedAlgorithm { offset: u64, algorithm: String },
    #[error(
        "verity superblock at offset {offset}: unsupported block sizes \
         {data_block_size} (data) / {hash_block_size} (hash); only {BLOCK_SIZE}"
    )]
    UnsupportedBlockSize {
        offset: u64,
        data_block_size: u32,
        hash_block_size: u32,
    },
    #[error("verity superblock at offset {offset}: salt size {salt_size} exceeds {MAX_SALT_SIZE}")]
    SaltTooLong { offset: u64, salt_size: u16 },
    #[error("verity superblock at offset {offset}: no data blocks")]
    NoDataBlocks { offset: u64 },
}

/// Blocks in each level of the tree for `data_blocks`, level 0 (the hashes of the data
/// blocks) first, up to the single top block; none for a single data block. Same as
/// cryptsetup's `hash_levels`.
pub fn level_blocks(data_blocks: u64) -> Vec<u64> {
    let mut levels = Vec::new();
    let mut count = data_blocks;
    while count > 1 {
        count = count.div_ceil(FANOUT);
        levels.push(count);
    }
    levels
}

/// Size in bytes of the hash device (superblock block + tree) for `data_blocks` data
/// blocks. Saturates at `u64::MAX` for block counts no device has.
pub fn hash_device_size(data_blocks: u64) -> u64 {
    // The levels add up to less than data_blocks / 127 + 64: no overflow.
    let tree_blocks: u64 = level_blocks(data_blocks).iter().sum();
    (1 + tree_blocks).saturating_mul(BLOCK_SIZE)
}

/// Offset of the top hash block from the start of the hash device: right after the
/// superblock's block, since the top level is stored first.
pub const TOP_HASH_BLOCK_OFFSET: u64 = BLOCK_SIZE;

/// Parses and validates the superblock at `offset` of `hash`.
pub fn read_superblock(hash: &File, offset: u64) -> Result<Superblock, SuperblockError> {
    let mut bytes = [0; SUPERBLOCK_SIZE];
    hash.read_exact_at(&mut bytes, offset)
        .map_err(|source| SuperblockError::Read { offset, source })?;
    Superblock::parse(&bytes, offset)
}

const SIGNATURE: &[u8; 8] = b"verity\0\0";
const VERSION: u32 = 1;
/// Hash type 1: `hash(salt || block)`, zero-padded hash blocks (0 is the Chrome OS format).
const HASH_TYPE: u32 = 1;

// Field offsets.
const VERSION_AT: usize = 8;
const HASH_TYPE_AT: usize = 12;
const UUID_AT: usize = 16;
const ALGORITHM_AT: usize = 32;
const ALGORITHM_LEN: usize = 32;
const DATA_BLOCK_SIZE_AT: usize = 64;
const HASH_BLOCK_SIZE_AT: usize = 68;
const DATA_BLOCKS_AT: usize = 72;
const SALT_SIZE_AT: usize = 80;
// 6 bytes of padding.
const SALT_AT: usize = 88;
// 168 bytes of padding after the salt, up to SUPERBLOCK_SIZE.

/// A parsed, validated verity superblock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Superblock {
    pub uuid: [u8; 16],
    pub data_blocks: u64,
    pub salt: Vec<u8>,
    /// Always `"sha256"` once validated.
    pub algorithm: String,
    /// Always [`BLOCK_SIZE`] once validated.
    pub data_block_size: u32,
    /// Always [`BLOCK_SIZE`] once validated.
    pub hash_block_size: u32,
}

impl Superblock {
    /// Serializes the superblock; a salt longer than [`MAX_SALT_SIZE`] is cut (the writer
    /// refuses one before it gets here).
    pub fn to_bytes(&self) -> [u8; SUPERBLOCK_SIZE] {
        let mut b = [0; SUPERBLOCK_SIZE];
        b[..8].copy_from_slice(SIGNATURE);
        b[VERSION_AT..][..4].copy_from_slice(&VERSION.to_le_bytes());
        b[HASH_TYPE_AT..][..4].copy_from_slice(&HASH_TYPE.to_le_bytes());
        b[UUID_AT..][..16].copy_from_slice(&self.uuid);
        let algorithm = self.algorithm.as_bytes();
        let algorithm = &algorithm[..algorithm.len().min(ALGORITHM_LEN - 1)];
        b[ALGORITHM_AT..][..algorithm.len()].copy_from_slice(algorithm);
        b[DATA_BLOCK_SIZE_AT..][..4].copy_from_slice(&self.data_block_size.to_le_bytes());
        b[HASH_BLOCK_SIZE_AT..][..4].copy_from_slice(&self.hash_block_size.to_le_bytes());
        b[DATA_BLOCKS_AT..][..8].copy_from_slice(&self.data_blocks.to_le_bytes());
        let salt = &self.salt[..self.salt.len().min(MAX_SALT_SIZE)];
        b[SALT_SIZE_AT..][..2].copy_from_slice(&(salt.len() as u16).to_le_bytes());
        b[SALT_AT..][..salt.len()].copy_from_slice(salt);
        b
    }

    /// Parses and validates; `offset` (where it was read) is for error messages only.
    pub fn parse(b: &[u8; SUPERBLOCK_SIZE], offset: u64) -> Result<Self, SuperblockError> {
        let u16_at = |at| u16::from_le_bytes(array(b, at));
        let u32_at = |at| u32::from_le_bytes(array(b, at));
        let u64_at = |at| u64::from_le_bytes(array(b, at));

        if &b[..8] != SIGNATURE {
            return Err(SuperblockError::BadSignature { offset });
        }
        let version = u32_at(VERSION_AT);
        if version != VERSION {
            return Err(SuperblockError::UnsupportedVersion { offset, version });
        }
        let hash_type = u32_at(HASH_TYPE_AT);
        if hash_type != HASH_TYPE {
            return Err(SuperblockError::UnsupportedHashType { offset, hash_type });
        }
        let field = &b[ALGORITHM_AT..][..ALGORITHM_LEN];
        let name = &field[..field.iter().position(|&c| c == 0).unwrap_or(ALGORITHM_LEN)];
        if name != ALGORITHM.as_bytes() {
            return Err(SuperblockError::UnsupportedAlgorithm {
                offset,
                algorithm: String::from_utf8_lossy(name).into_owned(),
            });
        }
        let data_block_size = u32_at(DATA_BLOCK_SIZE_AT);
        let hash_block_size = u32_at(HASH_BLOCK_SIZE_AT);
        if u64::from(data_block_size) != BLOCK_SIZE || u64::from(hash_block_size) != BLOCK_SIZE {
            return Err(SuperblockError::UnsupportedBlockSize {
                offset,
                data_block_size,
                hash_block_size,
            });
        }
        let data_blocks = u64_at(DATA_BLOCKS_AT);
        if data_blocks == 0 {
            return Err(SuperblockError::NoDataBlocks { offset });
        }
        let salt_size = u16_at(SALT_SIZE_AT);
        if usize::from(salt_size) > MAX_SALT_SIZE {
            return Err(SuperblockError::SaltTooLong { offset, salt_size });
        }
        Ok(Superblock {
            uuid: array(b, UUID_AT),
            data_blocks,
            salt: b[SALT_AT..][..usize::from(salt_size)].to_vec(),
            algorithm: ALGORITHM.to_owned(),
            data_block_size,
            hash_block_size,
        })
    }
}

/// The `N` bytes of `b` from `at`.
fn array<const N: usize>(b: &[u8; SUPERBLOCK_SIZE], at: usize) -> [u8; N] {
    std::array::from_fn(|i| b[at + i])
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const UUID: [u8; 16] = *b"\x2b\x1f\x6e\x0a\x93\x44\x4c\x51\x8d\x02\x7e\x55\xc4\x10\xa9\xee";

    #[test]
    fn hash_device_size_matches_geometry() {
        assert_eq!(hash_device_size(1), BLOCK_SIZE);
        assert_eq!(hash_device_size(128), 2 * BLOCK_SIZE);
        assert_eq!(hash_device_size(129), 4 * BLOCK_SIZE);
        assert_eq!(
            hash_device_size(128 * 128 + 1),
            (1 + 1 + 2 + 129) * BLOCK_SIZE
        );
        // 1 GiB: 2048 + 16 + 1 tree blocks.
        assert_eq!(hash_device_size(1 << 18), (1 + 2048 + 16 + 1) * BLOCK_SIZE);
        assert_eq!(hash_device_size(u64::MAX), u64::MAX);
    }

    /// A valid superblock for 129 data blocks, for the corruption tests.
    fn valid_superblock() -> [u8; SUPERBLOCK_SIZE] {
        Superblock {
            uuid: UUID,
            data_blocks: 129,
            salt: (0u8..32).map(|i| i.wrapping_mul(37) ^ 0x5a).collect(),
            algorithm: "sha256".into(),
            data_block_size: 4096,
            hash_block_size: 4096,
        }
        .to_bytes()
    }

    fn parse(bytes: &[u8; SUPERBLOCK_SIZE]) -> Result<Superblock, SuperblockError> {
        Superblock::parse(bytes, 0)
    }

    #[test]
    fn layout_of_the_fields() {
        let b = valid_superblock();
        assert_eq!(&b[..8], b"verity\0\0");
        assert_eq!(b[8..16], [1, 0, 0, 0, 1, 0, 0, 0]);
        assert_eq!(b[16..32], UUID);
        assert_eq!(&b[32..40], b"sha256\0\0");
        assert_eq!(b[64..72], [0, 0x10, 0, 0, 0, 0x10, 0, 0]);
        assert_eq!(b[72..80], [0x81, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(b[80..82], [0x20, 0]);
        assert_eq!(b[88], 0x5a);
        assert!(b[88 + 32..].iter().all(|&x| x == 0));
    }

    #[test]
    fn bad_superblocks_are_errors() {
        let good = valid_superblock();
        assert_eq!(parse(&good).expect("valid").data_blocks, 129);
        let with = |at: usize, bytes: &[u8]| {
            let mut sb = good;
            sb[at..at + bytes.len()].copy_from_slice(bytes);
            parse(&sb)
        };
        assert!(matches!(
            with(0, b"Verity"),
            Err(SuperblockError::BadSignature { .. })
        ));
        assert!(matches!(
            with(8, &2u32.to_le_bytes()),
            Err(SuperblockError::UnsupportedVersion { version: 2, .. })
        ));
        assert!(matches!(
            with(12, &0u32.to_le_bytes()),
            Err(SuperblockError::UnsupportedHashType { hash_type: 0, .. })
        ));
        match with(32, b"sha1\0") {
            Err(SuperblockError::UnsupportedAlgorithm { algorithm, .. }) => {
                assert_eq!(algorithm, "sha1")
            }
            other => panic!("{other:?}"),
        }
        // An algorithm name filling the field, without a NUL.
        assert!(matches!(
            with(32, &[b'a'; 32]),
            Err(SuperblockError::UnsupportedAlgorithm { .. })
        ));
        assert!(matches!(
            with(64, &512u32.to_le_bytes()),
            Err(SuperblockError::UnsupportedBlockSize {
                data_block_size: 512,
                ..
            })
        ));
        assert!(matches!(
            with(68, &8192u32.to_le_bytes()),
            Err(SuperblockError::UnsupportedBlockSize {
                hash_block_size: 8192,
                ..
            })
        ));
        assert!(matches!(
            with(72, &[0; 8]),
            Err(SuperblockError::NoDataBlocks { .. })
        ));
        assert!(matches!(
            with(80, &257u16.to_le_bytes()),
            Err(SuperblockError::SaltTooLong { salt_size: 257, .. })
        ));
        // Every single-bit corruption is either harmless or an error, never a panic.
        for bit in 0..SUPERBLOCK_SIZE * 8 {
            let mut sb = good;
            sb[bit / 8] ^= 1 << (bit % 8);
            let _ = parse(&sb);
        }
    }

    #[test]
    fn short_files_are_read_errors() {
        let file = tempfile::tempfile().expect("tempfile");
        file.write_all_at(&valid_superblock()[..100], 0)
            .expect("write");
        assert!(matches!(
            read_superblock(&file, 0),
            Err(SuperblockError::Read { offset: 0, .. })
        ));
        file.write_all_at(&valid_superblock(), 4096).expect("write");
        assert_eq!(read_superblock(&file, 4096).expect("read").data_blocks, 129);
    }

    proptest! {
        #[test]
        fn arbitrary_superblocks_do_not_panic(
            tail in proptest::collection::vec(any::<u8>(), SUPERBLOCK_SIZE - 8),
            header_ok in any::<bool>(),
        ) {
            let mut sb = [0; SUPERBLOCK_SIZE];
            sb[8..].copy_from_slice(&tail);
            sb[..8].copy_from_slice(b"verity\0\0");
            if header_ok {
                // Get past the early checks, so that the later fields are exercised.
                sb[8..16].copy_from_slice(&[1, 0, 0, 0, 1, 0, 0, 0]);
                sb[32..40].copy_from_slice(b"sha256\0\0");
                sb[64..72].copy_from_slice(&[0, 16, 0, 0, 0, 16, 0, 0]);
            }
            if let Ok(parsed) = parse(&sb) {
                prop_assert!(parsed.salt.len() <= MAX_SALT_SIZE);
                prop_assert!(parsed.data_blocks > 0);
            }
        }
    }
}
