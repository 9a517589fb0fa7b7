//! Throughput and memory of the collector on the path that matters most, a unit's stdout
//! stream: one connection with PID 1's header, N lines written as fast as the socket
//! takes them, then a marker line; the clock stops when the marker is in the output.
//! Reports lines/s and the daemon's peak RSS (VmHWM). With `--journald`, the host's
//! `/lib/systemd/systemd-journald` is run the same way in a mount namespace (its `/run`
//! and `/var/log` bound to a temporary folder on tmpfs) and fed the same stream, for a
//! side-by-side figure; Berth's export file is on the same tmpfs.
//!
//! `cargo build --release -p berth-journald --bins --examples &&
//!  target/release/examples/stream_bench [--lines N] [--line-len B] [--queue-bytes B]
//!  [--journal-files] [--journald]`; `--journal-files` also runs Berth's collector into
//!  journal files (as on a node), timed like journald by the host's `journalctl -f`.

use anyhow::{bail, Context, Result};
use std::ffi::OsString;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const MARKER: &str = "stream-bench-done";

struct Args {
    lines: usize,
    line_len: usize,
    journald: bool,
    /// Berth's collector into journal files (as on a node) instead of the export file.
    journal_files: bool,
    /// Passed to berth-journald's `--queue-bytes` when given.
    queue_bytes: Option<String>,
}

fn args() -> Result<Args> {
    let mut args = Args {
        lines: 1_000_000,
        line_len: 100,
        journald: false,
        journal_files: false,
        queue_bytes: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--lines" => args.lines = it.next().context("--lines N")?.parse()?,
            "--line-len" => args.line_len = it.next().context("--line-len B")?.parse()?,
            "--journald" => args.journald = true,
            "--journal-files" => args.journal_files = true,
            "--queue-bytes" => args.queue_bytes = Some(it.next().context("--queue-bytes B")?),
            other => bail!("unknown argument {other}"),
        }
    }
    Ok(args)
}

/// `VmHWM` (peak resident) and, now, `RssAnon` and `RssFile` (a journal file mapped into
/// memory counts as resident file pages) from /proc/PID/status.
fn memory(pid: u32) -> Result<String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let get = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .map(|v| v.trim().to_string())
            .unwrap_or_else(|| "?".into())
    };
    Ok(format!(
        "VmHWM {}, RssAnon {}, RssFile {}",
        get("VmHWM:"),
        get("RssAnon:"),
        get("RssFile:")
    ))
}

/// Writes the header and the lines, then the marker; returns when all is written.
fn feed(socket: &Path, args: &Args) -> Result<()> {
    let mut s =
        UnixStream::connect(socket).with_context(|| format!("connect {}", socket.display()))?;
    s.write_all(b"bench\n\n6\n0\n0\n0\n0\n")?;
    let mut chunk = Vec::with_capacity(64 * 1024);
    for i in 0..args.lines {
        let head = format!("line {i:09} ");
        chunk.extend_from_slice(head.as_bytes());
        chunk.resize(
            chunk.len() + args.line_len.saturating_sub(head.len() + 1),
            b'x',
        );
        chunk.push(b'\n');
        if chunk.len() >= 60 * 1024 {
            s.write_all(&chunk)?;
            chunk.clear();
        }
    }
    chunk.extend_from_slice(format!("{MARKER}\n").as_bytes());
    s.write_all(&chunk)?;
    Ok(())
}

fn stop(mut child: Child) -> Result<String> {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )?;
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        e.read_to_string(&mut err)?;
    }
    child.wait()?;
    Ok(err)
}

