//! `berth-metadata`: the host name and user data from the cloud's metadata service;
//! see the crate docs. It always exits 0 after a fetch: a node without its metadata
//! still boots, and the message says what failed where.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use berth_timesync::cloud::{self, Cloud};
use berth_timesync::metadata::output::{self, Paths};
use berth_timesync::metadata::{self, Http, HttpOptions, DEFAULT_BASE};
use clap::{Parser, ValueEnum};

#[derive(Debug, Clone, Copy, ValueEnum)]
enum CloudArg {
    /// From SMBIOS.
    Auto,
    Gce,
    Aws,
    Azure,
    /// No cloud: fetch nothing.
    None,
}

/// Fetches the host name and user data from GCE, AWS (IMDSv2) or Azure metadata.
#[derive(Parser, Debug)]
#[command(name = "berth-metadata", version)]
struct Args {
    /// Which cloud's protocol to speak.
    #[arg(long, value_enum, default_value = "auto")]
    cloud: CloudArg,
    /// Where SMBIOS is read to find the cloud.
    #[arg(long, value_name = "PATH", default_value = cloud::DMI_DIR)]
    dmi_dir: PathBuf,
    /// The metadata service.
    #[arg(long, value_name = "URL", default_value = DEFAULT_BASE)]
    base_url: String,
    #[arg(long, value_name = "PATH", default_value = output::HOSTNAME_FILE)]
    hostname_file: PathBuf,
    /// Written mode 0600.
    #[arg(long, value_name = "PATH", default_value = output::USER_DATA_FILE)]
    user_data_file: PathBuf,
    /// Connection time limit per try (seconds).
    #[arg(long, value_name = "SECS", default_value_t = 1.0)]
    connect_timeout: f64,
    /// Time limit of one request per try, connection to last byte (seconds).
    #[arg(long, value_name = "SECS", default_value_t = 2.0)]
    timeout: f64,
    /// Tries per request.
    #[arg(long, value_name = "N", default_value_t = 3)]
    tries: u32,
    /// The kernel command line: with `berth.hostname=` the metadata's host name is only
    /// written down, not set (the command line wins).
    #[arg(long, value_name = "PATH", default_value = "/proc/cmdline")]
    cmdline: PathBuf,
    /// Never call sethostname (the name is still written to --hostname-file).
    #[arg(long)]
    no_set_hostname: bool,
}

/// Sets the kernel's host name to the metadata's, unless the command line names one
/// (`berth.hostname=` > the cloud's metadata > DHCP > `berth-<id8>`).
fn apply_hostname(name: &str, args: &Args) {
    let cmdline = std::fs::read_to_string(&args.cmdline).unwrap_or_default();
    if cmdline
        .split_whitespace()
        .any(|w| w.starts_with("berth.hostname="))
    {
        log(&format!(
            "host name {name:?} not set: berth.hostname= on the command line wins"
        ));
        return;
    }
    match nix::unistd::sethostname(name) {
        Ok(()) => log(&format!("host name {name} (from the cloud's metadata)")),
        Err(e) => log(&format!("FAILED sethostname {name:?}: {e}")),
    }
}

fn log(line: &str) {
    eprintln!("berth-metadata: {line}");
}

fn seconds(name: &str, value: f64) -> Result<Duration, String> {
    if value.is_finite() && value > 0.0 {
        Ok(Duration::from_secs_f64(value))
    } else {
        Err(format!("--{name} {value}: not a number of seconds"))
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let found = match args.cloud {
        CloudArg::Gce => Some(Cloud::Gce),
        CloudArg::Aws => Some(Cloud::Aws),
        CloudArg::Azure => Some(Cloud::Azure),
        CloudArg::None => None,
        CloudArg::Auto => {
            let (found, dmi) = cloud::detect(&args.dmi_dir);
            if found.is_none() {
                log(&format!("no cloud in SMBIOS ({dmi}): nothing to fetch"));
            }
            found
        }
    };
    let Some(cloud) = found else {
        return ExitCode::SUCCESS;
    };
    let options = match (
        seconds("connect-timeout", args.connect_timeout),
        seconds("timeout", args.timeout),
    ) {
        (Ok(connect_timeout), Ok(request_timeout)) => HttpOptions {
            connect_timeout,
            request_timeout,
            tries: args.tries.max(1),
            ..HttpOptions::default()
        },
        (Err(e), _) | (_, Err(e)) => {
            log(&e);
            return ExitCode::from(2);
        }
    };
    let http = Http::new(options);
    let fetched = metadata::fetch(cloud, &http, &args.base_url);
    let paths = Paths {
        hostname: args.hostname_file.clone(),
        user_data: args.user_data_file.clone(),
    };
    match fetched.and_then(|meta| Ok((output::write(&meta, &paths)?, meta))) {
        Ok((written, meta)) => {
            if !args.no_set_hostname {
                apply_hostname(&meta.hostname, &args);
            }
            log(&format!(
                "{cloud}: host name {:?}, {}; wrote {}",
                meta.hostname,
                match &meta.user_data {
                    Some(data) => format!("{} bytes of user data", data.len()),
                    None => "no user data".to_owned(),
                },
                written
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        Err(e) => log(&format!(
            "FAILED {cloud} metadata: {e}; nothing written, boot goes on"
        )),
    }
    ExitCode::SUCCESS
}
