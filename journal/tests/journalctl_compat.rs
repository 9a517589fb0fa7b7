//! Files written by this crate, read by the host's `journalctl` (systemd 252 on Debian 12)
//! and by this crate's reader: both must show the entries that were written, field by field,
//! and `journalctl --verify` must pass.

mod common;

use std::path::Path;

use berth_journal::{list_boots, DirEntries, EntryTime, Reader, Writer, WriterOptions};
use common::*;

/// Written entries, in order: times and the fields (with `_BOOT_ID`), sorted.
fn expected(written: &[(EntryTime, Fields)]) -> Vec<(EntryTime, Fields)> {
    written
        .iter()
        .map(|(t, f)| (*t, with_boot_id(t, f)))
        .collect()
}

/// Writes a file that exercises chaining and collisions: tiny hash tables (every bucket
/// holds a long chain), 3000 entries (eleven global entry arrays, and long per-value
/// arrays for PRIORITY and the unit), binary values and one 64 KiB value.
fn write_big_file(path: &Path) -> Vec<(EntryTime, Fields)> {
    let mut opts = WriterOptions::new(machine());
    opts.data_hash_buckets = 7;
    opts.field_hash_buckets = 3;
    let mut w = Writer::create(path, &opts).unwrap();
    let mut written = write_samples(&mut w, 3000, boot(BOOT_A), 0);
    let large: Vec<u8> = (0..64 * 1024).map(|i| b"abcdefghij\n"[i % 11]).collect();
    let t = EntryTime {
        realtime: 1_800_000_000_000_000,
        monotonic: 9_000_000_000,
        boot_id: boot(BOOT_A),
    };
    let f: Fields = vec![("MESSAGE".into(), large), ("_PID".into(), b"4242".to_vec())];
    w.append(t, &f).unwrap();
    written.push((t, f));
    let h = w.header().clone();
    assert!(h.n_entry_arrays > 11, "{h:?}");
    assert!(h.data_hash_chain_depth > 100, "{h:?}");
    w.close().unwrap();
    written
}

#[test]
fn journalctl_export_matches_reader_and_written_entries() {
    let Some(jctl) = journalctl() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("system.journal");
    let want = expected(&write_big_file(&path));

    // run() fails the test unless journalctl exits 0, which --verify does only on PASS.
    run(&jctl, &["--file", path.to_str().unwrap(), "--verify"]);
    let exported = parse_export(&run(
        &jctl,
        &["--file", path.to_str().unwrap(), "-o", "export"],
    ));
    let r = Reader::open(&path).unwrap();
    let read: Vec<_> = r.entries().collect::<Result<_, _>>().unwrap();
    assert_eq!(exported.len(), want.len());
    assert_eq!(read.len(), want.len());

    for (i, ((t, fields), (e, x))) in want.iter().zip(read.iter().zip(&exported)).enumerate() {
        // The reader agrees with what was written.
        assert_eq!(e.seqnum, i as u64 + 1);
        assert_eq!(
            (e.realtime, e.monotonic, e.boot_id),
            (t.realtime, t.monotonic, t.boot_id)
        );
        let mut mine = e.fields.clone();
        mine.sort();
        assert_eq!(&mine, fields, "entry {i}");
        // journalctl agrees with both: its address fields first, then the data.
        let get = |n: &str| {
            x.iter()
                .find(|(k, _)| k == n)
                .map(|(_, v)| v.clone())
                .unwrap()
        };
        assert_eq!(get("__CURSOR"), e.cursor().into_bytes());
        assert_eq!(
            get("__REALTIME_TIMESTAMP"),
            t.realtime.to_string().into_bytes()
        );
        assert_eq!(
            get("__MONOTONIC_TIMESTAMP"),
            t.monotonic.to_string().into_bytes()
        );
        assert_eq!(get("_BOOT_ID"), t.boot_id.to_string().into_bytes());
        let mut theirs: Fields = x
            .iter()
            .filter(|(k, _)| !k.starts_with("__") && k != "_BOOT_ID")
            .cloned()
            .collect();
        theirs.push(("_BOOT_ID".into(), t.boot_id.to_string().into_bytes()));
        theirs.sort();
        assert_eq!(&theirs, fields, "journalctl entry {i}");
    }
}

