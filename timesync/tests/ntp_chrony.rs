//! The client against Debian's chronyd on loopback: the offset of the host's own clock
//! is small and slewed; a client clock faked a year behind is stepped by a year; a liar
//! is outvoted; the binary's `--dry-run --once` reports the offset and tells a
//! Type=notify service manager it is ready.

mod common;

use std::os::unix::net::UnixDatagram;
use std::process::Command;

use berth_testkit::skip_if;
use berth_timesync::clock::{ClockCall, RecordingClock};
use berth_timesync::ntp::sample::Seconds;
use berth_timesync::ntp::select::SelectError;
use berth_timesync::sync::{Action, Client, Options, SyncError};
use common::{chronyd, Behaviour, Chrony, Responder, YEAR};

/// Offsets against a server on the same host's clock are microseconds; this bound only
/// says "not off by a sizeable fraction of a second".
const SAME_CLOCK: i64 = 50_000_000;

fn quiet(_: &str) {}

fn names(addrs: &[std::net::SocketAddr]) -> Vec<String> {
    addrs.iter().map(|a| a.to_string()).collect()
}

#[test]
fn the_offset_to_local_chrony_is_small_and_slewed() {
    skip_if!(chronyd().err());
    let chrony = Chrony::start(&chronyd().unwrap());
    let clock = RecordingClock::new(Seconds(0));
    let mut client = Client::new(&clock, Options::default(), &quiet);
    let round = client.round(&names(&[chrony.addr])).unwrap();
    let offset = round.selection.chosen.offset;
    assert!(offset.abs().0 < SAME_CLOCK, "offset {offset}");
    assert_eq!(round.selection.chosen.stratum, 8);
    assert_eq!(clock.adjustments(), vec![ClockCall::Slew(offset)]);
}

#[test]
fn a_clock_a_year_behind_is_stepped_by_a_year() {
    skip_if!(chronyd().err());
    let chrony = Chrony::start(&chronyd().unwrap());
    let clock = RecordingClock::new(Seconds(-YEAR));
    let mut client = Client::new(&clock, Options::default(), &quiet);
    let round = client.round(&names(&[chrony.addr])).unwrap();
    let Action::Step(by) = round.action else {
        panic!("expected a step, got {}", round.action);
    };
    assert!((by.0 - YEAR).abs() < SAME_CLOCK, "stepped by {by}");
    // The fake clock moved: the next round only slews what is left.
    let round = client.round(&names(&[chrony.addr])).unwrap();
    assert!(
        matches!(round.action, Action::Slew(s) if s.abs().0 < SAME_CLOCK),
        "{}",
        round.action
    );
    assert_eq!(clock.adjustments().len(), 2);
}

#[test]
fn a_server_lying_by_a_year_is_outvoted() {
    skip_if!(chronyd().err());
    let chrony = Chrony::start(&chronyd().unwrap());
    let honest = Responder::spawn(Behaviour::Honest { bias: 0 });
    let liar = Responder::spawn(Behaviour::Honest { bias: YEAR });
    let clock = RecordingClock::new(Seconds(0));
    let mut client = Client::new(&clock, Options::default(), &quiet);

    let round = client
        .round(&names(&[liar.addr, chrony.addr, honest.addr]))
        .unwrap();
    assert_eq!(round.selection.agreeing, 2);
    assert_eq!(round.selection.falsetickers.len(), 1);
    assert_eq!(round.selection.falsetickers[0].server, liar.addr);
    assert!(matches!(round.action, Action::Slew(s) if s.abs().0 < SAME_CLOCK));

    // Two that disagree: no majority, the clock is left alone.
    let fresh = RecordingClock::new(Seconds(0));
    let mut client = Client::new(&fresh, Options::default(), &quiet);
    let err = client.round(&names(&[chrony.addr, liar.addr])).unwrap_err();
    assert!(
        matches!(err, SyncError::Select(SelectError::NoMajority(_))),
        "{err}"
    );
    assert!(fresh.adjustments().is_empty());
}

