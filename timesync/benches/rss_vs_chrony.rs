//! Memory of berth-timesync next to Debian's chronyd, each synchronised against the same
//! NTP server, in one run: a chronyd in server mode (`local stratum 8`) in one network
//! namespace, and in another, joined to it by a veth pair, berth-timesync (the release
//! build, `--dry-run`: it measures and decides but never sets the clock) and chronyd as a
//! client (`-x`: it never adjusts the clock). Neither touches the host's clock. Once both
//! are synchronised (berth-timesync's `READY=1` without "not synchronized", chronyd's
//! "Selected source" line) and have run a few more seconds, it prints VmRSS and PSS
//! (`/proc/PID/smaps_rollup`) of each, side by side, with the ratio.
//!
//! Needs root (network namespaces, and chronyd runs only as root), `ip` and chronyd
//! (`apt-get install chrony iproute2`); says why and exits non-zero otherwise.
//! Run with `cargo bench -p berth-timesync --bench rss_vs_chrony`; `BERTH_TIMESYNC=path`
//! measures another build of the client (the image's static one).

#[path = "../tests/common/mod.rs"]
mod common;

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

const SERVER_ADDR: &str = "10.77.0.1";
const CLIENT_ADDR: &str = "10.77.0.2";
/// How long each client may take for its first sync.
const SYNC_LIMIT: Duration = Duration::from_secs(60);
/// Time both run after their sync before the figures are read (a few polls each).
const SETTLE: Duration = Duration::from_secs(20);

/// Why this host cannot run the bench, if it cannot.
fn missing() -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    // /proc/self belongs to the effective user.
    if std::fs::metadata("/proc/self").map_or(true, |m| m.uid() != 0) {
        return Some(
            "needs root: it creates network namespaces (ip netns) and chronyd runs only as root"
                .to_owned(),
        );
    }
    if let Err(e) = common::chronyd() {
        return Some(e);
    }
    ["/usr/sbin/ip", "/usr/bin/ip", "/sbin/ip", "/bin/ip"]
        .iter()
        .all(|p| !Path::new(p).exists())
        .then(|| "ip not found (apt-get install iproute2)".to_owned())
}

