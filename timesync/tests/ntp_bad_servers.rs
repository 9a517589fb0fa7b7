//! Servers that cannot be used: junk, a kiss-o'-death, nobody listening, no server at
//! all. Each ends in an error that names the server and the reason, never a panic.

mod common;

use std::os::unix::net::UnixDatagram;
use std::process::Command;
use std::time::Duration;

use berth_timesync::clock::RecordingClock;
use berth_timesync::ntp::query::{sample_server, QueryError, QueryOptions};
use berth_timesync::ntp::sample::{Reject, Seconds};
use common::{Behaviour, Responder};

fn options() -> QueryOptions {
    QueryOptions {
        samples: 2,
        interval: Duration::ZERO,
        timeout: Duration::from_millis(300),
    }
}

#[test]
fn garbage_is_a_timeout_that_says_what_came() {
    let junk = Responder::spawn(Behaviour::Garbage);
    let clock = RecordingClock::new(Seconds(0));
    let err = sample_server(&clock, junk.addr, &options()).unwrap_err();
    let QueryError::Timeout {
        server,
        last: Some(last),
        ..
    } = &err
    else {
        panic!("{err}");
    };
    assert_eq!(*server, junk.addr);
    // The 48-byte reply to another request came last.
    assert!(last.contains("origin timestamp"), "{err}");
    assert!(clock.adjustments().is_empty());
}

#[test]
fn a_kiss_of_death_stops_the_series() {
    let kod = Responder::spawn(Behaviour::KissOfDeath);
    let clock = RecordingClock::new(Seconds(0));
    let err = sample_server(&clock, kod.addr, &options()).unwrap_err();
    assert!(
        matches!(&err, QueryError::Rejected { reason: Reject::KissOfDeath(code), .. } if code == "RATE"),
        "{err}"
    );
    // It stopped after the first request: no pause for a second one.
    assert!(clock.calls().is_empty(), "{:?}", clock.calls());
}

