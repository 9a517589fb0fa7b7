//! Facts about processes and this host read from `/proc`: process start times (to tell
//! a live monitor from a reused pid), the bounding capability set (what "all
//! capabilities" means here) and whether a negative `oom_score_adj` is allowed.

use std::path::Path;

/// A process identity that survives pid reuse: the pid and its start time in clock
/// ticks since boot (`/proc/<pid>/stat` field 22).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessId {
    /// The pid.
    pub pid: i32,
    /// Its start time in clock ticks since boot.
    pub start_time: u64,
}

impl ProcessId {
    /// The identity of the running process `pid`, or `None` if there is none.
    pub fn of(pid: i32) -> Option<Self> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        Some(ProcessId {
            pid,
            start_time: parse_start_time(&stat)?,
        })
    }

    /// Whether this exact process is still alive (not a zombie, not a reused pid).
    pub fn is_alive(&self) -> bool {
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{}/stat", self.pid)) else {
            return false;
        };
        parse_start_time(&stat) == Some(self.start_time) && parse_state(&stat) != Some('Z')
    }

    /// The `pid start_time` text of a pid file.
    pub fn to_line(&self) -> String {
        format!("{} {}\n", self.pid, self.start_time)
    }

    /// Parses a pid file written by [`ProcessId::to_line`].
    pub fn parse(text: &str) -> Option<Self> {
        let mut words = text.split_whitespace();
        let pid = words.next()?.parse().ok()?;
        let start_time = words.next()?.parse().ok()?;
        Some(ProcessId { pid, start_time })
    }
}

/// The fields after the command name, which may itself contain spaces and parentheses.
fn fields_after_comm(stat: &str) -> Option<Vec<&str>> {
    let end = stat.rfind(')')?;
    Some(stat.get(end + 1..)?.split_whitespace().collect())
}

fn parse_state(stat: &str) -> Option<char> {
    fields_after_comm(stat)?.first()?.chars().next()
}

/// Field 22 of `/proc/<pid>/stat`; after the comm, fields are numbered from 3.
fn parse_start_time(stat: &str) -> Option<u64> {
    fields_after_comm(stat)?.get(22 - 3)?.parse().ok()
}

/// Whether process `pid` exists and is not a zombie (has not exited).
pub fn is_running(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| parse_state(&stat))
        .is_some_and(|state| state != 'Z')
}

/// Whether process `pid` has a handler installed for `signal` (its `SigCgt` mask);
/// `None` if it cannot be read (the process is gone).
pub fn catches_signal(pid: i32, signal: i32) -> Option<bool> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let mask = status
        .lines()
        .find_map(|l| l.strip_prefix("SigCgt:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())?;
    let bit = u32::try_from(signal).ok()?.checked_sub(1)?;
    Some(mask.checked_shr(bit).is_some_and(|m| m & 1 == 1))
}

/// This process's `oom_score_adj` (0 if it cannot be read).
pub fn current_oom_score_adj() -> i32 {
    std::fs::read_to_string("/proc/self/oom_score_adj")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

/// Capability numbers in this process's bounding set.
pub fn bounding_capabilities() -> Vec<u32> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let mask = status
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .unwrap_or(0);
    (0..64).filter(|bit| mask & (1u64 << bit) != 0).collect()
}

/// Whether this process may lower `oom_score_adj` below its current value: that needs
/// CAP_SYS_RESOURCE (bit 24) in the effective set.
pub fn oom_score_adj_allowed() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .is_some_and(|mask| mask & (1 << 24) != 0)
}

/// Whether `path` is a mountpoint, from `/proc/self/mountinfo`.
pub fn is_mountpoint(path: &Path) -> bool {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    let wanted = path.to_string_lossy();
    info.lines()
        .any(|line| line.split(' ').nth(4).map(unescape_octal).as_deref() == Some(&*wanted))
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape_octal(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 4 <= bytes.len() {
            if let Some(v) = std::str::from_utf8(&bytes[i + 1..i + 4])
                .ok()
                .and_then(|o| u8::from_str_radix(o, 8).ok())
            {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_time_parses_after_a_comm_with_spaces() {
        let stat = "42 (a b) c) S 1 42 42 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 987654 1 2";
        assert_eq!(parse_start_time(stat), Some(987654));
        assert_eq!(parse_state(stat), Some('S'));
        assert_eq!(parse_start_time("garbage"), None);
    }

    #[test]
    fn caught_signals_are_read_from_sigcgt() {
        let me = std::process::id() as i32;
        // The Rust runtime ignores SIGPIPE (13) and the test harness installs no SIGUSR2
        // (12) handler: neither is caught.
        assert_eq!(catches_signal(me, 12), Some(false));
        assert_eq!(catches_signal(me, 0), None, "signal 0 has no bit");
        assert_eq!(catches_signal(i32::MAX, 15), None, "no such process");
        // A shell that traps TERM catches it once the trap has run.
        let mut child = std::process::Command::new("/bin/sh")
            .args(["-c", "trap 'exit 0' TERM; echo ready; read x"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.take().unwrap()),
            &mut line,
        )
        .unwrap();
        assert_eq!(catches_signal(child.id() as i32, 15), Some(true));
        assert_eq!(catches_signal(child.id() as i32, 12), Some(false));
        child.kill().unwrap();
        child.wait().unwrap();
    }

    #[test]
    fn this_process_is_alive_and_round_trips() {
        let me = ProcessId::of(std::process::id() as i32).unwrap();
        assert!(me.is_alive());
        assert_eq!(ProcessId::parse(&me.to_line()), Some(me));
        let other = ProcessId {
            start_time: me.start_time + 1,
            ..me
        };
        assert!(!other.is_alive());
        assert_eq!(ProcessId::parse("x y"), None);
    }

    #[test]
    fn mountinfo_escapes_are_undone() {
        assert_eq!(unescape_octal(r"/a\040b"), "/a b");
        assert_eq!(unescape_octal(r"/a\04"), r"/a\04");
        assert!(is_mountpoint(Path::new("/proc")));
    }
}
