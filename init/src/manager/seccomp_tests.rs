//! The filters, run on calls by the BPF interpreter of the tests: what each setting lets
//! through, in each x86 ABI, as systemd 252's filters would.

use super::plan;
use crate::sys::seccomp::SeccompProgram;
use crate::sys::seccomp_bpf::{audit_arch, evaluate, syscall_number, Abi, Action, MAX_INSNS};
use crate::unit::seccomp::*;

const ALLOW: u32 = 0x7fff_0000;
const KILL_PROCESS: u32 = 0x8000_0000;
const KILL_THREAD: u32 = 0;

fn errno(e: i32) -> u32 {
    Action::Errno(e as u16).ret()
}

/// What the kernel returns for call `name` of `abi` under every filter of `programs`: the
/// action of highest precedence, the latest filter's among equals (seccomp_run_filters).
fn run(programs: &[SeccompProgram], abi: Abi, name: &str, args: [u64; 6]) -> u32 {
    let nr = syscall_number(abi, name).unwrap_or_else(|| panic!("{name} on {abi:?}"));
    run_nr(programs, abi, nr, args)
}

fn run_nr(programs: &[SeccompProgram], abi: Abi, nr: u32, args: [u64; 6]) -> u32 {
    let mut ret = ALLOW;
    for p in programs.iter().rev() {
        let cur = evaluate(&p.insns, audit_arch(abi), nr, args);
        if ((cur & 0xffff_0000) as i32) < ((ret & 0xffff_0000) as i32) {
            ret = cur;
        }
    }
    ret
}

fn args(a0: u64, a1: u64, a2: u64, a3: u64) -> [u64; 6] {
    [a0, a1, a2, a3, 0, 0]
}

fn settings(f: impl FnOnce(&mut Seccomp)) -> Seccomp {
    let mut s = Seccomp::default();
    f(&mut s);
    s
}

fn filter(allow_list: bool, calls: &[(&str, Option<ErrorAction>)]) -> Option<SyscallFilter> {
    Some(SyscallFilter {
        allow_list,
        syscalls: calls.iter().map(|(n, e)| (n.to_string(), *e)).collect(),
    })
}

fn group_filter(allow_list: bool, group: &str) -> Option<SyscallFilter> {
    let calls: Vec<(&str, Option<ErrorAction>)> =
        expand_group(group).into_iter().map(|c| (c, None)).collect();
    filter(allow_list, &calls)
}

#[test]
fn nothing_asked_means_no_filter() {
    assert!(plan(&Seccomp::default(), 0).is_empty());
    let s = settings(|s| s.restrict_namespaces = Some(NAMESPACES_ALL));
    assert!(plan(&s, 0).is_empty(), "RestrictNamespaces=no");
    let s = settings(|s| s.syscall_filter = filter(false, &[]));
    assert!(plan(&s, 0).is_empty(), "an empty deny-list");
}

#[test]
fn a_deny_list_kills_or_fails_the_listed_calls_in_every_abi() {
    let s = settings(|s| {
        s.syscall_filter = filter(
            false,
            &[
                ("settimeofday", None),
                ("clock_settime", None),
                ("uname", Some(ErrorAction::Errno(84))),
                ("reboot", Some(ErrorAction::Kill)),
            ],
        )
    });
    let p = plan(&s, 0);
    assert_eq!(p.len(), 3, "one per ABI");
    assert!(p.iter().all(|p| p.setting == "SystemCallFilter="));
    for abi in Abi::ALL {
        assert_eq!(
            run(&p, abi, "settimeofday", [0; 6]),
            KILL_PROCESS,
            "{abi:?}"
        );
        assert_eq!(run(&p, abi, "uname", [0; 6]), errno(84), "{abi:?}");
        assert_eq!(run(&p, abi, "reboot", [0; 6]), KILL_PROCESS, "{abi:?}");
        assert_eq!(run(&p, abi, "getpid", [0; 6]), ALLOW, "{abi:?}");
    }
    let s = settings(|s| {
        s.syscall_filter = group_filter(false, "@clock");
        s.syscall_error = ErrorAction::Errno(1);
    });
    let p = plan(&s, 0);
    assert_eq!(run(&p, Abi::X86_64, "clock_settime", [0; 6]), errno(1));
    assert_eq!(
        run(&p, Abi::X86, "clock_settime64", [0; 6]),
        errno(1),
        "i386's own"
    );
    assert_eq!(run(&p, Abi::X86_64, "clock_gettime", [0; 6]), ALLOW);
}

