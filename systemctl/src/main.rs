//! `systemctl`: talks to Berth's PID 1 over its control socket; see
//! [`berth_systemctl`].

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use berth_init::control::CONTROL_SOCKET;
use berth_systemctl as systemctl;

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    if argv.iter().any(|a| a == "--version") {
        println!("systemctl (berth-init {})", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    let args = match systemctl::parse(&argv) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("systemctl: {e}");
            return ExitCode::from(1);
        }
    };
    let socket = std::env::var_os("BERTH_INIT_SOCKET");
    let socket = socket
        .as_deref()
        .map(Path::new)
        .unwrap_or(Path::new(CONTROL_SOCKET));
    let outcome = systemctl::run(socket, &args);
    let _ = std::io::stdout().write_all(outcome.stdout.as_bytes());
    let _ = std::io::stderr().write_all(outcome.stderr.as_bytes());
    ExitCode::from(outcome.code)
}
