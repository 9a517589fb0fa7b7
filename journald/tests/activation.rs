//! Socket activation: the binary started as PID 1 starts it from socket units, its
//! sockets bound beforehand and passed at descriptors 3, 4, 5 (sd_listen_fds(3)). It
//! serves them without replacing their files, closes one that serves no source, and with
//! `LISTEN_PID` of another process leaves them alone and binds its own.
//!
//! No `unsafe`: the sockets go to a shell as its standard input, output and error, and
//! the shell moves them to 3, 4, 5 as it execs the daemon (keeping its pid, which is
//! what `LISTEN_PID` must name).

mod common;

use std::io::Write;
use std::os::fd::OwnedFd;
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::{UnixDatagram, UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Moves the shell's descriptors 0, 1, 2 to 3, 4, 5 and execs the daemon with its stderr
/// in `$1` and `LISTEN_PID=$2` (`self`: the shell's pid, which the daemon keeps).
const EXEC: &str = r#"log=$1 pid=$2
shift 2
[ "$pid" = self ] && pid=$$
export LISTEN_PID=$pid
exec "$@" 3<&0 4<&1 5<&2 </dev/null >/dev/null 2>"$log""#;

/// Which process `LISTEN_PID` names.
enum ListenPid {
    Daemon,
    Other(u32),
}

struct Activated {
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl Activated {
    /// Starts the daemon on `sockets` (as fds 3, 4, 5, named `names`), its stdout and
    /// native sockets at `journal/stdout` and `journal/socket`, syslog at `syslog`;
    /// returns once it said READY=1.
    fn start(
        dir: tempfile::TempDir,
        sockets: [OwnedFd; 3],
        names: &str,
        pid: ListenPid,
        syslog: &Path,
    ) -> Activated {
        let p = |name: &str| dir.path().join(name);
        std::fs::write(p("machine-id"), "3d1219c7c4c5404aaa1f6d2a48adfda4\n").unwrap();
        let notify = UnixDatagram::bind(p("notify")).unwrap();
        notify
            .set_read_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        let pid = match pid {
            ListenPid::Daemon => "self".to_string(),
            ListenPid::Other(pid) => pid.to_string(),
        };
        let [stdin, stdout, stderr] = sockets;
        // In a block: the command holds the parent's copies of the sockets until dropped.
        let child = {
            let mut command = Command::new("sh");
            command
                .args(["-c", EXEC, "sh"])
                .arg(p("stderr.log"))
                .arg(pid)
                .arg(env!("CARGO_BIN_EXE_berth-journald"))
                .arg("--stdout-socket")
                .arg(p("journal/stdout"))
                .arg("--native-socket")
                .arg(p("journal/socket"))
                .arg("--syslog-socket")
                .arg(syslog)
                .args(["--kmsg", "none", "--kmsg-seqnum-file", "none"])
                .arg("--config")
                .arg(p("journald.conf"))
                .arg("--machine-id-file")
                .arg(p("machine-id"))
                .args(["--storage", "export", "--export"])
                .arg(p("out.export"))
                .env("LISTEN_FDS", "3")
                .env("LISTEN_FDNAMES", names)
                .env("NOTIFY_SOCKET", p("notify"))
                .stdin(Stdio::from(stdin))
                .stdout(Stdio::from(stdout))
                .stderr(Stdio::from(stderr));
            command.spawn().expect("sh starts")
        };
        let daemon = Activated {
            dir,
            child: Some(child),
        };
        let mut buf = [0u8; 64];
        let n = match notify.recv(&mut buf) {
            Ok(n) => n,
            Err(e) => panic!("no READY=1 ({e}); stderr: {}", daemon.stderr()),
        };
        assert_eq!(&buf[..n], b"READY=1\n");
        daemon
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(self.path("stderr.log")).unwrap_or_default()
    }

    /// Writes `line` through a stdout stream, with the header PID 1 sends.
    fn stream_line(&self, line: &str) {
        let mut s = UnixStream::connect(self.path("journal/stdout")).expect("connect stdout");
        write!(s, "activated\nactivated.service\n6\n0\n0\n0\n0\n{line}\n").expect("write");
    }

    fn send(&self, socket: &Path, datagram: &str) {
        UnixDatagram::unbound()
            .unwrap()
            .send_to(datagram.as_bytes(), socket)
            .unwrap_or_else(|e| panic!("sending to {}: {e}", socket.display()));
    }

    /// Waits until the export file holds `needle`; fails after a minute.
    fn wait_for(&self, needle: &str) {
        for _ in 0..1200 {
            let data = std::fs::read(self.path("out.export")).unwrap_or_default();
            if data.windows(needle.len()).any(|w| w == needle.as_bytes()) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "{needle} never reached the export file; stderr: {}",
            self.stderr()
        );
    }

    /// SIGTERM, wait; the entries written and the daemon's stderr.
    fn stop(&mut self) -> (Vec<common::Fields>, String) {
        let mut child = self.child.take().expect("running");
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        )
        .expect("SIGTERM");
        let status = child.wait().expect("wait");
        let stderr = self.stderr();
        assert!(status.success(), "berth-journald failed: {stderr}");
        let data = std::fs::read(self.path("out.export")).expect("export file");
        (common::parse_export(&data), stderr)
    }
}

impl Drop for Activated {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Binds the journal's sockets as PID 1 does from its socket units: in blocking mode,
/// the stream one listening; stdout and native under `journal/`, the third at `third`.
fn bind_as_pid_1(dir: &Path, third: &Path) -> [OwnedFd; 3] {
    std::fs::create_dir_all(dir.join("journal")).unwrap();
    let stdout = UnixListener::bind(dir.join("journal/stdout")).unwrap();
    let native = UnixDatagram::bind(dir.join("journal/socket")).unwrap();
    let third = UnixDatagram::bind(third).unwrap();
    [stdout.into(), native.into(), third.into()]
}

fn inode(path: &Path) -> u64 {
    std::fs::symlink_metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .ino()
}

/// The `_TRANSPORT` of the one entry whose message is `message`.
fn transport_of(entries: &[common::Fields], message: &str) -> String {
    let found = common::with_message(entries, message);
    assert_eq!(found.len(), 1, "{message}: {found:?}");
    common::get(found[0], "_TRANSPORT")
        .unwrap_or("")
        .to_string()
}

#[test]
fn the_daemon_serves_the_sockets_pid_1_passed_and_leaves_their_files() {
    let dir = tempfile::tempdir().unwrap();
    let dev_log = dir.path().join("journal/dev-log");
    let sockets = bind_as_pid_1(dir.path(), &dev_log);
    // As /dev/log -> /run/systemd/journal/dev-log on a node.
    let link = dir.path().join("log");
    std::os::unix::fs::symlink(&dev_log, &link).unwrap();
    let files = ["journal/stdout", "journal/socket", "journal/dev-log", "log"];
    let before: Vec<u64> = files.iter().map(|f| inode(&dir.path().join(f))).collect();

    let mut daemon = Activated::start(
        dir,
        sockets,
        "stdout:socket:dev-log",
        ListenPid::Daemon,
        &link,
    );
    let now: Vec<u64> = files.iter().map(|f| inode(&daemon.path(f))).collect();
    assert_eq!(now, before, "the socket files were replaced");

    daemon.stream_line("through the passed stream");
    daemon.send(
        &daemon.path("journal/socket"),
        "MESSAGE=through the passed native socket\nSYSLOG_IDENTIFIER=activated\n",
    );
    daemon.send(&link, "<14>activated[1]: through the passed dev-log");
    daemon.wait_for("through the passed stream");
    daemon.wait_for("through the passed native socket");
    daemon.wait_for("through the passed dev-log");
    let (entries, stderr) = daemon.stop();

    assert_eq!(
        transport_of(&entries, "through the passed stream"),
        "stdout"
    );
    assert_eq!(
        transport_of(&entries, "through the passed native socket"),
        "journal"
    );
    assert_eq!(
        transport_of(&entries, "through the passed dev-log"),
        "syslog"
    );
    assert!(!stderr.contains("passed fd"), "{stderr}");
    let after: Vec<u64> = files.iter().map(|f| inode(&daemon.path(f))).collect();
    assert_eq!(after, before, "the socket files were replaced or removed");
}

#[test]
fn a_passed_socket_that_serves_no_source_is_said_and_closed() {
    let dir = tempfile::tempdir().unwrap();
    let elsewhere = dir.path().join("elsewhere");
    let sockets = bind_as_pid_1(dir.path(), &elsewhere);
    let syslog = dir.path().join("journal/dev-log");
    let mut daemon = Activated::start(
        dir,
        sockets,
        "stdout:socket:elsewhere",
        ListenPid::Daemon,
        &syslog,
    );
    // Closed: the daemon held the only descriptor of the socket.
    let refused = UnixDatagram::unbound()
        .unwrap()
        .send_to(b"<14>x[1]: lost", &elsewhere)
        .expect_err("nobody reads the unmatched socket");
    assert_eq!(refused.kind(), std::io::ErrorKind::ConnectionRefused);
    // The syslog source, passed no socket, was bound by the daemon.
    daemon.send(&syslog, "<14>activated[1]: through the bound dev-log");
    daemon.wait_for("through the bound dev-log");
    let (entries, stderr) = daemon.stop();
    assert_eq!(
        transport_of(&entries, "through the bound dev-log"),
        "syslog"
    );
    let said = format!(
        "berth-journald: passed fd 5 (elsewhere), a unix datagram socket at {}, serves no source; closed\n",
        elsewhere.display()
    );
    assert!(stderr.contains(&said), "{stderr}");
    assert_eq!(stderr.matches("passed fd").count(), 1, "{stderr}");
}

#[test]
fn with_another_process_s_listen_pid_the_daemon_binds_its_own_sockets() {
    let dir = tempfile::tempdir().unwrap();
    let dev_log = dir.path().join("journal/dev-log");
    let sockets = bind_as_pid_1(dir.path(), &dev_log);
    let files = ["journal/stdout", "journal/socket", "journal/dev-log"];
    let before: Vec<u64> = files.iter().map(|f| inode(&dir.path().join(f))).collect();
    let mut daemon = Activated::start(
        dir,
        sockets,
        "stdout:socket:dev-log",
        ListenPid::Other(std::process::id()),
        &dev_log,
    );
    for (file, old) in files.iter().zip(&before) {
        assert_ne!(inode(&daemon.path(file)), *old, "{file} was not bound anew");
    }
    daemon.stream_line("through the daemon's stream");
    daemon.send(
        &daemon.path("journal/socket"),
        "MESSAGE=through the daemon's native socket\n",
    );
    daemon.wait_for("through the daemon's stream");
    daemon.wait_for("through the daemon's native socket");
    let (entries, stderr) = daemon.stop();
    assert_eq!(
        transport_of(&entries, "through the daemon's stream"),
        "stdout"
    );
    assert_eq!(
        transport_of(&entries, "through the daemon's native socket"),
        "journal"
    );
    assert!(!stderr.contains("passed fd"), "{stderr}");
}
