//! Orderly shutdown: the engine's second job list, the reverse of early boot. Each phase
//! prints `berth: shutdown <phase>`: stop (SIGTERM and SIGCONT to every process, then
//! wait up to [`STOP_TIMEOUT`]), kill (SIGKILL to what is left),
//! sync, unmount (everything but `/` and the kernel's API filesystems, innermost first;
//! what cannot be unmounted is remounted read-only, so STATE's journal is clean and the
//! next boot needs no ext4 recovery), then power off, reboot or halt.

use std::path::Path;
use std::time::Duration;

use super::engine::{Job, JobResult, Machine};
use super::mounts::{parse_mountinfo, MountEntry};
use crate::sys::PowerAction;

/// How long processes get between SIGTERM and SIGKILL.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(5);
/// How long to wait for the killed to be reaped.
const KILL_WAIT: Duration = Duration::from_secs(2);

pub const SHUTDOWN: [Job; 5] = [
    Job {
        name: "shutdown stop",
        run: stop,
    },
    Job {
        name: "shutdown kill",
        run: kill,
    },
    Job {
        name: "shutdown sync",
        run: sync,
    },
    Job {
        name: "shutdown unmount",
        run: unmount,
    },
    Job {
        name: "shutdown power",
        run: power,
    },
];

/// Reaps until no child is left or `limit` passed; returns whether children remain.
fn wait_for_children(m: &Machine, limit: Duration) -> bool {
    let deadline = m.sys.now() + limit;
    loop {
        if !m.sys.reap().children_left {
            return false;
        }
        if m.sys.now() >= deadline {
            return true;
        }
        m.sys.sleep(Duration::from_millis(50));
    }
}

fn stop(m: &mut Machine) -> JobResult {
    m.log("berth: shutdown stop: SIGTERM to every process");
    let _ = m.sys.kill(-1, nix::libc::SIGTERM);
    let _ = m.sys.kill(-1, nix::libc::SIGCONT);
    wait_for_children(m, STOP_TIMEOUT);
    Ok(())
}

fn kill(m: &mut Machine) -> JobResult {
    if !m.sys.reap().children_left {
        m.log("berth: shutdown kill: nothing left");
        return Ok(());
    }
    m.log(&format!(
        "berth: shutdown kill: SIGKILL to what is left after {}s",
        STOP_TIMEOUT.as_secs()
    ));
    let _ = m.sys.kill(-1, nix::libc::SIGKILL);
    if wait_for_children(m, KILL_WAIT) {
        return Err("children are left after SIGKILL".into());
    }
    Ok(())
}

fn sync(m: &mut Machine) -> JobResult {
    m.log("berth: shutdown sync");
    m.sys.sync();
    Ok(())
}

/// What to unmount, innermost (last mounted) first: everything but `/` and the kernel's
/// API filesystems (`/proc`, `/sys`, `/dev` and what is below them), which hold nothing
/// that needs writing back.
pub fn unmount_plan(mountinfo: &str) -> Vec<MountEntry> {
    let api = ["/proc", "/sys", "/dev"];
    let mut plan: Vec<MountEntry> = parse_mountinfo(mountinfo)
        .into_iter()
        .filter(|e| e.target != "/")
        .filter(|e| !api.iter().any(|a| Path::new(&e.target).starts_with(a)))
        .collect();
    plan.reverse();
    plan
}

fn unmount(m: &mut Machine) -> JobResult {
    let text = m.sys.read_to_string(Path::new("/proc/self/mountinfo"))?;
    let (mut unmounted, mut read_only) = (0, 0);
    let mut failures = Vec::new();
    for entry in unmount_plan(&text) {
        let target = Path::new(&entry.target);
        let Err(e) = m.sys.unmount(target) else {
            unmounted += 1;
            continue;
        };
        if !entry.source.starts_with("/dev/") {
            failures.push(format!("{} ({e})", entry.target));
            continue;
        }
        match m.sys.remount_read_only(target) {
            Ok(()) => read_only += 1,
            Err(r) => failures.push(format!("{} ({e}; read-only: {r})", entry.target)),
        }
    }
    m.sys.sync();
    m.log(&format!(
        "berth: shutdown unmount: {unmounted} unmounted, {read_only} remounted read-only"
    ));
    match failures.is_empty() {
        true => Ok(()),
        false => Err(format!("still mounted: {}", failures.join(", ")).into()),
    }
}

fn power(m: &mut Machine) -> JobResult {
    let action = m.action;
    m.log(&format!("berth: shutdown {action}"));
    if let Err(e) = m.sys.reboot(action) {
        m.log(&format!("berth: FAILED {action}: {e}"));
        m.sys.reboot(PowerAction::Halt)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unmount_plan_is_innermost_first_and_spares_api_filesystems() {
        let text = "22 1 254:0 / / ro - ext4 /dev/mapper/root ro\n\
                    23 22 0:5 / /dev rw - devtmpfs devtmpfs rw\n\
                    24 23 0:6 / /dev/pts rw - devpts devpts rw\n\
                    25 22 0:7 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n\
                    26 22 0:8 / /run rw - tmpfs tmpfs rw\n\
                    27 22 253:6 / /mnt/stateful_partition rw - ext4 /dev/vda6 rw\n\
                    28 22 253:6 /var /var rw - ext4 /dev/vda6 rw\n";
        let targets: Vec<String> = unmount_plan(text).into_iter().map(|e| e.target).collect();
        assert_eq!(targets, ["/var", "/mnt/stateful_partition", "/run"]);
    }
}
