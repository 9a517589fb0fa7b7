//! The journal directory against the host's journalctl: rotation into archived files that
//! journalctl reads in order, the size budget, vacuuming, reopening after a clean close,
//! and files left by a crash (ONLINE, or cut mid-entry) set aside and still readable.

mod common;

use std::path::Path;

use berth_journal::{
    list_files, vacuum_by_size, vacuum_by_time, DirConfig, DirEntries, Entry, EntryTime, FileKind,
    JournalDir, JournalError, Reader,
};
use common::*;

fn config(max_file: u64, max_use: u64) -> DirConfig {
    DirConfig {
        max_use: Some(max_use),
        keep_free: Some(0),
        max_file_size: Some(max_file),
        max_files: None,
    }
}

fn append_samples(jd: &mut JournalDir, range: std::ops::Range<usize>) {
    for i in range {
        let t = EntryTime {
            realtime: 1_700_000_000_000_000 + i as u64 * 1000,
            monotonic: 1_000_000 + i as u64 * 1000,
            boot_id: boot(BOOT_A),
        };
        jd.append(t, &sample_fields(i)).unwrap();
    }
}

/// `MESSAGE` values of all entries journalctl shows for `-D root`, in its order.
fn journalctl_messages(jctl: &Path, root: &Path) -> Vec<String> {
    let out = run(jctl, &["-D", root.to_str().unwrap(), "-o", "export"]);
    parse_export(&out)
        .iter()
        .map(|e| {
            String::from_utf8(e.iter().find(|(k, _)| k == "MESSAGE").unwrap().1.clone()).unwrap()
        })
        .collect()
}

fn message(e: &Entry) -> String {
    String::from_utf8(e.field("MESSAGE").unwrap().to_vec()).unwrap()
}

fn expected_messages(range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| format!("line {i} from the test")).collect()
}

#[test]
fn rotated_files_are_read_in_order_and_verify() {
    let Some(jctl) = journalctl() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let mut jd = JournalDir::open(tmp.path(), machine(), &config(512 << 10, 1 << 30)).unwrap();
    append_samples(&mut jd, 0..5000);
    jd.close().unwrap();

    let files = list_files(tmp.path()).unwrap();
    let archived = files
        .iter()
        .filter(|f| f.kind == FileKind::Archived)
        .count();
    assert!(archived >= 2, "{files:#?}");
    assert_eq!(files.last().unwrap().kind, FileKind::Active);
    // Every file verifies, and journalctl reads them all, in order.
    run(&jctl, &["-D", tmp.path().to_str().unwrap(), "--verify"]);
    assert_eq!(
        journalctl_messages(&jctl, tmp.path()),
        expected_messages(0..5000)
    );
    // So does the reader, file by file in list order, with seqnums continuing.
    let mut seqnums = Vec::new();
    let mut messages = Vec::new();
    for f in &files {
        let r = Reader::open(&f.path).unwrap();
        for e in r.entries() {
            let e = e.unwrap();
            seqnums.push(e.seqnum);
            messages.push(message(&e));
        }
    }
    assert_eq!(messages, expected_messages(0..5000));
    assert_eq!(seqnums, (1..=5000).collect::<Vec<u64>>());
    let merged = DirEntries::open(tmp.path(), false).unwrap();
    assert_eq!(
        merged.map(|e| message(&e)).collect::<Vec<_>>(),
        expected_messages(0..5000)
    );
}

#[test]
fn budget_deletes_the_oldest_archives() {
    let Some(jctl) = journalctl() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let max_use = 2 << 20;
    let mut jd = JournalDir::open(tmp.path(), machine(), &config(512 << 10, max_use)).unwrap();
    append_samples(&mut jd, 0..20000);
    jd.close().unwrap();
    let usage = berth_journal::disk_usage(tmp.path()).unwrap();
    assert!(
        usage <= max_use + (512 << 10) + (256 << 10),
        "usage {usage}"
    );
    // What is left is the newest entries, without a gap.
    let got = journalctl_messages(&jctl, tmp.path());
    assert!(got.len() > 1000 && got.len() < 20000, "{}", got.len());
    assert_eq!(got, expected_messages(20000 - got.len()..20000));
}

#[test]
fn vacuum_by_size_and_time_spare_the_active_file() {
    let tmp = tempfile::tempdir().unwrap();
    let mut jd = JournalDir::open(tmp.path(), machine(), &config(512 << 10, 1 << 30)).unwrap();
    append_samples(&mut jd, 0..6000);
    jd.close().unwrap();
    let before = list_files(tmp.path()).unwrap();
    assert!(before.len() >= 3);
    // Everything older than the second archive's last entry.
    let cutoff = before[1].tail_realtime.unwrap() + 1;
    let gone = vacuum_by_time(tmp.path(), cutoff).unwrap();
    assert_eq!(gone, vec![before[0].path.clone(), before[1].path.clone()]);
    let gone = vacuum_by_size(tmp.path(), 0).unwrap();
    assert_eq!(gone.len(), before.len() - 3);
    let left = list_files(tmp.path()).unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].kind, FileKind::Active);
}

