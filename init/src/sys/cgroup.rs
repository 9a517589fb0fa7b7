//! A unit's cgroup (systemd.resource-control(5)): made with its parents and their
//! controllers enabled, listed, and signalled as a whole.

use std::fs::OpenOptions;
use std::io::{self, Write};
use std::path::Path;

use nix::sys::signal::{self, Signal};

/// Sends `signal` to every process of the cgroup at `dir` (its subgroups included);
/// SIGKILL uses `cgroup.kill` where the kernel has it (5.14). Returns how many were
/// signalled (0: the group is empty).
pub fn signal_cgroup(dir: &Path, signal: i32) -> io::Result<usize> {
    if signal == nix::libc::SIGKILL {
        let kill = dir.join("cgroup.kill");
        if let Ok(mut f) = OpenOptions::new().write(true).open(&kill) {
            let before = pids(dir)?.len();
            f.write_all(b"1")?;
            return Ok(before);
        }
    }
    let all = pids(dir)?;
    for pid in &all {
        let _ = signal::kill(
            nix::unistd::Pid::from_raw(*pid as i32),
            Signal::try_from(signal).ok(),
        );
    }
    Ok(all.len())
}

/// Every PID in the cgroup at `dir` and below.
pub fn pids(dir: &Path) -> io::Result<Vec<u32>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let procs = match std::fs::read_to_string(d.join("cgroup.procs")) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        out.extend(procs.lines().filter_map(|l| l.trim().parse::<u32>().ok()));
        for entry in std::fs::read_dir(&d)?.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(entry.path());
            }
        }
    }
    Ok(out)
}

/// Creates the cgroup folder `dir` with its parents, enabling every available controller
/// in each parent's `cgroup.subtree_control` on the way, so limits can be set below.
pub fn create_cgroup(root: &Path, dir: &Path) -> io::Result<()> {
    let rel = dir.strip_prefix(root).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} is not below {}", dir.display(), root.display()),
        )
    })?;
    let mut at = root.to_path_buf();
    for part in rel.components() {
        enable_controllers(&at);
        at.push(part);
        match std::fs::create_dir(&at) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => {
                return Err(io::Error::new(
                    e.kind(),
                    format!("cannot create {}: {e}", at.display()),
                ))
            }
        }
    }
    Ok(())
}

/// Best effort: a controller the kernel refuses (busy, not available) is left off.
fn enable_controllers(dir: &Path) {
    let Ok(available) = std::fs::read_to_string(dir.join("cgroup.controllers")) else {
        return;
    };
    let Ok(mut control) = OpenOptions::new()
        .write(true)
        .open(dir.join("cgroup.subtree_control"))
    else {
        return;
    };
    for c in available.split_whitespace() {
        let _ = control.write_all(format!("+{c}").as_bytes());
    }
}
