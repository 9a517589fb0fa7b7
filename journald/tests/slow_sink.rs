//! The point of the bounded queue: a sink that does not return (a hung or very slow
//! disk) never stops the readers. The daemon runs in-process with a sink held shut;
//! thousands of syslog datagrams, or a unit's stream lines (after the streams' pause
//! runs out), are all read (the blocking sender would hang otherwise), those beyond the
//! queue's bound are dropped, and once the sink moves again every message is accounted
//! for: written, or counted in "Suppressed N messages".

use berth_journald::config::Config;
use berth_journald::daemon::{self, Options};
use berth_journald::entry::{Entry, EntrySink, SinkError};
use std::io::Write;
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::os::unix::thread::JoinHandleExt;
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

#[derive(Clone, Default)]
struct Gate {
    open: Arc<(Mutex<bool>, Condvar)>,
    entries: Arc<Mutex<Vec<Entry>>>,
}

impl Gate {
    fn open(&self) {
        *self.open.0.lock().unwrap() = true;
        self.open.1.notify_all();
    }
}

impl EntrySink for Gate {
    fn append(&mut self, entry: &Entry) -> Result<(), SinkError> {
        let mut open = self.open.0.lock().unwrap();
        while !*open {
            open = self.open.1.wait(open).unwrap();
        }
        self.entries.lock().unwrap().push(entry.clone());
        Ok(())
    }

    fn sync(&mut self) -> Result<(), SinkError> {
        Ok(())
    }
}

const SENT: usize = 5000;
const STREAM_LINES: usize = 300_000;

fn options(dir: &Path) -> Options {
    Options {
        stdout_socket: Some(dir.join("stdout")),
        native_socket: None,
        syslog_socket: Some(dir.join("dev-log")),
        passed: Vec::new(),
        kmsg: None,
        kmsg_seqnum_file: None,
        machine_id_file: dir.join("machine-id"),
        config: Config {
            rate_limit_burst: 0,
            ..Config::default()
        },
        queue_bytes: 64 * 1024,
        // Short, so that the stream test's pause runs out quickly; how long is not judged.
        stream_pause_usec: 1_000,
    }
}

/// Runs the daemon on a thread, with `feed` sending while the sink is stuck; returns
/// the message texts the sink got, with each report's count, and the summary.
fn with_stuck_sink(feed: impl FnOnce(&Path)) -> (Vec<(String, usize)>, daemon::Summary) {
    let dir = tempfile::tempdir().unwrap();
    let gate = Gate::default();
    let (opts, sink) = (options(dir.path()), gate.clone());
    let open: daemon::OpenSink = Box::new(move || Ok(Box::new(sink)));
    let daemon = std::thread::spawn(move || daemon::run(opts, open));
    let mut bound = false;
    for _ in 0..600 {
        if dir.path().join("dev-log").exists()
            && UnixStream::connect(dir.path().join("stdout")).is_ok()
        {
            bound = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(bound, "the daemon never bound its sockets");
    feed(dir.path());
    gate.open();
    nix::sys::pthread::pthread_kill(daemon.as_pthread_t(), nix::sys::signal::Signal::SIGTERM)
        .unwrap();
    let summary = daemon.join().unwrap().expect("daemon ran");
    let entries = gate.entries.lock().unwrap();
    let text = |e: &Entry, name: &str| {
        String::from_utf8_lossy(e.get(name).unwrap_or_default()).into_owned()
    };
    let got = entries
        .iter()
        .map(|e| {
            (
                text(e, "MESSAGE"),
                text(e, "N_DROPPED").parse().unwrap_or(0),
            )
        })
        .collect();
    (got, summary)
}

fn accounted(got: &[(String, usize)], prefix: &str, source: &str) -> (usize, usize) {
    let written = got.iter().filter(|(m, _)| m.starts_with(prefix)).count();
    let suppressed = got
        .iter()
        .filter(|(m, _)| m.starts_with("Suppressed "))
        .map(|(m, n)| {
            assert!(m.ends_with(&format!("messages from {source}")), "{m}");
            *n
        })
        .sum();
    (written, suppressed)
}

#[test]
fn a_stuck_sink_never_stops_the_readers_and_every_drop_is_counted() {
    let (got, summary) = with_stuck_sink(|dir| {
        let client = UnixDatagram::unbound().unwrap();
        // A reader that stopped would leave this blocking send hanging: fail instead.
        client
            .set_write_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        client.connect(dir.join("dev-log")).unwrap();
        for i in 0..SENT {
            client
                .send(format!("<14>bulk[1]: message {i}").as_bytes())
                .expect("the collector keeps reading while its sink is stuck");
        }
    });
    let (written, suppressed) = accounted(&got, "message ", "syslog");
    assert!(suppressed > 0, "the queue bound was reached: {summary:?}");
    assert!(written > 0);
    assert_eq!(written + suppressed, SENT, "{summary:?}");
    assert_eq!(summary.counts.queue_full as usize, suppressed);
}

#[test]
fn a_stuck_sink_holds_a_stream_only_for_the_pause() {
    let (got, summary) = with_stuck_sink(|dir| {
        let mut unit = UnixStream::connect(dir.join("stdout")).unwrap();
        unit.set_write_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        unit.write_all(b"stuck\nstuck.service\n6\n0\n0\n0\n0\n")
            .unwrap();
        // Far more than the socket buffers hold: a stream never read again would block.
        for i in 0..STREAM_LINES {
            writeln!(unit, "line {i}").expect("the unit is not blocked past the pause");
        }
    });
    let (written, suppressed) = accounted(&got, "line ", "stuck.service");
    assert!(suppressed > 0, "{summary:?}");
    assert_eq!(written + suppressed, STREAM_LINES, "{summary:?}");
}
