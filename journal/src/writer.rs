//! Writes journal files that systemd's own tools read and `journalctl --verify` accepts.
//!
//! The variant written is the one systemd 246–253 write by default minus compression:
//! keyed hash (SipHash-2-4 with the file id as key, `HEADER_INCOMPATIBLE_KEYED_HASH`),
//! regular (not compact) objects, no sealing. Every structure is linked the way
//! journald links it (hash chains appended at the tail, field objects listing their data,
//! entry arrays doubling in size), so readers that walk any of them agree.
//!
//! I/O is positional reads and writes on a plain file rather than journald's mmap: no
//! `unsafe`, no SIGBUS when a disk fills or a file is truncated under us, and the memory
//! used is a few buffers, not the mapped file. The header is rewritten after every entry,
//! so a reader (`journalctl -f`, a copy of the file) sees each entry once it is complete.

use std::fs::OpenOptions;
use std::path::Path;

use crate::error::JournalError;
use crate::format::*;
use crate::hash::{jenkins_hash64, siphash24};
use crate::id128::Id128;
use crate::objects::{Io, ObjHeader};

/// journald's default bucket counts for small files.
pub const DEFAULT_DATA_BUCKETS: u64 = 2047;
pub const DEFAULT_FIELD_BUCKETS: u64 = 333;
/// The file grows in steps of this many bytes (a multiple of 8).
const GROW_STEP: u64 = 256 << 10;

/// What a new file is created with.
#[derive(Debug, Clone)]
pub struct WriterOptions {
    pub machine_id: Id128,
    /// The sequence-number domain: the previous file's, so that seqnums continue across a
    /// rotation (journald's "template"); `None` starts a new domain (the file id).
    pub seqnum_id: Option<Id128>,
    /// Seqnum of the first entry.
    pub first_seqnum: u64,
    pub data_hash_buckets: u64,
    pub field_hash_buckets: u64,
}

impl WriterOptions {
    pub fn new(machine_id: Id128) -> Self {
        WriterOptions {
            machine_id,
            seqnum_id: None,
            first_seqnum: 1,
            data_hash_buckets: DEFAULT_DATA_BUCKETS,
            field_hash_buckets: DEFAULT_FIELD_BUCKETS,
        }
    }

    /// Sizes the data hash table for a file that may grow to `max_file_size` bytes, with
    /// journald's rule (one bucket per ~576 bytes of file, at least 2047).
    pub fn sized_for(mut self, max_file_size: u64) -> Self {
        self.data_hash_buckets =
            (max_file_size.saturating_mul(4) / 768 / 3).max(DEFAULT_DATA_BUCKETS);
        self
    }
}

/// The three timestamps of an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryTime {
    /// CLOCK_REALTIME in microseconds since the epoch.
    pub realtime: u64,
    /// CLOCK_MONOTONIC in microseconds since `boot_id`'s boot.
    pub monotonic: u64,
    pub boot_id: Id128,
}

/// The tail of the global entry array chain, kept in memory.
#[derive(Debug, Clone, Copy)]
struct ArrayTail {
    offset: u64,
    capacity: u64,
    used: u64,
}

/// An open journal file being appended to.
#[derive(Debug)]
pub struct Writer {
    io: Io,
    header: Header,
    /// Where the next object goes (= header_size + arena_size).
    end: u64,
    file_len: u64,
    tail: Option<ArrayTail>,
}

/// journald's `journal_field_valid` with protected (`_`-prefixed) fields allowed.
pub fn field_name_valid(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= 64
        && !b[0].is_ascii_digit()
        && b.iter()
            .all(|&c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == b'_')
}

