//! `journalctl`: reads the node's journal files; see [`berth_journalctl`].

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use berth_journalctl::args::{self, Action};
use berth_journalctl::files::{self, Files, NODE_DIRECTORIES};
use berth_journalctl::follow;

fn main() -> ExitCode {
    let mut argv = std::env::args();
    let program = argv.next().unwrap_or_else(|| "journalctl".to_owned());
    let argv: Vec<String> = argv.collect();
    let options = match args::parse(&argv) {
        Ok(o) => o,
        // getopt's complaints name the program as it was invoked, as systemd's do.
        Err(e @ args::ArgError::Getopt(_)) => {
            eprintln!("{program}: {e}");
            return ExitCode::from(1);
        }
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(1);
        }
    };
    match options.action {
        Action::Version => {
            println!(
                "journalctl (berth-journalctl {})",
                env!("CARGO_PKG_VERSION")
            );
            return ExitCode::SUCCESS;
        }
        Action::Help => {
            print!("{}", berth_journalctl::HELP);
            return ExitCode::SUCCESS;
        }
        _ => {}
    }
    let mut source = if !options.files.is_empty() {
        Files::Files(options.files.iter().map(PathBuf::from).collect())
    } else if let Some(dir) = &options.directory {
        // A -D directory that cannot be read is an error (the node's own may be missing).
        if let Err(e) = std::fs::read_dir(dir) {
            eprintln!("Failed to open {dir}: {}", files::io_reason(&e));
            return ExitCode::from(1);
        }
        Files::Directories(vec![PathBuf::from(dir)])
    } else {
        Files::Directories(NODE_DIRECTORIES.iter().map(PathBuf::from).collect())
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0);
    let this_boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .ok()
        .map(|s| s.trim().replace('-', ""));
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 16, stdout.lock());
    let outcome = berth_journalctl::run(&options, &mut source, now, this_boot.as_deref(), &mut out);
    let flushed = out.flush();
    let _ = std::io::stderr().write_all(outcome.stderr.as_bytes());
    if outcome.code != 0 || !options.follow || flushed.is_err() {
        return ExitCode::from(outcome.code);
    }
    // -f: print what arrives from now on, until interrupted.
    let mut seen = follow::Seen::after(&outcome.last_key);
    loop {
        std::thread::sleep(Duration::from_millis(250));
        let wrote = follow::new_entries(
            &options,
            &mut source,
            &mut seen,
            this_boot.as_deref(),
            &mut out,
        );
        if wrote.and_then(|()| out.flush()).is_err() {
            return ExitCode::SUCCESS;
        }
    }
}
