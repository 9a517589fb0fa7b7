//! Reads the entries of one journal file in order, from this crate's writer or from any
//! systemd (regular or compact objects, keyed or Jenkins hashes, zstd data when the
//! `zstd` feature is on).
//!
//! Entries are found the way `journalctl` finds them: through the file's chain of entry
//! arrays, up to the header's entry count. Every offset is checked before it is followed
//! (see the `objects` module), the chain must move forward, data hashes are checked, and
//! buffers are bounded by the file's size, so a damaged file yields the entries before
//! the damage and then one typed error naming the offset, and the iteration ends.

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::error::JournalError;
use crate::format::*;
use crate::hash::{data_hash, jenkins_hash64};
use crate::id128::Id128;
use crate::objects::Io;

mod iter;
mod walk;
pub use iter::Entries;
pub(crate) use iter::Position;
pub use walk::{Direction, FileEntries};

/// An entry object with more items than this is treated as damage (journald writes at
/// most 1024 fields per entry; this leaves room).
const MAX_ENTRY_ITEMS: u64 = 1 << 16;
/// Largest value a compressed data object may expand to (journald's `DATA_SIZE_MAX`).
#[cfg_attr(not(feature = "zstd"), allow(dead_code))]
const MAX_DECOMPRESSED: u64 = 768 << 20;

/// One entry as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Offset of the entry object in its file.
    pub offset: u64,
    pub seqnum_id: Id128,
    pub seqnum: u64,
    pub realtime: u64,
    pub monotonic: u64,
    pub boot_id: Id128,
    pub xor_hash: u64,
    /// `(NAME, value)` in the file's item order (by data object offset).
    pub fields: Vec<(String, Vec<u8>)>,
}

impl Entry {
    /// journalctl's cursor for this entry (`s=…;i=…;b=…;m=…;t=…;x=…`).
    pub fn cursor(&self) -> String {
        format!(
            "s={};i={:x};b={};m={:x};t={:x};x={:x}",
            self.seqnum_id, self.seqnum, self.boot_id, self.monotonic, self.realtime, self.xor_hash
        )
    }

    /// The first value of field `name`.
    pub fn field(&self, name: &str) -> Option<&[u8]> {
        self.fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
    }
}

/// An open journal file.
#[derive(Debug)]
pub struct Reader {
    io: Io,
    header: Header,
    file_len: u64,
    /// Short values read recently, by data object offset: most entries repeat a few
    /// (`PRIORITY=6`, the unit, the host), so most of their items cost no read at all.
    values: RefCell<HashMap<u64, CachedValue>>,
}

#[derive(Debug)]
struct CachedValue {
    payload: Vec<u8>,
    hash: u64,
    jenkins: u64,
}

/// Values up to this long are cached, at most this many (under 1.5 MiB).
const CACHED_VALUE_MAX: usize = 256;
const CACHED_VALUES: usize = 4096;

impl Reader {
    pub fn open(path: &Path) -> Result<Reader, JournalError> {
        let file = std::fs::File::open(path).map_err(|source| JournalError::Open {
            path: path.to_path_buf(),
            source,
        })?;
        let file_len = file
            .metadata()
            .map_err(|source| JournalError::Open {
                path: path.to_path_buf(),
                source,
            })?
            .len();
        let io = Io::new(file, path.to_path_buf());
        let header = io.read_header(file_len)?;
        // Objects past the arena are not the file's, whatever the file's length.
        let file_len = header.header_size + header.arena_size;
        Ok(Reader {
            values: RefCell::new(HashMap::new()),
            io,
            header,
            file_len,
        })
    }

    pub(crate) fn io(&self) -> &Io {
        &self.io
    }

    /// End of the file's objects (header + arena).
    pub(crate) fn file_len(&self) -> u64 {
        self.file_len
    }

    pub fn path(&self) -> &PathBuf {
        &self.io.path
    }

    pub fn header(&self) -> &Header {
        &self.header
    }

