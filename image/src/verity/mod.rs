//! dm-verity: the superblock and hash tree of `veritysetup format`, written in Rust.
//!
//! Why not run `veritysetup`: the builder writes the tree straight into a partition of the
//! disk image (veritysetup only knows a hash offset, not a data offset), hashes on every core
//! (veritysetup uses one), and needs no cryptsetup on the build host. The output is
//! veritysetup's format byte for byte — format version 1, hash type 1, sha256, 4096-byte
//! data and hash blocks, superblock in block 0 of the hash device, tree from block 1 — so
//! `veritysetup verify`, the kernel and `systemd-dissect` accept it; the tests compare the
//! two tools' output.
//!
//! Levels are numbered as in cryptsetup: level 0 holds the hashes of the data blocks and is
//! stored last; level `l + 1` holds the hashes of level `l`'s blocks; the top level is a
//! single block, stored first, and the root hash is the hash of that block. Every hash is
//! `sha256(salt || block)`. With a single data block there is no tree at all: the root hash
//! is the hash of the data block and the hash device is the superblock alone.

mod tree;

#[cfg(test)]
mod tests;

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

pub use berth_layout::verity::{
    hash_device_size, read_superblock, Superblock, SuperblockError, BLOCK_SIZE, MAX_SALT_SIZE,
};
use berth_layout::verity::{ALGORITHM, DIGEST_SIZE, SUPERBLOCK_SIZE};
use tree::{Geometry, Hasher};

/// What the caller chooses for a new hash device; derived from the build, for reproducibility.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerityParams {
    /// At most [`MAX_SALT_SIZE`] bytes; may be empty.
    pub salt: Vec<u8>,
    /// Recorded in the superblock.
    pub uuid: [u8; 16],
}

/// What [`format`] wrote, or what [`verify`] checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerityInfo {
    /// `sha256(salt || top tree block)`: the one value to trust.
    pub root_hash: [u8; 32],
    pub salt: Vec<u8>,
    pub uuid: [u8; 16],
    /// Number of [`BLOCK_SIZE`] data blocks covered.
    pub data_blocks: u64,
    /// Bytes of the hash device: superblock block + tree.
    pub hash_size: u64,
}

