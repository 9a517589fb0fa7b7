//! The 512-byte verity superblock (cryptsetup's `struct verity_sb`), little endian:
//! signature, version, hash type, uuid, algorithm, block sizes, data block count, salt.

use super::{VerityError, BLOCK_SIZE, MAX_SALT_SIZE};

/// Bytes of the superblock proper; the rest of block 0 of the hash device is zero.
pub(super) const SIZE: usize = 512;
/// The only hash algorithm supported.
pub(super) const ALGORITHM: &str = "sha256";

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
// 168 bytes of padding after the salt, up to SIZE.

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
    /// Serializes the superblock. The caller has checked the salt and algorithm lengths.
    pub(super) fn to_bytes(&self) -> [u8; SIZE] {
        let mut b = [0; SIZE];
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
    pub(super) fn parse(b: &[u8; SIZE], offset: u64) -> Result<Self, VerityError> {
        let u16_at = |at| u16::from_le_bytes(array(b, at));
        let u32_at = |at| u32::from_le_bytes(array(b, at));
        let u64_at = |at| u64::from_le_bytes(array(b, at));

        if &b[..8] != SIGNATURE {
            return Err(VerityError::BadSignature { offset });
        }
        let version = u32_at(VERSION_AT);
        if version != VERSION {
            return Err(VerityError::UnsupportedVersion { offset, version });
        }
        let hash_type = u32_at(HASH_TYPE_AT);
        if hash_type != HASH_TYPE {
            return Err(VerityError::UnsupportedHashType { offset, hash_type });
        }
        let field = &b[ALGORITHM_AT..][..ALGORITHM_LEN];
        let name = &field[..field.iter().position(|&c| c == 0).unwrap_or(ALGORITHM_LEN)];
        if name != ALGORITHM.as_bytes() {
            return Err(VerityError::UnsupportedAlgorithm {
                offset,
                algorithm: String::from_utf8_lossy(name).into_owned(),
            });
        }
        let data_block_size = u32_at(DATA_BLOCK_SIZE_AT);
        let hash_block_size = u32_at(HASH_BLOCK_SIZE_AT);
        if u64::from(data_block_size) != BLOCK_SIZE || u64::from(hash_block_size) != BLOCK_SIZE {
            return Err(VerityError::UnsupportedBlockSize {
                offset,
                data_block_size,
                hash_block_size,
            });
        }
        let data_blocks = u64_at(DATA_BLOCKS_AT);
        if data_blocks == 0 {
            return Err(VerityError::NoDataBlocks { offset });
        }
        let salt_size = u16_at(SALT_SIZE_AT);
        if usize::from(salt_size) > MAX_SALT_SIZE {
            return Err(VerityError::SuperblockSaltTooLong { offset, salt_size });
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
fn array<const N: usize>(b: &[u8; SIZE], at: usize) -> [u8; N] {
    std::array::from_fn(|i| b[at + i])
}
