//! A file's entries as an iterator that owns its [`Reader`], oldest first or newest first,
//! all of them or those the field index lists: what a caller merging several files
//! one entry at a time needs (`journalctl`, `journalctl -r`, `-n N`), without holding the
//! entries.
//!
//! Newest first walks the chain of entry arrays once to learn where each array is (a few
//! bytes per array, not per entry), then reads items backwards in chunks. Damage that ends
//! a forward walk (a cut tail) is skipped over backwards: a damaged entry is an error
//! item and the walk goes on to the one before it; a broken array chain ends the walk
//! at the last array that could be reached.

use crate::error::JournalError;
use crate::format::*;
use crate::reader::{Entry, Position, Reader};

/// Entry array items read per `pread` going backwards.
const BACK_CHUNK: u64 = 512;

/// Which way a [`FileEntries`] goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Oldest first, file order.
    Forward,
    /// Newest first.
    Backward,
}

#[derive(Debug)]
enum Walk {
    Forward(Position),
    Backward(Backward),
    /// Entry offsets from the index, ascending; taken from the front or the back.
    Offsets {
        offsets: Vec<u64>,
        front: usize,
        back: usize,
    },
}

/// An owning iterator over one file's entries; see [`Reader::into_entries`].
#[derive(Debug)]
pub struct FileEntries {
    reader: Reader,
    walk: Walk,
    direction: Direction,
    headers_only: bool,
}

impl Reader {
    /// Every entry of the file in `direction`, the reader moved in.
    pub fn into_entries(self, direction: Direction, headers_only: bool) -> FileEntries {
        let walk = match direction {
            Direction::Forward => Walk::Forward(Position::new(&self, headers_only)),
            Direction::Backward => Walk::Backward(Backward::new(&self)),
        };
        FileEntries {
            reader: self,
            walk,
            direction,
            headers_only,
        }
    }

    /// Offsets of the entries holding at least one of the `(FIELD, value)` pairs of `any`
    /// (an OR over fields too, unlike [`Reader::matching_offsets`]), ascending, through
    /// the index: 8 bytes per matching entry.
    pub fn offsets_with_any(&self, any: &[(&str, &[u8])]) -> Result<Vec<u64>, JournalError> {
        let mut offsets = Vec::new();
        for (field, value) in any {
            let payload = [field.as_bytes(), b"=", value].concat();
            if let Some(d) = self.find_data(&payload)? {
                offsets.extend(self.data_entries(d)?);
            }
        }
        offsets.sort_unstable();
        offsets.dedup();
        Ok(offsets)
    }

    /// The entries at `offsets` (ascending, as [`Reader::offsets_with_any`] gives them) in
    /// `direction`, the reader moved in.
    pub fn into_entries_at(
        self,
        offsets: Vec<u64>,
        direction: Direction,
        headers_only: bool,
    ) -> FileEntries {
        let back = offsets.len();
        FileEntries {
            reader: self,
            walk: Walk::Offsets {
                offsets,
                front: 0,
                back,
            },
            direction,
            headers_only,
        }
    }
}

impl FileEntries {
    pub fn reader(&self) -> &Reader {
        &self.reader
    }
}

impl Iterator for FileEntries {
    type Item = Result<Entry, JournalError>;

    fn next(&mut self) -> Option<Self::Item> {
        match &mut self.walk {
            Walk::Forward(pos) => pos.advance(&self.reader),
            Walk::Backward(b) => b.advance(&self.reader, self.headers_only),
            Walk::Offsets {
                offsets,
                front,
                back,
            } => {
                if front >= back {
                    return None;
                }
                let offset = match self.direction {
                    Direction::Forward => {
                        *front += 1;
                        offsets[*front - 1]
                    }
                    Direction::Backward => {
                        *back -= 1;
                        offsets[*back]
                    }
                };
                Some(self.reader.entry_at(offset, self.headers_only))
            }
        }
    }
}

/// Where a newest-first walk stands.
#[derive(Debug)]
struct Backward {
    /// The reachable entry arrays, oldest first: (offset, items in use).
    arrays: Vec<(u64, u64)>,
    /// Arrays still to visit are `arrays[..array]`, plus the current one's `index` items.
    array: usize,
    index: u64,
    chunk: Vec<u64>,
    chunk_start: u64,
    /// The entry offset returned last: the next must be smaller.
    last: u64,
}

impl Backward {
    fn new(r: &Reader) -> Backward {
        let mut arrays = Vec::new();
        let (mut remaining, mut at, mut prev) =
            (r.header.n_entries, r.header.entry_array_offset, 0);
        let size = r.item_size();
        while remaining > 0 && at != 0 && at > prev {
            let Ok(o) = r.io.object_header(
                at,
                Some(ObjectType::EntryArray),
                r.file_len,
                r.header.compact(),
            ) else {
                break;
            };
            let used = ((o.size - ENTRY_ARRAY_HEADER_SIZE) / size).min(remaining);
            if used == 0 {
                break;
            }
            arrays.push((at, used));
            remaining -= used;
            prev = at;
            if remaining == 0 {
                break;
            }
            at = match r.io.read_u64(at + ENTRY_ARRAY_NEXT) {
                Ok(next) => next,
                Err(_) => break,
            };
        }
        Backward {
            array: arrays.len(),
            arrays,
            index: 0,
            chunk: Vec::new(),
            chunk_start: 0,
            last: u64::MAX,
        }
    }

    fn next_offset(&mut self, r: &Reader) -> Option<Result<u64, JournalError>> {
        while self.index == 0 {
            self.array = self.array.checked_sub(1)?;
            self.index = self.arrays[self.array].1;
            self.chunk.clear();
        }
        let array = self.arrays[self.array].0;
        self.index -= 1;
        if self.chunk.is_empty() || self.index < self.chunk_start {
            let start = self.index.saturating_sub(BACK_CHUNK - 1);
            match r.array_items(array, start, self.index + 1 - start) {
                Ok(items) => self.chunk = items,
                Err(e) => {
                    self.array = 0;
                    self.index = 0;
                    return Some(Err(e));
                }
            }
            self.chunk_start = start;
        }
        let offset = self.chunk[(self.index - self.chunk_start) as usize];
        if offset >= self.last {
            // Out of order: what lies before it cannot be trusted either.
            self.array = 0;
            self.index = 0;
            return Some(Err(r.io.bad(
                array,
                "entry array",
                format!("entry offset {offset} is not before {}", self.last),
            )));
        }
        self.last = offset;
        Some(Ok(offset))
    }

    fn advance(&mut self, r: &Reader, headers_only: bool) -> Option<Result<Entry, JournalError>> {
        Some(
            self.next_offset(r)?
                .and_then(|offset| r.entry_at(offset, headers_only)),
        )
    }
}
