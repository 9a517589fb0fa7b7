//! `berth-timesync`: keeps the node's clock with SNTP; see the crate docs.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Result};
use berth_timesync::clock::{Clock, Linux, RecordingClock};
use berth_timesync::cloud;
use berth_timesync::ntp::query::QueryOptions;
use berth_timesync::ntp::sample::Seconds;
use berth_timesync::servers::{self, DHCP_SERVERS_FILE};
use berth_timesync::sync::{Client, Options, Policy, SyncError};
use clap::Parser;

/// SNTP client: steps the clock at boot when it is far off, then slews it with the
/// kernel's PLL; sends READY=1 to $NOTIFY_SOCKET after the first sync.
#[derive(Parser, Debug)]
#[command(name = "berth-timesync", version)]
struct Args {
    /// An NTP server (host, host:port, address, [IPv6]:port); repeatable. Added to the
    /// DHCP lease's servers; without either, the cloud's time source is used.
    #[arg(long = "server", value_name = "HOST[:PORT]")]
    servers: Vec<String>,
    /// The NTP servers from the DHCP lease, one a line.
    #[arg(long, value_name = "PATH", default_value = DHCP_SERVERS_FILE)]
    servers_file: PathBuf,
    /// Where SMBIOS is read to find the cloud.
    #[arg(long, value_name = "PATH", default_value = cloud::DMI_DIR)]
    dmi_dir: PathBuf,
    /// One round, print the result, exit (non-zero when no sync).
    #[arg(long)]
    once: bool,
    /// Measure and decide, but never change the clock (a recording clock).
    #[arg(long)]
    dry_run: bool,
    /// At the first sync, step when the offset is larger than this (seconds); else slew.
    #[arg(long, value_name = "SECS", default_value_t = 0.128)]
    step_threshold: f64,
    /// After the first sync, the largest step one server alone may cause (seconds).
    #[arg(long, value_name = "SECS", default_value_t = 1000.0)]
    max_step: f64,
    /// Requests per server per round; the shortest round trip wins.
    #[arg(long, value_name = "N", default_value_t = 4)]
    samples: u32,
    /// Pause between two requests to one server (seconds).
    #[arg(long, value_name = "SECS", default_value_t = 0.25)]
    sample_interval: f64,
    /// How long to wait for a reply (seconds).
    #[arg(long, value_name = "SECS", default_value_t = 1.0)]
    timeout: f64,
    /// Send READY=1 after this long even when not synchronized (seconds).
    #[arg(long, value_name = "SECS", default_value_t = 60.0)]
    ready_timeout: f64,
    /// Shortest poll interval, log2 seconds.
    #[arg(long, value_name = "LOG2", default_value_t = 6, value_parser = clap::value_parser!(u8).range(4..=17))]
    minpoll: u8,
    /// Longest poll interval, log2 seconds.
    #[arg(long, value_name = "LOG2", default_value_t = 10, value_parser = clap::value_parser!(u8).range(4..=17))]
    maxpoll: u8,
}

fn seconds(name: &str, value: f64) -> Result<Duration> {
    if !value.is_finite() || value < 0.0 {
        bail!("--{name} {value}: not a number of seconds");
    }
    Ok(Duration::from_secs_f64(value))
}

fn options(args: &Args) -> Result<Options> {
    if args.minpoll > args.maxpoll {
        bail!(
            "--minpoll {} is more than --maxpoll {}",
            args.minpoll,
            args.maxpoll
        );
    }
    let step_threshold = seconds("step-threshold", args.step_threshold)?;
    let max_step = seconds("max-step", args.max_step)?;
    Ok(Options {
        query: QueryOptions {
            samples: args.samples.max(1),
            interval: seconds("sample-interval", args.sample_interval)?,
            timeout: seconds("timeout", args.timeout)?,
        },
        policy: Policy {
            step_threshold: Seconds(step_threshold.as_nanos() as i64),
            max_step: Seconds(max_step.as_nanos().min(i64::MAX as u128) as i64),
        },
        poll_min_log2: args.minpoll,
        poll_max_log2: args.maxpoll,
        ready_timeout: seconds("ready-timeout", args.ready_timeout)?,
        once: args.once,
    })
}

fn log(line: &str) {
    eprintln!("berth-timesync: {line}");
}

/// Tells the service manager `state` (`READY=1\nSTATUS=…`) over `$NOTIFY_SOCKET`, if set.
fn send(state: &str) {
    if let Err(e) = sd_notify::notify(&[sd_notify::NotifyState::Custom(state)]) {
        log(&format!("telling the service manager {state:?}: {e}"));
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let options = match options(&args) {
        Ok(options) => options,
        Err(e) => {
            log(&format!("{e:#}"));
            return ExitCode::from(2);
        }
    };
    let real = Linux::default();
    let recording = RecordingClock::sleeping(Seconds(0));
    let clock: &dyn Clock = if args.dry_run { &recording } else { &real };
    let servers = || servers::choose(&args.servers, &args.servers_file, &args.dmi_dir);
    let mut client = Client::new(clock, options, &log);
    let result = client.run(&servers, &send);
    if args.dry_run {
        log(&format!(
            "dry run: the clock was not changed; would have done {:?}",
            recording.adjustments()
        ));
    }
    match result {
        Ok(round) => {
            let chosen = &round.selection.chosen;
            println!(
                "server={} offset={:+.9} delay={:.9} stratum={} agreeing={} action={}",
                chosen.server,
                chosen.offset.as_secs_f64(),
                chosen.delay.as_secs_f64(),
                chosen.stratum,
                round.selection.agreeing,
                match round.action {
                    berth_timesync::sync::Action::Step(_) => "step",
                    berth_timesync::sync::Action::Slew(_) => "slew",
                    berth_timesync::sync::Action::Refuse { .. } => "refuse",
                }
            );
            ExitCode::SUCCESS
        }
        Err(e @ SyncError::NoServers(_)) => {
            // Nothing to do on this node: not a failure, and time-sync.target may be
            // reached (the clock is as good as it gets here).
            log(&format!("{e}; exiting"));
            send("READY=1\nSTATUS=no NTP server configured");
            ExitCode::SUCCESS
        }
        Err(e) => {
            log(&format!("FAILED: {e}"));
            ExitCode::FAILURE
        }
    }
}
