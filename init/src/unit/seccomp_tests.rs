//! The seccomp settings as systemd 252 reads them, and its system call groups.

use std::collections::BTreeSet;

use proptest::prelude::*;

use super::load::Loader;
use super::model::Unit;
use super::seccomp::*;
use super::specifier::Host;

/// The seccomp settings of a service with `lines` in `[Service]`, and the warnings.
fn load(lines: &str) -> (Seccomp, Vec<String>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("etc/systemd/system/a.service");
    std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
    let text = format!("[Service]\nExecStart=/bin/true\n{lines}\n");
    std::fs::write(&p, text).expect("write");
    let files = Loader::system(dir.path()).load("a.service").expect("loads");
    let u = Unit::from_files(files, &Host::default());
    let warnings = u.warnings.iter().map(|w| w.to_string()).collect();
    (u.service.expect("service").seccomp, warnings)
}

fn names(s: &Seccomp) -> BTreeSet<&str> {
    let f = s.syscall_filter.as_ref().expect("a filter");
    f.syscalls.keys().map(String::as_str).collect()
}

#[test]
fn an_allow_list_starts_with_the_default_group_and_a_deny_list_does_not() {
    let (s, w) = load("SystemCallFilter=@system-service");
    assert!(w.is_empty(), "{w:?}");
    let f = s.syscall_filter.as_ref().unwrap();
    assert!(f.allow_list);
    for call in [
        "execve",
        "exit_group",
        "read",
        "openat",
        "socket",
        "clone",
        "rseq",
    ] {
        assert!(f.syscalls.contains_key(call), "{call}");
    }
    assert!(!f.syscalls.contains_key("mount"));
    assert!(!f.syscalls.contains_key("reboot"));

    let (s, _) = load("SystemCallFilter=~@clock");
    let f = s.syscall_filter.as_ref().unwrap();
    assert!(!f.allow_list);
    assert_eq!(
        names(&s),
        BTreeSet::from([
            "adjtimex",
            "clock_adjtime",
            "clock_adjtime64",
            "clock_settime",
            "clock_settime64",
            "settimeofday",
        ])
    );
    assert!(f.syscalls.values().all(Option::is_none));
}

#[test]
fn assignments_merge_the_first_decides_the_kind_and_empty_resets() {
    // Debian's usual pair: allow the service group, then take the privileged calls out.
    let (s, w) = load("SystemCallFilter=@system-service\nSystemCallFilter=~@privileged @resources");
    assert!(w.is_empty(), "{w:?}");
    let n = names(&s);
    assert!(s.syscall_filter.as_ref().unwrap().allow_list);
    for gone in ["setuid", "chown", "capset", "setrlimit", "sched_setattr"] {
        assert!(!n.contains(gone), "{gone}");
    }
    assert!(n.contains("read") && n.contains("execve"));

    // A deny-list first: a later allow entry takes a call out of it.
    let (s, _) = load("SystemCallFilter=~@mount @clock\nSystemCallFilter=mount");
    let n = names(&s);
    assert!(!s.syscall_filter.as_ref().unwrap().allow_list);
    assert!(!n.contains("mount") && n.contains("umount2") && n.contains("settimeofday"));

    let (s, _) = load("SystemCallFilter=~@clock\nSystemCallFilter=\nSystemCallFilter=read");
    let f = s.syscall_filter.as_ref().unwrap();
    assert!(f.allow_list, "after a reset, the next list decides again");
    assert!(!f.syscalls.contains_key("settimeofday"));

    let (s, _) = load("SystemCallFilter=read\nSystemCallFilter=");
    assert_eq!(s.syscall_filter, None);
}

#[test]
fn a_deny_listed_call_may_name_its_errno_and_an_allowed_one_may_not() {
    let (s, w) = load("SystemCallFilter=~uname:EILSEQ @clock:EPERM reboot:kill mount:0 swapon");
    assert!(w.is_empty(), "{w:?}");
    let f = s.syscall_filter.unwrap();
    let eilseq = nix::libc::EILSEQ as u16;
    assert_eq!(f.syscalls["uname"], Some(ErrorAction::Errno(eilseq)));
    assert_eq!(f.syscalls["settimeofday"], Some(ErrorAction::Errno(1)));
    assert_eq!(f.syscalls["reboot"], Some(ErrorAction::Kill));
    assert_eq!(f.syscalls["mount"], Some(ErrorAction::Errno(0)));
    assert_eq!(f.syscalls["swapon"], None);

    let (s, w) = load("SystemCallFilter=read:EPERM write");
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(w[0].contains(":3: SystemCallFilter=read:EPERM write: read:EPERM: an allow-listed"));
    let f = s.syscall_filter.unwrap();
    assert!(f.syscalls.contains_key("write") && !f.syscalls.contains_key("read"));
}

