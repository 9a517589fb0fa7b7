//! Runs the real `berth-journald` binary on sockets in a temporary folder, with the
//! export-format sink, and reads back what it wrote.

#![allow(dead_code)]

use std::collections::HashMap;
use std::io::Write;
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// One exported entry: field name → values (a name may repeat).
pub type Fields = HashMap<String, Vec<Vec<u8>>>;

pub struct Daemon {
    pub dir: tempfile::TempDir,
    child: Option<Child>,
}

/// What a test needs that this machine may lack: root (for mount namespaces and
/// credentials), the host tools.
pub fn missing_prerequisite(tools: &[&str]) -> Option<String> {
    if !nix::unistd::geteuid().is_root() {
        return Some("needs root".into());
    }
    for tool in tools {
        let found = if tool.starts_with('/') {
            Path::new(tool).exists()
        } else {
            Command::new("sh")
                .args(["-c", &format!("command -v {tool}")])
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        if !found {
            return Some(format!("{tool} is not installed"));
        }
    }
    None
}

impl Daemon {
    /// Starts the daemon with `config` as its journald.conf; returns once it said READY=1.
    pub fn start(config: &str) -> Daemon {
        Daemon::start_with(config, &[])
    }

    /// As [`Daemon::start`], with more command-line arguments.
    pub fn start_with(config: &str, extra_args: &[&str]) -> Daemon {
        Daemon::start_in(tempfile::tempdir().expect("tempdir"), config, extra_args)
    }

    /// As [`Daemon::start_with`], in the folder of an earlier daemon (a restart).
    pub fn start_in(dir: tempfile::TempDir, config: &str, extra_args: &[&str]) -> Daemon {
        let p = |name: &str| dir.path().join(name);
        std::fs::write(p("journald.conf"), config).expect("config");
        let _ = std::fs::remove_file(p("notify"));
        if !p("kmsg").exists() {
            nix::unistd::mkfifo(&p("kmsg"), nix::sys::stat::Mode::from_bits_truncate(0o600))
                .expect("mkfifo");
        }
        let notify = UnixDatagram::bind(p("notify")).expect("notify socket");
        notify
            .set_read_timeout(Some(Duration::from_secs(60)))
            .expect("timeout");
        let child = Command::new(env!("CARGO_BIN_EXE_berth-journald"))
            .arg("--stdout-socket")
            .arg(p("journal/stdout"))
            .arg("--native-socket")
            .arg(p("journal/socket"))
            .arg("--syslog-socket")
            .arg(p("journal/dev-log"))
            .arg("--kmsg")
            .arg(p("kmsg"))
            .arg("--config")
            .arg(p("journald.conf"))
            .args(["--storage", "export", "--export"])
            .arg(p("out.export"))
            .arg("--kmsg-seqnum-file")
            .arg(p("kernel-seqnum"))
            .arg("--machine-id-file")
            .arg(p("machine-id"))
            .args(extra_args)
            .env("NOTIFY_SOCKET", p("notify"))
            .stderr(Stdio::piped())
            .spawn()
            .expect("berth-journald starts");
        let daemon = Daemon {
            dir,
            child: Some(child),
        };
        let mut buf = [0u8; 64];
        let n = loop {
            match notify.recv(&mut buf) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                other => break other.expect("READY=1 from berth-journald"),
            }
        };
        assert_eq!(&buf[..n], b"READY=1\n");
        daemon
    }

    /// Takes the folder (after [`Daemon::stop`]) for a restart in it.
    pub fn take_dir(&mut self) -> tempfile::TempDir {
        std::mem::replace(&mut self.dir, tempfile::tempdir().expect("tempdir"))
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The folder holding the sockets, to bind over `/run/systemd/journal`.
    pub fn journal_dir(&self) -> PathBuf {
        self.path("journal")
    }

    /// A stdout stream connection with the header PID 1 sends.
    pub fn stream(
        &self,
        identifier: &str,
        unit: &str,
        priority: u8,
        level_prefix: bool,
    ) -> UnixStream {
        let mut s = UnixStream::connect(self.path("journal/stdout")).expect("connect stdout");
        write!(
            s,
            "{identifier}\n{unit}\n{priority}\n{}\n0\n0\n0\n",
            u8::from(level_prefix)
        )
        .expect("header");
        s
    }

    /// Runs `script` with `sh -c` in a mount namespace where `/run/systemd/journal` is
    /// this daemon's socket folder, so that tools with the path built in reach it.
    pub fn run_in_namespace(&self, script: &str) {
        let journal = self.journal_dir();
        let setup = format!(
            "mount -t tmpfs tmpfs /run && mkdir -p /run/systemd && ln -s {} /run/systemd/journal && {script}",
            journal.display()
        );
        let status = Command::new("unshare")
            .args(["-m", "sh", "-c", &setup])
            .status()
            .expect("unshare runs");
        assert!(status.success(), "{script}: {status}");
    }

    /// As [`Daemon::run_in_namespace`], but returns at once; the script's stdin is a pipe.
    pub fn spawn_in_namespace(&self, script: &str) -> Child {
        let journal = self.journal_dir();
        let setup = format!(
            "mount -t tmpfs tmpfs /run && mkdir -p /run/systemd && ln -s {} /run/systemd/journal && {script}",
            journal.display()
        );
        Command::new("unshare")
            .args(["-m", "sh", "-c", &setup])
            .stdin(Stdio::piped())
            .spawn()
            .expect("unshare runs")
    }

    /// Waits until the export file holds `needle` (the writer syncs after each batch);
    /// fails after a minute, so a lost entry cannot hang the test.
    pub fn wait_for_export(&self, needle: &[u8]) {
        for _ in 0..1200 {
            let data = std::fs::read(self.path("out.export")).unwrap_or_default();
            if data.windows(needle.len()).any(|w| w == needle) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "{} never reached the export file",
            String::from_utf8_lossy(needle)
        );
    }

    /// SIGTERM, wait, and the entries written; the daemon's stderr is returned too.
    pub fn stop(&mut self) -> (Vec<Fields>, String) {
        let child = self.child.take().expect("running");
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        )
        .expect("SIGTERM");
        let out = child.wait_with_output().expect("wait");
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "berth-journald failed: {stderr}");
        let data = std::fs::read(self.path("out.export")).expect("export file");
        (parse_export(&data), stderr)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A small reader of the export format, independent of the daemon's writer.
pub fn parse_export(data: &[u8]) -> Vec<Fields> {
    let mut entries = Vec::new();
    let mut fields = Fields::new();
    let mut pos = 0;
    while pos < data.len() {
        let end = pos
            + data[pos..]
                .iter()
                .position(|b| *b == b'\n')
                .expect("line end");
        let line = &data[pos..end];
        if line.is_empty() {
            entries.push(std::mem::take(&mut fields));
            pos = end + 1;
            continue;
        }
        if let Some(eq) = line.iter().position(|b| *b == b'=') {
            let name = String::from_utf8(line[..eq].to_vec()).expect("name");
            fields
                .entry(name)
                .or_default()
                .push(line[eq + 1..].to_vec());
            pos = end + 1;
        } else {
            let name = String::from_utf8(line.to_vec()).expect("name");
            let len = u64::from_le_bytes(data[end + 1..end + 9].try_into().expect("len")) as usize;
            let value = data[end + 9..end + 9 + len].to_vec();
            assert_eq!(
                data[end + 9 + len],
                b'\n',
                "binary field {name} ends in newline"
            );
            fields.entry(name).or_default().push(value);
            pos = end + 9 + len + 1;
        }
    }
    assert!(fields.is_empty(), "last entry not terminated");
    entries
}

/// The first value of `name`, as text.
pub fn get<'a>(entry: &'a Fields, name: &str) -> Option<&'a str> {
    entry
        .get(name)
        .and_then(|v| v.first())
        .map(|v| std::str::from_utf8(v).expect("text field"))
}

/// The entries whose `MESSAGE` is `message`.
pub fn with_message<'a>(entries: &'a [Fields], message: &str) -> Vec<&'a Fields> {
    entries
        .iter()
        .filter(|e| get(e, "MESSAGE") == Some(message))
        .collect()
}
