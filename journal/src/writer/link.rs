//! How the writer lays objects down and links them: appending (the file grows ahead in
//! steps), hash chains, field lists and entry arrays, with journald's growth rule.
//!
//! Values seen more than once are cached with their object offset and the tail of their entry
//! array chain, so that the common fields of every line (`PRIORITY=6`, `_SYSTEMD_UNIT=`,
//! `_HOSTNAME=`, `_BOOT_ID=`) cost two small writes instead of a hash-chain walk and an
//! entry-array walk each. Only this writer changes the file, so the cache stays true.

use std::collections::HashMap;
use std::hash::BuildHasherDefault;

use super::pending::U64Hasher;

use super::*;

impl Writer {
    pub(super) fn write_header(&mut self) -> Result<(), JournalError> {
        self.header.arena_size = self.file_len.max(self.end) - self.header.header_size;
        let b = self.header.serialize();
        self.io.write(0, &b)
    }

    /// Appends an object with `body` after its 16-byte header; returns its offset.
    pub(super) fn append_object(
        &mut self,
        ty: ObjectType,
        body: &[u8],
    ) -> Result<u64, JournalError> {
        let offset = self.end;
        let size = OBJECT_HEADER_SIZE + body.len() as u64;
        self.reserve(offset + align8(size))?;
        let mut buf = Vec::with_capacity(align8(size) as usize);
        buf.extend_from_slice(&ObjHeader::encode(ty, size));
        buf.extend_from_slice(body);
        buf.resize(align8(size) as usize, 0);
        self.put_new(offset, &buf)?;
        self.finish_object(offset, size);
        Ok(offset)
    }

    /// Appends an object of `size` bytes whose body is zeros (hash tables, entry arrays):
    /// see [`Writer::put_zeroed`].
    pub(super) fn append_zeroed(&mut self, ty: ObjectType, size: u64) -> Result<u64, JournalError> {
        let offset = self.end;
        self.reserve(offset + align8(size))?;
        self.put_zeroed(offset, &ObjHeader::encode(ty, size), size)?;
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

    pub(super) fn append_table(
        &mut self,
        ty: ObjectType,
        buckets: u64,
    ) -> Result<u64, JournalError> {
        self.append_zeroed(ty, OBJECT_HEADER_SIZE + buckets * HASH_ITEM_SIZE)
    }

    /// The data object holding `payload`, appended if new.
    pub(super) fn find_or_append_data(&mut self, payload: &[u8]) -> Result<DataRef, JournalError> {
        let hash = siphash24(payload, &self.header.file_id);
        if let Some(st) = self.cache.data(hash, payload) {
            return Ok(DataRef {
                offset: st.offset,
                hash,
                xor_hash: st.xor_hash,
                cached: Some(st),
            });
        }
        let found = |offset| DataRef {
            offset,
            hash,
            xor_hash: jenkins_hash64(payload),
            cached: None,
        };
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
            return Ok(found(off));
        }
        let name = payload.split(|&c| c == b'=').next().unwrap_or(payload);
        let field = self.find_or_append_field(name)?;
        // Linked at the head of its field's list, as journald does.
        let mut body = vec![0u8; (DATA_HEADER_SIZE - OBJECT_HEADER_SIZE) as usize];
        body[0..8].copy_from_slice(&hash.to_le_bytes());
        body[16..24].copy_from_slice(&field.head_data.to_le_bytes());
        body.extend_from_slice(payload);
        let off = self.append_object(ObjectType::Data, &body)?;
        self.link_into_chain(bucket, off, DATA_NEXT_HASH)?;
        self.header.n_data += 1;
        self.put_u64(field.offset + FIELD_HEAD_DATA, off)?;
        self.cache.put_field(
            name,
            FieldState {
                head_data: off,
                ..field
            },
        );
        Ok(found(off))
    }

