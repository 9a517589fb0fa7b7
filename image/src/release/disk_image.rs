//! A built disk as the artifact writers read it: the raw file, or a view of it grown to a
//! larger size (zeros appended, GPT moved to the new end) without writing a grown copy.
//!
//! Writers read it in chunks and skip all-zero ones: a Berth disk is mostly empty slots
//! and STATE, so the sparse formats (tar, VHD on a sparse file system, qcow2) stay small
//! and the copies fast.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::gpt_move::{self, Patch};
use super::ReleaseError;

/// Chunk size of the streaming readers.
pub const CHUNK: usize = 1 << 20;

/// A byte range of the disk that holds data (the rest reads as zeros).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Region {
    pub offset: u64,
    pub len: u64,
}

impl Region {
    pub fn end(&self) -> u64 {
        self.offset + self.len
    }
}

/// A disk to export.
pub struct DiskImage {
    file: File,
    path: PathBuf,
    file_len: u64,
    size: u64,
    patches: Vec<Patch>,
}

impl DiskImage {
    pub fn open(path: &Path) -> Result<DiskImage, ReleaseError> {
        let file = File::open(path).map_err(ReleaseError::io("open", path))?;
        let file_len = file
            .metadata()
            .map_err(ReleaseError::io("read the size of", path))?
            .len();
        if file_len == 0 || file_len % gpt_move::SECTOR != 0 {
            return Err(ReleaseError::BadDisk {
                path: path.to_path_buf(),
                reason: format!("is {file_len} bytes, not a positive number of 512-byte sectors"),
            });
        }
        Ok(DiskImage {
            file,
            path: path.to_path_buf(),
            file_len,
            size: file_len,
            patches: Vec::new(),
        })
    }

    /// The same disk rounded up to a multiple of `unit` bytes: zeros appended and the
    /// backup GPT moved to the new end. Unchanged if already a multiple.
    pub fn rounded_up(self, unit: u64) -> Result<DiskImage, ReleaseError> {
        let size = self.file_len.div_ceil(unit) * unit;
        if size == self.file_len {
            return Ok(self);
        }
        let read = |buf: &mut [u8], offset: u64| {
            self.file
                .read_exact_at(buf, offset)
                .map_err(|e| format!("cannot read at {offset}: {e}"))
        };
        let patches = gpt_move::relocate(&read, self.file_len, size).map_err(|reason| {
            ReleaseError::BadDisk {
                path: self.path.clone(),
                reason: format!("cannot grow it to {size} bytes: {reason}"),
            }
        })?;
        Ok(DiskImage {
            size,
            patches,
            ..self
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Size of the disk as exported (after any growing).
    pub fn size(&self) -> u64 {
        self.size
    }

    /// True when the view differs from the file (grown, GPT moved).
    pub fn is_grown(&self) -> bool {
        self.size != self.file_len
    }

    /// Fills `buf` with the disk's bytes at `offset`.
    pub fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<(), ReleaseError> {
        let end = offset + buf.len() as u64;
        if end > self.size {
            return Err(ReleaseError::BadDisk {
                path: self.path.clone(),
                reason: format!("read of {} bytes at {offset} past the end", buf.len()),
            });
        }
        let in_file = self.file_len.saturating_sub(offset).min(buf.len() as u64) as usize;
        self.file
            .read_exact_at(&mut buf[..in_file], offset)
            .map_err(ReleaseError::io("read", &self.path))?;
        buf[in_file..].fill(0);
        for patch in &self.patches {
            let p_end = patch.offset + patch.bytes.len() as u64;
            let from = patch.offset.max(offset);
            let to = p_end.min(end);
            if from < to {
                let dst = (from - offset) as usize..(to - offset) as usize;
                let src = (from - patch.offset) as usize..(to - patch.offset) as usize;
                buf[dst].copy_from_slice(&patch.bytes[src]);
            }
        }
        Ok(())
    }

    /// Calls `f(offset, bytes)` for consecutive chunks of at most [`CHUNK`] bytes covering
    /// the whole disk, then `progress` with the bytes done.
    pub fn for_each_chunk<E: From<ReleaseError>>(
        &self,
        progress: &dyn Fn(u64),
        mut f: impl FnMut(u64, &[u8]) -> Result<(), E>,
    ) -> Result<(), E> {
        let mut buf = vec![0u8; CHUNK];
        let mut offset = 0;
        while offset < self.size {
            let n = (self.size - offset).min(CHUNK as u64) as usize;
            self.read_at(&mut buf[..n], offset)?;
            f(offset, &buf[..n])?;
            offset += n as u64;
            progress(offset);
        }
        Ok(())
    }

    /// The regions holding data, at `block`-byte granularity (a power of two dividing
    /// [`CHUNK`]): each maximal run of blocks not all zero, in order.
    pub fn data_regions(
        &self,
        block: usize,
        progress: &dyn Fn(u64),
    ) -> Result<Vec<Region>, ReleaseError> {
        let mut regions: Vec<Region> = Vec::new();
        self.for_each_chunk(progress, |offset, bytes| {
            for (i, piece) in bytes.chunks(block).enumerate() {
                if is_zero(piece) {
                    continue;
                }
                let at = offset + (i * block) as u64;
                match regions.last_mut() {
                    Some(last) if last.end() == at => last.len += piece.len() as u64,
                    _ => regions.push(Region {
                        offset: at,
                        len: piece.len() as u64,
                    }),
                }
            }
            Ok::<(), ReleaseError>(())
        })?;
        Ok(regions)
    }
}

/// True when every byte is zero (16 bytes at a time).
pub fn is_zero(buf: &[u8]) -> bool {
    let mut words = buf.chunks_exact(16);
    let wide = words.by_ref().all(|w| {
        let mut b = [0u8; 16];
        b.copy_from_slice(w);
        u128::from_ne_bytes(b) == 0
    });
    wide && words.remainder().iter().all(|b| *b == 0)
}
