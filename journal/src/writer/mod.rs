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
//! used is a few buffers, not the mapped file. Appends are buffered (module `pending`):
//! [`Writer::flush`] makes them visible to readers (`journalctl -f`, a copy of the file)
//! with a handful of writes, the header last; [`Writer::sync`] also makes them durable.

use std::fs::OpenOptions;
use std::path::Path;

use crate::error::JournalError;
use crate::format::*;
use crate::hash::{jenkins_hash64, siphash24};
use crate::id128::Id128;
use crate::objects::{Io, ObjHeader};

mod link;
mod pending;
use link::{Cache, DataRef};
use pending::Pending;

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

impl EntryTime {
    /// The clocks now, for an entry of boot `boot_id`.
    pub fn now(boot_id: Id128) -> EntryTime {
        use nix::time::{clock_gettime, ClockId};
        let usec = |id| {
            clock_gettime(id).map_or(0, |t| {
                (t.tv_sec() as u64).saturating_mul(1_000_000) + t.tv_nsec() as u64 / 1000
            })
        };
        EntryTime {
            realtime: usec(ClockId::CLOCK_REALTIME),
            monotonic: usec(ClockId::CLOCK_MONOTONIC),
            boot_id,
        }
    }
}

/// The tail of the global entry array chain, kept in memory.
#[derive(Debug, Clone, Copy)]
struct ArrayTail {
    offset: u64,
    capacity: u64,
    used: u64,
}

