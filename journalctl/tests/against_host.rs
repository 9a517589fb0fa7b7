//! Berth's `journalctl` and the host's (systemd 252) on the same journal directory, the
//! same command line, the same output: byte for byte where systemd's output is ordered
//! (export, cat, short-* with TZ=UTC, verbose), as parsed objects for json (whose field
//! order systemd takes from a hash table).

use std::path::Path;
use std::process::Command;

use berth_journal::{DirConfig, EntryTime, Id128, JournalDir};

const MACHINE: &str = "3d1219c7c4c5404aaa1f6d2a48adfda4";
const BOOT_A: &str = "0123456789abcdef0123456789abcdef";
const BOOT_B: &str = "fedcba9876543210fedcba9876543210";
/// 2026-12-04 10:00:00 UTC.
const T0: u64 = 1_796_378_400_000_000;

fn id(s: &str) -> Id128 {
    Id128::parse(s).expect("valid id")
}

/// Two boots of a node: units, PID 1's lines about a unit, the kernel, syslog, priorities,
/// a two-line message and a binary field.
fn write_journal(root: &Path) {
    let mut dir = JournalDir::open(root, id(MACHINE), &DirConfig::default()).expect("open");
    let mut n = 0u64;
    for (boot, base) in [(BOOT_A, T0), (BOOT_B, T0 + 3_600_000_000)] {
        let lines: [(&[(&str, &str)], u64); 7] = [
            (
                &[
                    ("_TRANSPORT", "kernel"),
                    ("SYSLOG_IDENTIFIER", "kernel"),
                    ("PRIORITY", "6"),
                    ("MESSAGE", "Linux version 6.1.0"),
                ],
                1,
            ),
            (
                &[
                    ("_TRANSPORT", "stdout"),
                    ("_SYSTEMD_UNIT", "berth-runtime.service"),
                    ("SYSLOG_IDENTIFIER", "berth-runtime"),
                    ("_PID", "312"),
                    ("PRIORITY", "6"),
                    ("MESSAGE", "CRI socket ready"),
                ],
                2,
            ),
            (
                &[
                    ("_TRANSPORT", "stdout"),
                    ("_SYSTEMD_UNIT", "berth-runtime.service"),
                    ("SYSLOG_IDENTIFIER", "berth-runtime"),
                    ("_PID", "312"),
                    ("PRIORITY", "3"),
                    ("MESSAGE", "pull failed:\nregistry unreachable"),
                ],
                3,
            ),
            (
                &[
                    ("_TRANSPORT", "journal"),
                    ("_PID", "1"),
                    ("UNIT", "berth-runtime.service"),
                    ("SYSLOG_IDENTIFIER", "berth-init"),
                    ("PRIORITY", "5"),
                    ("MESSAGE", "Started berth-runtime.service"),
                ],
                4,
            ),
            (
                &[
                    ("_TRANSPORT", "syslog"),
                    ("SYSLOG_IDENTIFIER", "logger"),
                    ("SYSLOG_PID", "77"),
                    ("_PID", "77"),
                    ("PRIORITY", "4"),
                    ("MESSAGE", "hello from logger"),
                ],
                5,
            ),
            (
                &[
                    ("_TRANSPORT", "stdout"),
                    ("_SYSTEMD_UNIT", "kubelet.service"),
                    ("SYSLOG_IDENTIFIER", "kubelet"),
                    ("_PID", "400"),
                    ("PRIORITY", "6"),
                    ("MESSAGE", "node ready"),
                ],
                6,
            ),
            (
                &[
                    ("_TRANSPORT", "kernel"),
                    ("SYSLOG_IDENTIFIER", "kernel"),
                    ("PRIORITY", "4"),
                    ("MESSAGE", "br_netfilter loaded"),
                ],
                7,
            ),
        ];
        for (fields, secs) in lines {
            n += 1;
            let mut all: Vec<(String, Vec<u8>)> = fields
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.as_bytes().to_vec()))
                .collect();
            all.push(("_HOSTNAME".into(), b"node-1".to_vec()));
            all.push(("_MACHINE_ID".into(), MACHINE.as_bytes().to_vec()));
            if n == 3 {
                all.push(("BLOB".into(), vec![0, 1, 2, 0xff]));
            }
            let time = EntryTime {
                realtime: base + secs * 1_000_000 + n,
                monotonic: secs * 1_000_000 + n,
                boot_id: id(boot),
            };
            dir.append(time, &all).expect("append");
        }
    }
    dir.close().expect("close");
}