    /// All entries in file order, with their fields.
    pub fn entries(&self) -> Entries<'_> {
        Entries::new(self, false)
    }

    /// The entries from the `index`-th on (0 is the first): `-n N` starts at
    /// `n_entries - N`, and a follower that has read `k` entries of a growing file reopens
    /// it and goes on from `k`. Skipping reads entry array headers only.
    pub fn entries_from(
        &self,
        index: u64,
        headers_only: bool,
    ) -> Result<Entries<'_>, JournalError> {
        let mut e = Entries::new(self, headers_only);
        e.pos.skip(self, index)?;
        Ok(e)
    }

    /// All entries in file order, without reading their fields (timestamps, boot id and
    /// seqnum only): for boot lists and time searches.
    pub fn entry_headers(&self) -> Entries<'_> {
        Entries::new(self, true)
    }

    fn item_size(&self) -> u64 {
        if self.header.compact() {
            4
        } else {
            8
        }
    }

    /// Items `start..start + n` of the entry array object at `array`: entry offsets (4
    /// bytes each in compact files, 8 otherwise).
    fn array_items(&self, array: u64, start: u64, n: u64) -> Result<Vec<u64>, JournalError> {
        let size = self.item_size();
        let mut b = vec![0u8; (n * size) as usize];
        self.io
            .read_exact(array + ENTRY_ARRAY_HEADER_SIZE + start * size, &mut b)?;
        Ok(b.chunks_exact(size as usize)
            .map(|c| {
                if size == 4 {
                    u64::from(le32(c, 0))
                } else {
                    le64(c, 0)
                }
            })
            .collect())
    }

    /// Reads the entry object at `offset` (and its data unless `headers_only`).
    pub fn entry_at(&self, offset: u64, headers_only: bool) -> Result<Entry, JournalError> {
        let compact = self.header.compact();
        let o = self
            .io
            .object_header(offset, Some(ObjectType::Entry), self.file_len, compact)?;
        let item_size = if compact { 4 } else { 16 };
        let n_items = (o.size - ENTRY_HEADER_SIZE) / item_size;
        if n_items > MAX_ENTRY_ITEMS {
            return Err(self.io.bad(offset, "entry", format!("{n_items} items")));
        }
        let mut b = vec![0u8; (ENTRY_HEADER_SIZE + n_items * item_size) as usize];
        self.io.read_exact(offset, &mut b)?;
        let mut boot = [0u8; 16];
        boot.copy_from_slice(&b[40..56]);
        let mut e = Entry {
            offset,
            seqnum_id: self.header.seqnum_id,
            seqnum: le64(&b, 16),
            realtime: le64(&b, 24),
            monotonic: le64(&b, 32),
            boot_id: Id128(boot),
            xor_hash: le64(&b, 56),
            fields: Vec::new(),
        };
        // Even without the data, an entry whose items cannot be data objects is damage
        // (a file cut inside an entry reads as zeros from the cut on).
        for i in 0..n_items as usize {
            let at = ENTRY_HEADER_SIZE as usize + i * item_size as usize;
            let data = if compact {
                u64::from(le32(&b, at))
            } else {
                le64(&b, at)
            };
            if data < HEADER_SIZE_MIN || !data.is_multiple_of(8) || data >= self.file_len {
                return Err(self.io.bad(
                    offset,
                    "entry",
                    format!("item {i} points to offset {data}"),
                ));
            }
        }
        if n_items == 0 {
            return Err(self.io.bad(offset, "entry", "has no items"));
        }
        if headers_only {
            return Ok(e);
        }
        e.fields.reserve(n_items as usize);
        let mut xor = 0u64;
        for i in 0..n_items as usize {
            let at = ENTRY_HEADER_SIZE as usize + i * item_size as usize;
            let (data, hash) = if compact {
                (u64::from(le32(&b, at)), None)
            } else {
                (le64(&b, at), Some(le64(&b, at + 8)))
            };
            let (payload, jenkins) = self.value(data, hash)?;
            let Some(eq) = payload.iter().position(|&c| c == b'=') else {
                return Err(self.io.bad(data, "data", "payload has no '='"));
            };
            xor ^= jenkins;
            let name = String::from_utf8_lossy(&payload[..eq]).into_owned();
            e.fields.push((name, payload[eq + 1..].to_vec()));
        }
        // The xor of its values' Jenkins hashes is the only check an entry's item list
        // has: an entry that lost or gained items reads as damage, not as another entry.
        if xor != e.xor_hash {
            return Err(self
                .io
                .bad(offset, "entry", "its items do not match its xor hash"));
        }
        Ok(e)
    }

    /// The payload of the data object at `offset` and its Jenkins hash, from the cache
    /// when it was read recently.
    fn value(&self, offset: u64, item_hash: Option<u64>) -> Result<(Vec<u8>, u64), JournalError> {
        if let Some(c) = self.values.borrow().get(&offset) {
            if item_hash.is_some_and(|h| h != c.hash) {
                return Err(self
                    .io
                    .bad(offset, "data", "hash differs from the entry item's"));
            }
            return Ok((c.payload.clone(), c.jenkins));
        }
        let (payload, hash) = self.data_payload_hashed(offset, item_hash)?;
        let jenkins = jenkins_hash64(&payload);
        if payload.len() <= CACHED_VALUE_MAX {
            let mut values = self.values.borrow_mut();
            if values.len() >= CACHED_VALUES {
                values.clear();
            }
            values.insert(
                offset,
                CachedValue {
                    payload: payload.clone(),
                    hash,
                    jenkins,
                },
            );
        }
        Ok((payload, jenkins))
    }

    /// The (decompressed) payload of the data object at `offset`, its hash checked against
    /// the object's and, when given, the entry item's.
    pub(crate) fn data_payload(
        &self,
        offset: u64,
        item_hash: Option<u64>,
    ) -> Result<Vec<u8>, JournalError> {
        Ok(self.data_payload_hashed(offset, item_hash)?.0)
    }

    /// [`Reader::data_payload`] and the object's stored hash.
    fn data_payload_hashed(
        &self,
        offset: u64,
        item_hash: Option<u64>,
    ) -> Result<(Vec<u8>, u64), JournalError> {
        let compact = self.header.compact();
        let o = self
            .io
            .object_header(offset, Some(ObjectType::Data), self.file_len, compact)?;
        let start = if compact {
            DATA_HEADER_SIZE_COMPACT
        } else {
            DATA_HEADER_SIZE
        };
        let mut raw = vec![0u8; o.size as usize];
        self.io.read_exact(offset, &mut raw)?;
        let stored_hash = le64(&raw, DATA_HASH as usize);
        if item_hash.is_some_and(|h| h != stored_hash) {
            return Err(self
                .io
                .bad(offset, "data", "hash differs from the entry item's"));
        }
        raw.drain(..start as usize);
        let payload = self.decompress(offset, o.flags, raw)?;
        let key = self.header.keyed_hash().then_some(&self.header.file_id);
        if data_hash(&payload, key) != stored_hash {
            return Err(self
                .io
                .bad(offset, "data", "payload does not match its hash"));
        }
        Ok((payload, stored_hash))
    }

    fn decompress(&self, offset: u64, flags: u8, raw: Vec<u8>) -> Result<Vec<u8>, JournalError> {
        let algorithm = match flags
            & (OBJECT_COMPRESSED_XZ | OBJECT_COMPRESSED_LZ4 | OBJECT_COMPRESSED_ZSTD)
        {
            0 => return Ok(raw),
            OBJECT_COMPRESSED_ZSTD => "zstd",
            OBJECT_COMPRESSED_XZ => "xz",
            OBJECT_COMPRESSED_LZ4 => "lz4",
            _ => {
                return Err(self
                    .io
                    .bad(offset, "data", format!("compression flags {flags:#x}")))
            }
        };
        #[cfg(feature = "zstd")]
        if algorithm == "zstd" {
            use std::io::Read;
            let decode_err = |e: std::io::Error| JournalError::Decompress {
                path: self.io.path.clone(),
                offset,
                reason: e.to_string(),
            };
            let mut out = Vec::new();
            zstd::stream::read::Decoder::new(raw.as_slice())
                .map_err(decode_err)?
                .take(MAX_DECOMPRESSED + 1)
                .read_to_end(&mut out)
                .map_err(decode_err)?;
            if out.len() as u64 > MAX_DECOMPRESSED {
                return Err(JournalError::Decompress {
                    path: self.io.path.clone(),
                    offset,
                    reason: format!("expands past {MAX_DECOMPRESSED} bytes"),
                });
            }
            return Ok(out);
        }
        Err(JournalError::Compressed {
            path: self.io.path.clone(),
            offset,
            algorithm,
        })
    }
}
