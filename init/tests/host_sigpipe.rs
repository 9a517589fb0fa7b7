//! `IgnoreSIGPIPE=` through the real fork/exec path (`service_spawn::spawn`): the command
//! starts with SIGPIPE ignored (systemd's default) or at its default action
//! (`IgnoreSIGPIPE=no`, as systemd's shells and gettys ask), and no other signal is
//! ignored either way, whatever the spawning process had.

use std::path::Path;

use berth_init::sys::service_spawn::{self, CommandSpawn, Output};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;

/// The standard signals (1 to 31) a command spawned with `ignore_sigpipe` ignores, as a
/// mask of its `SigIgn:` line. (Signals above 31 are left out: this test process starts
/// with signal 32 ignored, one the C library keeps for itself and PID 1 never sets, and
/// the child resets the standard signals only.)
fn ignored_signals(ignore_sigpipe: bool) -> u64 {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("status");
    let spec = CommandSpawn {
        stdout: Output::Truncate(out.clone()),
        ignore_sigpipe,
        ..CommandSpawn::new(
            "sigpipe.service",
            Path::new("/bin/cat"),
            vec!["cat".into(), "/proc/self/status".into()],
        )
    };
    let pid = service_spawn::spawn(&spec).expect("spawned");
    let status = waitpid(Pid::from_raw(pid as i32), None).expect("waitpid");
    assert_eq!(status, WaitStatus::Exited(Pid::from_raw(pid as i32), 0));
    let text = std::fs::read_to_string(&out).expect("cat's output");
    let mask = text
        .lines()
        .find_map(|l| l.strip_prefix("SigIgn:"))
        .unwrap_or_else(|| panic!("no SigIgn: line in {text}"));
    u64::from_str_radix(mask.trim(), 16).expect("a hex mask") & 0x7fff_ffff
}

#[test]
fn sigpipe_is_ignored_by_default_and_at_its_default_with_ignore_sigpipe_no() {
    // Whatever this test process ignores must not reach the command (Rust's runtime
    // ignores SIGPIPE; ignore SIGUSR1 too, to see the other signals reset).
    // SAFETY: SIG_IGN installs no handler code.
    unsafe {
        nix::sys::signal::signal(
            nix::sys::signal::Signal::SIGUSR1,
            nix::sys::signal::SigHandler::SigIgn,
        )
    }
    .expect("ignore SIGUSR1");
    let sigpipe = 1u64 << (nix::libc::SIGPIPE - 1);
    assert_eq!(ignored_signals(true), sigpipe);
    assert_eq!(ignored_signals(false), 0);
}