#[test]
fn unknown_calls_groups_and_errnos_are_warnings_and_the_rest_applies() {
    let (s, w) =
        load("SystemCallFilter=~nosuchcall @nosuchgroup uname:ENOPE mount:4096 :EPERM reboot");
    assert_eq!(w.len(), 5, "{w:#?}");
    assert!(
        w[0].contains("a.service:3: SystemCallFilter=")
            && w[0].contains("nosuchcall: unknown system call")
    );
    assert!(w[1].contains("@nosuchgroup: unknown system call group"));
    assert!(w[2].contains("uname:ENOPE: cannot parse syscall:errno"));
    assert_eq!(names(&s), BTreeSet::from(["reboot"]));
    // Names another architecture has are known (systemd resolves them through libseccomp).
    let (s, w) = load("SystemCallFilter=~chown32 _llseek");
    assert!(w.is_empty(), "{w:?}");
    assert_eq!(names(&s), BTreeSet::from(["_llseek", "chown32"]));
}

#[test]
fn the_error_number_is_an_errno_name_or_number_or_kill() {
    let (s, w) = load("SystemCallErrorNumber=EPERM");
    assert!(w.is_empty());
    assert_eq!(s.syscall_error, ErrorAction::Errno(1));
    let (s, _) = load("SystemCallErrorNumber=EPERM\nSystemCallErrorNumber=22");
    assert_eq!(s.syscall_error, ErrorAction::Errno(22));
    let (s, _) = load("SystemCallErrorNumber=EPERM\nSystemCallErrorNumber=kill");
    assert_eq!(s.syscall_error, ErrorAction::Kill);
    let (s, _) = load("SystemCallErrorNumber=EPERM\nSystemCallErrorNumber=");
    assert_eq!(s.syscall_error, ErrorAction::Kill);
    // EWOULDBLOCK is <errno.h>'s other name of EAGAIN.
    let (s, _) = load("SystemCallErrorNumber=EWOULDBLOCK");
    assert_eq!(
        s.syscall_error,
        ErrorAction::Errno(nix::libc::EAGAIN as u16)
    );
    for bad in ["0", "4096", "-1", "ENOPE", "log"] {
        let (s, w) = load(&format!(
            "SystemCallErrorNumber=EACCES\nSystemCallErrorNumber={bad}"
        ));
        assert_eq!(w.len(), 1, "{bad}: {w:?}");
        assert!(w[0].contains(":4: SystemCallErrorNumber="), "{w:?}");
        assert_eq!(
            s.syscall_error,
            ErrorAction::Errno(13),
            "{bad} keeps the value"
        );
    }
}

#[test]
fn architectures_merge_and_reset() {
    let (s, w) = load("SystemCallArchitectures=native\nSystemCallArchitectures=x86 arm64 nope");
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(w[0].contains("'nope' is not a system call architecture"));
    assert_eq!(
        s.syscall_archs,
        BTreeSet::from([Arch::Native, Arch::X86, Arch::Other("arm64")])
    );
    let (s, _) = load("SystemCallArchitectures=x32\nSystemCallArchitectures=");
    assert!(s.syscall_archs.is_empty());
    assert!(!s.any());
}

#[test]
fn address_families_as_systemd_merges_them() {
    let inet = nix::libc::AF_INET;
    let inet6 = nix::libc::AF_INET6;
    let unix = nix::libc::AF_UNIX;
    let (s, w) = load("RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6\nRestrictAddressFamilies=~AF_INET6 AF_NOPE");
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(w[0].contains(":4: RestrictAddressFamilies=~AF_INET6 AF_NOPE: 'AF_NOPE'"));
    assert!(s.address_families.allow_list);
    assert_eq!(
        s.address_families.families,
        Some(BTreeSet::from([unix, inet]))
    );

    let (s, _) = load("RestrictAddressFamilies=~AF_PACKET AF_NETLINK");
    assert!(!s.address_families.allow_list && s.address_families.is_set());

    let (s, _) = load("RestrictAddressFamilies=AF_INET\nRestrictAddressFamilies=none");
    assert!(s.address_families.allow_list && s.address_families.families.is_none());
    assert!(s.address_families.is_set(), "none is an empty allow-list");
    // After none, the next list decides the kind again (systemd frees the set).
    let (s, _) = load("RestrictAddressFamilies=none\nRestrictAddressFamilies=~AF_INET6");
    assert!(!s.address_families.allow_list);
    assert_eq!(s.address_families.families, Some(BTreeSet::from([inet6])));
    let (s, _) = load("RestrictAddressFamilies=AF_INET\nRestrictAddressFamilies=");
    assert!(!s.address_families.is_set());
    // AF_LOCAL is <sys/socket.h>'s other name of AF_UNIX.
    let (s, _) = load("RestrictAddressFamilies=AF_LOCAL");
    assert_eq!(s.address_families.families, Some(BTreeSet::from([unix])));
}