/// An open journal file being appended to.
///
/// Dropping it without [`Writer::close`] is what a crash does: entries appended since the
/// last flush are lost and the file stays ONLINE, so the next [`crate::JournalDir::open`]
/// sets it aside.
#[derive(Debug)]
pub struct Writer {
    io: Io,
    header: Header,
    /// Where the next object goes (= header_size + arena_size).
    end: u64,
    file_len: u64,
    tail: Option<ArrayTail>,
    cache: Cache,
    pending: Pending,
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
            cache: Cache::default(),
            pending: Pending::starting_at(HEADER_SIZE),
        };
        let fields = opts.field_hash_buckets.max(1);
        let data = opts.data_hash_buckets.max(1);
        let f = w.append_table(ObjectType::FieldHashTable, fields)?;
        w.header.field_hash_table_offset = f + OBJECT_HEADER_SIZE;
        w.header.field_hash_table_size = fields * HASH_ITEM_SIZE;
        let d = w.append_table(ObjectType::DataHashTable, data)?;
        w.header.data_hash_table_offset = d + OBJECT_HEADER_SIZE;
        w.header.data_hash_table_size = data * HASH_ITEM_SIZE;
        w.flush()?;
        Ok(w)
    }

    /// Reopens a file this writer made and closed cleanly (state OFFLINE), to append to
    /// it. A file that was not closed (ONLINE) or whose size disagrees with its header is
    /// refused as [`JournalError::NotAppendable`]; an archived file or another writer's
    /// variant (journald's compact or compressed files) as [`JournalError::Incompatible`].
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
            _ => {
                return Err(JournalError::Incompatible {
                    path: path.to_path_buf(),
                    reason: "it is archived".into(),
                })
            }
        }
        if header.header_size != HEADER_SIZE
            || header.incompatible_flags != INCOMPAT_KEYED_HASH
            || header.compatible_flags != 0
        {
            return Err(JournalError::Incompatible {
                path: path.to_path_buf(),
                reason: "it is not this writer's variant (keyed hash, regular, 272-byte header)"
                    .into(),
            });
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
            cache: Cache::default(),
            pending: Pending::starting_at(end),
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

    /// True when a hash table is three quarters full, journald's rule for rotating before
    /// lookups slow down on long chains.
    pub fn rotate_suggested(&self) -> bool {
        let h = &self.header;
        let data = h.data_hash_table_size / HASH_ITEM_SIZE;
        let fields = h.field_hash_table_size / HASH_ITEM_SIZE;
        h.n_data * 4 > data * 3 || h.n_fields * 4 > fields * 3
    }

    /// Appends one entry and returns its seqnum. `fields` are `(NAME, value)`; values may
    /// hold any bytes. `_BOOT_ID=` is added from `time.boot_id` when absent, as journald
    /// does, since `journalctl -b` and `--list-boots` match on it. A monotonic time
    /// earlier than the previous entry's of the same boot is raised to it.
    ///
    /// The entry is buffered: readers see it after the next [`Writer::flush`] (done by
    /// itself every 256 KiB), [`Writer::sync`] or close. A collector calls `flush` when
    /// its queue is empty.
    pub fn append<N: AsRef<str>, V: AsRef<[u8]>>(
        &mut self,
        time: EntryTime,
        fields: &[(N, V)],
    ) -> Result<u64, JournalError> {
        // Every `NAME=value` payload in one buffer: one allocation per entry, not per field.
        let mut bytes = Vec::with_capacity(
            fields
                .iter()
                .map(|(n, v)| n.as_ref().len() + 1 + v.as_ref().len())
                .sum::<usize>()
                + 42,
        );
        let mut spans: Vec<(usize, usize)> = Vec::with_capacity(fields.len() + 1);
        let mut has_boot_id = false;
        for (name, value) in fields {
            let name = name.as_ref();
            if !field_name_valid(name) {
                return Err(JournalError::InvalidField {
                    name: name.to_string(),
                });
            }
            has_boot_id |= name == "_BOOT_ID";
            let start = bytes.len();
            bytes.extend_from_slice(name.as_bytes());
            bytes.push(b'=');
            bytes.extend_from_slice(value.as_ref());
            spans.push((start, bytes.len()));
        }
        if !has_boot_id {
            let start = bytes.len();
            bytes.extend_from_slice(format!("_BOOT_ID={}", time.boot_id).as_bytes());
            spans.push((start, bytes.len()));
        }
        let payload = |i: usize| &bytes[spans[i].0..spans[i].1];
        if self.end.saturating_add(1 << 20) >= u64::from(u32::MAX) {
            // Far below what the format allows, but past what journald lets a file grow.
            return Err(JournalError::FileFull {
                path: self.io.path.clone(),
            });
        }
        if self.header.state != STATE_ONLINE {
            // ONLINE reaches the disk before anything after the last sync does, as journald
            // does it: a crash from here on leaves a file the next open sets aside, never an
            // OFFLINE file with a torn tail that would be appended to.
            self.header.state = STATE_ONLINE;
            self.write_header()?;
            self.io.sync()?;
        }
        // Within a boot, monotonic time never goes back (`journalctl --verify` fails a
        // file where it does): an earlier stamp is raised to the last entry's.
        let mut time = time;
        if self.header.n_entries > 0
            && time.boot_id == self.header.tail_entry_boot_id
            && time.monotonic < self.header.tail_entry_monotonic
        {
            time.monotonic = self.header.tail_entry_monotonic;
        }

        // (data object, index of the payload)
        let mut items: Vec<(DataRef, usize)> = Vec::with_capacity(spans.len());
        let mut xor_hash = 0u64;
        for i in 0..spans.len() {
            let data = self.find_or_append_data(payload(i))?;
            xor_hash ^= data.xor_hash;
            items.push((data, i));
        }
        items.sort_unstable_by_key(|(data, _)| data.offset);
        items.dedup_by_key(|(data, _)| data.offset);

        let seqnum = self.header.tail_entry_seqnum + 1;
        let mut body = Vec::with_capacity(48 + items.len() * 16);
        body.extend_from_slice(&seqnum.to_le_bytes());
        body.extend_from_slice(&time.realtime.to_le_bytes());
        body.extend_from_slice(&time.monotonic.to_le_bytes());
        body.extend_from_slice(&time.boot_id.0);
        body.extend_from_slice(&xor_hash.to_le_bytes());
        for (data, _) in &items {
            body.extend_from_slice(&data.offset.to_le_bytes());
            body.extend_from_slice(&data.hash.to_le_bytes());
        }
        let entry = self.append_object(ObjectType::Entry, &body)?;
        self.link_global(entry)?;
        for (data, i) in &items {
            self.link_data(payload(*i), data, entry)?;
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
        if self.pending.is_full() {
            self.flush()?;
        }
        Ok(seqnum)
    }

    /// Writes the header as OFFLINE and flushes the file to disk: everything appended so
    /// far survives a crash, and a copy of the file is clean. The next append sets it
    /// ONLINE again.
    pub fn sync(&mut self) -> Result<(), JournalError> {
        self.header.state = STATE_OFFLINE;
        self.flush()?;
        self.io.sync()
    }

    /// Syncs and closes (state OFFLINE): the file can be appended to again.
    pub fn close(mut self) -> Result<(), JournalError> {
        self.sync()
    }

    /// Closes as ARCHIVED: the file is never appended to again (before a rotation).
    pub fn archive(mut self) -> Result<Header, JournalError> {
        self.header.state = STATE_ARCHIVED;
        self.flush()?;
        self.io.sync()?;
        Ok(self.header)
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
