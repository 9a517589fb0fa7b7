//! `berth-runtime`: the CRI daemon. Flags override the configuration file, which may be
//! absent; every path defaults to where the Berth image keeps it.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use berth_runtime::config::{self, Config};
use berth_runtime::server::{self, Daemon};
use clap::Parser;

/// Kubernetes CRI v1 runtime (RuntimeService and ImageService) on a unix socket.
#[derive(Parser, Default)]
#[command(name = "berth-runtime", version)]
struct Args {
    /// The gRPC unix socket [default: /run/berth/cri.sock, or `socket` in the config].
    #[arg(long)]
    socket: Option<PathBuf>,
    /// Persistent state: images, layers, metadata [default: /var/lib/berth/runtime].
    #[arg(long)]
    root: Option<PathBuf>,
    /// Runtime state: bundles, namespaces, CNI cache [default: /run/berth/runtime].
    #[arg(long)]
    state: Option<PathBuf>,
    /// The configuration file; without the flag /etc/berth/runtime.toml is read if it exists.
    #[arg(long)]
    config: Option<PathBuf>,
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("berth-runtime: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<()> {
    // The image starts the daemon without arguments, which parse to all defaults: clap's
    // parser is then left out. Under qemu-x86_64 it was 611 of the 3,295 distinct blocks
    // of code translated between main and READY=1, and 33 of the 129 code pages they
    // touched (each block and page run for the first time costs an emulated CPU).
    // Any argument, `--help` and `--version` included, goes through clap as before.
    let args = if std::env::args_os().len() > 1 {
        Args::parse()
    } else {
        Args::default()
    };
    let mut config = match &args.config {
        Some(path) => Config::load(path, true)?,
        None => Config::load(std::path::Path::new(config::DEFAULT_CONFIG), false)?,
    };
    if let Some(socket) = args.socket {
        config.socket = socket;
    }
    if let Some(root) = args.root {
        config.root = root;
    }
    if let Some(state) = args.state {
        config.state = state;
    }
    let socket = config.socket.clone();
    // Opened here, before the async runtime exists: no thread of the blocking pool is
    // started only for this, and its threads are not yet started beside it (under an
    // emulated CPU each thread start before READY=1 counts).
    let daemon = Daemon::open(config).context("start-up failed")?;
    // Listening before the async runtime exists too: see `server::listen`.
    let listening = server::listen(daemon, &socket)?;
    // 1 MiB stacks, not tokio's 2 MiB: under transparent huge pages (`always` in Debian's
    // kernel) a 2 MiB stack is backed by a huge page on first touch, 2 MiB resident per
    // thread for what a few KiB would hold.
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(64)
        .thread_stack_size(1 << 20)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    tokio.block_on(listening.serve())
}
