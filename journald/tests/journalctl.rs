//! The export output, turned into a journal file by the host's `systemd-journal-remote`,
//! is read by the host's `journalctl` with the filters operators type (`-u`, `-k`, `-t`,
//! `-p`): the fields the collector writes are the ones journalctl looks for.

mod common;

use berth_testkit::skip_if;
use common::{missing_prerequisite, Daemon};
use std::io::Write;
use std::os::unix::net::UnixDatagram;
use std::process::Command;

const REMOTE: &str = "/lib/systemd/systemd-journal-remote";

fn journalctl(file: &std::path::Path, args: &[&str]) -> Vec<String> {
    let out = Command::new("journalctl")
        .arg("--file")
        .arg(file)
        .args(["--no-pager", "-o", "cat"])
        .args(args)
        .output()
        .expect("journalctl runs");
    assert!(
        out.status.success(),
        "journalctl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn host_journalctl_reads_what_was_collected() {
    skip_if!(missing_prerequisite(&[REMOTE, "journalctl"]));
    let mut daemon = Daemon::start("");
    let mut unit = daemon.stream("web", "web.service", 6, true);
    writeln!(unit, "<4>slow request\nserving").expect("write");
    drop(unit);
    let mut other = daemon.stream("db", "db.service", 6, true);
    writeln!(other, "db up").expect("write");
    drop(other);
    let mut fifo = std::fs::OpenOptions::new()
        .write(true)
        .open(daemon.path("kmsg"))
        .expect("fifo");
    fifo.write_all(b"4,1,7,-;ACPI: something odd\n")
        .expect("write");
    drop(fifo);
    UnixDatagram::unbound()
        .expect("socket")
        .send_to(b"<11>cron[77]: job failed", daemon.path("journal/dev-log"))
        .expect("send");
    let (entries, _) = daemon.stop();
    assert_eq!(entries.len(), 5);

    let journal = daemon.path("x.journal");
    let out = Command::new(REMOTE)
        .arg("-o")
        .arg(&journal)
        .arg(daemon.path("out.export"))
        .output()
        .expect("systemd-journal-remote runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    assert_eq!(
        journalctl(&journal, &["-u", "web.service"]),
        ["slow request", "serving"]
    );
    assert_eq!(journalctl(&journal, &["-u", "db.service"]), ["db up"]);
    assert_eq!(journalctl(&journal, &["-k"]), ["ACPI: something odd"]);
    assert_eq!(journalctl(&journal, &["-t", "cron"]), ["job failed"]);
    // Sources are read in whatever order they became readable: compare as sets.
    let mut warnings = journalctl(&journal, &["-p", "warning"]);
    warnings.sort();
    assert_eq!(
        warnings,
        ["ACPI: something odd", "job failed", "slow request"]
    );
}
