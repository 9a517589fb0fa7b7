//! Several journal files as one stream, one entry at a time: a k-way merge over per-file
//! cursors ([`berth_journal::reader::FileEntries`]), each holding only its next entry.
//! The next entry is the smallest (oldest first) or the largest (newest first) by
//! journalctl's own comparison ([`berth_journal::compare_entries`]), ties going to the
//! file listed first, as `berth_journal::DirEntries` orders them. A linear scan over the
//! cursors: a journal directory holds at most a hundred or so files.

use std::cmp::Ordering;

use berth_journal::compare_entries;
use berth_journal::reader::{Direction, FileEntries};

use crate::entry::Entry;

struct Cursor {
    entries: FileEntries,
    next: Option<berth_journal::Entry>,
}

impl Cursor {
    /// Reads the cursor's next entry. Damage the walk cannot go past ends the file's part
    /// (the walk then ends by itself); an entry that cannot be decoded is passed over.
    fn fill(&mut self) {
        while self.next.is_none() {
            match self.entries.next() {
                None => return,
                Some(Ok(e)) => self.next = Some(e),
                Some(Err(_)) => {}
            }
        }
    }
}

/// The merged entries of several files; see the module doc.
pub struct Merge {
    cursors: Vec<Cursor>,
    direction: Direction,
}

impl Merge {
    /// Merges `files`, each going in `direction`.
    pub fn new(files: Vec<FileEntries>, direction: Direction) -> Merge {
        let cursors = files
            .into_iter()
            .map(|entries| {
                let mut c = Cursor {
                    entries,
                    next: None,
                };
                c.fill();
                c
            })
            .collect();
        Merge { cursors, direction }
    }
}

/// journalctl's `Entry` of a file's entry.
pub fn convert(e: berth_journal::Entry) -> Entry {
    Entry {
        cursor: e.cursor(),
        realtime: e.realtime,
        monotonic: e.monotonic,
        boot_id: e.boot_id.to_string(),
        seqnum: e.seqnum,
        fields: e.fields,
    }
}

impl Iterator for Merge {
    type Item = Entry;

    fn next(&mut self) -> Option<Entry> {
        let wanted = match self.direction {
            Direction::Forward => Ordering::Less,
            Direction::Backward => Ordering::Greater,
        };
        let mut best: Option<(usize, &berth_journal::Entry)> = None;
        for (i, c) in self.cursors.iter().enumerate() {
            let Some(e) = &c.next else { continue };
            if best.is_none_or(|(_, b)| compare_entries(e, b) == wanted) {
                best = Some((i, e));
            }
        }
        let i = best?.0;
        let cursor = &mut self.cursors[i];
        let e = cursor.next.take();
        cursor.fill();
        e.map(convert)
    }
}
