//! The start-up order: the daemon serves its sockets before its sink is open (the writer
//! thread opens it after READY=1), the entries sent meanwhile are written once it is, and
//! a sink that cannot be opened stops the daemon with an error that counts the entries
//! not written, the kernel log's saved position put back for the next run.

use berth_journald::config::Config;
use berth_journald::daemon::{self, DaemonError, OpenSink, Options};
use berth_journald::entry::{Entry, EntrySink, SinkError};
use std::os::unix::net::UnixDatagram;
use std::os::unix::thread::JoinHandleExt;
use std::path::Path;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const SENT: usize = 50;

#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<Entry>>>);

impl EntrySink for Recorder {
    fn append(&mut self, entry: &Entry) -> Result<(), SinkError> {
        self.0.lock().unwrap().push(entry.clone());
        Ok(())
    }

    fn sync(&mut self) -> Result<(), SinkError> {
        Ok(())
    }
}

fn options(dir: &Path) -> Options {
    Options {
        stdout_socket: None,
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
        queue_bytes: 1 << 20,
        stream_pause_usec: 1_000,
    }
}

/// An opener that waits for the test's word, then gives `result`; also says it started.
fn gated(
    result: Result<Box<dyn EntrySink>, SinkError>,
) -> (OpenSink, mpsc::Sender<()>, mpsc::Receiver<()>) {
    let (go, wait) = mpsc::channel();
    let (started, is_started) = mpsc::channel();
    let open: OpenSink = Box::new(move || {
        let _ = started.send(());
        let _ = wait.recv();
        result
    });
    (open, go, is_started)
}

/// Sends `SENT` syslog messages once the socket is bound.
fn feed(dir: &Path) {
    let socket = dir.join("dev-log");
    for _ in 0..600 {
        if socket.exists() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let client = UnixDatagram::unbound().unwrap();
    client
        .set_write_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    for i in 0..SENT {
        client
            .send_to(format!("<14>early[1]: message {i}").as_bytes(), &socket)
            .expect("the socket is served before the sink opens");
    }
}

fn stop(daemon: &std::thread::JoinHandle<Result<daemon::Summary, DaemonError>>) {
    nix::sys::pthread::pthread_kill(daemon.as_pthread_t(), nix::sys::signal::Signal::SIGTERM)
        .unwrap();
}

fn messages(sink: &Recorder) -> Vec<String> {
    sink.0
        .lock()
        .unwrap()
        .iter()
        .map(|e| String::from_utf8_lossy(e.get("MESSAGE").unwrap_or_default()).into_owned())
        .collect()
}

#[test]
fn entries_sent_before_the_sink_opens_are_written_once_it_does() {
    let dir = tempfile::tempdir().unwrap();
    let sink = Recorder::default();
    let (open, go, started) = gated(Ok(Box::new(sink.clone())));
    let opts = options(dir.path());
    let daemon = std::thread::spawn(move || daemon::run(opts, open));
    started.recv().expect("the writer opens the sink");
    // Sent while the writer is still opening the sink: the sends would fail (no socket)
    // or block (nobody reading) otherwise.
    feed(dir.path());
    assert!(messages(&sink).is_empty());
    go.send(()).unwrap();
    stop(&daemon);
    let summary = daemon.join().unwrap().expect("daemon ran");
    let expected: Vec<String> = (0..SENT).map(|i| format!("message {i}")).collect();
    assert_eq!(messages(&sink), expected, "{summary:?}");
    assert_eq!(summary.written as usize, SENT);
}

#[test]
fn a_stop_before_the_sink_opens_waits_for_it_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let sink = Recorder::default();
    let (open, go, started) = gated(Ok(Box::new(sink.clone())));
    let opts = options(dir.path());
    let daemon = std::thread::spawn(move || daemon::run(opts, open));
    started.recv().expect("the writer opens the sink");
    feed(dir.path());
    stop(&daemon);
    std::thread::sleep(Duration::from_millis(100));
    go.send(()).unwrap();
    let summary = daemon.join().unwrap().expect("daemon ran");
    assert_eq!(messages(&sink).len(), SENT, "{summary:?}");
}

