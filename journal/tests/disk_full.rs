//! A full disk, made with RLIMIT_FSIZE (alone in its test binary, since the limit is
//! process-wide): the append that cannot be written fails with a typed write error, the
//! file is given up, and once there is room again the next append starts a new file that
//! continues the seqnums, while the old one stays readable up to where it broke.

mod common;

use berth_journal::{DirConfig, DirEntries, EntryTime, JournalDir, JournalError, Reader};
use common::*;
use nix::sys::resource::{getrlimit, setrlimit, Resource};
use nix::sys::signal::{SigSet, SigmaskHow, Signal};

#[test]
fn full_disk_gives_up_the_file_and_recovers() {
    // The write past the limit then fails with EFBIG instead of killing the process.
    let mut xfsz = SigSet::empty();
    xfsz.add(Signal::SIGXFSZ);
    nix::sys::signal::pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&xfsz), None).unwrap();
    let (soft, hard) = getrlimit(Resource::RLIMIT_FSIZE).unwrap();

    let tmp = tempfile::tempdir().unwrap();
    let config = DirConfig {
        max_use: Some(1 << 30),
        keep_free: Some(0),
        max_file_size: Some(64 << 20),
        max_files: None,
    };
    let mut jd = JournalDir::open(tmp.path(), machine(), &config).unwrap();
    // Room for 1 MiB more than the new file (its hash tables) takes.
    let start = std::fs::metadata(tmp.path().join(MACHINE).join("system.journal"))
        .unwrap()
        .len();
    setrlimit(Resource::RLIMIT_FSIZE, start + (1 << 20), hard).unwrap();
    let mut flushed = 0;
    let mut failed = None;
    for i in 0..100_000usize {
        let t = EntryTime {
            realtime: 1_700_000_000_000_000 + i as u64,
            monotonic: 1 + i as u64,
            boot_id: boot(BOOT_A),
        };
        let r = jd.append(t, &sample_fields(i)).and_then(|_| {
            if i % 10 == 9 {
                jd.flush()?;
                flushed = i + 1;
            }
            Ok(())
        });
        if let Err(e) = r {
            failed = Some((i, e));
            break;
        }
    }
    setrlimit(Resource::RLIMIT_FSIZE, soft, hard).unwrap();
    let (at, err) = failed.expect("the 1 MiB limit was never reached");
    assert!(matches!(err, JournalError::Write { .. }), "{err:?}");

    let t = EntryTime {
        realtime: 1_800_000_000_000_000,
        monotonic: 1,
        boot_id: boot(BOOT_B),
    };
    jd.append(t, &[("MESSAGE", "after the disk had room again")])
        .unwrap();
    let aside = jd.set_aside().to_vec();
    jd.close().unwrap();
    assert_eq!(aside.len(), 1);

    // The old file: everything flushed before the failure, then at most one error.
    let r = Reader::open(&aside[0]).unwrap();
    let old: Vec<_> = r.entries().map_while(Result::ok).collect();
    eprintln!(
        "append {at} failed; {flushed} were flushed; {} read back",
        old.len()
    );
    assert!(
        old.len() >= flushed && old.len() <= at,
        "{} read, {flushed} flushed, failed at {at}",
        old.len()
    );
    for (i, e) in old.iter().enumerate() {
        assert_eq!(
            e.field("MESSAGE").unwrap(),
            format!("line {i} from the test").as_bytes()
        );
    }
    // The new file continues after what the old header counted.
    let merged: Vec<_> = DirEntries::open(tmp.path(), false).unwrap().collect();
    let last = merged.last().unwrap();
    assert_eq!(
        last.field("MESSAGE").unwrap(),
        b"after the disk had room again"
    );
    assert!(last.seqnum > old.last().unwrap().seqnum);
    if let Some(jctl) = journalctl() {
        let active = tmp.path().join(MACHINE).join("system.journal");
        run(&jctl, &["--file", active.to_str().unwrap(), "--verify"]);
        let n = parse_export(&run(
            &jctl,
            &["-D", tmp.path().to_str().unwrap(), "-o", "export"],
        ))
        .len();
        assert_eq!(n, old.len() + 1);
    }
}
