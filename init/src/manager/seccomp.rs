//! A service's seccomp filters (systemd.exec(5) "System Call Filtering"), planned by PID 1
//! before it forks: systemd 252's filters of seccomp-util.c, in the order execute.c loads
//! them, one program per architecture (x86, x32, x86-64) as libseccomp makes them. The
//! child installs them last, just before `execve` ([`crate::sys::seccomp`]).
//!
//! Each filter's exit status is systemd's: 232/ADDRESS_FAMILIES for
//! `RestrictAddressFamilies=`, 228/SECCOMP for the others.

use crate::sys::child_report::Step;
use crate::sys::seccomp::SeccompProgram;
use crate::sys::seccomp_bpf::{restrict_archs, syscall_number, Abi, Action, ArchFilter, Cmp, Rule};
use crate::unit::seccomp::{Arch, ErrorAction, Seccomp, NAMESPACES, NAMESPACES_ALL};

const EPERM: u16 = nix::libc::EPERM as u16;

/// Appends one setting's filters, compiled, to `out`.
fn push(
    out: &mut Vec<SeccompProgram>,
    setting: &'static str,
    step: Step,
    filters: Vec<ArchFilter>,
) {
    out.extend(filters.into_iter().map(|f| SeccompProgram {
        setting,
        step,
        insns: f.compile(),
    }));
}

/// The filters of `s`, in the order systemd loads them. `personality` is the execution
/// domain `LockPersonality=` keeps (systemd's opinionated_personality of the manager's).
pub fn plan(s: &Seccomp, personality: u64) -> Vec<SeccompProgram> {
    let mut out = Vec::new();
    let every = Abi::ALL.to_vec();
    if s.address_families.is_set() {
        // i386 multiplexes socket() through socketcall(): systemd leaves it unfiltered.
        let abis = [Abi::X32, Abi::X86_64];
        push(
            &mut out,
            "RestrictAddressFamilies=",
            Step::AddressFamilies,
            per_abi(&abis, Action::Allow, |abi| address_families(abi, s)),
        );
    }
    if s.memory_deny_write_execute {
        push(
            &mut out,
            "MemoryDenyWriteExecute=",
            Step::Seccomp,
            per_abi(&every, Action::Allow, memory_deny_write_execute),
        );
    }
    if s.restrict_realtime {
        push(
            &mut out,
            "RestrictRealtime=",
            Step::Seccomp,
            per_abi(&every, Action::Allow, restrict_realtime),
        );
    }
    if s.restrict_suid_sgid {
        push(
            &mut out,
            "RestrictSUIDSGID=",
            Step::Seccomp,
            per_abi(&every, Action::Allow, |abi| Some(restrict_suid_sgid(abi))),
        );
    }
    if let Some(allowed) = s.restrict_namespaces.filter(|_| s.namespaces_restricted()) {
        push(
            &mut out,
            "RestrictNamespaces=",
            Step::Seccomp,
            per_abi(&every, Action::Allow, |abi| {
                restrict_namespaces(abi, allowed)
            }),
        );
    }
    // The architectures blocked from here on need no filter of their own (systemd marks
    // them SECCOMP_LOCAL_ARCH_BLOCKED).
    let mut live = every.clone();
    if !s.syscall_archs.is_empty() {
        let allowed: Vec<Abi> = [(Arch::X86, Abi::X86), (Arch::X32, Abi::X32)]
            .into_iter()
            .filter(|(a, _)| s.syscall_archs.contains(a))
            .map(|(_, abi)| abi)
            .chain([Abi::X86_64])
            .collect();
        if let Some(insns) = restrict_archs(&allowed) {
            out.push(SeccompProgram {
                setting: "SystemCallArchitectures=",
                step: Step::Seccomp,
                insns,
            });
            live = allowed;
            live.sort_by_key(|a| every.iter().position(|b| b == a));
        }
    }
    if s.lock_personality {
        push(
            &mut out,
            "LockPersonality=",
            Step::Seccomp,
            per_abi(&live, Action::Allow, |abi| {
                Some(vec![rule(
                    abi,
                    "personality",
                    &[(0, Cmp::Ne(personality))],
                    EPERM,
                )?])
            }),
        );
    }
    if let Some(filter) = s.syscall_filter.as_ref().filter(|f| !f.syscalls.is_empty()) {
        let action = |e: ErrorAction| match e {
            ErrorAction::Kill => Action::KillProcess,
            ErrorAction::Errno(n) => Action::Errno(n),
        };
        let negative = action(s.syscall_error);
        let filters = live
            .iter()
            .map(|&abi| {
                let rules = filter
                    .syscalls
                    .iter()
                    // Names this ABI lacks are skipped, as libseccomp's -EDOM is.
                    .filter_map(|(name, own)| {
                        let a = match filter.allow_list {
                            true => Action::Allow,
                            false => own.map_or(negative, action),
                        };
                        Some(Rule {
                            nr: syscall_number(abi, name)?,
                            args: Vec::new(),
                            action: a,
                        })
                    })
                    .collect();
                ArchFilter {
                    abi,
                    rules,
                    default: match filter.allow_list {
                        true => negative,
                        false => Action::Allow,
                    },
                }
            })
            .collect();
        push(&mut out, "SystemCallFilter=", Step::Seccomp, filters);
    }
    out
}

