//! Field matches (`journalctl -u UNIT`, `_PID=`, `-b`) answered through the file's index,
//! as journalctl answers them, instead of reading every entry: the value is found
//! through the data hash table, and its data object lists the entries that hold it.
//!
//! Matches on one field are alternatives (OR), matches on different fields must all hold
//! (AND), journalctl's rule for `FIELD=a FIELD=b OTHER=c`.

use crate::error::JournalError;
use crate::format::*;
use crate::hash::data_hash;
use crate::reader::Reader;

impl Reader {
    /// Offset of the data object holding `payload` (`NAME=value`), if the file has one.
    pub fn find_data(&self, payload: &[u8]) -> Result<Option<u64>, JournalError> {
        let h = self.header();
        let key = h.keyed_hash().then_some(&h.file_id);
        let hash = data_hash(payload, key);
        let buckets = h.data_hash_table_size / HASH_ITEM_SIZE;
        let bucket = h.data_hash_table_offset + (hash % buckets) * HASH_ITEM_SIZE;
        let mut p = self.io().read_u64(bucket)?;
        let mut prev = 0;
        while p != 0 {
            // Chains are appended to, so they only move forward: no loop can hide here.
            if p <= prev {
                return Err(self.io().bad(p, "data", "hash chain goes backwards"));
            }
            let start = if h.compact() {
                DATA_HEADER_SIZE_COMPACT
            } else {
                DATA_HEADER_SIZE
            };
            let o =
                self.io()
                    .object_header(p, Some(ObjectType::Data), self.file_len(), h.compact())?;
            if self.io().read_u64(p + DATA_HASH)? == hash
                && (o.flags != 0 || o.size - start == payload.len() as u64)
                && self.data_payload(p, None)? == payload
            {
                return Ok(Some(p));
            }
            prev = p;
            p = self.io().read_u64(p + DATA_NEXT_HASH)?;
        }
        Ok(None)
    }

    /// Offsets of the entries that hold the data object at `data`, in file order.
    pub fn data_entries(&self, data: u64) -> Result<Vec<u64>, JournalError> {
        let compact = self.header().compact();
        self.io()
            .object_header(data, Some(ObjectType::Data), self.file_len(), compact)?;
        let mut b = [0u8; 24];
        self.io().read_exact(data + DATA_ENTRY_OFFSET, &mut b)?;
        let (inline, mut array, n) = (le64(&b, 0), le64(&b, 8), le64(&b, 16));
        if n == 0 {
            return Ok(Vec::new());
        }
        // Every entry takes more than 8 bytes of file: a larger count is damage.
        if n > self.file_len() / 8 {
            return Err(self.io().bad(data, "data", format!("entry count {n}")));
        }
        let mut out = Vec::with_capacity(n as usize);
        out.push(inline);
        let item = if compact { 4 } else { 8 };
        let mut prev = 0;
        while (out.len() as u64) < n {
            if array == 0 || array <= prev {
                return Err(self.io().bad(
                    data,
                    "data",
                    "entry array chain ends early or goes backwards",
                ));
            }
            let o = self.io().object_header(
                array,
                Some(ObjectType::EntryArray),
                self.file_len(),
                compact,
            )?;
            let take = ((o.size - ENTRY_ARRAY_HEADER_SIZE) / item).min(n - out.len() as u64);
            let mut items = vec![0u8; (take * item) as usize];
            self.io()
                .read_exact(array + ENTRY_ARRAY_HEADER_SIZE, &mut items)?;
            out.extend(items.chunks_exact(item as usize).map(|c| {
                if compact {
                    u64::from(le32(c, 0))
                } else {
                    le64(c, 0)
                }
            }));
            prev = array;
            array = self.io().read_u64(array + ENTRY_ARRAY_NEXT)?;
        }
        if out.windows(2).any(|w| w[0] >= w[1]) {
            return Err(self.io().bad(data, "data", "its entries are out of order"));
        }
        Ok(out)
    }

    /// Offsets of the entries matching all of `matches` (`(FIELD, value)`; alternatives
    /// for one field, all fields required), in file order.
    pub fn matching_offsets(&self, matches: &[(&str, &[u8])]) -> Result<Vec<u64>, JournalError> {
        let mut fields: Vec<&str> = matches.iter().map(|(f, _)| *f).collect();
        fields.sort_unstable();
        fields.dedup();
        let mut result: Option<Vec<u64>> = None;
        for field in fields {
            let mut any: Vec<u64> = Vec::new();
            for (_, value) in matches.iter().filter(|(f, _)| *f == field) {
                let payload = [field.as_bytes(), b"=", value].concat();
                if let Some(d) = self.find_data(&payload)? {
                    any.extend(self.data_entries(d)?);
                }
            }
            any.sort_unstable();
            any.dedup();
            result = Some(match result {
                None => any,
                Some(prev) => intersect(&prev, &any),
            });
        }
        Ok(result.unwrap_or_default())
    }
}