#[test]
fn a_sink_that_cannot_be_opened_stops_the_daemon_and_counts_what_was_lost() {
    let dir = tempfile::tempdir().unwrap();
    // Kernel records 1-5 in a file (read whole at start, so queued before the writer
    // fails), the saved position at 2: this run reads 3-5, and must put the position
    // back to 2 when it writes nothing.
    let kmsg = dir.path().join("kmsg");
    let records: String = (1..=5)
        .map(|i| format!("6,{i},{i}000,-;record {i}\n"))
        .collect();
    std::fs::write(&kmsg, records).unwrap();
    let seqnum = dir.path().join("kernel-seqnum");
    std::fs::write(&seqnum, "2\n").unwrap();
    let mut opts = options(dir.path());
    opts.syslog_socket = None;
    opts.kmsg = Some(kmsg);
    opts.kmsg_seqnum_file = Some(seqnum.clone());

    let failure = SinkError::Open {
        path: "/var/log/journal".into(),
        source: std::io::Error::from_raw_os_error(nix::libc::ENOSPC),
    };
    let (open, go, started) = gated(Err(failure));
    let daemon = std::thread::spawn(move || daemon::run(opts, open));
    started.recv().expect("the writer opens the sink");
    // The file is read once the writer has started: its saved position says when.
    for _ in 0..1200 {
        if std::fs::read_to_string(&seqnum).is_ok_and(|s| s.trim() == "5") {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    go.send(()).unwrap();
    // No signal: the failure alone stops the daemon.
    let error = daemon.join().unwrap().expect_err("the daemon fails");
    match &error {
        DaemonError::SinkOpen { lost, source } => {
            assert_eq!(*lost, 3, "{error}");
            assert!(source.to_string().contains("/var/log/journal"), "{source}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(std::fs::read_to_string(&seqnum).unwrap().trim(), "2");
}

/// Starts the built daemon on sockets in `dir` with `storage` arguments; returns once it
/// said READY=1.
fn start_binary(dir: &Path, storage: &[&std::ffi::OsStr]) -> std::process::Child {
    let p = |name: &str| dir.join(name);
    std::fs::write(p("machine-id"), "3d1219c7c4c5404aaa1f6d2a48adfda4\n").unwrap();
    let notify = UnixDatagram::bind(p("notify")).unwrap();
    notify
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_berth-journald"))
        .arg("--stdout-socket")
        .arg(p("stdout"))
        .arg("--native-socket")
        .arg(p("socket"))
        .arg("--syslog-socket")
        .arg(p("dev-log"))
        .args(["--kmsg", "none", "--kmsg-seqnum-file", "none"])
        .arg("--config")
        .arg(p("journald.conf"))
        .arg("--machine-id-file")
        .arg(p("machine-id"))
        .args(storage)
        .env("NOTIFY_SOCKET", p("notify"))
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("berth-journald starts");
    let mut buf = [0u8; 64];
    let n = notify.recv(&mut buf).expect("READY=1");
    assert_eq!(&buf[..n], b"READY=1\n");
    child
}

#[test]
fn the_binary_falls_back_to_volatile_storage_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("var");
    std::fs::write(&blocker, "a file where the folder should be").unwrap();
    let volatile = dir.path().join("run/log/journal");
    let child = start_binary(
        dir.path(),
        &[
            "--storage".as_ref(),
            "persistent".as_ref(),
            "--persistent-dir".as_ref(),
            blocker.join("log/journal").as_os_str(),
            "--volatile-dir".as_ref(),
            volatile.as_os_str(),
        ],
    );
    UnixDatagram::unbound()
        .unwrap()
        .send_to(b"<14>app[1]: kept", dir.path().join("dev-log"))
        .unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("{}", blocker.display()))
            && stderr.contains("volatile storage instead"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("journal in {}", volatile.display())),
        "{stderr}"
    );
    let messages: Vec<Vec<u8>> = berth_journal::DirEntries::open(&volatile, false)
        .unwrap()
        .filter_map(|e| e.field("MESSAGE").map(<[u8]>::to_vec))
        .collect();
    assert_eq!(messages, [b"kept".to_vec()]);
}

#[test]
fn the_binary_exits_1_after_ready_when_no_sink_can_be_opened() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("blocker");
    std::fs::write(&blocker, "a file where the folder should be").unwrap();
    let export = blocker.join("out.export");
    let child = start_binary(
        dir.path(),
        &[
            "--storage".as_ref(),
            "export".as_ref(),
            "--export".as_ref(),
            export.as_os_str(),
        ],
    );
    // No signal: it stops by itself.
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("{}", blocker.display())) && stderr.contains("not written"),
        "{stderr}"
    );
}