#[test]
fn a_lone_server_may_not_step_far_after_the_first_sync() {
    skip_if!(chronyd().err());
    let chrony = Chrony::start(&chronyd().unwrap());
    let liar = Responder::spawn(Behaviour::Honest { bias: YEAR });
    let clock = RecordingClock::new(Seconds(0));
    let mut client = Client::new(&clock, Options::default(), &quiet);
    client.round(&names(&[chrony.addr])).unwrap();
    let err = client.round(&names(&[liar.addr])).unwrap_err();
    assert!(matches!(err, SyncError::Refused { .. }), "{err}");
    assert!(err.to_string().contains("--max-step"), "{err}");
    assert!(clock
        .adjustments()
        .iter()
        .all(|c| matches!(c, ClockCall::Slew(_))));
}

#[test]
fn the_binary_reports_the_offset_and_notifies_readiness() {
    skip_if!(chronyd().err());
    let chrony = Chrony::start(&chronyd().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let socket_path = dir.path().join("notify");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_berth-timesync"))
        .args(["--once", "--dry-run", "--samples", "2", "--server"])
        .arg(chrony.addr.to_string())
        .arg("--servers-file")
        .arg(dir.path().join("none"))
        .env("NOTIFY_SOCKET", &socket_path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    let offset: f64 = stdout
        .split_whitespace()
        .find_map(|f| f.strip_prefix("offset="))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no offset in {stdout:?}"));
    assert!(offset.abs() < SAME_CLOCK as f64 / 1e9, "{stdout}");
    assert!(
        stdout.contains(&format!("server={}", chrony.addr)),
        "{stdout}"
    );
    assert!(
        stderr.contains("dry run: the clock was not changed"),
        "{stderr}"
    );
    let mut buf = [0u8; 256];
    socket.set_nonblocking(true).unwrap();
    let n = socket.recv(&mut buf).expect("a notification was sent");
    let message = String::from_utf8_lossy(&buf[..n]);
    assert!(message.starts_with("READY=1\n"), "{message}");
}

#[test]
fn the_loop_is_ready_after_the_first_sync_then_polls() {
    use berth_timesync::ntp::query::QueryOptions;
    use berth_timesync::servers::ServerList;
    use std::cell::{Cell, RefCell};
    use std::time::Duration;

    skip_if!(chronyd().err());
    let chrony = Chrony::start(&chronyd().unwrap());
    let clock = RecordingClock::new(Seconds(-YEAR));
    let options = Options {
        query: QueryOptions {
            samples: 1,
            ..QueryOptions::default()
        },
        ..Options::default()
    };
    let mut client = Client::new(&clock, options, &quiet);
    // Two rounds against chrony, then the server list empties and the loop ends.
    let rounds = Cell::new(0);
    let servers = || {
        rounds.set(rounds.get() + 1);
        let names = if rounds.get() <= 2 {
            names(&[chrony.addr])
        } else {
            vec![]
        };
        Ok(ServerList {
            names,
            source: "the test".into(),
        })
    };
    let notes = RefCell::new(Vec::new());
    let err = client
        .run(&servers, &|state| notes.borrow_mut().push(state.to_owned()))
        .unwrap_err();
    assert!(matches!(err, SyncError::NoServers(_)), "{err}");
    assert_eq!(
        *notes.borrow(),
        vec![format!("READY=1\nSTATUS=synchronized to {}", chrony.addr)]
    );
    let calls = clock.calls();
    assert_eq!(calls.len(), 4, "{calls:?}");
    assert!(matches!(calls[0], ClockCall::Step(by) if (by.0 - YEAR).abs() < SAME_CLOCK));
    assert_eq!(calls[1], ClockCall::Sleep(Duration::from_secs(64)));
    assert!(matches!(calls[2], ClockCall::Slew(by) if by.abs().0 < SAME_CLOCK));
    assert_eq!(calls[3], ClockCall::Sleep(Duration::from_secs(128)));
}