fn wait_for_socket(path: &Path) -> Result<()> {
    for _ in 0..600 {
        if UnixStream::connect(path).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    bail!("{} never accepted", path.display())
}

/// Starts the built `berth-journald` beside this example with only its stdout stream
/// source on `socket`, no rate limit, and `storage` (its sink's arguments).
fn start_berth(args: &Args, dir: &Path, socket: &Path, storage: &[OsString]) -> Result<Child> {
    let exe = std::env::current_exe()?;
    let daemon: PathBuf = exe
        .parent()
        .and_then(Path::parent)
        .context("target folder")?
        .join("berth-journald");
    std::fs::write(dir.join("journald.conf"), "[Journal]\nRateLimitBurst=0\n")?;
    let mut command = Command::new(&daemon);
    if let Some(bytes) = &args.queue_bytes {
        command.args(["--queue-bytes", bytes]);
    }
    command
        .arg("--stdout-socket")
        .arg(socket)
        .args([
            "--native-socket",
            "none",
            "--syslog-socket",
            "none",
            "--kmsg",
            "none",
        ])
        .arg("--config")
        .arg(dir.join("journald.conf"))
        .args(storage)
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {}", daemon.display()))
}

fn berth(args: &Args, dir: &Path) -> Result<()> {
    let out = dir.join("out.export");
    let socket = dir.join("stdout");
    let storage = [
        OsString::from("--storage"),
        "export".into(),
        "--export".into(),
        out.clone().into(),
    ];
    let child = start_berth(args, dir, &socket, &storage)?;
    let pid = child.id();
    wait_for_socket(&socket)?;
    let start = Instant::now();
    feed(&socket, args)?;
    let written = start.elapsed();
    // The marker may itself be dropped (queue full): then stop once the file has not
    // grown for a second, and count what was written from the daemon's summary.
    let needle = format!("MESSAGE={MARKER}\n");
    let (mut last_len, mut still) = (0, 0);
    loop {
        let mut f = std::fs::File::open(&out)?;
        let len = f.metadata()?.len();
        f.seek(SeekFrom::Start(len.saturating_sub(4096)))?;
        let mut tail = Vec::new();
        f.read_to_end(&mut tail)?;
        if String::from_utf8_lossy(&tail).contains(&needle) {
            break;
        }
        still = if len == last_len { still + 1 } else { 0 };
        last_len = len;
        if still > 1000 {
            println!("(marker line dropped; timing includes 1 s of waiting)");
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let elapsed = start.elapsed();
    let hwm = memory(pid)?;
    let summary = stop(child)?;
    let size = std::fs::metadata(&out)?.len();
    let data = std::fs::read(&out)?;
    let stored = data.windows(14).filter(|w| w == b"MESSAGE=line 0").count();
    println!(
        "berth-journald: {} lines of {} B sent, {} stored, in {:.3} s = {:.0} stored lines/s (writer done after {:.3} s); {}; export {} MiB\n  {}",
        args.lines,
        args.line_len,
        stored,
        elapsed.as_secs_f64(),
        stored as f64 / elapsed.as_secs_f64(),
        written.as_secs_f64(),
        hwm,
        size >> 20,
        summary.trim()
    );
    Ok(())
}

/// Berth's collector writing journal files (its node configuration), timed the way the
/// host's journald is: the host's `journalctl -f` on the folder sees the marker.
fn berth_journal_files(args: &Args, dir: &Path) -> Result<()> {
    std::fs::write(dir.join("machine-id"), "3d1219c7c4c5404aaa1f6d2a48adfda4\n")?;
    let journal_dir = dir.join("journal");
    let socket = dir.join("stdout");
    let storage = [
        OsString::from("--storage"),
        "persistent".into(),
        "--persistent-dir".into(),
        journal_dir.clone().into(),
        "--machine-id-file".into(),
        dir.join("machine-id").into(),
    ];
    let child = start_berth(args, dir, &socket, &storage)?;
    let pid = child.id();
    wait_for_socket(&socket)?;
    let mut follow = Command::new("journalctl")
        .arg("-D")
        .arg(&journal_dir)
        .args(["-f", "-n", "0", "-o", "cat", "-t", "bench", "--no-pager"])
        .stdout(Stdio::piped())
        .spawn()?;
    let follow_out = follow.stdout.take().context("journalctl stdout")?;
    std::thread::sleep(Duration::from_millis(500));
    let start = Instant::now();
    feed(&socket, args)?;
    let written = start.elapsed();
    for line in BufReader::new(follow_out).lines() {
        if line? == MARKER {
            break;
        }
    }
    let elapsed = start.elapsed();
    let hwm = memory(pid)?;
    let _ = follow.kill();
    let _ = follow.wait();
    let summary = stop(child)?;
    let count = Command::new("journalctl")
        .arg("-D")
        .arg(&journal_dir)
        .args(["-o", "cat", "-t", "bench", "--no-pager"])
        .output()?
        .stdout
        .split(|b| *b == b'\n')
        .filter(|l| l.starts_with(b"line "))
        .count();
    println!(
        "berth-journald (journal files): {} lines of {} B sent, {} stored, in {:.3} s = {:.0} stored lines/s (writer done after {:.3} s); {}\n  {}",
        args.lines,
        args.line_len,
        count,
        elapsed.as_secs_f64(),
        count as f64 / elapsed.as_secs_f64(),
        written.as_secs_f64(),
        hwm,
        summary.trim()
    );
    Ok(())
}

fn journald(args: &Args, dir: &Path) -> Result<()> {
    let (run, log) = (dir.join("run"), dir.join("log"));
    std::fs::create_dir_all(&run)?;
    std::fs::create_dir_all(&log)?;
    let conf = dir.join("journald.conf");
    std::fs::write(
        &conf,
        "[Journal]\nStorage=volatile\nRateLimitBurst=0\nRuntimeMaxUse=4G\n",
    )?;
    let script = format!(
        "mount --bind {run} /run && mount --bind {log} /var/log && mount --bind {conf} /etc/systemd/journald.conf && exec /lib/systemd/systemd-journald",
        run = run.display(),
        log = log.display(),
        conf = conf.display()
    );
    let child = Command::new("unshare")
        .args(["-m", "sh", "-c", &script])
        .stderr(Stdio::piped())
        .spawn()?;
    let pid = child.id();
    let socket = run.join("systemd/journal/stdout");
    wait_for_socket(&socket)?;
    let journal_dir = run.join("log/journal");
    let mut follow = Command::new("journalctl")
        .arg("-D")
        .arg(&journal_dir)
        .args(["-f", "-n", "0", "-o", "cat", "-t", "bench", "--no-pager"])
        .stdout(Stdio::piped())
        .spawn()?;
    let follow_out = follow.stdout.take().context("journalctl stdout")?;
    std::thread::sleep(Duration::from_millis(500)); // journalctl -f is watching
    let start = Instant::now();
    feed(&socket, args)?;
    let written = start.elapsed();
    for line in BufReader::new(follow_out).lines() {
        if line? == MARKER {
            break;
        }
    }
    let elapsed = start.elapsed();
    let hwm = memory(pid)?;
    let _ = follow.kill();
    let count = Command::new("journalctl")
        .arg("-D")
        .arg(&journal_dir)
        .args(["-o", "cat", "-t", "bench", "--no-pager"])
        .output()?
        .stdout
        .split(|b| *b == b'\n')
        .filter(|l| l.starts_with(b"line "))
        .count();
    let _ = follow.wait();
    stop(child)?;
    let version = Command::new("dpkg-query")
        .args(["-W", "-f", "${Version}", "systemd"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    println!(
        "systemd-journald (host, {}): {} lines of {} B sent, {} stored, in {:.3} s = {:.0} stored lines/s (writer done after {:.3} s); {}",
        version,
        args.lines,
        args.line_len,
        count,
        elapsed.as_secs_f64(),
        count as f64 / elapsed.as_secs_f64(),
        written.as_secs_f64(),
        hwm
    );
    Ok(())
}

fn main() -> Result<()> {
    let args = args()?;
    let base = if Path::new("/dev/shm").is_dir() {
        "/dev/shm"
    } else {
        "/tmp"
    };
    let dir = tempfile::Builder::new()
        .prefix("stream-bench")
        .tempdir_in(base)?;
    std::fs::create_dir_all(dir.path().join("berth"))?;
    berth(&args, &dir.path().join("berth"))?;
    if args.journal_files {
        std::fs::create_dir_all(dir.path().join("berth-files"))?;
        berth_journal_files(&args, &dir.path().join("berth-files"))?;
    }
    if args.journald {
        journald(&args, dir.path())?;
    }
    Ok(())
}