#[test]
fn the_binary_fails_clearly_on_a_garbage_server() {
    let junk = Responder::spawn(Behaviour::Garbage);
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_berth-timesync"))
        .args([
            "--once",
            "--dry-run",
            "--samples",
            "1",
            "--timeout",
            "0.3",
            "--server",
        ])
        .arg(junk.addr.to_string())
        .arg("--servers-file")
        .arg(dir.path().join("none"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("{}: no usable reply", junk.addr)),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn no_server_outside_a_cloud_is_said_and_readiness_still_sent() {
    let dir = tempfile::tempdir().unwrap();
    let dmi = dir.path().join("dmi");
    std::fs::create_dir(&dmi).unwrap();
    std::fs::write(dmi.join("sys_vendor"), "QEMU\n").unwrap();
    let socket_path = dir.path().join("notify");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_berth-timesync"))
        .arg("--dry-run")
        .arg("--dmi-dir")
        .arg(&dmi)
        .arg("--servers-file")
        .arg(dir.path().join("none"))
        .env("NOTIFY_SOCKET", &socket_path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains("no NTP server to ask (no cloud (sys_vendor \"QEMU\""),
        "{stderr}"
    );
    let mut buf = [0u8; 256];
    socket.set_nonblocking(true).unwrap();
    let n = socket.recv(&mut buf).expect("a notification was sent");
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("READY=1\n"));
}

#[test]
fn nobody_listening_is_an_error_naming_the_server() {
    // A port nobody listens on: the kernel answers with ICMP port unreachable, which
    // the connected socket reports (or, filtered, the wait times out).
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let clock = RecordingClock::new(Seconds(0));
    let err = sample_server(&clock, port, &options()).unwrap_err();
    assert!(err.to_string().starts_with(&format!("{port}: ")), "{err}");
}

#[test]
fn readiness_goes_out_unsynchronized_after_the_ready_timeout() {
    use berth_timesync::clock::ClockCall;
    use berth_timesync::servers::ServerList;
    use berth_timesync::sync::{Client, Options, SyncError};
    use std::cell::{Cell, RefCell};

    let junk = Responder::spawn(Behaviour::Garbage);
    let clock = RecordingClock::new(Seconds(0));
    let options = Options {
        query: QueryOptions {
            samples: 1,
            ..options()
        },
        ready_timeout: Duration::from_secs(5),
        ..Options::default()
    };
    let logged = RefCell::new(Vec::new());
    let log = |line: &str| logged.borrow_mut().push(line.to_owned());
    let mut client = Client::new(&clock, options, &log);
    let rounds = Cell::new(0);
    let servers = || {
        rounds.set(rounds.get() + 1);
        let names = if rounds.get() <= 4 {
            vec![junk.addr.to_string()]
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
    // Retries after 2, 4, 8, 16 s of (virtual) time, the second cut short to wake at the
    // 5 s deadline, when READY=1 goes out, once.
    let calls = clock.calls();
    let sleeps: Vec<Duration> = calls
        .iter()
        .map(|c| match c {
            ClockCall::Sleep(d) => *d,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(sleeps.len(), 4, "{calls:?}");
    assert_eq!(sleeps[0], Duration::from_secs(2), "{calls:?}");
    assert!(sleeps[1] < Duration::from_secs(3), "{calls:?}");
    assert_eq!(
        sleeps[2..],
        [Duration::from_secs(8), Duration::from_secs(16)],
        "{calls:?}"
    );
    assert_eq!(
        *notes.borrow(),
        vec!["READY=1\nSTATUS=not synchronized".to_owned()]
    );
    let logged = logged.borrow();
    assert!(
        logged
            .iter()
            .any(|l| l.contains("not synchronized after 5s")),
        "{logged:?}"
    );
    assert!(
        logged[0].contains(&format!(
            "server {}: {}: no usable reply",
            junk.addr, junk.addr
        )),
        "{logged:?}"
    );
}

/// The ready timeout is kept even when the back-off would sleep past it: with 60 s and
/// retries after 2, 4, 8, 16, 32 s, READY=1 used to wait for the round after the 32 s
/// sleep (past 63 s here, about 90 s with a real server's timeouts, when
/// berth-timesync.service's TimeoutStartSec had killed the client: a node whose cloud time
/// source did not answer never reached multi-user.target).
#[test]
fn readiness_goes_out_at_the_ready_timeout_not_a_back_off_later() {
    use berth_timesync::clock::Clock;
    use berth_timesync::servers::ServerList;
    use berth_timesync::sync::{Client, Options};
    use std::cell::{Cell, RefCell};

    let junk = Responder::spawn(Behaviour::Garbage);
    let clock = RecordingClock::new(Seconds(0));
    let options = Options {
        query: QueryOptions {
            samples: 1,
            ..options()
        },
        ready_timeout: Duration::from_secs(60),
        ..Options::default()
    };
    let log = |_: &str| {};
    let mut client = Client::new(&clock, options, &log);
    let rounds = Cell::new(0);
    let servers = || {
        rounds.set(rounds.get() + 1);
        let names = match rounds.get() <= 6 {
            true => vec![junk.addr.to_string()],
            false => vec![],
        };
        Ok(ServerList {
            names,
            source: "the test".into(),
        })
    };
    let started = clock.monotonic();
    let ready_at = RefCell::new(Vec::new());
    let _ = client.run(&servers, &|state| {
        ready_at
            .borrow_mut()
            .push((state.to_owned(), clock.monotonic() - started))
    });
    let ready_at = ready_at.borrow();
    assert_eq!(ready_at.len(), 1, "{ready_at:?}");
    let (state, at) = &ready_at[0];
    assert_eq!(state, "READY=1\nSTATUS=not synchronized");
    // At the deadline (give or take the real time of the test), not after the next round.
    assert!(
        *at >= Duration::from_secs(60) && *at < Duration::from_secs(61),
        "READY=1 after {at:?}"
    );
}
