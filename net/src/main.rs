//! berth-networkd: parses flags and runs [`berth_net::daemon`]. Run by PID 1 as a
//! `Type=notify` unit; every path is a flag so that tests can move it.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;

#[derive(Debug, Parser)]
#[command(
    name = "berth-networkd",
    about = "DHCPv4 and .network files for Berth nodes"
)]
struct Args {
    /// `.network` folders, lowest precedence first (a file in a later folder replaces the
    /// same name in an earlier one).
    #[arg(long = "config-dir", default_values = ["/usr/lib/systemd/network", "/etc/systemd/network"])]
    config_dirs: Vec<PathBuf>,
    /// Where links are listed.
    #[arg(long, default_value = "/sys/class/net")]
    sys_class_net: PathBuf,
    /// Folder of the generated resolv.conf, hostname and state files.
    #[arg(long, default_value = "/run/berth/network")]
    run_dir: PathBuf,
    /// Made a symbolic link to <run-dir>/resolv.conf.
    #[arg(long, default_value = "/etc/resolv.conf")]
    etc_resolv_conf: PathBuf,
    /// Leave --etc-resolv-conf alone.
    #[arg(long)]
    no_etc_resolv_conf: bool,
    /// The kernel command line (for berth.hostname=).
    #[arg(long, default_value = "/proc/cmdline")]
    cmdline: PathBuf,
    /// The host name from the cloud's metadata, which wins over DHCP's.
    #[arg(long, default_value = "/run/berth/metadata/hostname")]
    metadata_hostname: PathBuf,
    /// Never call sethostname (the name is still written to <run-dir>/hostname).
    #[arg(long)]
    no_set_hostname: bool,
    /// Seconds to wait for an address and a default route before READY=1 anyway.
    #[arg(long, default_value_t = 30)]
    online_timeout: u64,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let opts = berth_net::daemon::Options {
        config_dirs: args.config_dirs,
        sys_class_net: args.sys_class_net,
        run_dir: args.run_dir,
        etc_resolv_conf: (!args.no_etc_resolv_conf).then_some(args.etc_resolv_conf),
        cmdline: args.cmdline,
        metadata_hostname: args.metadata_hostname,
        set_hostname: !args.no_set_hostname,
        online_timeout: Duration::from_secs(args.online_timeout),
    };
    match berth_net::daemon::run(&opts) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("berth-networkd: FAILED: {e}");
            ExitCode::FAILURE
        }
    }
}