#[test]
fn namespaces_booleans_lists_inversion_and_merging() {
    let all = NAMESPACES_ALL;
    let flag = |n: &str| NAMESPACES.iter().find(|(x, _)| *x == n).unwrap().1;
    let (s, _) = load("RestrictNamespaces=yes");
    assert_eq!(s.restrict_namespaces, Some(0));
    assert!(s.namespaces_restricted());
    let (s, _) = load("RestrictNamespaces=yes\nRestrictNamespaces=no");
    assert_eq!(s.restrict_namespaces, Some(all));
    assert!(!s.namespaces_restricted());
    let (s, _) = load("RestrictNamespaces=net uts");
    assert_eq!(s.restrict_namespaces, Some(flag("net") | flag("uts")));
    let (s, _) = load("RestrictNamespaces=~user");
    assert_eq!(s.restrict_namespaces, Some(all & !flag("user")));
    let (s, _) = load("RestrictNamespaces=net\nRestrictNamespaces=uts\nRestrictNamespaces=~net");
    assert_eq!(s.restrict_namespaces, Some(flag("uts")));
    let (s, w) = load("RestrictNamespaces=net\nRestrictNamespaces=uts time");
    assert_eq!(w.len(), 1, "a bad word refuses the whole value: {w:?}");
    assert_eq!(s.restrict_namespaces, Some(flag("net")));
    let (s, _) = load("RestrictNamespaces=net\nRestrictNamespaces=");
    assert_eq!(s.restrict_namespaces, None);
}

#[test]
fn booleans_and_bad_booleans() {
    let (s, w) = load(
        "LockPersonality=yes\nMemoryDenyWriteExecute=true\nRestrictRealtime=on\nRestrictSUIDSGID=1\nRestrictRealtime=maybe",
    );
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(w[0].contains(":7: RestrictRealtime=maybe"));
    assert!(s.lock_personality && s.memory_deny_write_execute);
    assert!(s.restrict_realtime, "a bad value keeps the previous one");
    assert!(s.restrict_suid_sgid && s.any());
}

#[test]
fn groups_hold_systemd_252s_lists() {
    let has = |g: &str, calls: &[&str]| {
        let e = expand_group(g);
        for c in calls {
            assert!(e.contains(c), "{g} lacks {c}");
        }
    };
    has(
        "@clock",
        &["adjtimex", "clock_adjtime", "clock_settime", "settimeofday"],
    );
    has(
        "@mount",
        &[
            "mount",
            "umount2",
            "pivot_root",
            "fsopen",
            "move_mount",
            "mount_setattr",
        ],
    );
    has("@module", &["init_module", "finit_module", "delete_module"]);
    has("@raw-io", &["ioperm", "iopl", "pciconfig_read"]);
    has("@reboot", &["kexec_load", "kexec_file_load", "reboot"]);
    has("@swap", &["swapon", "swapoff"]);
    has("@cpu-emulation", &["modify_ldt", "vm86", "vm86old"]);
    has(
        "@obsolete",
        &["_sysctl", "uselib", "create_module", "afs_syscall"],
    );
    has("@debug", &["ptrace", "perf_event_open", "pidfd_getfd"]);
    has(
        "@resources",
        &["setrlimit", "sched_setattr", "set_mempolicy", "ioprio_set"],
    );
    // @privileged holds groups of its own.
    has(
        "@privileged",
        &[
            "chown",
            "setuid",
            "capset",
            "chroot",
            "acct",
            "swapon",
            "pivot_root",
        ],
    );
    assert!(
        !expand_group("@privileged").contains("mount"),
        "252 leaves @mount out"
    );
    has(
        "@system-service",
        &[
            "execve",
            "read",
            "write",
            "openat",
            "mmap",
            "socket",
            "connect",
            "clone",
            "fork",
            "setuid",
            "chown",
            "ioctl",
            "prctl",
            "epoll_wait",
            "io_uring_setup",
            "getrandom",
            "sched_setaffinity",
            "umask",
            "uname",
            "capset",
        ],
    );
    let service = expand_group("@system-service");
    for absent in [
        "mount",
        "reboot",
        "init_module",
        "swapon",
        "settimeofday",
        "ptrace",
        "kexec_load",
    ] {
        assert!(!service.contains(absent), "@system-service has {absent}");
    }
    let known = expand_group("@known");
    assert!(known.len() > 400 && known.contains("io_uring_enter") && known.contains("chown32"));
    // Every group's members are groups or system calls systemd knows.
    for (name, members) in super::seccomp_names::GROUPS {
        for m in *members {
            assert!(
                group(m).is_some() || is_known_syscall(m),
                "{name}: {m} is unknown"
            );
        }
    }
}

proptest! {
    #[test]
    fn any_value_of_these_keys_loads(
        key in prop::sample::select(vec![
            "SystemCallFilter", "SystemCallErrorNumber", "SystemCallArchitectures",
            "RestrictAddressFamilies", "RestrictNamespaces", "LockPersonality",
            "MemoryDenyWriteExecute", "RestrictRealtime", "RestrictSUIDSGID",
        ]),
        value in "[~@:a-zA-Z0-9_ -]{0,40}",
    ) {
        let (s, _) = load(&format!("{key}={value}\n{key}=~{value}"));
        // Whatever was read makes filters without panicking.
        let programs = crate::manager::seccomp::plan(&s, 0);
        prop_assert!(programs.iter().all(|p| !p.insns.is_empty()));
    }
}