    fn find_or_append_field(&mut self, name: &[u8]) -> Result<FieldState, JournalError> {
        if let Some(f) = self.cache.fields.get(name) {
            return Ok(*f);
        }
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
            let head_data = self.get_u64(off + FIELD_HEAD_DATA)?;
            return Ok(FieldState {
                offset: off,
                head_data,
            });
        }
        let mut body = vec![0u8; (FIELD_HEADER_SIZE - OBJECT_HEADER_SIZE) as usize];
        body[0..8].copy_from_slice(&hash.to_le_bytes());
        body.extend_from_slice(name);
        let off = self.append_object(ObjectType::Field, &body)?;
        self.link_into_chain(bucket, off, FIELD_NEXT_HASH)?;
        self.header.n_fields += 1;
        Ok(FieldState {
            offset: off,
            head_data: 0,
        })
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
        let mut p = self.get_u64(bucket)?;
        let mut depth = 0u64;
        let limit = self.header.n_objects;
        let mut buf = Vec::new();
        while p != 0 {
            buf.resize((header_size as usize) + payload.len(), 0);
            let o = self.get(p, &mut buf)?;
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
        let tail = self.get_u64(bucket + 8)?;
        if tail != 0 && (tail < self.header.header_size || tail >= off) {
            return Err(self.io.bad(
                bucket,
                "hash table",
                format!("bucket tail {tail} is not an earlier object"),
            ));
        }
        if tail == 0 {
            self.put_u64(bucket, off)?;
        } else {
            self.put_u64(tail + next_at, off)?;
        }
        self.put_u64(bucket + 8, off)
    }

