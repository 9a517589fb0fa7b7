//! Entries per second written by `JournalDir::append` (flushed every 64 entries, as a
//! collector draining its queue would), with the fields a collector adds to every line,
//! the peak RSS of the process, and the read-back rate; next to systemd's own writer (`systemd-journal-remote` fed the same entries
//! as an export stream, compression off) when it is installed. Prints figures; asserts
//! nothing about speed.
//!
//! `cargo bench -p berth-journal --bench write [-- ENTRIES]`

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Instant;

use berth_journal::{DirConfig, EntryTime, Id128, JournalDir};
mod support;

use support::{fields, vm_hwm_kib};

fn main() {
    let n: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(200_000);
    let machine = Id128::parse("3d1219c7c4c5404aaa1f6d2a48adfda4").unwrap();
    let boot = Id128::parse("0123456789abcdef0123456789abcdef").unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let rss_before = vm_hwm_kib("self");
    let mut jd = JournalDir::open(tmp.path(), machine, &DirConfig::default()).unwrap();
    let start = Instant::now();
    for i in 0..n {
        let t = EntryTime {
            realtime: 1_700_000_000_000_000 + i as u64,
            monotonic: 1 + i as u64,
            boot_id: boot,
        };
        jd.append(t, &fields(i)).unwrap();
        if i % 64 == 63 {
            jd.flush().unwrap();
        }
    }
    jd.close().unwrap();
    let secs = start.elapsed().as_secs_f64();
    let bytes = berth_journal::disk_usage(tmp.path()).unwrap();
    println!(
        "berth-journal write: {n} entries in {secs:.3} s = {:.0} entries/s, {} KiB on disk, \
         peak RSS {} KiB ({} KiB before opening)",
        n as f64 / secs,
        bytes / 1024,
        vm_hwm_kib("self"),
        rss_before
    );
    let start = Instant::now();
    let read = berth_journal::DirEntries::open(tmp.path(), false)
        .unwrap()
        .count();
    let secs = start.elapsed().as_secs_f64();
    println!(
        "berth-journal read (DirEntries, all fields): {read} entries in {secs:.3} s = {:.0} entries/s",
        read as f64 / secs
    );
    if std::path::Path::new("/usr/bin/journalctl").exists() {
        let start = Instant::now();
        let out = Command::new("/usr/bin/journalctl")
            .args(["-D", tmp.path().to_str().unwrap(), "-o", "export"])
            .stdout(Stdio::piped())
            .output()
            .unwrap();
        let secs = start.elapsed().as_secs_f64();
        let count = out.stdout.windows(2).filter(|w| w == b"\n\n").count();
        println!(
            "journalctl -o export of the same directory: {count} entries in {secs:.3} s = {:.0} entries/s",
            count as f64 / secs
        );
    }
    let batch: Vec<_> = (0..n).map(fields).collect();

    let remote = "/lib/systemd/systemd-journal-remote";
    if !std::path::Path::new(remote).exists() {
        println!("systemd-journal-remote not installed: no comparison");
        return;
    }
    let mut export = Vec::new();
    for (i, f) in batch.iter().enumerate() {
        write!(
            export,
            "__REALTIME_TIMESTAMP={}\n__MONOTONIC_TIMESTAMP={}\n_BOOT_ID={boot}\n",
            1_700_000_000_000_000 + i as u64,
            1 + i as u64
        )
        .unwrap();
        for (k, v) in f {
            writeln!(export, "{k}={v}").unwrap();
        }
        export.push(b'\n');
    }
    let out = tmp.path().join("remote.journal");
    let start = Instant::now();
    let mut child = Command::new(remote)
        .env("SYSTEMD_JOURNAL_COMPRESS", "0")
        .args(["-o", out.to_str().unwrap(), "-"])
        .stdin(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&export).unwrap();
    // Its peak is read while it runs; VmHWM only grows, so the last reading is its peak.
    let pid = child.id().to_string();
    let mut remote_hwm = 0;
    let status = loop {
        remote_hwm = remote_hwm.max(vm_hwm_kib(&pid));
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    };
    assert!(status.success());
    let secs = start.elapsed().as_secs_f64();
    println!(
        "systemd-journal-remote (parse + write, same entries): {n} entries in {secs:.3} s = {:.0} entries/s, peak RSS {} KiB",
        n as f64 / secs,
        remote_hwm
    );
}
