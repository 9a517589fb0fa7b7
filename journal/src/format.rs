//! The on-disk layout of a journal file, as systemd's `journal-def.h` and
//! <https://systemd.io/JOURNAL_FILE_FORMAT> define it: the header, the object header and
//! the fixed parts of each object type. Everything is little-endian and every object
//! starts on an 8-byte boundary.
//!
//! Only layout lives here (offsets, sizes, flags, parse and serialize); the writer and the
//! reader decide what to do with it.

use crate::id128::Id128;

/// `"LPKSHHRH"`, the first eight bytes of every journal file.
pub const SIGNATURE: [u8; 8] = *b"LPKSHHRH";

/// The header this crate writes: systemd 254's 272 bytes (252 reads the first 264 and
/// ignores the rest; 254 and later also use `tail_entry_offset`, which is kept right).
pub const HEADER_SIZE: u64 = 272;
/// The oldest header a reader accepts (systemd 187's, up to `n_fields`).
pub const HEADER_SIZE_MIN: u64 = 208;

/// Header `state`.
pub const STATE_OFFLINE: u8 = 0;
pub const STATE_ONLINE: u8 = 1;
pub const STATE_ARCHIVED: u8 = 2;

/// Header incompatible flags.
pub const INCOMPAT_COMPRESSED_XZ: u32 = 1 << 0;
pub const INCOMPAT_COMPRESSED_LZ4: u32 = 1 << 1;
pub const INCOMPAT_KEYED_HASH: u32 = 1 << 2;
pub const INCOMPAT_COMPRESSED_ZSTD: u32 = 1 << 3;
pub const INCOMPAT_COMPACT: u32 = 1 << 4;
/// Every incompatible flag this reader understands (it reads compressed files; entries
/// whose data it cannot decompress are a typed error of their own).
pub const INCOMPAT_READ_SUPPORTED: u32 = INCOMPAT_COMPRESSED_XZ
    | INCOMPAT_COMPRESSED_LZ4
    | INCOMPAT_KEYED_HASH
    | INCOMPAT_COMPRESSED_ZSTD
    | INCOMPAT_COMPACT;

/// Object flags (compression of a data object's payload).
pub const OBJECT_COMPRESSED_XZ: u8 = 1 << 0;
pub const OBJECT_COMPRESSED_LZ4: u8 = 1 << 1;
pub const OBJECT_COMPRESSED_ZSTD: u8 = 1 << 2;

/// Size of the object header (`type`, `flags`, 6 reserved bytes, `size`).
pub const OBJECT_HEADER_SIZE: u64 = 16;
/// Data object: header + hash, next_hash, next_field, entry_offset, entry_array_offset,
/// n_entries; compact files add two le32 tail fields before the payload.
pub const DATA_HEADER_SIZE: u64 = 64;
pub const DATA_HEADER_SIZE_COMPACT: u64 = 72;
/// Field object: header + hash, next_hash, head_data_offset.
pub const FIELD_HEADER_SIZE: u64 = 40;
/// Entry object: header + seqnum, realtime, monotonic, boot_id, xor_hash.
pub const ENTRY_HEADER_SIZE: u64 = 64;
/// Entry array: header + next_entry_array_offset.
pub const ENTRY_ARRAY_HEADER_SIZE: u64 = 24;
/// One hash table bucket: head and tail offsets.
pub const HASH_ITEM_SIZE: u64 = 16;

/// Field offsets inside a data object.
pub const DATA_HASH: u64 = 16;
pub const DATA_NEXT_HASH: u64 = 24;
pub const DATA_NEXT_FIELD: u64 = 32;
pub const DATA_ENTRY_OFFSET: u64 = 40;
pub const DATA_ENTRY_ARRAY_OFFSET: u64 = 48;
pub const DATA_N_ENTRIES: u64 = 56;
/// Field offsets inside a field object.
pub const FIELD_NEXT_HASH: u64 = 24;
pub const FIELD_HEAD_DATA: u64 = 32;
/// Offset of `next_entry_array_offset` inside an entry array.
pub const ENTRY_ARRAY_NEXT: u64 = 16;

/// Object types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ObjectType {
    Data = 1,
    Field = 2,
    Entry = 3,
    DataHashTable = 4,
    FieldHashTable = 5,
    EntryArray = 6,
    Tag = 7,
}