/// One filter per ABI of `abis`, with the rules `rules` gives; an ABI for which it gives
/// `None` (a system call it lacks) gets none, as systemd skips that architecture.
fn per_abi(
    abis: &[Abi],
    default: Action,
    rules: impl Fn(Abi) -> Option<Vec<Rule>>,
) -> Vec<ArchFilter> {
    abis.iter()
        .filter_map(|&abi| {
            Some(ArchFilter {
                abi,
                rules: rules(abi)?,
                default,
            })
        })
        .collect()
}

/// A rule on `name` with argument checks, failing with `errno`; `None` if `abi` lacks it.
fn rule(abi: Abi, name: &str, args: &[(u8, Cmp)], errno: u16) -> Option<Rule> {
    Some(Rule {
        nr: syscall_number(abi, name)?,
        args: args.to_vec(),
        action: Action::Errno(errno),
    })
}

/// systemd's seccomp_restrict_address_families: socket() of a family out of the list fails
/// with EAFNOSUPPORT.
fn address_families(abi: Abi, s: &Seccomp) -> Option<Vec<Rule>> {
    let af = &s.address_families;
    let set = af.families.clone().unwrap_or_default();
    let errno = nix::libc::EAFNOSUPPORT as u16;
    let socket =
        |cmp: Option<Cmp>| rule(abi, "socket", &Vec::from_iter(cmp.map(|c| (0, c))), errno);
    if !af.allow_list {
        return set
            .iter()
            .map(|&f| socket(Some(Cmp::Eq(f as u64))))
            .collect();
    }
    let positive: Vec<i32> = set.iter().copied().filter(|f| *f > 0).collect();
    let (Some(&first), Some(&last)) = (positive.first(), positive.last()) else {
        return Some(vec![socket(None)?]);
    };
    let mut rules = vec![
        socket(Some(Cmp::Lt(first as u64)))?,
        socket(Some(Cmp::Gt(last as u64)))?,
    ];
    for f in (1..last).filter(|f| !set.contains(f)) {
        rules.push(socket(Some(Cmp::Eq(f as u64)))?);
    }
    Some(rules)
}

/// systemd's seccomp_memory_deny_write_execute: no mapping both writable and executable,
/// nor made executable later, nor executable shared memory.
fn memory_deny_write_execute(abi: Abi) -> Option<Vec<Rule>> {
    let (w, x) = (nix::libc::PROT_WRITE as u64, nix::libc::PROT_EXEC as u64);
    let masked = |mask: u64| [(2, Cmp::MaskedEq { mask, value: mask })];
    let mut rules = Vec::new();
    match abi {
        Abi::X86 => {
            rules.push(rule(abi, "mmap2", &masked(w | x), EPERM)?);
            // old_mmap() takes its arguments in memory: blocked whole.
            rules.push(rule(abi, "mmap", &[], EPERM)?);
        }
        Abi::X86_64 | Abi::X32 => rules.push(rule(abi, "mmap", &masked(w | x), EPERM)?),
    }
    rules.push(rule(abi, "mprotect", &masked(x), EPERM)?);
    rules.push(rule(abi, "pkey_mprotect", &masked(x), EPERM)?);
    if abi != Abi::X86 {
        // i386 multiplexes shmat() through ipc(): left open, as systemd leaves it.
        rules.push(rule(
            abi,
            "shmat",
            &masked(nix::libc::SHM_EXEC as u64),
            EPERM,
        )?);
    }
    Some(rules)
}

