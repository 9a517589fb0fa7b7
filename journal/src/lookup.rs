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
