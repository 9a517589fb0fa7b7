//! A unit's cgroup (systemd.resource-control(5)): made with its parents and their
//! controllers enabled, listed, signalled as a whole, and removed once its unit is done.

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

/// Removes the cgroup at `dir` and every group below it (a delegatee's), deepest first, as
/// systemd's `cg_trim`: a cgroup folder goes with `rmdir` alone, its files with it. A
/// group still holding processes stays (EBUSY, as after `KillMode=process`), and so do its
/// parents; that is said in the error. A group already gone is no error. Iterative: a
/// delegated subtree may be nested deeper than PID 1's stack.
pub fn remove_cgroup(dir: &Path) -> io::Result<()> {
    let mut stack = vec![(dir.to_path_buf(), false)];
    let mut busy = None;
    while let Some((d, children_done)) = stack.pop() {
        if children_done {
            match std::fs::remove_dir(&d) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => {
                    busy.get_or_insert_with(|| {
                        io::Error::new(e.kind(), format!("cannot remove {}: {e}", d.display()))
                    });
                }
            }
            continue;
        }
        stack.push((d.clone(), true));
        let entries = match std::fs::read_dir(&d) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        for entry in entries {
            let entry = entry?;
            if entry.file_type()?.is_dir() {
                stack.push((entry.path(), false));
            }
        }
    }
    busy.map_or(Ok(()), Err)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// On an ordinary folder tree, a file stands for a group's processes: `rmdir` refuses
    /// that folder (as EBUSY does on cgroupfs) and so its parents.
    #[test]
    fn groups_go_deepest_first_and_a_busy_one_stays_with_its_parents() {
        let tmp = tempfile::tempdir().unwrap();
        let unit = tmp.path().join("kubelet.service");
        let deep = (0..200).fold(unit.join("pods"), |d, i| d.join(i.to_string()));
        std::fs::create_dir_all(&deep).unwrap();
        std::fs::create_dir_all(unit.join("busy/inner")).unwrap();
        std::fs::write(unit.join("busy/cgroup.procs"), "42\n").unwrap();

        let err = remove_cgroup(&unit).unwrap_err();
        assert!(err.to_string().contains("busy"), "{err}");
        assert!(!unit.join("pods").exists());
        assert!(!unit.join("busy/inner").exists());
        assert!(unit.join("busy").exists());

        std::fs::remove_file(unit.join("busy/cgroup.procs")).unwrap();
        remove_cgroup(&unit).unwrap();
        assert!(!unit.exists());
        // Already gone: no error.
        remove_cgroup(&unit).unwrap();
    }
}
