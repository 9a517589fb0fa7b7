//! How long the collector takes to start on a first boot: from exec to `READY=1` on its
//! `$NOTIFY_SOCKET` (what the units ordered after it wait for), and from exec to its
//! "journal in DIR" line (the journal file created and open). Each run starts the built
//! `berth-journald` in a new folder, with its sockets there and a persistent journal
//! folder that does not exist yet, as on a node's first boot; then stops it with SIGTERM.
//! Also timed in this process, the same way: opening the sink alone (`Plan::open` on a
//! new folder), the work that READY=1 no longer waits for.
//!
//! `cargo build --release -p berth-journald --bins --examples &&
//!  target/release/examples/ready_bench [--runs N] [--base DIR] [--bin PATH]`;
//! `--base` is where the run folders go (default: the system's temporary folder; pick
//! one on the file system under test), `--bin` another build of the daemon to compare.

use anyhow::{bail, Context, Result};
use berth_journald::open::{Choice, Plan};
use std::io::{BufRead, BufReader};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const MACHINE_ID: &str = "3d1219c7c4c5404aaa1f6d2a48adfda4\n";

struct Args {
    runs: usize,
    base: PathBuf,
    bin: PathBuf,
}

fn args() -> Result<Args> {
    let exe = std::env::current_exe()?;
    let beside = exe
        .parent()
        .and_then(Path::parent)
        .context("target folder")?
        .join("berth-journald");
    let mut args = Args {
        runs: 10,
        base: std::env::temp_dir(),
        bin: beside,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--runs" => args.runs = it.next().context("--runs N")?.parse()?,
            "--base" => args.base = it.next().context("--base DIR")?.into(),
            "--bin" => args.bin = it.next().context("--bin PATH")?.into(),
            other => bail!("unknown argument {other}"),
        }
    }
    Ok(args)
}

/// One start: (exec → READY=1, exec → "journal in").
fn run_once(args: &Args) -> Result<(Duration, Duration)> {
    let dir = tempfile::tempdir_in(&args.base)?;
    let p = |name: &str| dir.path().join(name);
    std::fs::write(p("machine-id"), MACHINE_ID)?;
    let notify = UnixDatagram::bind(p("notify"))?;
    notify.set_read_timeout(Some(Duration::from_secs(30)))?;
    let start = Instant::now();
    let mut child = Command::new(&args.bin)
        .arg("--stdout-socket")
        .arg(p("stdout"))
        .arg("--native-socket")
        .arg(p("socket"))
        .arg("--syslog-socket")
        .arg(p("dev-log"))
        .args(["--kmsg", "none", "--kmsg-seqnum-file", "none"])
        .arg("--config")
        .arg(p("journald.conf"))
        .args(["--storage", "persistent", "--persistent-dir"])
        .arg(p("var/log/journal"))
        .arg("--volatile-dir")
        .arg(p("run/log/journal"))
        .arg("--machine-id-file")
        .arg(p("machine-id"))
        .env("NOTIFY_SOCKET", p("notify"))
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {}", args.bin.display()))?;
    let stderr = child.stderr.take().context("stderr")?;
    let (opened_tx, opened) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains(": journal in ") {
                let _ = opened_tx.send(start.elapsed());
            }
        }
    });
    let mut buf = [0u8; 64];
    let n = notify.recv(&mut buf).context("READY=1")?;
    let ready = start.elapsed();
    if &buf[..n] != b"READY=1\n" {
        bail!(
            "unexpected notification {:?}",
            String::from_utf8_lossy(&buf[..n])
        );
    }
    let journal = opened
        .recv_timeout(Duration::from_secs(30))
        .context("no \"journal in\" line")?;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )?;
    let status = child.wait()?;
    let _ = reader.join();
    if !status.success() {
        bail!("berth-journald: {status}");
    }
    Ok((ready, journal))
}

/// Opening the sink alone, in a new folder (its "journal in" line goes to stderr).
fn open_once(args: &Args) -> Result<Duration> {
    let dir = tempfile::tempdir_in(&args.base)?;
    let plan = Plan::Journal {
        choice: Choice::Persistent,
        persistent: dir.path().join("var/log/journal"),
        volatile: dir.path().join("run/log/journal"),
        machine_id: MACHINE_ID.into(),
    };
    let start = Instant::now();
    let sink = plan.open()?;
    let took = start.elapsed();
    drop(sink);
    Ok(took)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn summary(name: &str, mut times: Vec<Duration>) {
    times.sort();
    let all: Vec<String> = times.iter().map(|t| format!("{:.2}", ms(*t))).collect();
    println!(
        "{name}: median {:.2} ms, min {:.2}, max {:.2} (all, sorted: {})",
        ms(times[times.len() / 2]),
        ms(times[0]),
        ms(times[times.len() - 1]),
        all.join(" ")
    );
}

fn main() -> Result<()> {
    let args = args()?;
    if args.runs == 0 {
        bail!("--runs must be at least 1");
    }
    let (mut ready, mut journal, mut open) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..args.runs {
        let (r, j) = run_once(&args)?;
        ready.push(r);
        journal.push(j);
        open.push(open_once(&args)?);
    }
    println!("{} runs of {}", args.runs, args.bin.display());
    summary("exec -> READY=1", ready);
    summary("exec -> journal open", journal);
    summary("Plan::open alone, in this process", open);
    Ok(())
}
