//! Damaged files: whatever the cut or the flipped bytes, the reader never panics, ends,
//! and returns only entries that were written (after a truncation: exactly a prefix of
//! them, then at most one error). Opening a directory whose active file is damaged sets
//! it aside and starts a file that works.

mod common;

use std::sync::OnceLock;

use berth_journal::{DirConfig, EntryTime, JournalDir, Reader, Writer, WriterOptions};
use common::*;
use proptest::prelude::*;

struct Sample {
    bytes: Vec<u8>,
    /// Per entry: seqnum, realtime, monotonic and sorted fields (with `_BOOT_ID`).
    entries: Vec<(u64, u64, u64, Fields)>,
}

/// One valid file, made once: 120 entries, small hash tables, two boots.
fn sample() -> &'static Sample {
    static S: OnceLock<Sample> = OnceLock::new();
    S.get_or_init(|| {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("system.journal");
        let mut opts = WriterOptions::new(machine());
        opts.data_hash_buckets = 31;
        opts.field_hash_buckets = 5;
        let mut w = Writer::create(&path, &opts).unwrap();
        let mut written = write_samples(&mut w, 80, boot(BOOT_A), 0);
        written.extend(write_samples(&mut w, 40, boot(BOOT_B), 1 << 30));
        w.close().unwrap();
        let entries = written
            .iter()
            .enumerate()
            .map(|(i, (t, f))| (i as u64 + 1, t.realtime, t.monotonic, with_boot_id(t, f)))
            .collect();
        Sample {
            bytes: std::fs::read(&path).unwrap(),
            entries,
        }
    })
}

/// Reads `bytes` as a file: `Ok` entries as the sample's tuples, and the errors seen.
fn read(bytes: &[u8]) -> (Vec<(u64, u64, u64, Fields)>, usize) {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("damaged.journal");
    std::fs::write(&path, bytes).unwrap();
    let Ok(r) = Reader::open(&path) else {
        return (Vec::new(), 1);
    };
    // Skipping into damage ends too.
    if let Ok(it) = r.entries_from(50, true) {
        // The 70 entries after the 50th, and at most one error where the damage starts.
        assert!(it.take(1_000_000).count() <= 71);
    }
    // Index lookups on damage end too, with a result or an error.
    if let Ok(offsets) =
        r.matching_offsets(&[("PRIORITY", b"3"), ("_PID", b"101"), ("_PID", b"102")])
    {
        for off in offsets {
            let _ = r.entry_at(off, false);
        }
    }
    let mut ok = Vec::new();
    let mut errors = 0;
    // The iterator is bounded by the header's count; cap it anyway so a bug fails here
    // instead of hanging the test.
    for e in r.entries().take(1_000_000) {
        match e {
            Ok(e) => {
                let mut f = e.fields.clone();
                f.sort();
                ok.push((e.seqnum, e.realtime, e.monotonic, f));
            }
            Err(_) => errors += 1,
        }
    }
    (ok, errors)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn truncated_file_reads_as_a_prefix(cut in 0usize..=1 << 20) {
        let s = sample();
        let cut = cut % (s.bytes.len() + 1);
        let (ok, errors) = read(&s.bytes[..cut]);
        prop_assert!(errors <= 1);
        prop_assert_eq!(&ok[..], &s.entries[..ok.len()]);
        if cut == s.bytes.len() {
            prop_assert_eq!(ok.len(), s.entries.len());
        }
    }

    #[test]
    fn flipped_bytes_never_give_unwritten_data(
        flips in proptest::collection::vec((any::<usize>(), 1u8..=255), 1..8)
    ) {
        let s = sample();
        let mut bytes = s.bytes.clone();
        for (at, x) in &flips {
            let n = bytes.len();
            bytes[at % n] ^= x;
        }
        let (ok, _) = read(&bytes);
        prop_assert!(ok.len() <= s.entries.len());
        // Timestamps and seqnums have no checksum in the format, but every value read
        // passed its hash: each entry's fields are those of an entry that was written.
        for (_, _, _, fields) in &ok {
            prop_assert!(s.entries.iter().any(|(_, _, _, f)| f == fields), "{:?}", fields);
        }
    }

    #[test]
    fn damaged_active_file_is_set_aside_and_replaced(cut in 0usize..=1 << 20, flip in any::<(usize, u8)>()) {
        let s = sample();
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join(MACHINE);
        std::fs::create_dir(&dir).unwrap();
        let mut bytes = s.bytes[..cut % (s.bytes.len() + 1)].to_vec();
        if !bytes.is_empty() {
            let n = bytes.len();
            bytes[flip.0 % n] ^= flip.1;
        }
        std::fs::write(dir.join("system.journal"), &bytes).unwrap();
        let mut jd = JournalDir::open(tmp.path(), machine(), &DirConfig::default()).unwrap();
        let t = EntryTime { realtime: 1, monotonic: 1, boot_id: boot(BOOT_A) };
        jd.append(t, &[("MESSAGE", "after")]).unwrap();
        jd.close().unwrap();
        let r = Reader::open(&dir.join("system.journal")).unwrap();
        let all: Vec<_> = r.entries().collect::<Result<_, _>>().unwrap();
        prop_assert_eq!(all.last().unwrap().field("MESSAGE"), Some(&b"after"[..]));
    }
}