/// journalctl's JSON: a string for printable values, an array of bytes otherwise.
fn json_bytes(v: &serde_json::Value) -> Vec<u8> {
    match v {
        serde_json::Value::String(s) => s.clone().into_bytes(),
        serde_json::Value::Array(a) => a.iter().map(|b| b.as_u64().unwrap() as u8).collect(),
        other => panic!("unexpected JSON value {other}"),
    }
}

#[test]
fn journalctl_json_matches_written_entries() {
    let Some(jctl) = journalctl() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("system.journal");
    let want = expected(&write_big_file(&path));
    let out = run(
        &jctl,
        &["--file", path.to_str().unwrap(), "-o", "json", "--all"],
    );
    let lines: Vec<&[u8]> = out
        .split(|&c| c == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    assert_eq!(lines.len(), want.len());
    for (i, (line, (t, fields))) in lines.iter().zip(&want).enumerate() {
        let v: serde_json::Value = serde_json::from_slice(line).unwrap();
        let obj = v.as_object().unwrap();
        assert_eq!(obj["__REALTIME_TIMESTAMP"], t.realtime.to_string());
        let mut theirs: Fields = obj
            .iter()
            .filter(|(k, _)| !k.starts_with("__"))
            .map(|(k, v)| (k.clone(), json_bytes(v)))
            .collect();
        theirs.sort();
        assert_eq!(&theirs, fields, "json entry {i}");
    }
}

#[test]
fn journalctl_matches_unit_pid_and_lists_two_boots() {
    let Some(jctl) = journalctl() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join(MACHINE);
    std::fs::create_dir(&dir).unwrap();
    let mut w =
        Writer::create(&dir.join("system.journal"), &WriterOptions::new(machine())).unwrap();
    let mut written = write_samples(&mut w, 60, boot(BOOT_A), 0);
    written.extend(write_samples(&mut w, 40, boot(BOOT_B), 1_000_000_000));
    w.close().unwrap();
    let d = tmp.path().to_str().unwrap();

    let count = |args: &[&str]| {
        parse_export(&run(&jctl, &[&["-D", d, "-o", "export"], args].concat())).len()
    };
    let is = |f: &Fields, n: &str, v: &str| f.iter().any(|(k, x)| k == n && x == v.as_bytes());
    let unit1 = written
        .iter()
        .filter(|(_, f)| is(f, "_SYSTEMD_UNIT", "unit1.service"))
        .count();
    assert_eq!(count(&["-u", "unit1.service"]), unit1);
    let pid = written.iter().filter(|(_, f)| is(f, "_PID", "102")).count();
    assert_eq!(count(&["_PID=102"]), pid);
    assert_eq!(
        count(&["_PID=102", "_SYSTEMD_UNIT=unit2.service"]),
        written
            .iter()
            .filter(|(_, f)| is(f, "_PID", "102") && is(f, "_SYSTEMD_UNIT", "unit2.service"))
            .count()
    );
    assert_eq!(count(&["-b", BOOT_B]), 40);
    assert_eq!(
        count(&["SYSLOG_IDENTIFIER=berth-test", "-p", "3"]),
        written
            .iter()
            .filter(|(_, f)| { f.iter().any(|(k, v)| k == "PRIORITY" && v[0] <= b'3') })
            .count()
    );

    // The index lookups give what journalctl gives, entry for entry.
    let cursors = |args: &[&str]| -> Vec<Vec<u8>> {
        parse_export(&run(&jctl, &[&["-D", d, "-o", "export"], args].concat()))
            .into_iter()
            .map(|e| e.into_iter().find(|(k, _)| k == "__CURSOR").unwrap().1)
            .collect()
    };
    let mine = |m: &[(&str, &[u8])]| -> Vec<Vec<u8>> {
        DirEntries::open_matching(tmp.path(), m, true)
            .unwrap()
            .map(|e| e.cursor().into_bytes())
            .collect()
    };
    for (args, m) in [
        (
            &["_SYSTEMD_UNIT=unit1.service"][..],
            &[("_SYSTEMD_UNIT", &b"unit1.service"[..])][..],
        ),
        (
            &["_PID=102", "_PID=104"],
            &[("_PID", b"102"), ("_PID", b"104")],
        ),
        (
            &["_PID=102", "_SYSTEMD_UNIT=unit2.service"],
            &[("_PID", b"102"), ("_SYSTEMD_UNIT", b"unit2.service")],
        ),
        (
            &["_BOOT_ID=fedcba9876543210fedcba9876543210"],
            &[("_BOOT_ID", BOOT_B.as_bytes())],
        ),
        (&["_PID=999"], &[("_PID", b"999")]),
    ] {
        let want = cursors(args);
        assert_eq!(mine(m), want, "{args:?}");
        if args != ["_PID=999"] {
            assert!(!want.is_empty(), "{args:?}");
        }
    }

    let listed = String::from_utf8(run(&jctl, &["-D", d, "--list-boots", "--no-pager"])).unwrap();
    let ids: Vec<&str> = listed
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().nth(1))
        .collect();
    assert_eq!(ids, [BOOT_A, BOOT_B], "{listed}");
    let boots = list_boots(tmp.path()).unwrap();
    let mine: Vec<String> = boots.iter().map(|b| b.boot_id.to_string()).collect();
    assert_eq!(mine, [BOOT_A, BOOT_B]);
    assert_eq!((boots[0].entries, boots[1].entries), (60, 40));
    assert_eq!(boots[1].first_realtime, written[60].0.realtime);
    assert_eq!(boots[1].last_realtime, written[99].0.realtime);
}