/// Everything that can go wrong; offsets are absolute offsets in the file concerned.
#[derive(Debug, thiserror::Error)]
pub enum VerityError {
    #[error("data length {len} is not a positive multiple of {BLOCK_SIZE} bytes")]
    DataLength { len: u64 },
    #[error("salt is {len} bytes; at most {MAX_SALT_SIZE} fit in a verity superblock")]
    SaltTooLong { len: usize },
    #[error("{len} bytes at offset {offset} run past the largest file offset")]
    RangeOverflow { offset: u64, len: u64 },
    #[error("{data_blocks} data blocks are more than a verity tree can address")]
    TooManyBlocks { data_blocks: u64 },
    #[error("cannot allocate {bytes} bytes for a hash tree level")]
    OutOfMemory { bytes: u64 },
    #[error("cannot read data at offset {offset}")]
    ReadData {
        offset: u64,
        #[source]
        source: io::Error,
    },
    #[error("cannot read the hash tree at offset {offset}")]
    ReadHash {
        offset: u64,
        #[source]
        source: io::Error,
    },
    #[error("cannot write the hash device at offset {offset}")]
    WriteHash {
        offset: u64,
        #[source]
        source: io::Error,
    },
    #[error(transparent)]
    Superblock(#[from] SuperblockError),
    #[error("data block {block} (at offset {offset}) does not match its hash")]
    DataBlockMismatch { block: u64, offset: u64 },
    #[error("hash block {block} at level {level} (at offset {offset}) does not match its hash")]
    HashBlockMismatch { level: u32, block: u64, offset: u64 },
    #[error("hash block {block} at level {level} (at offset {offset}) has non-zero padding")]
    HashPadding { level: u32, block: u64, offset: u64 },
}

/// Hashes `data_len` bytes (a positive multiple of [`BLOCK_SIZE`]) of `data` from
/// `data_offset`, and writes the superblock and tree into `hash` at `hash_offset`
/// ([`hash_device_size`] bytes; the file grows if needed).
///
/// Reads are positioned and chunked, spread over all cores; only the tree is held in memory
/// (1/128 of the data). `progress` gets the number of data bytes hashed so far, now and then,
/// from any thread, in increasing order.
pub fn format(
    data: &File,
    data_offset: u64,
    data_len: u64,
    hash: &File,
    hash_offset: u64,
    params: &VerityParams,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<VerityInfo, VerityError> {
    if data_len == 0 || !data_len.is_multiple_of(BLOCK_SIZE) {
        return Err(VerityError::DataLength { len: data_len });
    }
    if params.salt.len() > MAX_SALT_SIZE {
        return Err(VerityError::SaltTooLong {
            len: params.salt.len(),
        });
    }
    let geometry = Geometry::new(data_len / BLOCK_SIZE)?;
    end_of(data_offset, data_len)?;
    end_of(hash_offset, geometry.hash_size())?;
    // Fail on short data before allocating the tree.
    tree::check_readable(data, data_offset + data_len - 1)
        .map_err(|(offset, source)| VerityError::ReadData { offset, source })?;

    let hasher = Hasher::new(&params.salt);
    let leaves = tree::hash_data(data, data_offset, &geometry, &hasher, progress)?;
    let (levels, root_hash) = tree::build_levels(leaves, &geometry, &hasher)?;

    let superblock = Superblock {
        uuid: params.uuid,
        data_blocks: geometry.data_blocks(),
        salt: params.salt.clone(),
        algorithm: ALGORITHM.to_owned(),
        data_block_size: BLOCK_SIZE as u32,
        hash_block_size: BLOCK_SIZE as u32,
    };
    let mut block0 = vec![0; BLOCK_SIZE as usize];
    block0[..SUPERBLOCK_SIZE].copy_from_slice(&superblock.to_bytes());
    write_at(hash, &block0, hash_offset)?;
    for (level, bytes) in levels.iter().enumerate() {
        write_at(hash, bytes, hash_offset + geometry.level_offset(level))?;
    }

    Ok(VerityInfo {
        root_hash,
        salt: params.salt.clone(),
        uuid: params.uuid,
        data_blocks: geometry.data_blocks(),
        hash_size: geometry.hash_size(),
    })
}

/// Full verification of a hash device against its data; returns what it describes,
/// including the root hash, which the caller must compare with the one it trusts (nothing
/// here can tell a forged top block from a genuine one).
///
/// Checks, in this order, and reports the first mismatch: every stored hash block against
/// the entry for it one level up, from the top level down (and that padding after the last
/// entry of each level is zero, as veritysetup does); then every data block against its
/// stored hash. A corrupt hash block is therefore reported as itself, not as the data
/// blocks below it. Holds the stored tree and the recomputed level 0 in memory (1/64 of
/// the data).
pub fn verify(
    data: &File,
    data_offset: u64,
    hash: &File,
    hash_offset: u64,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<VerityInfo, VerityError> {
    let superblock = read_superblock(hash, hash_offset)?;
    let geometry = Geometry::new(superblock.data_blocks)?;
    let data_len = geometry.data_blocks() * BLOCK_SIZE;
    end_of(data_offset, data_len)?;
    end_of(hash_offset, geometry.hash_size())?;
    // Fail on short files before allocating anything the superblock asks for.
    tree::check_readable(hash, hash_offset + geometry.hash_size() - 1)
        .map_err(|(offset, source)| VerityError::ReadHash { offset, source })?;
    tree::check_readable(data, data_offset + data_len - 1)
        .map_err(|(offset, source)| VerityError::ReadData { offset, source })?;

    let hasher = Hasher::new(&superblock.salt);
    let stored = tree::read_levels(hash, hash_offset, &geometry)?;
    tree::check_levels(&stored, hash_offset, &geometry, &hasher)?;

    let leaves = tree::hash_data(data, data_offset, &geometry, &hasher, progress)?;
    let root_hash = match stored.last() {
        None => tree::single_root(&leaves),
        Some(top) => {
            let entries = geometry.data_blocks() as usize * DIGEST_SIZE;
            let computed = leaves[..entries].chunks_exact(DIGEST_SIZE);
            let expected = stored[0][..entries].chunks_exact(DIGEST_SIZE);
            if let Some(block) = computed.zip(expected).position(|(c, e)| c != e) {
                return Err(VerityError::DataBlockMismatch {
                    block: block as u64,
                    offset: data_offset + block as u64 * BLOCK_SIZE,
                });
            }
            hasher.hash(top)
        }
    };

    Ok(VerityInfo {
        root_hash,
        salt: superblock.salt,
        uuid: superblock.uuid,
        data_blocks: geometry.data_blocks(),
        hash_size: geometry.hash_size(),
    })
}

/// `offset + len`, or an error if that is past the largest offset a file can have.
fn end_of(offset: u64, len: u64) -> Result<u64, VerityError> {
    offset
        .checked_add(len)
        .filter(|end| i64::try_from(*end).is_ok())
        .ok_or(VerityError::RangeOverflow { offset, len })
}

fn write_at(hash: &File, bytes: &[u8], offset: u64) -> Result<(), VerityError> {
    hash.write_all_at(bytes, offset)
        .map_err(|source| VerityError::WriteHash { offset, source })
}
