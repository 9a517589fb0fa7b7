//! The hash tree: its geometry, and the parallel hashing of data blocks and of tree levels.

use std::fs::File;
use std::io;
use std::num::NonZeroUsize;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};
use std::thread;

use sha2::{Digest, Sha256};

use berth_layout::verity::{hash_device_size, level_blocks, DIGEST_SIZE, FANOUT};

use super::{VerityError, BLOCK_SIZE};

const BLOCK: usize = BLOCK_SIZE as usize;
/// Data blocks per positioned read (2 MiB): large reads, few syscalls, and a multiple of
/// [`FANOUT`] so that one read fills whole hash blocks.
const READ_BLOCKS: usize = 512;
/// Hash blocks hashed per work item when computing an upper level.
const LEVEL_PIECE_BLOCKS: usize = 256;

/// Where each level of the tree for a given number of data blocks lives.
pub(super) struct Geometry {
    data_blocks: u64,
    /// Blocks in each level, level 0 (hashes of the data blocks) first.
    level_blocks: Vec<u64>,
}

impl Geometry {
    pub(super) fn new(data_blocks: u64) -> Result<Self, VerityError> {
        // Callers have rejected 0 with a better error; it would have no level-0 hash.
        if data_blocks == 0 || data_blocks > u64::MAX / BLOCK_SIZE {
            return Err(VerityError::TooManyBlocks { data_blocks });
        }
        Ok(Geometry {
            data_blocks,
            level_blocks: level_blocks(data_blocks),
        })
    }

    pub(super) fn data_blocks(&self) -> u64 {
        self.data_blocks
    }

    pub(super) fn hash_size(&self) -> u64 {
        hash_device_size(self.data_blocks)
    }

    pub(super) fn levels(&self) -> usize {
        self.level_blocks.len()
    }

    /// Offset of `level` from the start of the hash device: after the superblock's block
    /// and the levels above it.
    pub(super) fn level_offset(&self, level: usize) -> u64 {
        let above: u64 = self.level_blocks[level + 1..].iter().sum();
        (1 + above) * BLOCK_SIZE
    }

    /// Number of hashes in `level`: one per block of the level below, or per data block.
    fn entries(&self, level: usize) -> u64 {
        match level {
            0 => self.data_blocks,
            _ => self.level_blocks[level - 1],
        }
    }
}

/// `sha256(salt || block)`, with the salt absorbed once.
pub(super) struct Hasher {
    salted: Sha256,
}

impl Hasher {
    pub(super) fn new(salt: &[u8]) -> Self {
        Hasher {
            salted: Sha256::new_with_prefix(salt),
        }
    }

    pub(super) fn hash(&self, block: &[u8]) -> [u8; DIGEST_SIZE] {
        let mut hasher = self.salted.clone();
        hasher.update(block);
        hasher.finalize().into()
    }
}

/// Reads the byte at `offset`, to fail early on a file too short.
pub(super) fn check_readable(file: &File, offset: u64) -> Result<(), (u64, io::Error)> {
    file.read_exact_at(&mut [0], offset)
        .map_err(|source| (offset, source))
}

