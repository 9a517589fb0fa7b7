//! The daemon's limits, driven by counts, never by time: a unit over its burst is cut
//! off and the rest said as "Suppressed N messages from UNIT" (at shutdown here, since
//! the one-hour window does not end during the test; the window's end is covered by the
//! unit tests with an injected clock), and `LineMax=` cuts long lines.

mod common;

use berth_testkit::skip_if;
use common::{get, missing_prerequisite, Daemon};
use std::io::Write;

#[test]
fn a_unit_over_its_burst_is_suppressed_and_counted() {
    skip_if!(missing_prerequisite(&[]));
    let mut daemon = Daemon::start("[Journal]\nRateLimitIntervalSec=1h\nRateLimitBurst=5\n");
    let mut noisy = daemon.stream("noisy", "noisy.service", 6, false);
    let mut quiet = daemon.stream("quiet", "quiet.service", 6, false);
    for i in 0..20 {
        writeln!(noisy, "noisy {i}").expect("write");
    }
    for i in 0..3 {
        writeln!(quiet, "quiet {i}").expect("write");
    }
    drop((noisy, quiet));
    let (entries, stderr) = daemon.stop();
    let of = |unit: &str| {
        entries
            .iter()
            .filter(|e| get(e, "_SYSTEMD_UNIT") == Some(unit))
            .filter_map(|e| get(e, "MESSAGE"))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        of("noisy.service"),
        ["noisy 0", "noisy 1", "noisy 2", "noisy 3", "noisy 4"]
    );
    assert_eq!(of("quiet.service").len(), 3);
    let reports: Vec<_> = entries
        .iter()
        .filter(|e| get(e, "MESSAGE_ID") == Some("a596d6fe7bfa4994828e72309e95d61e"))
        .collect();
    assert_eq!(reports.len(), 1, "{entries:?}");
    assert_eq!(
        get(reports[0], "MESSAGE"),
        Some("Suppressed 15 messages from noisy.service")
    );
    assert_eq!(get(reports[0], "N_DROPPED"), Some("15"));
    assert_eq!(
        get(reports[0], "OBJECT_SYSTEMD_UNIT"),
        Some("noisy.service")
    );
    assert_eq!(get(reports[0], "_TRANSPORT"), Some("driver"));
    assert!(stderr.contains("15 rate-limited"), "{stderr}");
}

#[test]
fn line_max_cuts_long_lines() {
    skip_if!(missing_prerequisite(&[]));
    let mut daemon = Daemon::start("[Journal]\nLineMax=100\n");
    let mut s = daemon.stream("long", "long.service", 6, false);
    let line: String = (0..250)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    writeln!(s, "{line}").expect("write");
    drop(s);
    let (entries, _) = daemon.stop();
    let parts: Vec<_> = entries
        .iter()
        .filter(|e| get(e, "_SYSTEMD_UNIT") == Some("long.service"))
        .map(|e| (get(e, "MESSAGE").unwrap_or_default(), get(e, "_LINE_BREAK")))
        .collect();
    assert_eq!(
        parts,
        [
            (&line[..100], Some("line-max")),
            (&line[100..200], Some("line-max")),
            (&line[200..], None)
        ]
    );
}
