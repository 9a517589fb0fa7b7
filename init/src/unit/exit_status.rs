//! The names systemd 252 gives exit statuses (systemd.exec(5), "Process Exit Codes"), as
//! `systemctl status` prints them after the number (`status=226/NAMESPACE`): libc's two
//! and systemd's own, the statuses of a child that failed a step before `execve`. The LSB
//! names of 2–7 are printed by systemd only for SysV scripts, so they are not here, nor
//! are BSD's of 64–78 (`sysexits.h`): systemctl asks for the libc and systemd classes only.
//! Checked against 252's `exit_status_mappings`: its `EXIT_APPARMOR_PROFILE` is named
//! `APPARMOR`, and 255 is `EXCEPTION` (an exit that stands for a signal).

/// (status, name), ordered by status.
const NAMES: [(i32, &str); 46] = [
    (0, "SUCCESS"),
    (1, "FAILURE"),
    (200, "CHDIR"),
    (201, "NICE"),
    (202, "FDS"),
    (203, "EXEC"),
    (204, "MEMORY"),
    (205, "LIMITS"),
    (206, "OOM_ADJUST"),
    (207, "SIGNAL_MASK"),
    (208, "STDIN"),
    (209, "STDOUT"),
    (210, "CHROOT"),
    (211, "IOPRIO"),
    (212, "TIMERSLACK"),
    (213, "SECUREBITS"),
    (214, "SETSCHEDULER"),
    (215, "CPUAFFINITY"),
    (216, "GROUP"),
    (217, "USER"),
    (218, "CAPABILITIES"),
    (219, "CGROUP"),
    (220, "SETSID"),
    (221, "CONFIRM"),
    (222, "STDERR"),
    (224, "PAM"),
    (225, "NETWORK"),
    (226, "NAMESPACE"),
    (227, "NO_NEW_PRIVILEGES"),
    (228, "SECCOMP"),
    (229, "SELINUX_CONTEXT"),
    (230, "PERSONALITY"),
    (231, "APPARMOR"),
    (232, "ADDRESS_FAMILIES"),
    (233, "RUNTIME_DIRECTORY"),
    (235, "CHOWN"),
    (236, "SMACK_PROCESS_LABEL"),
    (237, "KEYRING"),
    (238, "STATE_DIRECTORY"),
    (239, "CACHE_DIRECTORY"),
    (240, "LOGS_DIRECTORY"),
    (241, "CONFIGURATION_DIRECTORY"),
    (242, "NUMA_POLICY"),
    (243, "CREDENTIALS"),
    (245, "BPF"),
    (255, "EXCEPTION"),
];

/// systemd's name of exit status `status`, if it has one.
pub fn name(status: i32) -> Option<&'static str> {
    NAMES
        .binary_search_by_key(&status, |(s, _)| *s)
        .ok()
        .map(|i| NAMES[i].1)
}

/// `226/NAMESPACE`, or the bare number for a status without a name.
pub fn with_name(status: i32) -> String {
    match name(status) {
        Some(n) => format!("{status}/{n}"),
        None => status.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_named_as_systemctl_status_names_them() {
        assert_eq!(with_name(226), "226/NAMESPACE");
        assert_eq!(with_name(200), "200/CHDIR");
        assert_eq!(with_name(203), "203/EXEC");
        assert_eq!(with_name(217), "217/USER");
        assert_eq!(with_name(1), "1/FAILURE");
        // LSB's names are for SysV scripts only; 223 and 234 are unused.
        assert_eq!(with_name(2), "2");
        assert_eq!(with_name(223), "223");
        assert_eq!(with_name(234), "234");
        // 252's names where the constant's name differs, and the last one.
        assert_eq!(with_name(231), "231/APPARMOR");
        assert_eq!(with_name(243), "243/CREDENTIALS");
        assert_eq!(with_name(245), "245/BPF");
        assert_eq!(with_name(255), "255/EXCEPTION");
        // BSD's sysexits.h names are not printed by systemctl status.
        assert_eq!(with_name(75), "75");
    }

    #[test]
    fn the_table_is_sorted_for_its_search() {
        assert!(NAMES.windows(2).all(|w| w[0].0 < w[1].0));
    }
}
