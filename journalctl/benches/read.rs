//! Wall time and peak RSS of Berth's `journalctl` reading a big journal directory, next to
//! the host's systemd `journalctl` on the same directory: all entries (`--no-pager`), and
//! `-n 10`, output thrown away. The journal (two boots, several rotated files) is written
//! with `JournalDir` as the collector writes it, with the fields of `journal`'s write bench.
//! Prints figures; asserts nothing about speed.
//!
//! `cargo bench -p berth-journalctl --bench read [-- ENTRIES [KEEP_DIR]]` (KEEP_DIR: write
//! the journal there and leave it, for `/usr/bin/time -v` by hand).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use berth_journal::{DirConfig, EntryTime, Id128, JournalDir};

#[path = "../../journal/benches/support/mod.rs"]
mod support;

use support::{fields, vm_hwm_kib};

/// `n` entries, the first half in one boot and the rest in another, files rotated at 64 MiB.
fn write(root: &Path, n: usize) {
    let machine = Id128::parse("3d1219c7c4c5404aaa1f6d2a48adfda4").expect("id");
    let boots = [
        Id128::parse("0123456789abcdef0123456789abcdef").expect("id"),
        Id128::parse("fedcba9876543210fedcba9876543210").expect("id"),
    ];
    let config = DirConfig {
        max_use: Some(16 << 30),
        keep_free: Some(0),
        max_file_size: Some(64 << 20),
        max_files: None,
    };
    let mut jd = JournalDir::open(root, machine, &config).expect("open");
    for i in 0..n {
        let t = EntryTime {
            realtime: 1_700_000_000_000_000 + i as u64 * 1000,
            monotonic: 1 + (i % (n / 2).max(1)) as u64 * 1000,
            boot_id: boots[usize::from(i >= n / 2)],
        };
        jd.append(t, &fields(i)).expect("append");
        if i % 64 == 63 {
            jd.flush().expect("flush");
        }
    }
    jd.close().expect("close");
}

/// Runs `program -D root args`, output to /dev/null: (seconds, peak RSS KiB, exit code).
fn measure(program: &str, root: &Path, args: &[&str]) -> (f64, u64, i32) {
    let start = Instant::now();
    let mut child = Command::new(program)
        .arg("-D")
        .arg(root)
        .arg("--no-pager")
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let pid = child.id().to_string();
    let mut hwm = 0;
    let status = loop {
        hwm = hwm.max(vm_hwm_kib(&pid));
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    };
    (
        start.elapsed().as_secs_f64(),
        hwm,
        status.code().unwrap_or(-1),
    )
}

fn main() {
    let mut args = std::env::args().skip(1).filter(|a| a != "--bench");
    let n: usize = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let keep = args.next();
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = keep.as_ref().map_or(tmp.path(), |k| Path::new(k));
    let start = Instant::now();
    write(root, n);
    println!(
        "wrote {n} entries in {:.1} s, {} MiB in {} files",
        start.elapsed().as_secs_f64(),
        berth_journal::disk_usage(root).expect("usage") >> 20,
        berth_journal::list_files(root).expect("files").len()
    );
    let ours = env!("CARGO_BIN_EXE_journalctl");
    let host = "/usr/bin/journalctl";
    for shape in [&[][..], &["-n", "10"], &["-r"], &["-u", "svc3"]] {
        for (name, program) in [("berth", ours), ("host", host)] {
            if !Path::new(program).exists() {
                println!("{name}: {program} missing");
                continue;
            }
            let (secs, kib, code) = measure(program, root, shape);
            println!(
                "{name:5} journalctl -D DIR --no-pager {:10} {secs:7.3} s, peak RSS {kib:7} KiB, exit {code}",
                shape.join(" ")
            );
        }
    }
}
