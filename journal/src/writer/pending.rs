//! The writer's write-back buffer: objects appended since the last flush are kept in one
//! contiguous buffer (they always go at the end of the file), and 8-byte updates to
//! older objects (hash chain links, entry counts, entry array slots) in a hash map by
//! offset, since every line makes a dozen of them (one per field it shares with earlier
//! lines) and most overwrite the last (an entry count); a sorted map cost a quarter of the
//! writer's time. [`Writer::flush`] sorts the updates and writes the buffer with one
//! `pwrite`, the updates as runs of adjacent slots, then the header, so a batch of lines
//! costs a few system calls instead of tens per line, and the header never points at
//! objects not yet written.
//!
//! Every read the writer makes goes through [`Writer::get`], which sees the file with
//! the pending bytes laid over it.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use super::*;

/// Flush when this much is pending, whatever the caller does.
const FLUSH_BYTES: usize = 256 << 10;
const FLUSH_PATCHES: usize = 8192;
/// Zero-filled objects larger than this (big entry arrays, hash tables) are not
/// buffered: their zeros are a hole of the grown file.
const BUFFERED_ZEROS_MAX: u64 = 64 << 10;

#[derive(Debug, Default)]
pub(super) struct Pending {
    /// File offset of `buf[0]`.
    base: u64,
    buf: Vec<u8>,
    /// Offset (< `base`, a multiple of 8) → new little-endian u64 value.
    patches: HashMap<u64, u64, BuildHasherDefault<U64Hasher>>,
}

/// Hashes a `u64` key by one multiplication (Fibonacci hashing), for the writer's maps
/// keyed by numbers that are no text: file offsets here (8-aligned, following from the
/// sizes of what was logged, which a writer of lines cannot aim at collisions with any
/// effect beyond its own lines), and the cache's keyed hashes ([`super::link`]). SipHash
/// cost more than the maps themselves.
#[derive(Default)]
pub(super) struct U64Hasher(u64);

impl Hasher for U64Hasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

impl Pending {
    pub(super) fn starting_at(base: u64) -> Pending {
        Pending {
            base,
            ..Pending::default()
        }
    }

    pub(super) fn is_full(&self) -> bool {
        self.buf.len() >= FLUSH_BYTES || self.patches.len() >= FLUSH_PATCHES
    }
}

impl Writer {
    /// Appends the bytes of a new object at `offset`, the end of the file.
    pub(super) fn put_new(&mut self, offset: u64, bytes: &[u8]) -> Result<(), JournalError> {
        if offset != self.pending.base + self.pending.buf.len() as u64 {
            return Err(self
                .io
                .bad(offset, "any", "an object is appended away from the end"));
        }
        self.pending.buf.extend_from_slice(bytes);
        Ok(())
    }

    /// Appends a zero-filled object of `size` bytes whose header is `header`.
    pub(super) fn put_zeroed(
        &mut self,
        offset: u64,
        header: &[u8],
        size: u64,
    ) -> Result<(), JournalError> {
        if size <= BUFFERED_ZEROS_MAX {
            self.put_new(offset, header)?;
            let len = self.pending.buf.len() + (align8(size) as usize - header.len());
            self.pending.buf.resize(len, 0);
            return Ok(());
        }
        self.flush_objects()?;
        self.io.write(offset, header)?;
        self.pending.base = offset + align8(size);
        Ok(())
    }

    /// Sets the u64 at `offset`.
    pub(super) fn put_u64(&mut self, offset: u64, value: u64) -> Result<(), JournalError> {
        let p = &mut self.pending;
        if offset >= p.base {
            let at = (offset - p.base) as usize;
            match p.buf.get_mut(at..at + 8) {
                Some(slot) => slot.copy_from_slice(&value.to_le_bytes()),
                None => {
                    return Err(self
                        .io
                        .bad(offset, "any", "a write past the end of the file"))
                }
            }
        } else if offset.is_multiple_of(8) {
            p.patches.insert(offset, value);
        } else {
            return Err(self
                .io
                .bad(offset, "any", "an update away from an 8-byte slot"));
        }
        Ok(())
    }

    /// Reads up to `out.len()` bytes at `offset` as the file will be after the next
    /// flush; returns how many there are.
    pub(super) fn get(&self, offset: u64, out: &mut [u8]) -> Result<usize, JournalError> {
        let p = &self.pending;
        let end = offset.saturating_add(out.len() as u64);
        let mut got = 0;
        if offset < p.base {
            let file_end = end.min(p.base);
            let want = (file_end - offset) as usize;
            got = self.io.read_prefix(offset, &mut out[..want])?;
            let read_end = offset + got as u64;
            let mut at = offset - offset % 8;
            while !p.patches.is_empty() && at < read_end {
                if let Some(v) = p.patches.get(&at) {
                    for (k, b) in v.to_le_bytes().iter().enumerate() {
                        let pos = at + k as u64;
                        if pos >= offset && pos < read_end {
                            out[(pos - offset) as usize] = *b;
                        }
                    }
                }
                at += 8;
            }
            if got < want {
                return Ok(got);
            }
        }
        if end > p.base {
            let start = offset.max(p.base);
            let from = (start - p.base) as usize;
            let to = ((end - p.base) as usize).min(p.buf.len());
            if from < to {
                let dst = (start - offset) as usize;
                out[dst..dst + (to - from)].copy_from_slice(&p.buf[from..to]);
                got = dst + (to - from);
            }
        }
        Ok(got)
    }

    pub(super) fn get_u64(&self, offset: u64) -> Result<u64, JournalError> {
        let mut b = [0u8; 8];
        if self.get(offset, &mut b)? < 8 {
            return Err(JournalError::Truncated {
                path: self.io.path.clone(),
                offset,
                what: "any",
                file_size: self.end,
            });
        }
        Ok(u64::from_le_bytes(b))
    }

    /// Writes the pending objects and updates (not the header).
    fn flush_objects(&mut self) -> Result<(), JournalError> {
        let p = std::mem::take(&mut self.pending);
        let next_base = p.base + p.buf.len() as u64;
        if !p.buf.is_empty() {
            self.io.write(p.base, &p.buf)?;
        }
        let mut patches: Vec<(u64, u64)> = p.patches.into_iter().collect();
        patches.sort_unstable_by_key(|&(at, _)| at);
        let mut run: Vec<u8> = Vec::new();
        let mut run_start = 0;
        for (at, v) in patches {
            if !run.is_empty() && at != run_start + run.len() as u64 {
                self.io.write(run_start, &run)?;
                run.clear();
            }
            if run.is_empty() {
                run_start = at;
            }
            run.extend_from_slice(&v.to_le_bytes());
        }
        if !run.is_empty() {
            self.io.write(run_start, &run)?;
        }
        self.pending = Pending::starting_at(next_base);
        Ok(())
    }

    /// Writes everything appended so far and the header: readers of the file (a
    /// `journalctl` running alongside, a copy) see every entry appended before the call.
    /// Not a sync to disk: see [`Writer::sync`].
    pub fn flush(&mut self) -> Result<(), JournalError> {
        self.flush_objects()?;
        self.write_header()
    }
}