#[test]
fn an_allow_list_lets_only_its_calls_through() {
    let s = settings(|s| {
        s.syscall_filter = group_filter(true, "@system-service");
        s.syscall_error = ErrorAction::Errno(1);
    });
    let p = plan(&s, 0);
    for abi in Abi::ALL {
        assert_eq!(run(&p, abi, "read", [0; 6]), ALLOW, "{abi:?}");
        assert_eq!(run(&p, abi, "execve", [0; 6]), ALLOW, "{abi:?}");
        assert_eq!(run(&p, abi, "mount", [0; 6]), errno(1), "{abi:?}");
        assert_eq!(run(&p, abi, "kexec_load", [0; 6]), errno(1), "{abi:?}");
    }
    // A number no ABI has, and -1 (a tracer's skipped call), are not allowed either.
    assert_eq!(run_nr(&p, Abi::X86_64, 4000, [0; 6]), errno(1));
    assert_eq!(run_nr(&p, Abi::X86_64, u32::MAX, [0; 6]), errno(1));
    // Other machines' calls are not these filters' business.
    assert_eq!(
        evaluate(&p[0].insns, 0xc000_00b7, 40, [0; 6]),
        ALLOW,
        "aarch64"
    );
}

#[test]
fn the_largest_allow_list_fits_the_kernels_limit() {
    let s = settings(|s| s.syscall_filter = group_filter(true, "@known"));
    for p in plan(&s, 0) {
        assert!(p.insns.len() < MAX_INSNS, "{}", p.insns.len());
    }
}

#[test]
fn architectures_block_the_others_and_skip_their_filters() {
    let s = settings(|s| {
        s.syscall_archs = [Arch::Native].into();
        s.syscall_filter = group_filter(false, "@clock");
    });
    let p = plan(&s, 0);
    assert_eq!(p[0].setting, "SystemCallArchitectures=");
    assert_eq!(p.len(), 2, "the filter for x86-64 alone: {p:#?}");
    assert_eq!(run(&p, Abi::X86_64, "getpid", [0; 6]), ALLOW);
    assert_eq!(run(&p, Abi::X86, "getpid", [0; 6]), KILL_THREAD);
    assert_eq!(run(&p, Abi::X32, "getpid", [0; 6]), KILL_THREAD);
    assert_eq!(run(&p, Abi::X86_64, "settimeofday", [0; 6]), KILL_PROCESS);

    let s = settings(|s| s.syscall_archs = [Arch::X86, Arch::Other("arm64")].into());
    let p = plan(&s, 0);
    assert_eq!(run(&p, Abi::X86, "getpid", [0; 6]), ALLOW);
    assert_eq!(run(&p, Abi::X32, "getpid", [0; 6]), KILL_THREAD);

    let s = settings(|s| s.syscall_archs = [Arch::X86, Arch::X32].into());
    assert!(plan(&s, 0).is_empty(), "nothing blocked, no filter");
}

