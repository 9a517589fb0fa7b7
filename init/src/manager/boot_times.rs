//! The boot's milestones as systemd records them for `systemd-analyze time`, on the boot
//! clock: when the kernel started PID 1 in the initramfs (systemd's InitRDTimestamp; the
//! kernel's part of the boot ends there), when stage 2 started in the real root
//! (UserspaceTimestamp), and when the boot's anchor was reached (FinishTimestamp).
//! Berth's stage 1 is the same process as stage 2, so the first comes from the start time
//! the kernel keeps for PID 1 (`/proc/1/stat`), in its 10 ms clock ticks.

use std::time::Duration;

/// The kernel's clock tick for `/proc/PID/stat` times (USER_HZ, fixed at 100 on Linux's
/// x86-64 ABI).
const USER_HZ: u64 = 100;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BootTimes {
    pub initrd: Option<Duration>,
    pub userspace: Option<Duration>,
    pub finish: Option<Duration>,
}

impl BootTimes {
    /// As `systemctl show` (of the manager) names them, in µs; 0 for not recorded.
    pub fn properties(&self) -> Vec<(&'static str, String)> {
        let micros = |d: Option<Duration>| d.map_or(0, |d| d.as_micros()).to_string();
        vec![
            ("KernelTimestampMonotonic", "0".into()),
            ("InitRDTimestampMonotonic", micros(self.initrd)),
            ("UserspaceTimestampMonotonic", micros(self.userspace)),
            ("FinishTimestampMonotonic", micros(self.finish)),
        ]
    }
}

/// PID 1's start time from the text of `/proc/1/stat` (field 22, `starttime`, after the
/// command name in parentheses, which may itself hold spaces or parentheses).
pub fn process_start(stat: &str) -> Option<Duration> {
    let after_comm = &stat[stat.rfind(')')? + 1..];
    // Fields 3.. follow the name; starttime is field 22.
    let ticks: u64 = after_comm.split_whitespace().nth(22 - 3)?.parse().ok()?;
    Some(Duration::from_millis(ticks * 1000 / USER_HZ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_time_is_field_22_after_the_name() {
        // A real /proc/1/stat line (Debian 12, 6.1) with its name made awkward.
        let stat = "1 (in it) x) S 0 1 1 0 -1 4194560 37386 4297793 107 2212 95 176 15307 6073 20 0 1 0 123 172703744 3309 18446744073709551615 1 1 0 0 0 0 671173123 4096 1260 0 0 0 17 1 0 0 0 0 0 0 0 0 0 0 0 0 0";
        assert_eq!(process_start(stat), Some(Duration::from_millis(1230)));
        assert_eq!(process_start("1 (init"), None);
        assert_eq!(process_start(""), None);
    }

    #[test]
    fn properties_in_micros() {
        let t = BootTimes {
            initrd: Some(Duration::from_millis(1230)),
            userspace: Some(Duration::from_secs(2)),
            finish: None,
        };
        assert_eq!(
            t.properties()[1..],
            [
                ("InitRDTimestampMonotonic", "1230000".to_owned()),
                ("UserspaceTimestampMonotonic", "2000000".into()),
                ("FinishTimestampMonotonic", "0".into()),
            ]
        );
    }
}