#[test]
fn clean_close_is_appended_to_on_reopen() {
    let Some(jctl) = journalctl() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let mut jd = JournalDir::open(tmp.path(), machine(), &DirConfig::default()).unwrap();
    append_samples(&mut jd, 0..100);
    jd.close().unwrap();
    let mut jd = JournalDir::open(tmp.path(), machine(), &DirConfig::default()).unwrap();
    assert!(jd.set_aside().is_empty());
    append_samples(&mut jd, 100..250);
    jd.close().unwrap();
    assert_eq!(list_files(tmp.path()).unwrap().len(), 1);
    run(&jctl, &["-D", tmp.path().to_str().unwrap(), "--verify"]);
    assert_eq!(
        journalctl_messages(&jctl, tmp.path()),
        expected_messages(0..250)
    );
}

#[test]
fn file_left_online_is_set_aside_and_stays_readable() {
    let Some(jctl) = journalctl() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let mut jd = JournalDir::open(tmp.path(), machine(), &DirConfig::default()).unwrap();
    append_samples(&mut jd, 0..100);
    jd.sync().unwrap();
    append_samples(&mut jd, 100..150);
    jd.flush().unwrap();
    append_samples(&mut jd, 150..160);
    drop(jd); // a crash: never closed, the header still says ONLINE; 150..160 unflushed

    let mut jd = JournalDir::open(tmp.path(), machine(), &DirConfig::default()).unwrap();
    assert_eq!(jd.set_aside().len(), 1);
    let aside = jd.set_aside()[0].clone();
    assert!(aside.to_str().unwrap().ends_with(".journal~"));
    append_samples(&mut jd, 160..200);
    jd.close().unwrap();

    let r = Reader::open(&aside).unwrap();
    let old: Vec<Entry> = r.entries().collect::<Result<_, _>>().unwrap();
    assert_eq!(
        old.iter().map(message).collect::<Vec<_>>(),
        expected_messages(0..150)
    );
    // The new file continues the old one's sequence numbers.
    let new = Reader::open(&tmp.path().join(MACHINE).join("system.journal")).unwrap();
    let first = new.entries().next().unwrap().unwrap();
    assert_eq!((first.seqnum, first.seqnum_id), (151, old[0].seqnum_id));
    // What was flushed before the crash is there; the unflushed 150..160 are not.
    let mut want = expected_messages(0..150);
    want.extend(expected_messages(160..200));
    assert_eq!(journalctl_messages(&jctl, tmp.path()), want);
    let merged = DirEntries::open(tmp.path(), false).unwrap();
    assert_eq!(merged.map(|e| message(&e)).collect::<Vec<_>>(), want);
}

#[test]
fn file_cut_mid_entry_is_set_aside_and_read_up_to_the_cut() {
    let Some(jctl) = journalctl() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let mut jd = JournalDir::open(tmp.path(), machine(), &DirConfig::default()).unwrap();
    append_samples(&mut jd, 0..200);
    jd.close().unwrap();
    let active = tmp.path().join(MACHINE).join("system.journal");
    let cut = {
        let r = Reader::open(&active).unwrap();
        r.entries().nth(150).unwrap().unwrap().offset + 20
    };
    std::fs::OpenOptions::new()
        .write(true)
        .open(&active)
        .unwrap()
        .set_len(cut)
        .unwrap();

    let mut jd = JournalDir::open(tmp.path(), machine(), &DirConfig::default()).unwrap();
    let aside = jd.set_aside()[0].clone();
    append_samples(&mut jd, 200..210);
    jd.close().unwrap();

    let r = Reader::open(&aside).unwrap();
    let results: Vec<_> = r.entries().collect();
    let ok: Vec<String> = results
        .iter()
        .map_while(|e| e.as_ref().ok())
        .map(message)
        .collect();
    assert_eq!(ok, expected_messages(0..150));
    match &results[150] {
        Err(e @ JournalError::BadObject { offset, .. }) => assert_eq!(*offset, cut - 20, "{e}"),
        other => panic!("expected damage at the cut, got {other:?}"),
    }
    assert_eq!(results.len(), 151, "the iteration stops at the damage");
    let mut want = expected_messages(0..150);
    want.extend(expected_messages(200..210));
    assert_eq!(journalctl_messages(&jctl, tmp.path()), want);
    let mut merged = DirEntries::open(tmp.path(), false).unwrap();
    assert_eq!(
        merged.by_ref().map(|e| message(&e)).collect::<Vec<_>>(),
        want
    );
    assert_eq!(merged.errors().len(), 1, "{:?}", merged.errors());
    // The boot list counts what is readable of the cut file, then the new one.
    let boots = berth_journal::list_boots(tmp.path()).unwrap();
    assert_eq!(boots.len(), 1, "{boots:?}");
    assert_eq!(boots[0].entries, 160);
}