fn run(program: &str, dir: &Path, args: &[&str]) -> (Vec<u8>, String, i32) {
    let out = Command::new(program)
        .arg("--directory")
        .arg(dir)
        .args(args)
        .env("TZ", "UTC")
        .env("SYSTEMD_COLORS", "0")
        .env("LC_ALL", "C.UTF-8")
        .output()
        .expect("run journalctl");
    (
        out.stdout,
        String::from_utf8_lossy(&out.stderr).into_owned(),
        out.status.code().unwrap_or(-1),
    )
}

fn host() -> Option<&'static str> {
    if Path::new("/usr/bin/journalctl").exists() {
        Some("/usr/bin/journalctl")
    } else {
        berth_testkit::skip("the host's journalctl is missing (Debian package systemd)");
        None
    }
}

const OURS: &str = env!("CARGO_BIN_EXE_journalctl");

#[test]
fn same_output_as_the_hosts_journalctl() {
    let Some(host) = host() else { return };
    let tmp = tempfile::tempdir().expect("tempdir");
    write_journal(tmp.path());
    let shapes: &[&[&str]] = &[
        &["-o", "export"],
        &["-o", "cat"],
        &["-o", "short"],
        &["-o", "short-iso"],
        &["-o", "short-precise"],
        &["-o", "short-monotonic"],
        &["-o", "verbose"],
        &["-u", "berth-runtime", "-o", "cat"],
        &["-u", "berth-*", "-u", "kubelet.service", "-o", "short"],
        &["-b", "-1", "-o", "cat"],
        &["-u", "berth-runtime", "-b", "-1", "-o", "short"],
        &[
            "-u",
            "kubelet",
            "-u",
            "berth-runtime",
            "-n",
            "3",
            "-o",
            "cat",
        ],
        &["-b", "0", "-o", "cat"],
        &["-b", BOOT_A, "-o", "cat"],
        &["-k", "-o", "cat"],
        &["-p", "warning", "-o", "cat"],
        &["-p", "err..warning", "-o", "cat"],
        &["-n", "3", "-o", "cat"],
        &["-r", "-n", "2", "-o", "cat"],
        &["_PID=312", "-o", "cat"],
        &["_PID=312", "_PID=77", "-o", "cat"],
        &["_PID=312", "+", "SYSLOG_IDENTIFIER=kubelet", "-o", "cat"],
        &["SYSLOG_IDENTIFIER=logger", "-o", "cat"],
        &["-t", "kubelet", "-o", "cat"],
        &["-t", "kube*", "-o", "cat"],
        &["-g", "ready", "-o", "cat"],
        &[
            "--since",
            "2026-12-04 11:00:03",
            "--until",
            "2026-12-04 11:00:05",
            "-o",
            "cat",
        ],
        &["--list-boots"],
    ];
    let mut differ = Vec::new();
    for args in shapes {
        let (want, want_err, want_code) = run(host, tmp.path(), args);
        let (got, got_err, got_code) = run(OURS, tmp.path(), args);
        if want != got || want_code != got_code {
            differ.push(format!(
                "journalctl {}:\n--- host (exit {want_code}) {want_err}\n{}\n--- berth (exit {got_code}) {got_err}\n{}",
                args.join(" "),
                String::from_utf8_lossy(&want),
                String::from_utf8_lossy(&got)
            ));
        }
    }
    assert!(differ.is_empty(), "{}", differ.join("\n"));
}

/// json: the same objects (systemd orders fields by a hash table, so not the same bytes).
#[test]
fn same_json_objects_as_the_hosts_journalctl() {
    let Some(host) = host() else { return };
    let tmp = tempfile::tempdir().expect("tempdir");
    write_journal(tmp.path());
    for format in ["json", "json-pretty"] {
        let (want, _, _) = run(host, tmp.path(), &["-o", format]);
        let (got, _, _) = run(OURS, tmp.path(), &["-o", format]);
        let parse = |bytes: &[u8]| -> Vec<serde_json::Value> {
            serde_json::Deserializer::from_slice(bytes)
                .into_iter::<serde_json::Value>()
                .collect::<Result<_, _>>()
                .expect("valid json")
        };
        let (want, got) = (parse(&want), parse(&got));
        assert_eq!(want.len(), 14);
        assert_eq!(want, got, "-o {format}");
    }
}

