//! `systemd-analyze`: reads PID 1's timestamps over its control socket; see
//! [`berth_analyze`].

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use berth_analyze::Source;
use berth_init::control::client::call;
use berth_init::control::{Reply, Request, CONTROL_SOCKET};

/// PID 1's control socket.
struct Socket(PathBuf);

impl Socket {
    fn ask(&self, verb: &str, args: &[String]) -> Result<Vec<String>, String> {
        match call(&self.0, &Request::new(verb, args)) {
            Ok(Reply::Ok(body)) => Ok(body),
            Ok(Reply::Error { message, .. }) => Err(message),
            Err(e) => Err(format!("Failed to connect to the service manager: {e}")),
        }
    }
}

impl Source for Socket {
    fn show(&self, unit: Option<&str>) -> Result<BTreeMap<String, String>, String> {
        let args: Vec<String> = unit.into_iter().map(str::to_owned).collect();
        Ok(self
            .ask("show", &args)?
            .iter()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect())
    }

    fn units(&self) -> Result<Vec<String>, String> {
        Ok(self
            .ask("list-units", &[])?
            .iter()
            .filter_map(|row| row.split('\t').next().map(str::to_owned))
            .collect())
    }

    fn after(&self, unit: &str) -> Result<Vec<String>, String> {
        Ok(self
            .ask("list-dependencies", &["after".into(), unit.into()])?
            .iter()
            .filter_map(|row| row.split('\t').next().map(str::to_owned))
            .collect())
    }
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    if argv.iter().any(|a| a == "--version") {
        println!("systemd-analyze (berth-init {})", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    let socket = std::env::var_os("BERTH_INIT_SOCKET")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(CONTROL_SOCKET).to_owned());
    let outcome = berth_analyze::run(&argv, &Socket(socket));
    let _ = std::io::stdout().write_all(outcome.stdout.as_bytes());
    let _ = std::io::stderr().write_all(outcome.stderr.as_bytes());
    ExitCode::from(outcome.code)
}
