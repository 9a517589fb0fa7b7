//! Berth's PID 1: stage 1 in the initramfs, stage 2 (the service manager) as `/sbin/init`.
//!
//! Not implemented yet: the boot and early-boot work brings it. Until then this binary is
//! built and installed into the root at `/sbin/init` so that the image pipeline carries it,
//! and it says plainly what it is instead of pretending to boot anything.

use std::process::ExitCode;

fn main() -> ExitCode {
    if std::env::args().any(|arg| arg == "--version") {
        println!("berth-init {}", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    eprintln!("berth: FAILED init: berth-init is not implemented yet");
    ExitCode::FAILURE
}
