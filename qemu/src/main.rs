//! `berth-qemu`: boot a disk image on this terminal, the way VM tests boot it.
//!
//! Thin on purpose: it parses arguments and calls `berth_qemu`. The serial console is the
//! terminal; Ctrl-A X quits QEMU, Ctrl-A C switches to QEMU's monitor.

use std::path::PathBuf;
use std::process::ExitCode;

use berth_qemu::{Accel, DiskBus, Firmware, Qemu};
use clap::Parser;

#[derive(Parser)]
#[command(
    version,
    about = "Boot a Berth disk image under QEMU with UEFI (Ctrl-A X quits)"
)]
struct Args {
    /// Disk image to boot (raw unless --format says otherwise).
    disk: Option<PathBuf>,
    /// Disk format as QEMU names it.
    #[arg(long, default_value = "raw")]
    format: String,
    /// The disk's controller: QEMU's usual, GCE's default, or AWS's and GCE's NVMe.
    #[arg(long, default_value = "virtio-blk", value_parser = ["virtio-blk", "virtio-scsi", "nvme"])]
    disk_bus: String,
    /// Guest memory in MiB.
    #[arg(short, long, default_value_t = 1024)]
    memory: u32,
    /// Number of virtual CPUs.
    #[arg(long, default_value_t = 2)]
    cpus: u32,
    /// Let the guest write the disk (default: writes go to a throw-away overlay).
    #[arg(long)]
    persistent: bool,
    /// End QEMU when the guest reboots.
    #[arg(long)]
    no_reboot: bool,
    /// Forward a TCP port, HOST:GUEST (repeatable), e.g. 2222:22.
    #[arg(short = 'p', long = "forward", value_parser = parse_forward)]
    forwards: Vec<(u16, u16)>,
    /// Accelerator, instead of probing (also BERTH_QEMU_ACCEL).
    #[arg(long, value_parser = ["kvm", "tcg"])]
    accel: Option<String>,
    /// OVMF code and variable template, instead of the installed ones.
    #[arg(long, num_args = 2, value_names = ["CODE", "VARS"])]
    firmware: Option<Vec<PathBuf>>,
    /// Print the accelerator this host gets, and why, then exit.
    #[arg(long)]
    probe: bool,
    /// Extra QEMU arguments, after `--`.
    #[arg(last = true)]
    qemu_args: Vec<String>,
}

fn parse_forward(text: &str) -> Result<(u16, u16), String> {
    let (host, guest) = text
        .split_once(':')
        .ok_or_else(|| format!("{text}: expected HOST:GUEST"))?;
    let port = |p: &str| p.parse::<u16>().map_err(|err| format!("{p}: {err}"));
    Ok((port(host)?, port(guest)?))
}

fn main() -> ExitCode {
    let args = Args::parse();
    if args.probe {
        let choice = berth_qemu::accel_choice();
        println!("{}: {}", choice.accel, choice.reason);
        return ExitCode::SUCCESS;
    }
    let Some(disk) = args.disk else {
        eprintln!("berth-qemu: no disk image given (see --help)");
        return ExitCode::from(2);
    };
    let mut builder = Qemu::builder()
        .disk(disk)
        .disk_format(&args.format)
        .disk_bus(match args.disk_bus.as_str() {
            "virtio-scsi" => DiskBus::VirtioScsi,
            "nvme" => DiskBus::Nvme,
            _ => DiskBus::VirtioBlk,
        })
        .memory_mib(args.memory)
        .cpus(args.cpus)
        .snapshot(!args.persistent)
        .no_reboot(args.no_reboot)
        .extra_args(args.qemu_args);
    for (host, guest) in args.forwards {
        builder = builder.port_forward(host, guest);
    }
    match args.accel.as_deref() {
        Some("kvm") => builder = builder.accel(Accel::Kvm),
        Some(_) => builder = builder.accel(Accel::Tcg),
        None => {}
    }
    if let Some([code, vars]) = args.firmware.as_deref() {
        builder = builder.firmware(Firmware::new(code, vars));
    }
    match builder.interactive() {
        Ok(status) if status.success() => ExitCode::SUCCESS,
        Ok(status) => {
            eprintln!("berth-qemu: QEMU {status}");
            ExitCode::FAILURE
        }
        Err(err) => {
            let mut message = err.to_string();
            let mut source = std::error::Error::source(&err);
            while let Some(cause) = source {
                message.push_str(&format!(": {cause}"));
                source = cause.source();
            }
            eprintln!("berth-qemu: {message}");
            ExitCode::FAILURE
        }
    }
}
