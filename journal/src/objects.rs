//! Positional I/O on a journal file and the checks every object access goes through.
//!
//! Both the writer and the reader reach objects only through [`Io::object_header`], which
//! refuses an offset that is unaligned, inside the header or past the end of the file, an
//! unknown or unexpected type and a size that is too small or runs past the end: a
//! damaged file becomes a typed error naming the offset, never a panic or a huge buffer.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;

use crate::error::JournalError;
use crate::format::*;

/// A decoded object header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObjHeader {
    pub type_byte: u8,
    pub flags: u8,
    pub size: u64,
}

impl ObjHeader {
    pub fn encode(ty: ObjectType, size: u64) -> [u8; 16] {
        let mut b = [0u8; 16];
        b[0] = ty as u8;
        b[8..16].copy_from_slice(&size.to_le_bytes());
        b
    }

    pub fn decode(b: &[u8]) -> ObjHeader {
        ObjHeader {
            type_byte: b.first().copied().unwrap_or(0),
            flags: b.get(1).copied().unwrap_or(0),
            size: le64(b, 8),
        }
    }
}

fn type_name(ty: Option<ObjectType>) -> &'static str {
    match ty {
        None => "any",
        Some(ObjectType::Data) => "data",
        Some(ObjectType::Field) => "field",
        Some(ObjectType::Entry) => "entry",
        Some(ObjectType::DataHashTable) => "data hash table",
        Some(ObjectType::FieldHashTable) => "field hash table",
        Some(ObjectType::EntryArray) => "entry array",
        Some(ObjectType::Tag) => "tag",
    }
}

/// A journal file opened for positional reads (and writes, for the writer).
#[derive(Debug)]
pub struct Io {
    pub file: File,
    pub path: PathBuf,
}

impl Io {
    pub fn new(file: File, path: PathBuf) -> Io {
        Io { file, path }
    }

    pub fn bad(&self, offset: u64, what: &'static str, reason: impl Into<String>) -> JournalError {
        JournalError::BadObject {
            path: self.path.clone(),
            offset,
            what,
            reason: reason.into(),
        }
    }

    pub fn write(&self, offset: u64, buf: &[u8]) -> Result<(), JournalError> {
        self.file
            .write_all_at(buf, offset)
            .map_err(|source| JournalError::Write {
                path: self.path.clone(),
                offset,
                source,
            })
    }

    pub fn set_len(&self, len: u64) -> Result<(), JournalError> {
        self.file
            .set_len(len)
            .map_err(|source| JournalError::Write {
                path: self.path.clone(),
                offset: len,
                source,
            })
    }

    pub fn sync(&self) -> Result<(), JournalError> {
        self.file.sync_data().map_err(|source| JournalError::Sync {
            path: self.path.clone(),
            source,
        })
    }

    /// Reads `buf.len()` bytes at `offset`; a short read is an error.
    pub fn read_exact(&self, offset: u64, buf: &mut [u8]) -> Result<(), JournalError> {
        self.file
            .read_exact_at(buf, offset)
            .map_err(|source| JournalError::Read {
                path: self.path.clone(),
                offset,
                source,
            })
    }

    /// Reads up to `buf.len()` bytes at `offset`, fewer at the end of the file; returns
    /// how many.
    pub fn read_prefix(&self, offset: u64, buf: &mut [u8]) -> Result<usize, JournalError> {
        let mut done = 0;
        while done < buf.len() {
            match self.file.read_at(&mut buf[done..], offset + done as u64) {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(source) => {
                    return Err(JournalError::Read {
                        path: self.path.clone(),
                        offset,
                        source,
                    })
                }
            }
        }
        Ok(done)
    }

    pub fn read_u64(&self, offset: u64) -> Result<u64, JournalError> {
        let mut b = [0u8; 8];
        self.read_exact(offset, &mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    /// Reads and checks the file header of a file of `file_len` bytes.
    pub fn read_header(&self, file_len: u64) -> Result<Header, JournalError> {
        let mut b = [0u8; HEADER_SIZE as usize];
        let n = self.read_prefix(0, &mut b)?;
        if n < 8 || b[0..8] != SIGNATURE {
            return Err(JournalError::NotAJournal {
                path: self.path.clone(),
            });
        }
        let h = Header::parse(&b[..n]);
        let bad = |reason: String| JournalError::BadHeader {
            path: self.path.clone(),
            reason,
        };
        if h.header_size < HEADER_SIZE_MIN
            || !h.header_size.is_multiple_of(8)
            || (n as u64) < h.header_size.min(HEADER_SIZE)
        {
            return Err(bad(format!(
                "header size {} (file {file_len} bytes)",
                h.header_size
            )));
        }
        if h.incompatible_flags & !INCOMPAT_READ_SUPPORTED != 0 {
            return Err(JournalError::UnsupportedFlags {
                path: self.path.clone(),
                flags: h.incompatible_flags,
            });
        }
        let end = h
            .header_size
            .checked_add(h.arena_size)
            .ok_or_else(|| bad("arena size overflows".into()))?;
        if end > file_len {
            return Err(bad(format!(
                "header and arena ({end} bytes) exceed the file ({file_len} bytes)"
            )));
        }
        for (name, off, size) in [
            ("data", h.data_hash_table_offset, h.data_hash_table_size),
            ("field", h.field_hash_table_offset, h.field_hash_table_size),
        ] {
            if size < HASH_ITEM_SIZE
                || !size.is_multiple_of(HASH_ITEM_SIZE)
                || off < h.header_size + OBJECT_HEADER_SIZE
                || off.checked_add(size).is_none_or(|e| e > end)
            {
                return Err(bad(format!("{name} hash table at {off} size {size}")));
            }
        }
        Ok(h)
    }

    /// Reads the header of the object at `offset` and checks it against the file: aligned,
    /// inside the file, a known type (`expect` if given), a size that fits.
    pub fn object_header(
        &self,
        offset: u64,
        expect: Option<ObjectType>,
        file_len: u64,
        compact: bool,
    ) -> Result<ObjHeader, JournalError> {
        let what = type_name(expect);
        if !offset.is_multiple_of(8) || offset < HEADER_SIZE_MIN {
            return Err(self.bad(offset, what, "offset is unaligned or inside the header"));
        }
        if offset.saturating_add(OBJECT_HEADER_SIZE) > file_len {
            return Err(JournalError::Truncated {
                path: self.path.clone(),
                offset,
                what,
                file_size: file_len,
            });
        }
        let mut b = [0u8; 16];
        self.read_exact(offset, &mut b)?;
        let o = ObjHeader::decode(&b);
        let Some(ty) = ObjectType::from_u8(o.type_byte) else {
            return Err(self.bad(offset, what, format!("unknown object type {}", o.type_byte)));
        };
        if expect.is_some_and(|e| e != ty) {
            return Err(self.bad(
                offset,
                what,
                format!("found a {} object", type_name(Some(ty))),
            ));
        }
        if o.size < ty.min_size(compact) {
            return Err(self.bad(offset, what, format!("size {} is too small", o.size)));
        }
        if offset.saturating_add(o.size) > file_len {
            return Err(JournalError::Truncated {
                path: self.path.clone(),
                offset,
                what,
                file_size: file_len,
            });
        }
        Ok(o)
    }
}