impl ObjectType {
    pub fn from_u8(v: u8) -> Option<Self> {
        Some(match v {
            1 => Self::Data,
            2 => Self::Field,
            3 => Self::Entry,
            4 => Self::DataHashTable,
            5 => Self::FieldHashTable,
            6 => Self::EntryArray,
            7 => Self::Tag,
            _ => return None,
        })
    }

    /// The smallest valid object of this type.
    pub fn min_size(self, compact: bool) -> u64 {
        match self {
            Self::Data if compact => DATA_HEADER_SIZE_COMPACT,
            Self::Data => DATA_HEADER_SIZE,
            Self::Field => FIELD_HEADER_SIZE,
            Self::Entry => ENTRY_HEADER_SIZE,
            Self::DataHashTable | Self::FieldHashTable => OBJECT_HEADER_SIZE,
            Self::EntryArray => ENTRY_ARRAY_HEADER_SIZE,
            Self::Tag => OBJECT_HEADER_SIZE + 16 + 32,
        }
    }
}

/// Rounds up to the next multiple of 8, the alignment of every object.
pub fn align8(v: u64) -> u64 {
    v.saturating_add(7) & !7
}

/// The header's fields, decoded. Fields a shorter (older) header lacks read as zero.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Header {
    pub compatible_flags: u32,
    pub incompatible_flags: u32,
    pub state: u8,
    pub file_id: Id128,
    pub machine_id: Id128,
    pub tail_entry_boot_id: Id128,
    pub seqnum_id: Id128,
    pub header_size: u64,
    pub arena_size: u64,
    pub data_hash_table_offset: u64,
    pub data_hash_table_size: u64,
    pub field_hash_table_offset: u64,
    pub field_hash_table_size: u64,
    pub tail_object_offset: u64,
    pub n_objects: u64,
    pub n_entries: u64,
    pub tail_entry_seqnum: u64,
    pub head_entry_seqnum: u64,
    pub entry_array_offset: u64,
    pub head_entry_realtime: u64,
    pub tail_entry_realtime: u64,
    pub tail_entry_monotonic: u64,
    pub n_data: u64,
    pub n_fields: u64,
    pub n_tags: u64,
    pub n_entry_arrays: u64,
    pub data_hash_chain_depth: u64,
    pub field_hash_chain_depth: u64,
    pub tail_entry_array_offset: u32,
    pub tail_entry_array_n_entries: u32,
    pub tail_entry_offset: u64,
}

pub(crate) fn le64(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    if let Some(s) = b.get(at..at + 8) {
        a.copy_from_slice(s);
    }
    u64::from_le_bytes(a)
}

pub(crate) fn le32(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    if let Some(s) = b.get(at..at + 4) {
        a.copy_from_slice(s);
    }
    u32::from_le_bytes(a)
}

fn id(b: &[u8], at: usize) -> Id128 {
    let mut a = [0u8; 16];
    if let Some(s) = b.get(at..at + 16) {
        a.copy_from_slice(s);
    }
    Id128(a)
}

impl Header {
    /// Decodes the first `HEADER_SIZE` bytes of a file (shorter input reads as zeros past
    /// its end; the caller checks `header_size` and the signature).
    pub fn parse(b: &[u8]) -> Header {
        let header_size = le64(b, 88);
        // Fields beyond the file's own header size are not part of its header.
        let u64_at = |at: usize| {
            if (at as u64) + 8 <= header_size {
                le64(b, at)
            } else {
                0
            }
        };
        let u32_at = |at: usize| {
            if (at as u64) + 4 <= header_size {
                le32(b, at)
            } else {
                0
            }
        };
        Header {
            compatible_flags: le32(b, 8),
            incompatible_flags: le32(b, 12),
            state: b.get(16).copied().unwrap_or(0),
            file_id: id(b, 24),
            machine_id: id(b, 40),
            tail_entry_boot_id: id(b, 56),
            seqnum_id: id(b, 72),
            header_size,
            arena_size: le64(b, 96),
            data_hash_table_offset: le64(b, 104),
            data_hash_table_size: le64(b, 112),
            field_hash_table_offset: le64(b, 120),
            field_hash_table_size: le64(b, 128),
            tail_object_offset: le64(b, 136),
            n_objects: le64(b, 144),
            n_entries: le64(b, 152),
            tail_entry_seqnum: le64(b, 160),
            head_entry_seqnum: le64(b, 168),
            entry_array_offset: le64(b, 176),
            head_entry_realtime: le64(b, 184),
            tail_entry_realtime: le64(b, 192),
            tail_entry_monotonic: le64(b, 200),
            n_data: u64_at(208),
            n_fields: u64_at(216),
            n_tags: u64_at(224),
            n_entry_arrays: u64_at(232),
            data_hash_chain_depth: u64_at(240),
            field_hash_chain_depth: u64_at(248),
            tail_entry_array_offset: u32_at(256),
            tail_entry_array_n_entries: u32_at(260),
            tail_entry_offset: u64_at(264),
        }
    }