/// A file made by systemd itself (`systemd-journal-remote`, compact objects, zstd): the
/// reader returns what journalctl shows, and the entry's xor hash (Jenkins lookup3 of
/// each value) matches systemd's, which checks this crate's lookup3.
#[test]
fn reads_a_file_written_by_systemd() {
    let Some(jctl) = journalctl() else { return };
    let remote = Path::new("/lib/systemd/systemd-journal-remote");
    if !remote.exists() {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("/lib/systemd/systemd-journal-remote is missing: apt-get install systemd-journal-remote");
        }
        eprintln!("SKIPPED: systemd-journal-remote is not installed (Debian package systemd-journal-remote)");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let mut export = Vec::new();
    for i in 0..300u64 {
        export.extend_from_slice(format!(
            "__REALTIME_TIMESTAMP={}\n__MONOTONIC_TIMESTAMP={}\n_BOOT_ID={BOOT_A}\nMESSAGE=remote {i}\nPRIORITY={}\n",
            1_700_000_000_000_000 + i, 1000 + i, i % 8
        ).as_bytes());
        if i.is_multiple_of(50) {
            // Large enough to be compressed (journald compresses values over 512 bytes).
            export.extend_from_slice(b"BIG=");
            export.extend(std::iter::repeat_n(b'z', 4000));
            export.push(b'\n');
        }
        export.push(b'\n');
    }
    let file = tmp.path().join("remote.journal");
    for (name, env) in [("zstd", "zstd"), ("xz", "xz")] {
        let path = tmp.path().join(format!("remote-{name}.journal"));
        let mut child = std::process::Command::new(remote)
            .env("SYSTEMD_JOURNAL_COMPRESS", env.to_uppercase())
            .args(["-o", path.to_str().unwrap(), "-"])
            .stdin(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        use std::io::Write;
        child.stdin.take().unwrap().write_all(&export).unwrap();
        assert!(child.wait().unwrap().success());
        if name == "zstd" {
            std::fs::copy(&path, &file).unwrap();
        }
        let r = Reader::open(&path).unwrap();
        let results: Vec<_> = r.entries().collect();
        assert_eq!(results.len(), 300);
        for (i, res) in results.iter().enumerate() {
            match (name, res) {
                ("xz", Err(berth_journal::JournalError::Compressed { algorithm, .. }))
                    if i % 50 == 0 =>
                {
                    assert_eq!(*algorithm, "xz")
                }
                (_, Ok(e)) => assert_eq!(
                    e.field("MESSAGE").unwrap(),
                    format!("remote {i}").as_bytes()
                ),
                (_, other) => panic!("{name} entry {i}: {other:?}"),
            }
        }
    }
    let r = Reader::open(&file).unwrap();
    assert!(r.header().compact() && r.header().keyed_hash());
    let exported = parse_export(&run(
        &jctl,
        &["--file", file.to_str().unwrap(), "-o", "export"],
    ));
    let read: Vec<_> = r.entries().collect::<Result<_, _>>().unwrap();
    assert_eq!(read.len(), exported.len());
    for (e, x) in read.iter().zip(&exported) {
        let cursor = &x.iter().find(|(k, _)| k == "__CURSOR").unwrap().1;
        assert_eq!(e.cursor().as_bytes(), cursor.as_slice());
        let xor = e.fields.iter().fold(0u64, |acc, (k, v)| {
            acc ^ berth_journal::hash::jenkins_hash64(&[k.as_bytes(), b"=", v].concat())
        });
        assert_eq!(xor, e.xor_hash);
        let mut theirs: Fields = x
            .iter()
            .filter(|(k, _)| !k.starts_with("__"))
            .cloned()
            .collect();
        let mut mine = e.fields.clone();
        theirs.sort();
        mine.sort();
        assert_eq!(mine, theirs);
    }
    assert_eq!(read[50].field("BIG").unwrap().len(), 4000);
    let mut prios: Vec<(Vec<u8>, u64)> = r
        .field_values("PRIORITY")
        .unwrap()
        .into_iter()
        .map(|v| (v.value, v.entries))
        .collect();
    prios.sort();
    let want: Vec<(Vec<u8>, u64)> = (0..8u64)
        .map(|p| (p.to_string().into_bytes(), if p < 4 { 38 } else { 37 }))
        .collect();
    assert_eq!(prios, want);
    // Index lookups in a compact file, on a plain and on a compressed value.
    let big = vec![b'z'; 4000];
    for (m, want) in [
        (("PRIORITY", &b"3"[..]), 300 / 8 + 1),
        (("BIG", &big[..]), 6),
    ] {
        let offsets = r.matching_offsets(&[m]).unwrap();
        assert_eq!(offsets.len(), want, "{}", m.0);
        for off in offsets {
            assert_eq!(r.entry_at(off, false).unwrap().field(m.0), Some(m.1));
        }
    }
}

/// Large entry arrays (past the writer's buffered-zeros limit), flushes at uneven points
/// and a reopen in the middle: the file still verifies and reads back in full.
#[test]
fn flushes_reopen_and_large_arrays_verify() {
    let Some(jctl) = journalctl() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("system.journal");
    let mut w = Writer::create(&path, &WriterOptions::new(machine())).unwrap();
    let mut written = Vec::new();
    for i in 0..30_000usize {
        let t = EntryTime {
            realtime: 1_700_000_000_000_000 + i as u64,
            monotonic: 1 + i as u64,
            boot_id: boot(BOOT_A),
        };
        // K repeats 6 times each over 5000 values: more than the writer caches, so its
        // value cache fills and starts over several times.
        let f = vec![
            ("MESSAGE".to_string(), format!("m{i}").into_bytes()),
            ("PRIORITY".into(), b"6".to_vec()),
            ("K".into(), format!("{}", i % 5000).into_bytes()),
        ];
        w.append(t, &f).unwrap();
        written.push(f);
        if i % 997 == 0 {
            w.flush().unwrap();
        }
        if i == 20_000 {
            w.close().unwrap();
            w = Writer::open_append(&path).unwrap();
        }
    }
    w.close().unwrap();
    run(&jctl, &["--file", path.to_str().unwrap(), "--verify"]);
    let n = parse_export(&run(
        &jctl,
        &[
            "--file",
            path.to_str().unwrap(),
            "-o",
            "export",
            "PRIORITY=6",
        ],
    ))
    .len();
    assert_eq!(n, 30_000);
    for k in ["0", "7", "4999"] {
        let m = format!("K={k}");
        let n = parse_export(&run(
            &jctl,
            &["--file", path.to_str().unwrap(), "-o", "export", &m],
        ))
        .len();
        assert_eq!(n, 6, "{m}");
    }
    let r = Reader::open(&path).unwrap();
    let read: Vec<_> = r.entries().collect::<Result<_, _>>().unwrap();
    assert_eq!(read.len(), 30_000);
    for (e, f) in read.iter().zip(&written) {
        assert_eq!(e.field("MESSAGE"), Some(&f[0].1[..]));
    }
    // Starting anywhere: in the first array, across array boundaries, at and past the end.
    for start in [0u64, 1, 3, 4, 17, 5_000, 29_999, 30_000, 40_000] {
        let from: Vec<_> = r
            .entries_from(start, false)
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            from.len() as u64,
            30_000u64.saturating_sub(start),
            "from {start}"
        );
        if let Some(first) = from.first() {
            assert_eq!(first.field("MESSAGE"), Some(format!("m{start}").as_bytes()));
        }
    }
}