/// systemd's seccomp_restrict_realtime: sched_setscheduler() to any policy but
/// SCHED_OTHER, SCHED_BATCH and SCHED_IDLE fails with EPERM.
fn restrict_realtime(abi: Abi) -> Option<Vec<Rule>> {
    let permitted = [
        nix::libc::SCHED_OTHER,
        nix::libc::SCHED_BATCH,
        nix::libc::SCHED_IDLE,
    ];
    let max = *permitted.iter().max()?;
    let mut rules: Vec<Rule> = (0..max)
        .filter(|p| !permitted.contains(p))
        .map(|p| rule(abi, "sched_setscheduler", &[(1, Cmp::Eq(p as u64))], EPERM))
        .collect::<Option<_>>()?;
    rules.push(rule(
        abi,
        "sched_setscheduler",
        &[(1, Cmp::Gt(max as u64))],
        EPERM,
    )?);
    Some(rules)
}

/// systemd's seccomp_restrict_suid_sgid: no file made or changed to set-user-ID or
/// set-group-ID; openat2(), whose flags it cannot see, fails with ENOSYS. A call the ABI
/// lacks is skipped alone.
fn restrict_suid_sgid(abi: Abi) -> Vec<Rule> {
    let creat = nix::libc::O_CREAT as u64;
    let mut rules = Vec::new();
    for bit in [nix::libc::S_ISUID as u64, nix::libc::S_ISGID as u64] {
        let m = Cmp::MaskedEq {
            mask: bit,
            value: bit,
        };
        let c = Cmp::MaskedEq {
            mask: creat,
            value: creat,
        };
        let checks: [(&str, &[(u8, Cmp)]); 10] = [
            ("chmod", &[(1, m)]),
            ("fchmod", &[(1, m)]),
            ("fchmodat", &[(2, m)]),
            ("mkdir", &[(1, m)]),
            ("mkdirat", &[(2, m)]),
            ("mknod", &[(1, m)]),
            ("mknodat", &[(2, m)]),
            ("open", &[(1, c), (2, m)]),
            ("openat", &[(2, c), (3, m)]),
            ("creat", &[(1, m)]),
        ];
        rules.extend(checks.iter().filter_map(|(n, a)| rule(abi, n, a, EPERM)));
    }
    rules.extend(rule(abi, "openat2", &[], nix::libc::ENOSYS as u16));
    rules
}

/// systemd's seccomp_restrict_namespaces: no new namespace (unshare(), clone()) nor
/// joining one (setns()) of a type not in `allowed`; clone3(), whose flags it cannot see,
/// fails with ENOSYS so that the C library falls back to clone().
fn restrict_namespaces(abi: Abi, allowed: u64) -> Option<Vec<Rule>> {
    let mut rules: Vec<Rule> = rule(abi, "clone3", &[], nix::libc::ENOSYS as u16)
        .into_iter()
        .collect();
    if allowed & NAMESPACES_ALL == 0 {
        rules.push(rule(abi, "setns", &[], EPERM)?);
    } else {
        rules.push(rule(abi, "setns", &[(1, Cmp::Eq(0))], EPERM)?);
    }
    for (_, f) in NAMESPACES.iter().filter(|(_, f)| allowed & f == 0) {
        let m = Cmp::MaskedEq {
            mask: *f,
            value: *f,
        };
        rules.push(rule(abi, "unshare", &[(0, m)], EPERM)?);
        rules.push(rule(abi, "clone", &[(0, m)], EPERM)?);
        if allowed & NAMESPACES_ALL != 0 {
            rules.push(rule(abi, "setns", &[(1, m)], EPERM)?);
        }
    }
    Some(rules)
}

#[cfg(test)]
#[path = "seccomp_tests.rs"]
mod tests;
