//! `berth-monitor`: the per-container monitor started by the Berth CRI runtime. It parses
//! its arguments and hands over to [`berth_runtime::monitor`]; see there for what it does.

use std::path::PathBuf;
use std::process::ExitCode;

use berth_runtime::monitor::{self, MonitorArgs};
use berth_runtime::pod;
use clap::Parser;

/// Keeps a container's stdio, CRI log and exit status, outliving the runtime daemon.
#[derive(Debug, Parser)]
#[command(name = "berth-monitor", version)]
struct Cli {
    /// Container id.
    #[arg(long)]
    id: String,
    /// OCI bundle directory (state/containers/<id>).
    #[arg(long)]
    bundle: PathBuf,
    /// OCI runtime binary.
    #[arg(long)]
    runtime: PathBuf,
    /// What to execute for the OCI runtime, when not --runtime itself (the daemon's
    /// sealed copy of it, /proc/<daemon pid>/fd/<n>).
    #[arg(long)]
    runtime_exec: Option<PathBuf>,
    /// The OCI runtime's state directory (its --root).
    #[arg(long)]
    runtime_root: PathBuf,
    /// CRI log file; without it the output is discarded.
    #[arg(long)]
    log_path: Option<PathBuf>,
}

fn main() -> ExitCode {
    // The pod PID namespace init forks, so it must run before anything starts a thread.
    if std::env::args_os()
        .nth(1)
        .is_some_and(|a| a == pod::pidns::POD_INIT_ARG)
    {
        return pod::pidns::run_init();
    }
    let cli = Cli::parse();
    let args = MonitorArgs {
        id: cli.id,
        bundle: cli.bundle,
        runtime: cli.runtime,
        runtime_exec: cli.runtime_exec,
        runtime_root: cli.runtime_root,
        log_path: cli.log_path,
    };
    // Clap starts no thread, so the process still has one: it may fork.
    monitor::detach(&args)
}
