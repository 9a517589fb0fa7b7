//! The point of the bounded queue: a sink that does not return (a hung or very slow
//! disk) never stops the readers. The daemon runs in-process with a sink held shut;
//! thousands of syslog datagrams are all read (the blocking sender would hang otherwise),
//! those beyond the queue's bound are dropped, and once the sink moves again every
//! datagram is accounted for: written, or counted in "Suppressed N messages".

use berth_journald::config::Config;
use berth_journald::daemon::{self, Options};
use berth_journald::entry::{Entry, EntrySink, SinkError};
use std::os::unix::net::UnixDatagram;
use std::os::unix::thread::JoinHandleExt;
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

#[test]
fn a_stuck_sink_never_stops_the_readers_and_every_drop_is_counted() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("dev-log");
    let gate = Gate::default();
    let options = Options {
        stdout_socket: None,
        native_socket: None,
        syslog_socket: Some(socket.clone()),
        kmsg: None,
        machine_id_file: dir.path().join("machine-id"),
        config: Config {
            rate_limit_burst: 0,
            ..Config::default()
        },
        queue_bytes: 64 * 1024,
        stream_pause_usec: 1_000_000,
    };
    let sink = gate.clone();
    let daemon = std::thread::spawn(move || daemon::run(options, Box::new(sink)));

    let client = UnixDatagram::unbound().unwrap();
    // A reader that stopped would leave this blocking send hanging: fail instead.
    client
        .set_write_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let mut connected = false;
    for _ in 0..600 {
        if client.connect(&socket).is_ok() {
            connected = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(connected, "the daemon never bound {}", socket.display());
    for i in 0..SENT {
        client
            .send(format!("<14>bulk[1]: message {i}").as_bytes())
            .expect("the collector keeps reading while its sink is stuck");
    }

    gate.open();
    nix::sys::pthread::pthread_kill(daemon.as_pthread_t(), nix::sys::signal::Signal::SIGTERM)
        .unwrap();
    let summary = daemon.join().unwrap().expect("daemon ran");

    let entries = gate.entries.lock().unwrap();
    let message =
        |e: &Entry| String::from_utf8_lossy(e.get("MESSAGE").unwrap_or_default()).into_owned();
    let written = entries
        .iter()
        .filter(|e| message(e).starts_with("message "))
        .count();
    let suppressed: usize = entries
        .iter()
        .filter(|e| message(e).starts_with("Suppressed "))
        .map(|e| {
            let n = String::from_utf8_lossy(e.get("N_DROPPED").unwrap_or_default()).into_owned();
            assert!(
                message(e).ends_with("messages from syslog"),
                "{}",
                message(e)
            );
            n.parse::<usize>().unwrap()
        })
        .sum();
    assert!(suppressed > 0, "the queue bound was reached: {summary:?}");
    assert!(written > 0);
    assert_eq!(written + suppressed, SENT, "{summary:?}");
    assert_eq!(summary.counts.queue_full as usize, suppressed);
}
