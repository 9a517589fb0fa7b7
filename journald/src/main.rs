//! `berth-journald`: parses the command line, takes the sockets PID 1 passed (socket
//! activation, [`berth_journald::activation`]), loads journald.conf and the machine id, and
//! runs the daemon, whose writer thread opens the sink after READY=1 (see
//! [`berth_journald::open`]); at exit prints one summary line (entries, drops, peak
//! memory), or the error's whole chain on one line and exits 1.

use anyhow::Context;
use berth_journald::activation;
use berth_journald::config::Config;
use berth_journald::daemon::{self, Options};
use berth_journald::entry::Id128;
use berth_journald::open::{Choice, Plan};
use clap::Parser;
use std::path::PathBuf;
use std::process::ExitCode;

/// Berth's log collector. A source path of `none` leaves that source out. A socket PID 1
/// passes (LISTEN_FDS, sd_listen_fds(3)) bound at a source's path serves that source; the
/// sources passed none are bound here.
#[derive(Parser, Debug)]
#[command(name = "berth-journald", version)]
struct Args {
    /// Stdout stream socket (StandardOutput=journal, systemd-cat).
    #[arg(long, default_value = "/run/systemd/journal/stdout")]
    stdout_socket: PathBuf,
    /// Native protocol socket (sd_journal_send, logger --journald).
    #[arg(long, default_value = "/run/systemd/journal/socket")]
    native_socket: PathBuf,
    /// Syslog socket (syslog(3), logger).
    #[arg(long, default_value = "/dev/log")]
    syslog_socket: PathBuf,
    /// Kernel log device, or a FIFO/file of records in its format.
    #[arg(long, default_value = "/dev/kmsg")]
    kmsg: PathBuf,
    /// Where the last kernel record's sequence number is kept, so that a restart does
    /// not collect the ring buffer again.
    #[arg(long, default_value = "/run/berth-journald/kernel-seqnum")]
    kmsg_seqnum_file: PathBuf,
    /// journald.conf-style configuration ([Journal] RateLimitIntervalSec=,
    /// RateLimitBurst=, LineMax=); a missing file means the defaults.
    #[arg(long, default_value = "/etc/systemd/journald.conf")]
    config: PathBuf,
    /// Where entries go: `auto` (journal files under --persistent-dir when it exists on a
    /// disk, else under --volatile-dir, as journald's Storage=auto), `persistent`
    /// (--persistent-dir created if needed), `volatile`, or `export` (Journal Export
    /// Format appended to --export, for tests). Opened after READY=1; a persistent
    /// folder that cannot be opened is said and --volatile-dir used instead, as journald
    /// does; when nothing can be opened the daemon exits 1.
    #[arg(long, value_enum, default_value_t = StorageArg::Auto)]
    storage: StorageArg,
    #[arg(long, default_value = "/var/log/journal")]
    persistent_dir: PathBuf,
    #[arg(long, default_value = "/run/log/journal")]
    volatile_dir: PathBuf,
    /// Journal Export Format file the entries are appended to with --storage export.
    #[arg(long, default_value = "/run/log/journal/berth.export")]
    export: PathBuf,
    /// Bound of the queue between readers and the sink, bytes (by the entries' size in
    /// memory). Measured with examples/stream_bench (1M lines of 100 B, export sink on
    /// tmpfs, 2 shared cores): 1 MiB gives 230-380k lines/s at 5.3-5.7 MiB VmHWM, 4 MiB
    /// about 325k lines/s at 13 MiB.
    #[arg(long, default_value_t = 1 << 20)]
    queue_bytes: usize,
    /// How long unit output streams are left unread while the queue is nearly full,
    /// before their lines are dropped (and counted), ms; 0 drops at once.
    #[arg(long, default_value_t = 1000)]
    stream_pause_ms: u64,
    /// File holding the machine id (`_MACHINE_ID`).
    #[arg(long, default_value = "/etc/machine-id")]
    machine_id_file: PathBuf,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum StorageArg {
    Auto,
    Persistent,
    Volatile,
    Export,
}

/// The sink `args` ask for. The machine id is read and checked here, before READY=1: no
/// storage would help a bad one.
fn plan(args: &Args) -> anyhow::Result<Plan> {
    let choice = match args.storage {
        StorageArg::Export => return Ok(Plan::Export(args.export.clone())),
        StorageArg::Auto => Choice::Auto,
        StorageArg::Persistent => Choice::Persistent,
        StorageArg::Volatile => Choice::Volatile,
    };
    let file = &args.machine_id_file;
    let machine_id =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    anyhow::ensure!(
        Id128::parse(&machine_id).is_some(),
        "{}: not a machine id (32 hex digits): {:?}",
        file.display(),
        machine_id.trim()
    );
    Ok(Plan::Journal {
        choice,
        persistent: args.persistent_dir.clone(),
        volatile: args.volatile_dir.clone(),
        machine_id,
    })
}

fn source(path: PathBuf) -> Option<PathBuf> {
    (path.as_os_str() != "none").then_some(path)
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            berth_journald::say!("berth-journald: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> anyhow::Result<()> {
    // First, while this is the only thread: it takes LISTEN_* out of the environment.
    let passed = activation::listen_fds()?;
    let config = Config::load(&args.config)?;
    let plan = plan(&args)?;
    let options = Options {
        stdout_socket: source(args.stdout_socket),
        native_socket: source(args.native_socket),
        syslog_socket: source(args.syslog_socket),
        passed,
        kmsg: source(args.kmsg),
        kmsg_seqnum_file: source(args.kmsg_seqnum_file),
        machine_id_file: args.machine_id_file,
        config,
        queue_bytes: args.queue_bytes,
        stream_pause_usec: args.stream_pause_ms.saturating_mul(1000),
    };
    let summary = daemon::run(options, Box::new(move || plan.open()))?;
    let hwm = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:").map(|v| v.trim().to_string()))
        })
        .unwrap_or_else(|| "?".into());
    berth_journald::say!(
        "berth-journald: stopped: {} entries queued, {} written, {} rate-limited, {} dropped (queue full; stream pauses ran out {} times), {} sink errors, VmHWM {}",
        summary.counts.queued,
        summary.written,
        summary.counts.rate_limited,
        summary.counts.queue_full,
        summary.pauses_ran_out,
        summary.sink_errors,
        hwm
    );
    Ok(())
}