impl Writer {
    /// Creates a new file at `path` (which must not exist), state ONLINE.
    pub fn create(path: &Path, opts: &WriterOptions) -> Result<Writer, JournalError> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(path)
            .map_err(|source| JournalError::Open {
                path: path.to_path_buf(),
                source,
            })?;
        let file_id = Id128::random()?;
        let first = opts.first_seqnum.max(1);
        let mut w = Writer {
            io: Io::new(file, path.to_path_buf()),
            header: Header {
                incompatible_flags: INCOMPAT_KEYED_HASH,
                state: STATE_ONLINE,
                file_id,
                machine_id: opts.machine_id,
                seqnum_id: opts.seqnum_id.unwrap_or(file_id),
                header_size: HEADER_SIZE,
                tail_entry_seqnum: first - 1,
                ..Header::default()
            },
            end: HEADER_SIZE,
            file_len: 0,
            tail: None,
        };
        let fields = opts.field_hash_buckets.max(1);
        let data = opts.data_hash_buckets.max(1);
        let f = w.append_table(ObjectType::FieldHashTable, fields)?;
        w.header.field_hash_table_offset = f + OBJECT_HEADER_SIZE;
        w.header.field_hash_table_size = fields * HASH_ITEM_SIZE;
        let d = w.append_table(ObjectType::DataHashTable, data)?;
        w.header.data_hash_table_offset = d + OBJECT_HEADER_SIZE;
        w.header.data_hash_table_size = data * HASH_ITEM_SIZE;
        w.write_header()?;
        Ok(w)
    }

    /// Reopens a file this writer made and closed cleanly (state OFFLINE), to append to
    /// it. Anything else — ONLINE (not closed), archived, another writer's variant, a
    /// size that disagrees with the header — is refused with the reason.
    pub fn open_append(path: &Path) -> Result<Writer, JournalError> {
        let refuse = |reason: &str| JournalError::NotAppendable {
            path: path.to_path_buf(),
            reason: reason.to_string(),
        };
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(|source| JournalError::Open {
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
        match header.state {
            STATE_OFFLINE => {}
            STATE_ONLINE => return Err(refuse("it was not closed (state ONLINE)")),
            _ => return Err(refuse("it is archived")),
        }
        if header.header_size != HEADER_SIZE
            || header.incompatible_flags != INCOMPAT_KEYED_HASH
            || header.compatible_flags != 0
        {
            return Err(refuse(
                "it is not this writer's variant (keyed hash, regular, 272-byte header)",
            ));
        }
        if header.header_size.saturating_add(header.arena_size) != file_len {
            return Err(refuse("its size disagrees with the header's arena size"));
        }
        let tail_obj = io.object_header(header.tail_object_offset, None, file_len, false)?;
        let end = align8(header.tail_object_offset + tail_obj.size);
        // Find the tail of the global entry array chain; the chain only moves forward.
        let mut tail = None;
        let (mut a, mut left) = (header.entry_array_offset, header.n_entries);
        while a != 0 {
            let o = io.object_header(a, Some(ObjectType::EntryArray), file_len, false)?;
            let capacity = (o.size - ENTRY_ARRAY_HEADER_SIZE) / 8;
            tail = Some(ArrayTail {
                offset: a,
                capacity,
                used: left.min(capacity),
            });
            left = left.saturating_sub(capacity);
            let next = io.read_u64(a + ENTRY_ARRAY_NEXT)?;
            if next != 0 && next <= a {
                return Err(refuse("its entry array chain goes backwards"));
            }
            a = next;
        }
        if left != 0 {
            return Err(refuse(
                "its entry arrays hold fewer entries than the header counts",
            ));
        }
        let mut w = Writer {
            io,
            header,
            end,
            file_len,
            tail,
        };
        w.header.state = STATE_ONLINE;
        w.write_header()?;
        Ok(w)
    }

    pub fn path(&self) -> &Path {
        &self.io.path
    }

    /// Bytes used by the header and the objects (the file is grown ahead of this).
    pub fn size(&self) -> u64 {
        self.end
    }

    pub fn header(&self) -> &Header {
        &self.header
    }

    /// Appends one entry and returns its seqnum. `fields` are `(NAME, value)`; values may
    /// hold any bytes. `_BOOT_ID=` is added from `time.boot_id` when absent, as journald
    /// does, since `journalctl -b` and `--list-boots` match on it.
    pub fn append<N: AsRef<str>, V: AsRef<[u8]>>(
        &mut self,
        time: EntryTime,
        fields: &[(N, V)],
    ) -> Result<u64, JournalError> {
        let mut payloads: Vec<Vec<u8>> = Vec::with_capacity(fields.len() + 1);
        let mut has_boot_id = false;
        for (name, value) in fields {
            let name = name.as_ref();
            if !field_name_valid(name) {
                return Err(JournalError::InvalidField {
                    name: name.to_string(),
                });
            }
            has_boot_id |= name == "_BOOT_ID";
            let mut p = Vec::with_capacity(name.len() + 1 + value.as_ref().len());
            p.extend_from_slice(name.as_bytes());
            p.push(b'=');
            p.extend_from_slice(value.as_ref());
            payloads.push(p);
        }
        if !has_boot_id {
            payloads.push(format!("_BOOT_ID={}", time.boot_id).into_bytes());
        }
        if self.end.saturating_add(1 << 20) >= u64::from(u32::MAX) {
            // Far below what the format allows, but past what journald lets a file grow.
            return Err(JournalError::FileFull {
                path: self.io.path.clone(),
            });
        }
        self.header.state = STATE_ONLINE;

        let mut items: Vec<(u64, u64)> = Vec::with_capacity(payloads.len());
        let mut xor_hash = 0u64;
        for p in &payloads {
            items.push(self.find_or_append_data(p)?);
            xor_hash ^= jenkins_hash64(p);
        }
        items.sort_unstable_by_key(|&(off, _)| off);
        items.dedup_by_key(|&mut (off, _)| off);

        let seqnum = self.header.tail_entry_seqnum + 1;
        let mut body = Vec::with_capacity(48 + items.len() * 16);
        body.extend_from_slice(&seqnum.to_le_bytes());
        body.extend_from_slice(&time.realtime.to_le_bytes());
        body.extend_from_slice(&time.monotonic.to_le_bytes());
        body.extend_from_slice(&time.boot_id.0);
        body.extend_from_slice(&xor_hash.to_le_bytes());
        for (off, hash) in &items {
            body.extend_from_slice(&off.to_le_bytes());
            body.extend_from_slice(&hash.to_le_bytes());
        }
        let entry = self.append_object(ObjectType::Entry, &body)?;
        self.link_global(entry)?;
        for (off, _) in &items {
            self.link_data(*off, entry)?;
        }

        let h = &mut self.header;
        if h.n_entries == 0 {
            h.head_entry_seqnum = seqnum;
            h.head_entry_realtime = time.realtime;
        }
        h.n_entries += 1;
        h.tail_entry_seqnum = seqnum;
        h.tail_entry_realtime = time.realtime;
        h.tail_entry_monotonic = time.monotonic;
        h.tail_entry_boot_id = time.boot_id;
        h.tail_entry_offset = entry;
        self.write_header()?;
        Ok(seqnum)
    }

    /// Writes the header as OFFLINE and flushes the file to disk: everything appended so
    /// far survives a crash, and a copy of the file is clean. The next append sets it
    /// ONLINE again.
    pub fn sync(&mut self) -> Result<(), JournalError> {
        self.header.state = STATE_OFFLINE;
        self.write_header()?;
        self.io.sync()
    }

    /// Syncs and closes (state OFFLINE): the file can be appended to again.
    pub fn close(mut self) -> Result<(), JournalError> {
        self.sync()
    }

    /// Closes as ARCHIVED: the file is never appended to again (before a rotation).
    pub fn archive(mut self) -> Result<Header, JournalError> {
        self.header.state = STATE_ARCHIVED;
        self.write_header()?;
        self.io.sync()?;
        Ok(self.header)
    }

    fn write_header(&mut self) -> Result<(), JournalError> {
        self.header.arena_size = self.file_len.max(self.end) - self.header.header_size;
        let b = self.header.serialize();
        self.io.write(0, &b)
    }

    /// Appends an object with `body` after its 16-byte header; returns its offset.
    fn append_object(&mut self, ty: ObjectType, body: &[u8]) -> Result<u64, JournalError> {
        let offset = self.end;
        let size = OBJECT_HEADER_SIZE + body.len() as u64;
        self.reserve(offset + align8(size))?;
        let mut buf = Vec::with_capacity(align8(size) as usize);
        buf.extend_from_slice(&ObjHeader::encode(ty, size));
        buf.extend_from_slice(body);
        buf.resize(align8(size) as usize, 0);
        self.io.write(offset, &buf)?;
        self.finish_object(offset, size);
        Ok(offset)
    }

    /// Appends an object of `size` bytes whose body is zeros (hash tables, entry arrays):
    /// only its header is written, the rest is a hole of the grown file.
    fn append_zeroed(&mut self, ty: ObjectType, size: u64) -> Result<u64, JournalError> {
        let offset = self.end;
        self.reserve(offset + align8(size))?;
        self.io.write(offset, &ObjHeader::encode(ty, size))?;
        self.finish_object(offset, size);
        Ok(offset)
    }

    /// Grows the file (sparse, in [`GROW_STEP`]s) to hold `end` bytes before anything is
    /// written there, so that the header's arena never claims more than the file has,
    /// as journald's fallocate-ahead does.
    fn reserve(&mut self, end: u64) -> Result<(), JournalError> {
        if end > self.file_len {
            let len = end.div_ceil(GROW_STEP) * GROW_STEP;
            self.io.set_len(len)?;
            self.file_len = len;
        }
        Ok(())
    }

    fn finish_object(&mut self, offset: u64, size: u64) {
        self.end = offset + align8(size);
        self.header.tail_object_offset = offset;
        self.header.n_objects += 1;
    }

    fn append_table(&mut self, ty: ObjectType, buckets: u64) -> Result<u64, JournalError> {
        self.append_zeroed(ty, OBJECT_HEADER_SIZE + buckets * HASH_ITEM_SIZE)
    }

    /// The offset and hash of the data object holding `payload`, appended if new.
    fn find_or_append_data(&mut self, payload: &[u8]) -> Result<(u64, u64), JournalError> {
        let hash = siphash24(payload, &self.header.file_id);
        let buckets = self.header.data_hash_table_size / HASH_ITEM_SIZE;
        let bucket = self.header.data_hash_table_offset + (hash % buckets) * HASH_ITEM_SIZE;
        if let Some(off) = self.find_in_chain(
            bucket,
            hash,
            payload,
            DATA_HEADER_SIZE,
            DATA_NEXT_HASH,
            true,
        )? {
            return Ok((off, hash));
        }
        let mut body = vec![0u8; (DATA_HEADER_SIZE - OBJECT_HEADER_SIZE) as usize];
        body[0..8].copy_from_slice(&hash.to_le_bytes());
        body.extend_from_slice(payload);
        let off = self.append_object(ObjectType::Data, &body)?;
        self.link_into_chain(bucket, off, DATA_NEXT_HASH)?;
        self.header.n_data += 1;
        let name = payload.split(|&c| c == b'=').next().unwrap_or(payload);
        let field = self.find_or_append_field(name)?;
        let head = self.io.read_u64(field + FIELD_HEAD_DATA)?;
        self.io.write(off + DATA_NEXT_FIELD, &head.to_le_bytes())?;
        self.io.write(field + FIELD_HEAD_DATA, &off.to_le_bytes())?;
        Ok((off, hash))
    }

    fn find_or_append_field(&mut self, name: &[u8]) -> Result<u64, JournalError> {
        let hash = siphash24(name, &self.header.file_id);
        let buckets = self.header.field_hash_table_size / HASH_ITEM_SIZE;
        let bucket = self.header.field_hash_table_offset + (hash % buckets) * HASH_ITEM_SIZE;
        if let Some(off) = self.find_in_chain(
            bucket,
            hash,
            name,
            FIELD_HEADER_SIZE,
            FIELD_NEXT_HASH,
            false,
        )? {
            return Ok(off);
        }
        let mut body = vec![0u8; (FIELD_HEADER_SIZE - OBJECT_HEADER_SIZE) as usize];
        body[0..8].copy_from_slice(&hash.to_le_bytes());
        body.extend_from_slice(name);
        let off = self.append_object(ObjectType::Field, &body)?;
        self.link_into_chain(bucket, off, FIELD_NEXT_HASH)?;
        self.header.n_fields += 1;
        Ok(off)
    }

    /// Walks one hash chain for an object with `hash` and `payload`.
    fn find_in_chain(
        &mut self,
        bucket: u64,
        hash: u64,
        payload: &[u8],
        header_size: u64,
        next_at: u64,
        data: bool,
    ) -> Result<Option<u64>, JournalError> {
        let mut p = self.io.read_u64(bucket)?;
        let mut depth = 0u64;
        let limit = self.header.n_objects;
        let mut buf = Vec::new();
        while p != 0 {
            buf.resize((header_size as usize) + payload.len(), 0);
            let o = self.io.read_prefix(p, &mut buf)?;
            let size = ObjHeader::decode(&buf[..o]).size;
            if le64(&buf, DATA_HASH as usize) == hash
                && size == header_size + payload.len() as u64
                && &buf[header_size as usize..o] == payload
            {
                return Ok(Some(p));
            }
            depth += 1;
            if depth > limit {
                return Err(self.io.bad(p, "hash chain", "the chain loops"));
            }
            p = le64(&buf, next_at as usize);
        }
        let d = if data {
            &mut self.header.data_hash_chain_depth
        } else {
            &mut self.header.field_hash_chain_depth
        };
        *d = (*d).max(depth);
        Ok(None)
    }

    /// Appends object `off` at the tail of the chain of `bucket`.
    fn link_into_chain(&mut self, bucket: u64, off: u64, next_at: u64) -> Result<(), JournalError> {
        let tail = self.io.read_u64(bucket + 8)?;
        if tail != 0 && (tail < self.header.header_size || tail >= off) {
            return Err(self.io.bad(
                bucket,
                "hash table",
                format!("bucket tail {tail} is not an earlier object"),
            ));
        }
        if tail == 0 {
            self.io.write(bucket, &off.to_le_bytes())?;
        } else {
            self.io.write(tail + next_at, &off.to_le_bytes())?;
        }
        self.io.write(bucket + 8, &off.to_le_bytes())
    }

    /// Adds `entry` to the file's entry array chain.
    fn link_global(&mut self, entry: u64) -> Result<(), JournalError> {
        match self.tail {
            Some(mut t) if t.used < t.capacity => {
                self.io.write(
                    t.offset + ENTRY_ARRAY_HEADER_SIZE + t.used * 8,
                    &entry.to_le_bytes(),
                )?;
                t.used += 1;
                self.tail = Some(t);
            }
            tail => {
                let (prev, prev_cap) = tail.map_or((0, 0), |t| (t.offset, t.capacity));
                let capacity = next_capacity(self.header.n_entries, prev_cap);
                let a = self.new_array(capacity, entry, prev)?;
                if prev == 0 {
                    self.header.entry_array_offset = a;
                }
                self.tail = Some(ArrayTail {
                    offset: a,
                    capacity,
                    used: 1,
                });
            }
        }
        if let Some(t) = self.tail {
            self.header.tail_entry_array_offset = u32::try_from(t.offset).unwrap_or(0);
            self.header.tail_entry_array_n_entries = t.used as u32;
        }
        Ok(())
    }

    /// Adds `entry` to data object `data`'s entries: inline for the first, then arrays.
    fn link_data(&mut self, data: u64, entry: u64) -> Result<(), JournalError> {
        let n = self.io.read_u64(data + DATA_N_ENTRIES)?;
        if n == 0 {
            self.io
                .write(data + DATA_ENTRY_OFFSET, &entry.to_le_bytes())?;
        } else {
            let first = self.io.read_u64(data + DATA_ENTRY_ARRAY_OFFSET)?;
            // The arrays hold all entries but the inline first.
            let hidx = n - 1;
            let (mut a, mut i, mut last, mut last_cap) = (first, hidx, 0u64, 0u64);
            while a != 0 {
                let size = self
                    .io
                    .object_header(a, Some(ObjectType::EntryArray), self.file_len, false)?
                    .size;
                let cap = (size - ENTRY_ARRAY_HEADER_SIZE) / 8;
                if i < cap {
                    self.io
                        .write(a + ENTRY_ARRAY_HEADER_SIZE + i * 8, &entry.to_le_bytes())?;
                    return self.io.write(data + DATA_N_ENTRIES, &(n + 1).to_le_bytes());
                }
                i -= cap;
                last = a;
                last_cap = cap;
                let next = self.io.read_u64(a + ENTRY_ARRAY_NEXT)?;
                if next != 0 && next <= a {
                    return Err(self.io.bad(a, "entry array", "the chain goes backwards"));
                }
                a = next;
            }
            let na = self.new_array(next_capacity(hidx, last_cap), entry, last)?;
            if last == 0 {
                self.io
                    .write(data + DATA_ENTRY_ARRAY_OFFSET, &na.to_le_bytes())?;
            }
        }
        self.io.write(data + DATA_N_ENTRIES, &(n + 1).to_le_bytes())
    }

    /// Appends an entry array holding `entry` first, linked after `prev` (if any).
    fn new_array(&mut self, capacity: u64, entry: u64, prev: u64) -> Result<u64, JournalError> {
        let a = self.append_zeroed(
            ObjectType::EntryArray,
            ENTRY_ARRAY_HEADER_SIZE + capacity * 8,
        )?;
        self.io
            .write(a + ENTRY_ARRAY_HEADER_SIZE, &entry.to_le_bytes())?;
        if prev != 0 {
            self.io.write(prev + ENTRY_ARRAY_NEXT, &a.to_le_bytes())?;
        }
        self.header.n_entry_arrays += 1;
        Ok(a)
    }
}

/// journald's growth rule for a new entry array, given the items already in the chain
/// and the capacity of its last array: about double the total, at least 4.
fn next_capacity(total: u64, last_capacity: u64) -> u64 {
    let n = if total > last_capacity {
        (total + 1) * 2
    } else {
        last_capacity * 2
    };
    n.max(4)
}