#[test]
fn address_families_fail_socket_with_eafnosupport() {
    let (unix, inet, inet6, netlink) = (
        nix::libc::AF_UNIX as u64,
        nix::libc::AF_INET as u64,
        nix::libc::AF_INET6 as u64,
        nix::libc::AF_NETLINK as u64,
    );
    let no = errno(nix::libc::EAFNOSUPPORT);
    let s = settings(|s| {
        s.address_families = AddressFamilies {
            allow_list: true,
            families: Some([nix::libc::AF_UNIX, nix::libc::AF_INET6].into()),
        }
    });
    let p = plan(&s, 0);
    assert!(p
        .iter()
        .all(|p| p.step == crate::sys::child_report::Step::AddressFamilies));
    assert_eq!(p.len(), 2, "i386's socketcall() is left alone");
    for abi in [Abi::X86_64, Abi::X32] {
        assert_eq!(run(&p, abi, "socket", args(unix, 1, 0, 0)), ALLOW);
        assert_eq!(run(&p, abi, "socket", args(inet6, 1, 0, 0)), ALLOW);
        assert_eq!(run(&p, abi, "socket", args(inet, 1, 0, 0)), no);
        assert_eq!(run(&p, abi, "socket", args(netlink, 1, 0, 0)), no);
        assert_eq!(
            run(&p, abi, "socket", args(0, 1, 0, 0)),
            no,
            "below the first"
        );
        assert_eq!(
            run(&p, abi, "socket", args(unix | 1 << 32, 1, 0, 0)),
            no,
            "64-bit"
        );
        assert_eq!(run(&p, abi, "socket", args(u64::MAX, 1, 0, 0)), no);
    }
    assert_eq!(run(&p, Abi::X86, "socket", args(inet, 1, 0, 0)), ALLOW);

    let s = settings(|s| {
        s.address_families = AddressFamilies {
            allow_list: false,
            families: Some([nix::libc::AF_NETLINK].into()),
        }
    });
    let p = plan(&s, 0);
    assert_eq!(run(&p, Abi::X86_64, "socket", args(netlink, 3, 0, 0)), no);
    assert_eq!(run(&p, Abi::X86_64, "socket", args(inet, 1, 0, 0)), ALLOW);

    let s = settings(|s| {
        s.address_families = AddressFamilies {
            allow_list: true,
            families: None,
        }
    });
    let p = plan(&s, 0);
    assert_eq!(
        run(&p, Abi::X86_64, "socket", args(unix, 1, 0, 0)),
        no,
        "none"
    );
}

#[test]
fn memory_deny_write_execute() {
    let (w, x, r) = (
        nix::libc::PROT_WRITE as u64,
        nix::libc::PROT_EXEC as u64,
        nix::libc::PROT_READ as u64,
    );
    let s = settings(|s| s.memory_deny_write_execute = true);
    let p = plan(&s, 0);
    let eperm = errno(1);
    for abi in [Abi::X86_64, Abi::X32] {
        assert_eq!(run(&p, abi, "mmap", args(0, 4096, r | w | x, 0)), eperm);
        assert_eq!(run(&p, abi, "mmap", args(0, 4096, r | w, 0)), ALLOW);
        assert_eq!(run(&p, abi, "mmap", args(0, 4096, r | x, 0)), ALLOW);
        assert_eq!(run(&p, abi, "shmat", args(0, 0, 0o100000, 0)), eperm);
    }
    for abi in Abi::ALL {
        assert_eq!(run(&p, abi, "mprotect", args(0, 4096, r | x, 0)), eperm);
        assert_eq!(run(&p, abi, "pkey_mprotect", args(0, 4096, x, 0)), eperm);
        assert_eq!(run(&p, abi, "mprotect", args(0, 4096, r, 0)), ALLOW);
    }
    assert_eq!(run(&p, Abi::X86, "mmap2", args(0, 4096, w | x, 0)), eperm);
    assert_eq!(run(&p, Abi::X86, "mmap2", args(0, 4096, w, 0)), ALLOW);
    assert_eq!(run(&p, Abi::X86, "mmap", [0; 6]), eperm, "old_mmap whole");
}

#[test]
fn realtime_policies_fail_the_others_run() {
    let s = settings(|s| s.restrict_realtime = true);
    let p = plan(&s, 0);
    for abi in Abi::ALL {
        for (policy, want) in [
            (0, ALLOW),
            (1, errno(1)),
            (2, errno(1)),
            (3, ALLOW),
            (4, errno(1)),
            (5, ALLOW),
            (6, errno(1)),
            (0x4000_0000, errno(1)),
        ] {
            assert_eq!(
                run(&p, abi, "sched_setscheduler", args(0, policy, 0, 0)),
                want,
                "{abi:?} {policy}"
            );
        }
    }
}