/// Level 0: the hashes of all data blocks, zero-padded to whole hash blocks (one block for a
/// single data block, whose hash is then the root hash). Streams the data in parallel.
pub(super) fn hash_data(
    data: &File,
    data_offset: u64,
    geometry: &Geometry,
    hasher: &Hasher,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Vec<u8>, VerityError> {
    let data_blocks = geometry.data_blocks();
    let mut leaves = zeroed(data_blocks.div_ceil(FANOUT) * BLOCK_SIZE)?;
    let entries = to_usize(data_blocks * DIGEST_SIZE as u64)?;
    // Serializes the progress calls so that they come in increasing order.
    let done = Mutex::new(0u64);
    par_fill(
        &mut leaves[..entries],
        READ_BLOCKS * DIGEST_SIZE,
        READ_BLOCKS * BLOCK,
        |piece, hashes, buf| {
            let offset = data_offset + (piece * READ_BLOCKS * BLOCK) as u64;
            let buf = &mut buf[..hashes.len() / DIGEST_SIZE * BLOCK];
            data.read_exact_at(buf, offset)
                .map_err(|source| VerityError::ReadData { offset, source })?;
            for (block, hash) in buf
                .chunks_exact(BLOCK)
                .zip(hashes.chunks_exact_mut(DIGEST_SIZE))
            {
                hash.copy_from_slice(&hasher.hash(block));
            }
            let mut done = done.lock().unwrap_or_else(PoisonError::into_inner);
            *done += buf.len() as u64;
            progress(*done);
            Ok(())
        },
    )?;
    Ok(leaves)
}

/// All levels (level 0 first) from level 0, and the root hash.
pub(super) fn build_levels(
    leaves: Vec<u8>,
    geometry: &Geometry,
    hasher: &Hasher,
) -> Result<(Vec<Vec<u8>>, [u8; DIGEST_SIZE]), VerityError> {
    if geometry.levels() == 0 {
        return Ok((Vec::new(), single_root(&leaves)));
    }
    let mut levels = vec![leaves];
    while let Some(lower) = levels.last().filter(|l| l.len() > BLOCK) {
        let upper = hash_level(lower, hasher)?;
        levels.push(upper);
    }
    debug_assert_eq!(levels.len(), geometry.levels());
    let root = hasher.hash(&levels[levels.len() - 1]);
    Ok((levels, root))
}

/// With a single data block, its hash (the first entry of level 0) is the root hash.
pub(super) fn single_root(leaves: &[u8]) -> [u8; DIGEST_SIZE] {
    std::array::from_fn(|i| leaves[i])
}

/// The level above `lower`: the hash of each of its blocks, zero-padded to whole blocks.
fn hash_level(lower: &[u8], hasher: &Hasher) -> Result<Vec<u8>, VerityError> {
    let blocks = lower.len() / BLOCK;
    let mut upper = zeroed((blocks as u64).div_ceil(FANOUT) * BLOCK_SIZE)?;
    par_fill(
        &mut upper[..blocks * DIGEST_SIZE],
        LEVEL_PIECE_BLOCKS * DIGEST_SIZE,
        0,
        |piece, hashes, _| {
            let lower = &lower[piece * LEVEL_PIECE_BLOCKS * BLOCK..];
            for (block, hash) in lower
                .chunks_exact(BLOCK)
                .zip(hashes.chunks_exact_mut(DIGEST_SIZE))
            {
                hash.copy_from_slice(&hasher.hash(block));
            }
            Ok(())
        },
    )?;
    Ok(upper)
}

/// The stored levels of the hash device, level 0 first.
pub(super) fn read_levels(
    hash: &File,
    hash_offset: u64,
    geometry: &Geometry,
) -> Result<Vec<Vec<u8>>, VerityError> {
    (0..geometry.levels())
        .map(|level| {
            let mut bytes = zeroed(geometry.level_blocks[level] * BLOCK_SIZE)?;
            let offset = hash_offset + geometry.level_offset(level);
            hash.read_exact_at(&mut bytes, offset)
                .map_err(|source| VerityError::ReadHash { offset, source })?;
            Ok(bytes)
        })
        .collect()
}

/// Checks, from the top level down, that each level's padding is zero and that each of its
/// blocks hashes to the entry for it in the level above.
pub(super) fn check_levels(
    stored: &[Vec<u8>],
    hash_offset: u64,
    geometry: &Geometry,
    hasher: &Hasher,
) -> Result<(), VerityError> {
    for level in (0..stored.len()).rev() {
        let bytes = &stored[level];
        let block_offset =
            |block: usize| hash_offset + geometry.level_offset(level) + block as u64 * BLOCK_SIZE;
        let level_number = level as u32;
        let entries = geometry.entries(level) as usize * DIGEST_SIZE;
        if let Some(at) = bytes[entries..].iter().position(|&b| b != 0) {
            let block = (entries + at) / BLOCK;
            return Err(VerityError::HashPadding {
                level: level_number,
                block: block as u64,
                offset: block_offset(block),
            });
        }
        let Some(parent) = stored.get(level + 1) else {
            continue;
        };
        let blocks = bytes.chunks_exact(BLOCK);
        let expected = parent.chunks_exact(DIGEST_SIZE);
        if let Some(block) = blocks.zip(expected).position(|(b, e)| hasher.hash(b) != e) {
            return Err(VerityError::HashBlockMismatch {
                level: level_number,
                block: block as u64,
                offset: block_offset(block),
            });
        }
    }
    Ok(())
}

/// Fills `out` in pieces of `piece_len` bytes on all cores: `fill(index, piece, scratch)`,
/// each thread with its own `scratch_len`-byte scratch buffer. Stops at the first error.
fn par_fill<F>(
    out: &mut [u8],
    piece_len: usize,
    scratch_len: usize,
    fill: F,
) -> Result<(), VerityError>
where
    F: Fn(usize, &mut [u8], &mut [u8]) -> Result<(), VerityError> + Sync,
{
    let pieces = out.len().div_ceil(piece_len);
    let threads = thread::available_parallelism()
        .map_or(1, NonZeroUsize::get)
        .min(pieces);
    if threads <= 1 {
        let mut scratch = vec![0; scratch_len];
        for (index, piece) in out.chunks_mut(piece_len).enumerate() {
            fill(index, piece, &mut scratch)?;
        }
        return Ok(());
    }
    let work = Mutex::new(out.chunks_mut(piece_len).enumerate());
    let failed = AtomicBool::new(false);
    let worker = || -> Result<(), VerityError> {
        let mut scratch = vec![0; scratch_len];
        while !failed.load(Ordering::Relaxed) {
            let next = work.lock().unwrap_or_else(PoisonError::into_inner).next();
            let Some((index, piece)) = next else { break };
            if let Err(error) = fill(index, piece, &mut scratch) {
                failed.store(true, Ordering::Relaxed);
                return Err(error);
            }
        }
        Ok(())
    };
    thread::scope(|scope| {
        let handles: Vec<_> = (0..threads).map(|_| scope.spawn(worker)).collect();
        let mut result = Ok(());
        for handle in handles {
            match handle.join() {
                Ok(outcome) => result = result.and(outcome),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        result
    })
}

/// A zeroed buffer, or an error rather than an abort if memory runs out.
fn zeroed(bytes: u64) -> Result<Vec<u8>, VerityError> {
    let len = to_usize(bytes)?;
    let mut buffer = Vec::new();
    buffer
        .try_reserve_exact(len)
        .map_err(|_| VerityError::OutOfMemory { bytes })?;
    buffer.resize(len, 0);
    Ok(buffer)
}

fn to_usize(bytes: u64) -> Result<usize, VerityError> {
    usize::try_from(bytes).map_err(|_| VerityError::OutOfMemory { bytes })
}
