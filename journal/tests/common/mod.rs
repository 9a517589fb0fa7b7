//! Helpers shared by the host tests: sample entries, the host's `journalctl`, and a
//! parser of its export format.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use berth_journal::{EntryTime, Id128, Writer};

pub type Fields = Vec<(String, Vec<u8>)>;

pub const MACHINE: &str = "3d1219c7c4c5404aaa1f6d2a48adfda4";
pub const BOOT_A: &str = "0123456789abcdef0123456789abcdef";
pub const BOOT_B: &str = "fedcba9876543210fedcba9876543210";

pub fn machine() -> Id128 {
    Id128::parse(MACHINE).unwrap()
}

pub fn boot(s: &str) -> Id128 {
    Id128::parse(s).unwrap()
}

/// The host's journalctl, or `None` (a failure under `CI=true`).
pub fn journalctl() -> Option<PathBuf> {
    for p in ["/usr/bin/journalctl", "/bin/journalctl"] {
        if Path::new(p).exists() {
            return Some(PathBuf::from(p));
        }
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("journalctl is not installed (Debian package systemd); CI must have it");
    }
    eprintln!("SKIPPED: journalctl is not installed (Debian package systemd)");
    None
}

/// Runs journalctl with `args`; returns stdout, panicking with stderr on failure.
pub fn run(journalctl: &Path, args: &[&str]) -> Vec<u8> {
    let out = Command::new(journalctl).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "journalctl {args:?} failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// One exported entry: all `NAME=value` pairs in output order.
pub fn parse_export(mut b: &[u8]) -> Vec<Fields> {
    let mut entries = Vec::new();
    let mut cur: Fields = Vec::new();
    while !b.is_empty() {
        let nl = b.iter().position(|&c| c == b'\n').unwrap_or(b.len());
        let line = &b[..nl];
        if line.is_empty() {
            if !cur.is_empty() {
                entries.push(std::mem::take(&mut cur));
            }
            b = &b[(nl + 1).min(b.len())..];
            continue;
        }
        if let Some(eq) = line.iter().position(|&c| c == b'=') {
            let name = String::from_utf8(line[..eq].to_vec()).unwrap();
            cur.push((name, line[eq + 1..].to_vec()));
            b = &b[(nl + 1).min(b.len())..];
        } else {
            // Binary field: NAME\n, le64 size, data, \n.
            let name = String::from_utf8(line.to_vec()).unwrap();
            let rest = &b[nl + 1..];
            let size = u64::from_le_bytes(rest[..8].try_into().unwrap()) as usize;
            cur.push((name, rest[8..8 + size].to_vec()));
            b = &rest[8 + size + 1..];
        }
    }
    if !cur.is_empty() {
        entries.push(cur);
    }
    entries
}

/// A deterministic entry with many kinds of field; `i` varies the content.
pub fn sample_fields(i: usize) -> Fields {
    let mut f: Fields = vec![
        (
            "MESSAGE".into(),
            format!("line {i} from the test").into_bytes(),
        ),
        ("PRIORITY".into(), format!("{}", i % 8).into_bytes()),
        (
            "_SYSTEMD_UNIT".into(),
            format!("unit{}.service", i % 3).into_bytes(),
        ),
        ("_PID".into(), format!("{}", 100 + i % 5).into_bytes()),
        ("SYSLOG_IDENTIFIER".into(), b"berth-test".to_vec()),
    ];
    if i.is_multiple_of(7) {
        f.push(("BINARY".into(), vec![0, 1, 2, b'\n', 0xff, b'x', 0]));
    }
    if i.is_multiple_of(11) {
        f.push((
            "MULTI_LINE".into(),
            format!("first\nsecond {i}\n").into_bytes(),
        ));
    }
    f
}

/// Writes `n` sample entries to a new file; returns what was written with the times.
pub fn write_samples(
    w: &mut Writer,
    n: usize,
    boot_id: Id128,
    start: u64,
) -> Vec<(EntryTime, Fields)> {
    let mut out = Vec::new();
    for i in 0..n {
        let t = EntryTime {
            realtime: 1_700_000_000_000_000 + start + i as u64 * 1000,
            monotonic: 5_000_000 + start + i as u64 * 1000,
            boot_id,
        };
        let f = sample_fields(i);
        w.append(t, &f).unwrap();
        out.push((t, f));
    }
    out
}

/// What the reader (and journalctl) should show: the written fields plus `_BOOT_ID`.
pub fn with_boot_id(t: &EntryTime, f: &Fields) -> Fields {
    let mut f = f.clone();
    f.push(("_BOOT_ID".into(), t.boot_id.to_string().into_bytes()));
    f.sort();
    f
}

/// systemd's own journal writer, or `None` (a failure under `CI=true`).
pub fn journal_remote() -> Option<PathBuf> {
    let p = Path::new("/lib/systemd/systemd-journal-remote");
    if p.exists() {
        return Some(p.to_path_buf());
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!(
            "{} is missing: apt-get install systemd-journal-remote",
            p.display()
        );
    }
    eprintln!(
        "SKIPPED: systemd-journal-remote is not installed (Debian package systemd-journal-remote)"
    );
    None
}

/// Has systemd write `export` (journal export format) into a new journal file at `out`.
pub fn remote_write(remote: &Path, out: &Path, export: &[u8], compress: &str) {
    use std::io::Write;
    let mut child = Command::new(remote)
        .env("SYSTEMD_JOURNAL_COMPRESS", compress)
        .args(["-o", out.to_str().unwrap(), "-"])
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(export).unwrap();
    assert!(child.wait().unwrap().success());
}