#[test]
fn suid_and_sgid_files_cannot_be_made() {
    let s = settings(|s| s.restrict_suid_sgid = true);
    let p = plan(&s, 0);
    let creat = nix::libc::O_CREAT as u64;
    for abi in [Abi::X86_64, Abi::X86] {
        assert_eq!(run(&p, abi, "chmod", args(0, 0o4755, 0, 0)), errno(1));
        assert_eq!(run(&p, abi, "fchmodat", args(0, 0, 0o2755, 0)), errno(1));
        assert_eq!(run(&p, abi, "chmod", args(0, 0o755, 0, 0)), ALLOW);
        assert_eq!(run(&p, abi, "openat", args(0, 0, creat, 0o4644)), errno(1));
        assert_eq!(run(&p, abi, "openat", args(0, 0, 0, 0o4644)), ALLOW);
        assert_eq!(
            run(&p, abi, "open", args(0, creat | 1, 0o6644, 0)),
            errno(1)
        );
        assert_eq!(run(&p, abi, "mkdirat", args(0, 0, 0o2775, 0)), errno(1));
        assert_eq!(run(&p, abi, "openat2", [0; 6]), errno(nix::libc::ENOSYS));
    }
}

#[test]
fn namespaces_restricted_all_or_some() {
    let uts = nix::libc::CLONE_NEWUTS as u64;
    let net = nix::libc::CLONE_NEWNET as u64;
    let s = settings(|s| s.restrict_namespaces = Some(0));
    let p = plan(&s, 0);
    for abi in Abi::ALL {
        assert_eq!(run(&p, abi, "unshare", args(uts, 0, 0, 0)), errno(1));
        assert_eq!(run(&p, abi, "clone", args(net | 17, 0, 0, 0)), errno(1));
        assert_eq!(run(&p, abi, "clone", args(17, 0, 0, 0)), ALLOW, "fork");
        assert_eq!(run(&p, abi, "setns", args(3, net, 0, 0)), errno(1));
        assert_eq!(run(&p, abi, "clone3", [0; 6]), errno(nix::libc::ENOSYS));
    }
    let s = settings(|s| s.restrict_namespaces = Some(net));
    let p = plan(&s, 0);
    assert_eq!(run(&p, Abi::X86_64, "unshare", args(net, 0, 0, 0)), ALLOW);
    assert_eq!(
        run(&p, Abi::X86_64, "unshare", args(net | uts, 0, 0, 0)),
        errno(1)
    );
    assert_eq!(run(&p, Abi::X86_64, "setns", args(3, net, 0, 0)), ALLOW);
    assert_eq!(run(&p, Abi::X86_64, "setns", args(3, 0, 0, 0)), errno(1));
    assert_eq!(run(&p, Abi::X86_64, "setns", args(3, uts, 0, 0)), errno(1));
}

#[test]
fn the_personality_is_locked() {
    let s = settings(|s| s.lock_personality = true);
    let p = plan(&s, 0);
    for abi in Abi::ALL {
        assert_eq!(run(&p, abi, "personality", args(0, 0, 0, 0)), ALLOW);
        assert_eq!(run(&p, abi, "personality", args(8, 0, 0, 0)), errno(1));
        // Even the query, as on systemd.
        assert_eq!(
            run(&p, abi, "personality", args(0xffff_ffff, 0, 0, 0)),
            errno(1)
        );
    }
    let p = plan(&s, 8);
    assert_eq!(run(&p, Abi::X86_64, "personality", args(8, 0, 0, 0)), ALLOW);
}

#[test]
fn filters_come_in_systemds_order() {
    let s = settings(|s| {
        s.address_families.allow_list = true;
        s.memory_deny_write_execute = true;
        s.restrict_realtime = true;
        s.restrict_suid_sgid = true;
        s.restrict_namespaces = Some(0);
        s.syscall_archs = [Arch::Native].into();
        s.lock_personality = true;
        s.syscall_filter = group_filter(true, "@system-service");
    });
    let mut order: Vec<&str> = plan(&s, 0).iter().map(|p| p.setting).collect();
    order.dedup();
    assert_eq!(
        order,
        [
            "RestrictAddressFamilies=",
            "MemoryDenyWriteExecute=",
            "RestrictRealtime=",
            "RestrictSUIDSGID=",
            "RestrictNamespaces=",
            "SystemCallArchitectures=",
            "LockPersonality=",
            "SystemCallFilter="
        ]
    );
}