/// A sound `system.journal` written by systemd (compact, compressed: not appendable here)
/// is archived under journald's archive name, not set aside as damaged.
#[test]
fn journald_file_in_place_is_archived_not_set_aside() {
    let Some(jctl) = journalctl() else { return };
    let Some(remote) = journal_remote() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join(MACHINE);
    std::fs::create_dir(&dir).unwrap();
    let mut export = Vec::new();
    for i in 0..20u64 {
        export.extend_from_slice(
            format!(
                "__REALTIME_TIMESTAMP={}\n__MONOTONIC_TIMESTAMP={}\n_BOOT_ID={BOOT_B}\nMESSAGE=journald {i}\n\n",
                1_600_000_000_000_000 + i,
                1 + i
            )
            .as_bytes(),
        );
    }
    remote_write(&remote, &dir.join("system.journal"), &export, "1");
    let mut jd = JournalDir::open(tmp.path(), machine(), &DirConfig::default()).unwrap();
    assert!(jd.set_aside().is_empty());
    append_samples(&mut jd, 0..10);
    jd.close().unwrap();
    let files = list_files(tmp.path()).unwrap();
    assert_eq!(
        files.iter().map(|f| f.kind).collect::<Vec<_>>(),
        [FileKind::Archived, FileKind::Active]
    );
    let mut want: Vec<String> = (0..20).map(|i| format!("journald {i}")).collect();
    want.extend(expected_messages(0..10));
    assert_eq!(journalctl_messages(&jctl, tmp.path()), want);
    let merged = DirEntries::open(tmp.path(), false).unwrap();
    assert_eq!(merged.map(|e| message(&e)).collect::<Vec<_>>(), want);
}

#[test]
fn max_files_keeps_the_newest_archives() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = DirConfig {
        max_files: Some(2),
        ..config(512 << 10, 1 << 30)
    };
    let mut jd = JournalDir::open(tmp.path(), machine(), &cfg).unwrap();
    append_samples(&mut jd, 0..8000);
    jd.close().unwrap();
    let files = list_files(tmp.path()).unwrap();
    let kinds: Vec<FileKind> = files.iter().map(|f| f.kind).collect();
    assert_eq!(
        kinds,
        [FileKind::Archived, FileKind::Archived, FileKind::Active]
    );
    let merged: Vec<String> = DirEntries::open(tmp.path(), false)
        .unwrap()
        .map(|e| message(&e))
        .collect();
    assert_eq!(merged, expected_messages(8000 - merged.len()..8000));
}

/// A power loss can leave entries on disk that the header's last update does not count:
/// the file after them must not reuse their sequence numbers (readers take two entries
/// with one number for one, so the later boot's entries would vanish from view).
#[test]
fn entries_the_stale_header_does_not_count_keep_their_numbers_to_themselves() {
    let tmp = tempfile::tempdir().unwrap();
    let mut jd = JournalDir::open(tmp.path(), machine(), &DirConfig::default()).unwrap();
    append_samples(&mut jd, 0..100);
    jd.sync().unwrap();
    append_samples(&mut jd, 100..101);
    jd.flush().unwrap();
    let active = tmp.path().join(MACHINE).join("system.journal");
    // The header as it was on disk when the power went: ONLINE, 101 entries.
    let stale: Vec<u8> = std::fs::read(&active).unwrap()[..272].to_vec();
    append_samples(&mut jd, 101..150);
    jd.flush().unwrap();
    drop(jd);
    {
        use std::os::unix::fs::FileExt;
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(&active)
            .unwrap();
        f.write_all_at(&stale, 0).unwrap();
    }
    let mut jd = JournalDir::open(tmp.path(), machine(), &DirConfig::default()).unwrap();
    assert_eq!(jd.set_aside().len(), 1);
    append_samples(&mut jd, 150..160);
    jd.close().unwrap();
    let merged: Vec<Entry> = DirEntries::open(tmp.path(), false).unwrap().collect();
    let mut seqnums: Vec<u64> = merged.iter().map(|e| e.seqnum).collect();
    seqnums.dedup();
    assert_eq!(
        seqnums.len(),
        merged.len(),
        "a sequence number was used twice"
    );
    let got: Vec<String> = merged.iter().map(message).collect();
    let tail: Vec<String> = got.iter().rev().take(10).rev().cloned().collect();
    assert_eq!(
        tail,
        expected_messages(150..160),
        "the new boot's entries are all there"
    );
}
