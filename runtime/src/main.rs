//! Berth's CRI runtime daemon (Kubernetes CRI v1 over gRPC on a unix socket).
//!
//! Not implemented yet: the runtime work brings it. Until then this binary is built and
//! installed into the root at `/usr/bin/berth-runtime` so that the image pipeline carries
//! it, and it says plainly what it is instead of pretending to serve CRI.

use std::process::ExitCode;

fn main() -> ExitCode {
    if std::env::args().any(|arg| arg == "--version") {
        println!("berth-runtime {}", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    eprintln!("berth-runtime: not implemented yet");
    ExitCode::FAILURE
}