    /// Encodes the header as the `HEADER_SIZE` bytes this crate writes.
    pub fn serialize(&self) -> [u8; HEADER_SIZE as usize] {
        let mut b = [0u8; HEADER_SIZE as usize];
        b[0..8].copy_from_slice(&SIGNATURE);
        b[8..12].copy_from_slice(&self.compatible_flags.to_le_bytes());
        b[12..16].copy_from_slice(&self.incompatible_flags.to_le_bytes());
        b[16] = self.state;
        b[24..40].copy_from_slice(&self.file_id.0);
        b[40..56].copy_from_slice(&self.machine_id.0);
        b[56..72].copy_from_slice(&self.tail_entry_boot_id.0);
        b[72..88].copy_from_slice(&self.seqnum_id.0);
        let words = [
            self.header_size,
            self.arena_size,
            self.data_hash_table_offset,
            self.data_hash_table_size,
            self.field_hash_table_offset,
            self.field_hash_table_size,
            self.tail_object_offset,
            self.n_objects,
            self.n_entries,
            self.tail_entry_seqnum,
            self.head_entry_seqnum,
            self.entry_array_offset,
            self.head_entry_realtime,
            self.tail_entry_realtime,
            self.tail_entry_monotonic,
            self.n_data,
            self.n_fields,
            self.n_tags,
            self.n_entry_arrays,
            self.data_hash_chain_depth,
            self.field_hash_chain_depth,
        ];
        for (i, w) in words.iter().enumerate() {
            let at = 88 + i * 8;
            b[at..at + 8].copy_from_slice(&w.to_le_bytes());
        }
        b[256..260].copy_from_slice(&self.tail_entry_array_offset.to_le_bytes());
        b[260..264].copy_from_slice(&self.tail_entry_array_n_entries.to_le_bytes());
        b[264..272].copy_from_slice(&self.tail_entry_offset.to_le_bytes());
        b
    }

    pub fn keyed_hash(&self) -> bool {
        self.incompatible_flags & INCOMPAT_KEYED_HASH != 0
    }

    pub fn compact(&self) -> bool {
        self.incompatible_flags & INCOMPAT_COMPACT != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_field_offsets_match_journal_def_h() {
        let h = Header {
            header_size: HEADER_SIZE,
            state: STATE_ONLINE,
            incompatible_flags: INCOMPAT_KEYED_HASH,
            n_entries: 0x1122_3344_5566_7788,
            tail_entry_array_offset: 0xaabb_ccdd,
            tail_entry_offset: 0x0102_0304_0506_0708,
            ..Header::default()
        };
        let b = h.serialize();
        assert_eq!(&b[0..8], b"LPKSHHRH");
        assert_eq!(b[12], 0x04);
        assert_eq!(b[16], 1);
        assert_eq!(&b[88..96], &[0x10, 0x01, 0, 0, 0, 0, 0, 0]);
        assert_eq!(
            &b[152..160],
            &[0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11]
        );
        assert_eq!(&b[256..260], &[0xdd, 0xcc, 0xbb, 0xaa]);
        assert_eq!(&b[264..272], &[8, 7, 6, 5, 4, 3, 2, 1]);
        assert_eq!(Header::parse(&b), h);
    }

    #[test]
    fn short_header_reads_missing_fields_as_zero() {
        let mut h = Header {
            header_size: 208,
            n_data: 9,
            ..Header::default()
        };
        let b = h.serialize();
        h.n_data = 0;
        assert_eq!(Header::parse(&b), h);
    }

    #[test]
    fn align8_rounds_up() {
        assert_eq!(align8(0), 0);
        assert_eq!(align8(1), 8);
        assert_eq!(align8(64), 64);
        assert_eq!(align8(65), 72);
    }
}