/// A reader following a file that is being written: it reopens after each flush and goes
/// on from the number of entries it has read.
#[test]
fn follower_reads_each_entry_once_while_the_file_grows() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("system.journal");
    let mut w = Writer::create(&path, &WriterOptions::new(machine())).unwrap();
    let mut seen = Vec::new();
    for round in 0..20u64 {
        for i in 0..(round * 7) {
            let t = EntryTime {
                realtime: 1_700_000_000_000_000 + round * 1000 + i,
                monotonic: 1 + round * 1000 + i,
                boot_id: boot(BOOT_A),
            };
            w.append(t, &[("MESSAGE", format!("{round}.{i}"))]).unwrap();
        }
        w.flush().unwrap();
        let r = Reader::open(&path).unwrap();
        for e in r.entries_from(seen.len() as u64, false).unwrap() {
            seen.push(String::from_utf8(e.unwrap().field("MESSAGE").unwrap().to_vec()).unwrap());
        }
    }
    let want: Vec<String> = (0..20u64)
        .flat_map(|r| (0..r * 7).map(move |i| format!("{r}.{i}")))
        .collect();
    assert_eq!(seen, want);
    w.close().unwrap();
}

/// A monotonic stamp that goes back within a boot is raised, so the file still verifies;
/// a new boot starts its own monotonic clock.
#[test]
fn monotonic_time_going_back_is_raised_within_a_boot() {
    let Some(jctl) = journalctl() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("system.journal");
    let mut w = Writer::create(&path, &WriterOptions::new(machine())).unwrap();
    for (mono, b) in [(500, BOOT_A), (300, BOOT_A), (100, BOOT_B), (50, BOOT_B)] {
        let t = EntryTime {
            realtime: 1_700_000_000_000_000,
            monotonic: mono,
            boot_id: boot(b),
        };
        w.append(t, &[("MESSAGE", "m")]).unwrap();
    }
    w.close().unwrap();
    run(&jctl, &["--file", path.to_str().unwrap(), "--verify"]);
    let r = Reader::open(&path).unwrap();
    let monos: Vec<u64> = r.entries().map(|e| e.unwrap().monotonic).collect();
    assert_eq!(monos, [500, 500, 100, 100]);
}
