//! All entries of a journal directory in one order, as `journalctl --directory` shows
//! them: the files are read side by side and the next entry is the smallest by
//! journalctl's own comparison (seqnum within one seqnum domain, else monotonic time
//! within one boot, else wall-clock time, then the xor hash).
//!
//! A file's damage ends that file's part (the error is kept in [`DirEntries::errors`]);
//! the other files go on, as journalctl goes on.

use std::cmp::Ordering;
use std::path::Path;

use crate::error::JournalError;
use crate::files::list_files;
use crate::reader::{Entry, Position, Reader};

/// journalctl's order of two entries (`compare_entries` in sd-journal).
pub fn compare_entries(a: &Entry, b: &Entry) -> Ordering {
    if a.seqnum_id == b.seqnum_id {
        let o = a.seqnum.cmp(&b.seqnum);
        if o != Ordering::Equal {
            return o;
        }
    }
    if a.boot_id == b.boot_id {
        let o = a.monotonic.cmp(&b.monotonic);
        if o != Ordering::Equal {
            return o;
        }
    }
    a.realtime
        .cmp(&b.realtime)
        .then(a.xor_hash.cmp(&b.xor_hash))
}

struct Source {
    reader: Reader,
    pos: Position,
    /// With matches: the matching entries' offsets still to read.
    offsets: Option<std::vec::IntoIter<u64>>,
    next: Option<Entry>,
}

/// Iterator over the entries of every journal file under a directory root.
pub struct DirEntries {
    sources: Vec<Source>,
    errors: Vec<JournalError>,
    headers_only: bool,
}

impl DirEntries {
    /// Opens every journal file under `root` (and its machine-id directories). A file that
    /// cannot be opened is left out, its error kept.
    pub fn open(root: &Path, headers_only: bool) -> Result<DirEntries, JournalError> {
        Self::open_matching(root, &[], headers_only)
    }

    /// Like [`DirEntries::open`], but only the entries matching `matches` (see
    /// [`Reader::matching_offsets`]; none means all), found through each file's index.
    pub fn open_matching(
        root: &Path,
        matches: &[(&str, &[u8])],
        headers_only: bool,
    ) -> Result<DirEntries, JournalError> {
        let mut d = DirEntries {
            sources: Vec::new(),
            errors: Vec::new(),
            headers_only,
        };
        for f in list_files(root)? {
            match Reader::open(&f.path) {
                Ok(reader) => {
                    let offsets = if matches.is_empty() {
                        None
                    } else {
                        match reader.matching_offsets(matches) {
                            Ok(o) => Some(o.into_iter()),
                            Err(e) => {
                                d.errors.push(e);
                                continue;
                            }
                        }
                    };
                    let pos = Position::new(&reader, headers_only);
                    let mut s = Source {
                        reader,
                        pos,
                        offsets,
                        next: None,
                    };
                    d.fill(&mut s);
                    d.sources.push(s);
                }
                Err(e) => d.errors.push(e),
            }
        }
        Ok(d)
    }

    /// Problems met so far: files that could not be opened, damage that ended a file,
    /// entries that could not be decoded.
    pub fn errors(&self) -> &[JournalError] {
        &self.errors
    }

    fn fill(&mut self, s: &mut Source) {
        while s.next.is_none() {
            let step = match &mut s.offsets {
                Some(it) => it
                    .next()
                    .map(|off| s.reader.entry_at(off, self.headers_only)),
                None => s.pos.advance(&s.reader),
            };
            match step {
                None => return,
                Some(Ok(e)) => s.next = Some(e),
                Some(Err(e)) => self.errors.push(e),
            }
        }
    }
}

impl Iterator for DirEntries {
    type Item = Entry;

    fn next(&mut self) -> Option<Entry> {
        let mut best: Option<usize> = None;
        for (i, s) in self.sources.iter().enumerate() {
            let Some(e) = &s.next else { continue };
            let better = match best.and_then(|b| self.sources[b].next.as_ref()) {
                None => true,
                Some(b) => compare_entries(e, b) == Ordering::Less,
            };
            if better {
                best = Some(i);
            }
        }
        let i = best?;
        let mut s = self.sources.swap_remove(i);
        let e = s.next.take();
        self.fill(&mut s);
        self.sources.push(s);
        let last = self.sources.len() - 1;
        self.sources.swap(i, last);
        e
    }
}