impl Reader {
    /// Every value of field `name` with the number of entries holding it and the offsets
    /// of the first and last of them, through the field's list of data objects
    /// (`journalctl --list-boots`, `-F FIELD`): a few reads per value, whatever the file's
    /// size.
    pub fn field_values(&self, name: &str) -> Result<Vec<FieldValue>, JournalError> {
        let h = self.header();
        let key = h.keyed_hash().then_some(&h.file_id);
        let hash = data_hash(name.as_bytes(), key);
        let buckets = h.field_hash_table_size / HASH_ITEM_SIZE;
        let bucket = h.field_hash_table_offset + (hash % buckets) * HASH_ITEM_SIZE;
        let (mut p, mut prev) = (self.io().read_u64(bucket)?, 0);
        let mut field = None;
        while p != 0 {
            if p <= prev {
                return Err(self.io().bad(p, "field", "hash chain goes backwards"));
            }
            let o = self
                .io()
                .object_header(p, Some(ObjectType::Field), self.file_len(), false)?;
            if o.size == FIELD_HEADER_SIZE + name.len() as u64 {
                let mut b = vec![0u8; name.len()];
                self.io().read_exact(p + FIELD_HEADER_SIZE, &mut b)?;
                if b == name.as_bytes() {
                    field = Some(p);
                    break;
                }
            }
            prev = p;
            p = self.io().read_u64(p + FIELD_NEXT_HASH)?;
        }
        let Some(field) = field else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        let mut d = self.io().read_u64(field + FIELD_HEAD_DATA)?;
        // The list runs from the newest data object to the oldest; bounded by n_data.
        let mut budget = self.header().n_data.min(self.file_len() / DATA_HEADER_SIZE) + 1;
        while d != 0 {
            budget = budget
                .checked_sub(1)
                .ok_or_else(|| self.io().bad(field, "field", "data list loops"))?;
            let payload = self.data_payload(d, None)?;
            let value = payload.get(name.len() + 1..).unwrap_or_default().to_vec();
            let (first, last, n) = self.first_last_entry(d)?;
            if n > 0 {
                out.push(FieldValue {
                    value,
                    entries: n,
                    first_entry: first,
                    last_entry: last,
                });
            }
            d = self.io().read_u64(d + DATA_NEXT_FIELD)?;
        }
        Ok(out)
    }

    /// The first and last entry offsets of a data object and its entry count, walking its
    /// entry array chain by headers only.
    fn first_last_entry(&self, data: u64) -> Result<(u64, u64, u64), JournalError> {
        let compact = self.header().compact();
        let mut b = [0u8; 24];
        self.io().read_exact(data + DATA_ENTRY_OFFSET, &mut b)?;
        let (first, mut array, n) = (le64(&b, 0), le64(&b, 8), le64(&b, 16));
        if n <= 1 {
            return Ok((first, first, n));
        }
        let item = if compact { 4 } else { 8 };
        let (mut left, mut prev) = (n - 1, 0);
        loop {
            if array == 0 || array <= prev {
                return Err(self.io().bad(
                    data,
                    "data",
                    "entry array chain ends early or goes backwards",
                ));
            }
            let o = self.io().object_header(
                array,
                Some(ObjectType::EntryArray),
                self.file_len(),
                compact,
            )?;
            let cap = (o.size - ENTRY_ARRAY_HEADER_SIZE) / item;
            if left <= cap {
                let at = array + ENTRY_ARRAY_HEADER_SIZE + (left - 1) * item;
                let mut v = [0u8; 8];
                self.io().read_exact(at, &mut v[..item as usize])?;
                return Ok((first, u64::from_le_bytes(v), n));
            }
            left -= cap;
            prev = array;
            array = self.io().read_u64(array + ENTRY_ARRAY_NEXT)?;
        }
    }
}

/// One value of a field in a file; see [`Reader::field_values`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldValue {
    pub value: Vec<u8>,
    pub entries: u64,
    pub first_entry: u64,
    pub last_entry: u64,
}

/// Intersection of two sorted lists.
fn intersect(a: &[u64], b: &[u64]) -> Vec<u64> {
    let (mut i, mut j, mut out) = (0, 0, Vec::new());
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                out.push(a[i]);
                i += 1;
                j += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn intersect_keeps_common_offsets() {
        assert_eq!(super::intersect(&[1, 3, 5, 7], &[3, 4, 7, 9]), [3, 7]);
        assert!(super::intersect(&[], &[1]).is_empty());
    }
}
