//! Walking a file's chain of entry arrays: [`Entries`] for one reader, and [`Position`],
//! the same walk kept apart from the reader so that one owner can walk several files
//! ([`crate::DirEntries`]). Items are read ahead in chunks; whole arrays are skipped
//! without reading their items.

use crate::error::JournalError;
use crate::format::*;
use crate::reader::{Entry, Reader};

/// Entry array items read per `pread`.
const ARRAY_CHUNK: u64 = 512;

/// Iterator over a file's entries; see [`Reader::entries`].
#[derive(Debug)]
pub struct Entries<'a> {
    reader: &'a Reader,
    pub(super) pos: Position,
}

impl<'a> Entries<'a> {
    pub(super) fn new(reader: &'a Reader, headers_only: bool) -> Self {
        Entries {
            reader,
            pos: Position::new(reader, headers_only),
        }
    }
}

impl Iterator for Entries<'_> {
    type Item = Result<Entry, JournalError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.pos.advance(self.reader)
    }
}

/// Where an iteration over a file's entries stands, apart from the file, so that an
/// owner of several readers can iterate them all.
#[derive(Debug)]
pub(crate) struct Position {
    headers_only: bool,
    /// Current entry array (0 before the first).
    array: u64,
    capacity: u64,
    index: u64,
    /// Items of the current array read ahead, and the index of the first of them.
    chunk: Vec<u64>,
    chunk_start: u64,
    remaining: u64,
    last_entry: u64,
    done: bool,
}

impl Position {
    pub(crate) fn new(reader: &Reader, headers_only: bool) -> Self {
        Position {
            headers_only,
            array: 0,
            capacity: 0,
            index: 0,
            chunk: Vec::new(),
            chunk_start: 0,
            remaining: reader.header.n_entries,
            last_entry: 0,
            done: false,
        }
    }

    /// Moves to the next entry array of the chain.
    fn next_array(&mut self, r: &Reader) -> Result<(), JournalError> {
        let next = if self.array == 0 {
            r.header.entry_array_offset
        } else {
            r.io.read_u64(self.array + ENTRY_ARRAY_NEXT)?
        };
        if next == 0 {
            return Err(r.io.bad(
                self.array,
                "entry array",
                "chain ends before the header's entry count",
            ));
        }
        if next <= self.array {
            return Err(r.io.bad(next, "entry array", "chain goes backwards"));
        }
        let o = r.io.object_header(
            next,
            Some(ObjectType::EntryArray),
            r.file_len,
            r.header.compact(),
        )?;
        self.array = next;
        self.capacity = (o.size - ENTRY_ARRAY_HEADER_SIZE) / r.item_size();
        self.index = 0;
        self.chunk.clear();
        if self.capacity == 0 {
            return Err(r.io.bad(next, "entry array", "holds no items"));
        }
        Ok(())
    }

    /// Skips `n` entries without reading them (whole entry arrays at a time).
    pub(crate) fn skip(&mut self, r: &Reader, n: u64) -> Result<(), JournalError> {
        let mut n = n.min(self.remaining);
        while n > 0 {
            if self.index >= self.capacity {
                if let Err(e) = self.next_array(r) {
                    self.done = true;
                    return Err(e);
                }
            }
            let step = (self.capacity - self.index).min(n);
            self.index += step;
            self.remaining -= step;
            n -= step;
            self.chunk.clear();
        }
        Ok(())
    }

    fn next_offset(&mut self, r: &Reader) -> Result<u64, JournalError> {
        if self.index >= self.capacity {
            self.next_array(r)?;
        }
        let in_chunk = self.index.wrapping_sub(self.chunk_start);
        if self.chunk.is_empty() || in_chunk >= self.chunk.len() as u64 {
            let n = (self.capacity - self.index)
                .min(ARRAY_CHUNK)
                .min(self.remaining.max(1));
            self.chunk = r.array_items(self.array, self.index, n)?;
            self.chunk_start = self.index;
        }
        let offset = self.chunk[(self.index - self.chunk_start) as usize];
        self.index += 1;
        if offset <= self.last_entry {
            return Err(r.io.bad(
                self.array,
                "entry array",
                format!("entry offset {offset} is not after {}", self.last_entry),
            ));
        }
        self.last_entry = offset;
        Ok(offset)
    }

    /// The next entry of `reader` (the one this position was made for).
    pub(crate) fn advance(&mut self, reader: &Reader) -> Option<Result<Entry, JournalError>> {
        if self.done || self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        let result = self
            .next_offset(reader)
            .and_then(|off| reader.entry_at(off, self.headers_only));
        match result {
            // An entry whose data this build cannot decompress is skipped over, not damage.
            Err(e @ JournalError::Compressed { .. }) => Some(Err(e)),
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
            ok => Some(ok),
        }
    }
}