/// A boot that is not there: systemd's message and exit status 1.
#[test]
fn a_missing_boot_is_an_error_like_the_hosts() {
    let Some(host) = host() else { return };
    let tmp = tempfile::tempdir().expect("tempdir");
    write_journal(tmp.path());
    let (_, want_err, want_code) = run(host, tmp.path(), &["-b", "-5"]);
    let (_, got_err, got_code) = run(OURS, tmp.path(), &["-b", "-5"]);
    assert_eq!((want_code, got_code), (1, 1), "{want_err}\n{got_err}");
    assert!(got_err.contains("No such boot ID in journal"), "{got_err}");
}

/// systemd's exit statuses (and the first line of its complaint, the program's name
/// aside) for the failures and the quiet successes people meet, on the same directory.
#[test]
fn same_exit_statuses_as_the_hosts_journalctl() {
    let Some(host) = host() else { return };
    let tmp = tempfile::tempdir().expect("tempdir");
    let journal = tmp.path().join("journal");
    let empty = tmp.path().join("empty");
    std::fs::create_dir_all(&empty).expect("mkdir");
    write_journal(&journal);
    let missing_file = tmp.path().join("missing.journal");
    let missing_file = missing_file.to_str().expect("utf-8 path");
    let missing_dir = tmp.path().join("missing");
    let cases: &[(&str, &Path, &[&str])] = &[
        ("no entries match", &journal, &["_PID=999"]),
        ("no entries match -u", &journal, &["-u", "nope"]),
        ("no entries match -g", &journal, &["-g", "zzzz"]),
        (
            "no entries match --grep -q",
            &journal,
            &["--grep", "zzzz", "-q"],
        ),
        ("bad option", &journal, &["--frob"]),
        ("bad -p", &journal, &["-p", "loud"]),
        ("bad --since", &journal, &["--since", "soon"]),
        ("-b of no boot", &journal, &["-b", "-5"]),
        (
            "-b of no boot ID",
            &journal,
            &["-b", "11111111111111111111111111111111"],
        ),
        ("-D and --file", &journal, &["--file", missing_file]),
        ("-D missing", &missing_dir, &[]),
        ("--list-boots empty", &empty, &["--list-boots"]),
        ("empty journal", &empty, &[]),
        ("-n 0", &journal, &["-n", "0"]),
        ("--vacuum-size=1M", &empty, &["--vacuum-size=1M"]),
        ("--vacuum-size 1G", &empty, &["--vacuum-size", "1G"]),
        ("--vacuum-size=1.5M", &empty, &["--vacuum-size=1.5M"]),
        ("--vacuum-size=0", &empty, &["--vacuum-size=0"]),
        ("--vacuum-size=lots", &empty, &["--vacuum-size=lots"]),
        ("--vacuum-size=-1", &empty, &["--vacuum-size=-1"]),
        ("--vacuum-size no value", &empty, &["--vacuum-size"]),
        ("-o bad", &journal, &["-o", "yaml"]),
        ("bad match", &journal, &["foo"]),
    ];
    let mut differ = Vec::new();
    for (case, dir, args) in cases {
        let (_, want_err, want_code) = run(host, dir, args);
        let (_, got_err, got_code) = run(OURS, dir, args);
        let first = |err: &str, program: &str| {
            err.lines()
                .next()
                .unwrap_or_default()
                .replace(program, "journalctl")
        };
        let (want_line, got_line) = (first(&want_err, host), first(&got_err, OURS));
        if want_code != got_code || want_line != got_line {
            differ.push(format!(
                "{case} ({}): host exit {want_code} {want_line:?}, berth exit {got_code} {got_line:?}",
                args.join(" ")
            ));
        }
    }
    // --file alone (the cases above all pass --directory).
    let file_only = |program: &str| {
        let out = Command::new(program)
            .args(["--file", missing_file, "--no-pager"])
            .output()
            .expect("run journalctl");
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        (
            out.status.code(),
            err.lines().next().unwrap_or_default().to_owned(),
        )
    };
    let (want, got) = (file_only(host), file_only(OURS));
    if want != got {
        differ.push(format!("--file missing: host {want:?}, berth {got:?}"));
    }
    assert!(differ.is_empty(), "{}", differ.join("\n"));
}
