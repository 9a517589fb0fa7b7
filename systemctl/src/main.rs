//! `systemctl`: talks to Berth's PID 1 over its control socket; see
//! [`berth_systemctl`]. Called as `systemd-analyze` (the image links that name here), it
//! is [`berth_analyze`]; called as `reboot`, `poweroff` or `halt`, it asks for that.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use berth_analyze::socket::ControlSocket;
use berth_init::control::CONTROL_SOCKET;
use berth_systemctl as systemctl;

fn main() -> ExitCode {
    let name = std::env::args_os()
        .next()
        .and_then(|a| {
            Path::new(&a)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
        })
        .unwrap_or_default();
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let socket = std::env::var_os("BERTH_INIT_SOCKET");
    let socket = socket
        .as_deref()
        .map(Path::new)
        .unwrap_or(Path::new(CONTROL_SOCKET));
    if name == "systemd-analyze" {
        return analyze(&argv, socket);
    }
    // `reboot`, `poweroff`, `halt`: the image links these names here, as systemd-sysv does.
    let argv = match systemctl::power_command(&name, &argv) {
        Some(Ok(verb)) => vec![verb.to_owned()],
        Some(Err(e)) => {
            eprintln!("{name}: {e}");
            return ExitCode::from(1);
        }
        None => argv,
    };
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
    let outcome = systemctl::run(socket, &args);
    let _ = std::io::stdout().write_all(outcome.stdout.as_bytes());
    let _ = std::io::stderr().write_all(outcome.stderr.as_bytes());
    ExitCode::from(outcome.code)
}

/// `systemd-analyze ARGS` against PID 1 at `socket`.
fn analyze(argv: &[String], socket: &Path) -> ExitCode {
    if argv.iter().any(|a| a == "--version") {
        println!("systemd-analyze (berth-init {})", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    let outcome = berth_analyze::run(argv, &ControlSocket(socket.to_owned()));
    let _ = std::io::stdout().write_all(outcome.stdout.as_bytes());
    let _ = std::io::stderr().write_all(outcome.stderr.as_bytes());
    ExitCode::from(outcome.code)
}