fn run(args: &[&str]) -> Result<(), String> {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .map_err(|e| format!("{args:?}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// The two namespaces, the veth between them and the processes in them; all removed on
/// drop.
struct Lab {
    server_ns: String,
    client_ns: String,
    dir: tempfile::TempDir,
    children: Vec<Child>,
}

impl Lab {
    fn new() -> Result<Lab, String> {
        let id = std::process::id();
        let lab = Lab {
            server_ns: format!("brss-s{id}"),
            client_ns: format!("brss-c{id}"),
            dir: tempfile::tempdir().map_err(|e| format!("tempdir: {e}"))?,
            children: Vec::new(),
        };
        run(&["ip", "netns", "add", &lab.server_ns])?;
        run(&["ip", "netns", "add", &lab.client_ns])?;
        run(&[
            "ip",
            "link",
            "add",
            "ntps",
            "netns",
            &lab.server_ns,
            "type",
            "veth",
            "peer",
            "name",
            "ntpc",
            "netns",
            &lab.client_ns,
        ])?;
        for (ns, dev, addr) in [
            (&lab.server_ns, "ntps", SERVER_ADDR),
            (&lab.client_ns, "ntpc", CLIENT_ADDR),
        ] {
            run(&[
                "ip",
                "-n",
                ns,
                "addr",
                "add",
                &format!("{addr}/24"),
                "dev",
                dev,
            ])?;
            run(&["ip", "-n", ns, "link", "set", dev, "up"])?;
            run(&["ip", "-n", ns, "link", "set", "lo", "up"])?;
        }
        Ok(lab)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `program args` in namespace `ns` (`ip netns exec` execs it: the pid is its own),
    /// stderr to `<log>`; returns the pid.
    fn spawn(
        &mut self,
        ns: &str,
        program: &Path,
        args: &[&str],
        log: &str,
        env: Option<(&str, &Path)>,
    ) -> Result<u32, String> {
        let log = std::fs::File::create(self.path(log)).map_err(|e| format!("{log}: {e}"))?;
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", ns])
            .arg(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log));
        if let Some((key, value)) = env {
            cmd.env(key, value);
        }
        let child = cmd
            .spawn()
            .map_err(|e| format!("starting {}: {e}", program.display()))?;
        let pid = child.id();
        self.children.push(child);
        Ok(pid)
    }

    /// A chronyd configuration in the lab's folder, `lines` plus no command port and its
    /// own pid file (so it never meets the host's chronyd).
    fn chrony_conf(&self, name: &str, lines: &str) -> Result<PathBuf, String> {
        let conf = self.path(name);
        let text = format!(
            "{lines}cmdport 0\npidfile {}\n",
            self.path(&format!("{name}.pid")).display()
        );
        std::fs::write(&conf, text).map_err(|e| format!("{}: {e}", conf.display()))?;
        Ok(conf)
    }

    fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.path(name)).unwrap_or_default()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        for ns in [&self.server_ns, &self.client_ns] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

/// `field` (kB) of a `/proc/PID/…` file.
fn kib(pid: u32, file: &str, field: &str) -> Result<u64, String> {
    let path = format!("/proc/{pid}/{file}");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
    text.lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| format!("{path}: no {field} line"))
}

struct Memory {
    rss: u64,
    pss: u64,
}

fn memory(pid: u32) -> Result<Memory, String> {
    Ok(Memory {
        rss: kib(pid, "status", "VmRSS:")?,
        pss: kib(pid, "smaps_rollup", "Pss:")?,
    })
}

/// Waits for berth-timesync's READY=1 and returns its status line.
fn wait_ready(notify: &UnixDatagram) -> Result<String, String> {
    notify
        .set_read_timeout(Some(SYNC_LIMIT))
        .map_err(|e| format!("notify socket: {e}"))?;
    let mut buf = [0u8; 1024];
    let n = notify
        .recv(&mut buf)
        .map_err(|e| format!("no READY=1 from berth-timesync within {SYNC_LIMIT:?}: {e}"))?;
    Ok(String::from_utf8_lossy(&buf[..n]).into_owned())
}

/// Waits for `needle` in the lab's file `log`.
fn wait_log(lab: &Lab, log: &str, needle: &str) -> Result<(), String> {
    let until = Instant::now() + SYNC_LIMIT;
    while Instant::now() < until {
        if lab.read(log).contains(needle) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(format!(
        "no {needle:?} in {log} within {SYNC_LIMIT:?}:\n{}",
        lab.read(log)
    ))
}

/// The client measured: cargo's build of this profile, or `$BERTH_TIMESYNC` (the image's
/// static build, from `cargo xtask build`).
fn timesync_binary() -> PathBuf {
    std::env::var_os("BERTH_TIMESYNC")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_berth-timesync")))
}

fn measure() -> Result<(Memory, Memory), String> {
    let chronyd = common::chronyd()?;
    let timesync = timesync_binary();
    let mut lab = Lab::new()?;
    let server_conf = lab.chrony_conf(
        "server.conf",
        &format!("local stratum 8\nallow 10.77.0.0/24\nbindaddress {SERVER_ADDR}\n"),
    )?;
    let server_conf = server_conf.to_string_lossy().into_owned();
    let server_ns = lab.server_ns.clone();
    lab.spawn(
        &server_ns,
        &chronyd,
        &["-d", "-x", "-u", "root", "-f", &server_conf],
        "server.log",
        None,
    )?;
    // The clients: chronyd polling every 16 s as berth-timesync starts (minpoll 4 is its
    // shortest), and no NTP port of its own (`port 0`).
    let client_conf = lab.chrony_conf(
        "client.conf",
        &format!("server {SERVER_ADDR} iburst minpoll 4 maxpoll 6\nport 0\n"),
    )?;
    let client_conf = client_conf.to_string_lossy().into_owned();
    let client_ns = lab.client_ns.clone();
    let chrony_pid = lab.spawn(
        &client_ns,
        &chronyd,
        &["-d", "-x", "-u", "root", "-f", &client_conf],
        "client.log",
        None,
    )?;
    let notify_path = lab.path("notify");
    let notify =
        UnixDatagram::bind(&notify_path).map_err(|e| format!("binding the notify socket: {e}"))?;
    let empty = lab.path("empty");
    std::fs::create_dir_all(&empty).map_err(|e| format!("{}: {e}", empty.display()))?;
    let empty = empty.to_string_lossy().into_owned();
    let timesync_pid = lab.spawn(
        &client_ns,
        &timesync,
        &[
            "--server",
            SERVER_ADDR,
            "--dry-run",
            "--minpoll",
            "4",
            "--maxpoll",
            "6",
            "--servers-file",
            &format!("{empty}/no-servers"),
            "--dmi-dir",
            &empty,
        ],
        "timesync.log",
        Some(("NOTIFY_SOCKET", &notify_path)),
    )?;
    let ready = wait_ready(&notify)?;
    if ready.contains("not synchronized") {
        return Err(format!(
            "berth-timesync did not synchronise: {ready}\n{}",
            lab.read("timesync.log")
        ));
    }
    wait_log(
        &lab,
        "client.log",
        &format!("Selected source {SERVER_ADDR}"),
    )?;
    eprintln!("both synchronised; measuring in {SETTLE:?}");
    std::thread::sleep(SETTLE);
    for (name, pid) in [("berth-timesync", timesync_pid), ("chronyd", chrony_pid)] {
        if !Path::new(&format!("/proc/{pid}")).exists() {
            return Err(format!("{name} (pid {pid}) exited before the measurement"));
        }
    }
    let figures = (memory(timesync_pid)?, memory(chrony_pid)?);
    eprintln!(
        "berth-timesync: {}",
        ready.replace('\n', " ").trim().to_owned()
    );
    Ok(figures)
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn main() -> ExitCode {
    if std::env::args().any(|a| a == "--list") {
        return ExitCode::SUCCESS;
    }
    if let Some(reason) = missing() {
        eprintln!("rss_vs_chrony cannot run here: {reason}");
        return ExitCode::FAILURE;
    }
    match measure() {
        Ok((berth, chrony)) => {
            let version = common::chronyd()
                .ok()
                .and_then(|c| Command::new(c).arg("-v").output().ok())
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
                .unwrap_or_default();
            println!("NTP client after sync, same server, same netns (KiB; MiB); {version}");
            println!("berth-timesync: {}", timesync_binary().display());
            println!(
                "{:<16} {:>8} {:>8}   {:>6} {:>6}",
                "", "VmRSS", "PSS", "RSS", "PSS"
            );
            for (name, m) in [("berth-timesync", &berth), ("chronyd -x", &chrony)] {
                println!(
                    "{name:<16} {:>8} {:>8}   {:>6.2} {:>6.2}",
                    m.rss,
                    m.pss,
                    mib(m.rss),
                    mib(m.pss)
                );
            }
            println!(
                "ratio berth/chrony: RSS {:.2}, PSS {:.2}",
                berth.rss as f64 / chrony.rss as f64,
                berth.pss as f64 / chrony.pss as f64
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("rss_vs_chrony: {e}");
            ExitCode::FAILURE
        }
    }
}
