//! `run` over an in-memory source: boots, filters, `-n`, `-r`, exit statuses.

use super::*;

struct Memory(Vec<Entry>);

impl Source for Memory {
    fn entries(&mut self, direction: Direction) -> Result<Stream<'_>, String> {
        Ok(match direction {
            Direction::Forward => Box::new(self.0.iter().cloned()),
            Direction::Backward => Box::new(self.0.iter().rev().cloned()),
        })
    }
    fn disk_usage(&mut self) -> Result<u64, String> {
        Ok(8 << 20)
    }
    fn vacuum(&mut self, _: Option<u64>, _: Option<u64>) -> Result<Vec<String>, String> {
        Ok(vec![])
    }
}

const B1: &str = "11111111111111111111111111111111";
const B2: &str = "22222222222222222222222222222222";

fn entry(boot: &str, realtime: u64, unit: &str, prio: u8, msg: &str) -> Entry {
    Entry {
        realtime,
        monotonic: realtime % 1_000_000_000,
        boot_id: boot.into(),
        cursor: format!("s=0;i={realtime:x}"),
        seqnum: realtime,
        fields: vec![
            ("_SYSTEMD_UNIT".into(), unit.as_bytes().to_vec()),
            ("PRIORITY".into(), prio.to_string().into_bytes()),
            ("SYSLOG_IDENTIFIER".into(), b"x".to_vec()),
            ("MESSAGE".into(), msg.as_bytes().to_vec()),
        ],
    }
}

fn journal() -> Memory {
    Memory(vec![
        entry(B1, 1_000_000, "a.service", 6, "one"),
        entry(B1, 2_000_000, "b.service", 3, "two"),
        entry(B2, 3_000_000, "a.service", 6, "three"),
        entry(B2, 4_000_000, "a.service", 4, "four"),
    ])
}

fn cat(args: &str, this_boot: Option<&str>) -> (String, String, u8) {
    let argv: Vec<String> = format!("-o cat {args}")
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    let o = args::parse(&argv).expect("parse");
    let mut stdout = Vec::new();
    let out = run(&o, &mut journal(), 10_000_000, this_boot, &mut stdout);
    (
        String::from_utf8_lossy(&stdout).into_owned(),
        out.stderr,
        out.code,
    )
}

#[test]
fn units_boots_priorities_lines_reverse() {
    assert_eq!(cat("-u a", None).0, "one\nthree\nfour\n");
    assert_eq!(cat("-u a -b", None).0, "three\nfour\n");
    assert_eq!(cat("-b -1", None).0, "one\ntwo\n");
    assert_eq!(cat("-b 1", None).0, "one\ntwo\n");
    assert_eq!(cat("-b", Some(B1)).0, "one\ntwo\n");
    assert_eq!(cat(&format!("-b {B2}-1"), None).0, "one\ntwo\n");
    assert_eq!(cat("-p warning", None).0, "two\nfour\n");
    assert_eq!(cat("-n 2 -r", None).0, "four\nthree\n");
    assert_eq!(cat("-g THREE", None).0, "");
    assert_eq!(cat("-g thr", None).0, "three\n");
    assert_eq!(cat("--since @2.5 --until @3.5", None).0, "three\n");
    assert_eq!(cat("_SYSTEMD_UNIT=b.service", None).0, "two\n");
    let (_, err, code) = cat("-b -5", None);
    assert_eq!(code, 1);
    assert!(err.contains("No such boot ID in journal"), "{err}");
    let (_, err, code) = cat("-p loud", None);
    assert_eq!(code, 1, "{err}");
}

#[test]
fn list_boots_counts_back_from_the_last() {
    let o = args::parse(&["--list-boots".to_owned()]).expect("parse");
    let mut stdout = Vec::new();
    run(&o, &mut journal(), 0, None, &mut stdout);
    let out = String::from_utf8(stdout).expect("utf-8");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3);
    assert!(lines[0].starts_with("IDX BOOT ID "), "{out}");
    assert!(
        lines[1].starts_with(&format!(" -1 {B1} Thu 1970-01-01 00:00:01 UTC Thu")),
        "{out}"
    );
    assert!(lines[2].starts_with(&format!("  0 {B2} ")), "{out}");
}

#[test]
fn no_entries_is_said_in_short_formats() {
    let o = args::parse(&["-u".to_owned(), "nope".to_owned()]).expect("parse");
    let mut stdout = Vec::new();
    let out = run(&o, &mut journal(), 0, None, &mut stdout);
    assert_eq!(stdout, b"-- No entries --\n");
    assert_eq!(out.code, 0);
}