    /// Adds `entry` to the file's entry array chain.
    pub(super) fn link_global(&mut self, entry: u64) -> Result<(), JournalError> {
        match self.tail {
            Some(mut t) if t.used < t.capacity => {
                self.put_u64(t.offset + ENTRY_ARRAY_HEADER_SIZE + t.used * 8, entry)?;
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

    /// Adds `entry` to the entries of `data`, the object holding `payload`.
    pub(super) fn link_data(
        &mut self,
        payload: &[u8],
        data_ref: &DataRef,
        entry: u64,
    ) -> Result<(), JournalError> {
        let mut st = match data_ref.cached {
            Some(st) => st,
            None => self.load_data_state(data_ref)?,
        };
        let data = data_ref.offset;
        if st.n_entries == 0 {
            self.put_u64(data + DATA_ENTRY_OFFSET, entry)?;
        } else {
            // The arrays hold all entries but the inline first.
            match st.tail {
                Some(mut t) if t.used < t.capacity => {
                    self.put_u64(t.offset + ENTRY_ARRAY_HEADER_SIZE + t.used * 8, entry)?;
                    t.used += 1;
                    st.tail = Some(t);
                }
                tail => {
                    let (prev, prev_cap) = tail.map_or((0, 0), |t| (t.offset, t.capacity));
                    let capacity = next_capacity(st.n_entries - 1, prev_cap);
                    let a = self.new_array(capacity, entry, prev)?;
                    if prev == 0 {
                        self.put_u64(data + DATA_ENTRY_ARRAY_OFFSET, a)?;
                    }
                    st.tail = Some(ArrayTail {
                        offset: a,
                        capacity,
                        used: 1,
                    });
                }
            }
        }
        st.n_entries += 1;
        self.put_u64(data + DATA_N_ENTRIES, st.n_entries)?;
        // Cached from its second use on: a value seen once (most messages) would only
        // push out the values that repeat.
        if st.n_entries >= 2 {
            self.cache.put_data(data_ref.hash, payload, st);
        }
        Ok(())
    }

    /// Reads a data object's entry count and finds the tail of its entry array chain.
    fn load_data_state(&self, data_ref: &DataRef) -> Result<DataState, JournalError> {
        let data = data_ref.offset;
        let mut b = [0u8; 24];
        if self.get(data + DATA_ENTRY_OFFSET, &mut b)? < b.len() {
            return Err(self.io.bad(data, "data", "cut short"));
        }
        let (first, n_entries) = (le64(&b, 8), le64(&b, 16));
        let mut st = DataState {
            offset: data,
            xor_hash: data_ref.xor_hash,
            n_entries,
            tail: None,
        };
        let (mut a, mut left) = (first, n_entries.saturating_sub(1));
        while a != 0 {
            let mut h = [0u8; 16];
            self.get(a, &mut h)?;
            let o = ObjHeader::decode(&h);
            let size = o.size;
            if !a.is_multiple_of(8)
                || o.type_byte != ObjectType::EntryArray as u8
                || size < ENTRY_ARRAY_HEADER_SIZE
                || a.saturating_add(size) > self.end
            {
                return Err(self.io.bad(a, "entry array", "not a valid entry array"));
            }
            let capacity = (size - ENTRY_ARRAY_HEADER_SIZE) / 8;
            st.tail = Some(ArrayTail {
                offset: a,
                capacity,
                used: left.min(capacity),
            });
            left = left.saturating_sub(capacity);
            let next = self.get_u64(a + ENTRY_ARRAY_NEXT)?;
            if next != 0 && next <= a {
                return Err(self.io.bad(a, "entry array", "the chain goes backwards"));
            }
            a = next;
        }
        if left != 0 {
            return Err(self.io.bad(
                data,
                "data",
                "its entry arrays hold fewer entries than it counts",
            ));
        }
        Ok(st)
    }

    /// Appends an entry array holding `entry` first, linked after `prev` (if any).
    fn new_array(&mut self, capacity: u64, entry: u64, prev: u64) -> Result<u64, JournalError> {
        let a = self.append_zeroed(
            ObjectType::EntryArray,
            ENTRY_ARRAY_HEADER_SIZE + capacity * 8,
        )?;
        self.put_u64(a + ENTRY_ARRAY_HEADER_SIZE, entry)?;
        if prev != 0 {
            self.put_u64(prev + ENTRY_ARRAY_NEXT, a)?;
        }
        self.header.n_entry_arrays += 1;
        Ok(a)
    }
}

/// Fields and values seen recently, with what linking to them needs.
///
/// Values are found by their keyed hash (the data object's own, [`siphash24`] with the
/// file's random id), which appending computes anyway: one hash of each payload per entry,
/// and an attacker who logs cannot aim at collisions of a keyed hash.
#[derive(Debug, Default)]
pub(super) struct Cache {
    data: HashMap<u64, (Vec<u8>, DataState), BuildHasherDefault<U64Hasher>>,
    fields: HashMap<Vec<u8>, FieldState>,
}

/// Values longer than this are not cached (a message is rarely repeated; the fields that
/// repeat on every line are short).
const CACHED_VALUE_MAX: usize = 256;
/// At most this many values and field names are cached (under 1.5 MiB); when full the
/// cache starts over, and the values that matter are back after a few lines.
const CACHED_VALUES: usize = 4096;
const CACHED_FIELDS: usize = 1024;

impl Cache {
    fn data(&self, hash: u64, payload: &[u8]) -> Option<DataState> {
        match self.data.get(&hash) {
            Some((value, st)) if value == payload => Some(*st),
            _ => None,
        }
    }

    fn put_data(&mut self, hash: u64, payload: &[u8], st: DataState) {
        if let Some((value, slot)) = self.data.get_mut(&hash) {
            // Two values with one 64-bit keyed hash: the first keeps the slot.
            if value == payload {
                *slot = st;
            }
        } else if payload.len() <= CACHED_VALUE_MAX {
            if self.data.len() >= CACHED_VALUES {
                self.data.clear();
            }
            self.data.insert(hash, (payload.to_vec(), st));
        }
    }

    fn put_field(&mut self, name: &[u8], st: FieldState) {
        if let Some(slot) = self.fields.get_mut(name) {
            *slot = st;
        } else {
            if self.fields.len() >= CACHED_FIELDS {
                self.fields.clear();
            }
            self.fields.insert(name.to_vec(), st);
        }
    }
}

/// A data object and the tail of its entry array chain.
#[derive(Debug, Clone, Copy)]
pub(super) struct DataState {
    offset: u64,
    /// [`jenkins_hash64`] of the payload, for the entry's `xor_hash`.
    xor_hash: u64,
    n_entries: u64,
    tail: Option<ArrayTail>,
}

/// A data object an entry is about to point at: where it is, the hash its entry item
/// carries, and its link state when the value was cached.
#[derive(Debug, Clone, Copy)]
pub(super) struct DataRef {
    pub(super) offset: u64,
    pub(super) hash: u64,
    pub(super) xor_hash: u64,
    cached: Option<DataState>,
}

/// A field object and the first data object of its list.
#[derive(Debug, Clone, Copy)]
struct FieldState {
    offset: u64,
    head_data: u64,
}
