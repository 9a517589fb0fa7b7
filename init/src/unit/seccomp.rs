//! The seccomp settings of systemd.exec(5) — `SystemCallFilter=`, `SystemCallErrorNumber=`,
//! `SystemCallArchitectures=`, `RestrictAddressFamilies=`, `RestrictNamespaces=`,
//! `LockPersonality=`, `MemoryDenyWriteExecute=`, `RestrictRealtime=`,
//! `RestrictSUIDSGID=` — read as systemd 252's load-fragment.c reads them: several
//! assignments merge, the first list decides allow-list or deny-list, `~` inverts, an
//! empty assignment resets; a word that cannot be read is a warning and the others apply.
//! The filters made of them are [`crate::manager::seccomp`]'s.

use std::collections::{BTreeMap, BTreeSet};

use super::model::Ctx;
use super::seccomp_names::{ADDRESS_FAMILIES, ERRNO_NAMES, GROUPS};
use super::syntax::Assignment;
use super::values;

/// What a filtered system call does: end the process, or fail with an errno.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorAction {
    /// systemd's `SECCOMP_ERROR_NUMBER_KILL` (the default): SIGSYS, the whole process.
    Kill,
    /// 0..=4095 (0 only as a `name:0` of one system call).
    Errno(u16),
}

/// `SystemCallFilter=`: the system calls by name (not resolved for an architecture yet),
/// each with its own action (`name:errno`) or `None` for `SystemCallErrorNumber=`'s.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyscallFilter {
    /// Allow-list (only these; `@default` always included) or deny-list (`~`).
    pub allow_list: bool,
    pub syscalls: BTreeMap<String, Option<ErrorAction>>,
}

/// `RestrictAddressFamilies=`, as systemd keeps it: `none` is an allow-list with no set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddressFamilies {
    pub allow_list: bool,
    pub families: Option<BTreeSet<i32>>,
}

impl AddressFamilies {
    /// systemd's context_has_address_families.
    pub fn is_set(&self) -> bool {
        self.allow_list || self.families.as_ref().is_some_and(|f| !f.is_empty())
    }
}

/// A system call architecture of `SystemCallArchitectures=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Arch {
    Native,
    X86,
    X86_64,
    X32,
    /// An architecture this machine cannot run (`arm64`, `s390x`, ...): accepted, no effect.
    Other(&'static str),
}

/// The architecture names systemd 252's seccomp_arch_from_string takes.
const ARCH_NAMES: [&str; 20] = [
    "native",
    "x86",
    "x86-64",
    "x32",
    "arm",
    "arm64",
    "loongarch64",
    "mips",
    "mips64",
    "mips64-n32",
    "mips-le",
    "mips64-le",
    "mips64-le-n32",
    "parisc",
    "parisc64",
    "ppc",
    "ppc64",
    "ppc64-le",
    "riscv64",
    "s390x",
];

impl Arch {
    pub fn from_name(name: &str) -> Option<Arch> {
        Some(match name {
            "native" => Arch::Native,
            "x86" => Arch::X86,
            "x86-64" => Arch::X86_64,
            "x32" => Arch::X32,
            "s390" => Arch::Other("s390"),
            _ => Arch::Other(ARCH_NAMES.into_iter().find(|n| *n == name)?),
        })
    }
}

/// The namespace types of `RestrictNamespaces=` (systemd 252's namespace_flag_map).
pub const NAMESPACES: [(&str, u64); 7] = [
    ("cgroup", nix::libc::CLONE_NEWCGROUP as u64),
    ("ipc", nix::libc::CLONE_NEWIPC as u64),
    ("net", nix::libc::CLONE_NEWNET as u64),
    ("mnt", nix::libc::CLONE_NEWNS as u64),
    ("pid", nix::libc::CLONE_NEWPID as u64),
    ("user", nix::libc::CLONE_NEWUSER as u64),
    ("uts", nix::libc::CLONE_NEWUTS as u64),
];

/// Every namespace flag (systemd's NAMESPACE_FLAGS_ALL).
pub const NAMESPACES_ALL: u64 = {
    let mut all = 0;
    let mut i = 0;
    while i < NAMESPACES.len() {
        all |= NAMESPACES[i].1;
        i += 1;
    }
    all
};

/// The seccomp settings of a service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seccomp {
    /// `None` until a list is given (or after an empty assignment).
    pub syscall_filter: Option<SyscallFilter>,
    pub syscall_error: ErrorAction,
    pub syscall_archs: BTreeSet<Arch>,
    pub address_families: AddressFamilies,
    /// `RestrictNamespaces=`: the namespace flags still allowed; `None` when unset.
    pub restrict_namespaces: Option<u64>,
    pub lock_personality: bool,
    pub memory_deny_write_execute: bool,
    pub restrict_realtime: bool,
    pub restrict_suid_sgid: bool,
}

impl Default for Seccomp {
    fn default() -> Seccomp {
        Seccomp {
            syscall_filter: None,
            syscall_error: ErrorAction::Kill,
            syscall_archs: BTreeSet::new(),
            address_families: AddressFamilies::default(),
            restrict_namespaces: None,
            lock_personality: false,
            memory_deny_write_execute: false,
            restrict_realtime: false,
            restrict_suid_sgid: false,
        }
    }
}

impl Seccomp {
    /// Applies `a` if it is one of these settings; `false` for any other key.
    pub(crate) fn apply(&mut self, ctx: &mut Ctx, a: &Assignment) -> bool {
        match a.key.as_str() {
            "SystemCallFilter" => self.syscall_filter(ctx, a),
            "SystemCallErrorNumber" => self.syscall_error_number(ctx, a),
            "SystemCallArchitectures" => self.syscall_archs(ctx, a),
            "RestrictAddressFamilies" => self.address_families(ctx, a),
            "RestrictNamespaces" => self.restrict_namespaces(ctx, a),
            "LockPersonality" => ctx.bool(a, &mut self.lock_personality),
            "MemoryDenyWriteExecute" => ctx.bool(a, &mut self.memory_deny_write_execute),
            "RestrictRealtime" => ctx.bool(a, &mut self.restrict_realtime),
            "RestrictSUIDSGID" => ctx.bool(a, &mut self.restrict_suid_sgid),
            _ => return false,
        }
        true
    }

    /// Whether any filter is asked for (systemd's reason to imply `NoNewPrivileges=` for a
    /// process without CAP_SYS_ADMIN).
    pub fn any(&self) -> bool {
        self.syscall_filter
            .as_ref()
            .is_some_and(|f| !f.syscalls.is_empty())
            || !self.syscall_archs.is_empty()
            || self.address_families.is_set()
            || self.namespaces_restricted()
            || self.lock_personality
            || self.memory_deny_write_execute
            || self.restrict_realtime
            || self.restrict_suid_sgid
    }

    /// systemd's exec_context_restrict_namespaces_set.
    pub fn namespaces_restricted(&self) -> bool {
        self.restrict_namespaces
            .is_some_and(|allowed| allowed & NAMESPACES_ALL != NAMESPACES_ALL)
    }

    fn syscall_filter(&mut self, ctx: &mut Ctx, a: &Assignment) {
        if a.value.is_empty() {
            self.syscall_filter = None;
            return;
        }
        let (invert, rest) = match a.value.strip_prefix('~') {
            Some(r) => (true, r),
            None => (false, a.value.as_str()),
        };
        let filter = self.syscall_filter.get_or_insert_with(|| {
            let mut f = SyscallFilter {
                allow_list: !invert,
                syscalls: BTreeMap::new(),
            };
            if f.allow_list {
                // An allow-list always has what every process needs.
                add_syscalls(&mut f, "@default", None, false, &mut |_| {}, false);
            }
            f
        });
        for word in rest.split_whitespace() {
            let parsed = match word.split_once(':') {
                None => Ok((word, None)),
                Some((name, action)) => match error_action(action, true) {
                    Some(e) if !name.is_empty() => Ok((name, Some(e))),
                    _ => Err("cannot parse syscall:errno"),
                },
            };
            match parsed {
                Ok((_, Some(_))) if !invert => ctx.warn(
                    a,
                    format!("{word}: an allow-listed system call cannot take an error number"),
                ),
                Ok((name, action)) => {
                    let mut warn = |why: &str| ctx.warn(a, format!("{name}: {why}"));
                    add_syscalls(filter, name, action, invert, &mut warn, true);
                }
                Err(why) => ctx.warn(a, format!("{word}: {why}")),
            }
        }
    }

    fn syscall_error_number(&mut self, ctx: &mut Ctx, a: &Assignment) {
        if a.value.is_empty() {
            self.syscall_error = ErrorAction::Kill;
            return;
        }
        match error_action(&a.value, false) {
            Some(e) => self.syscall_error = e,
            None => ctx.warn(a, "not an errno name or number from 1 to 4095, nor kill"),
        }
    }

    fn syscall_archs(&mut self, ctx: &mut Ctx, a: &Assignment) {
        if a.value.is_empty() {
            self.syscall_archs.clear();
            return;
        }
        for word in a.value.split_whitespace() {
            match Arch::from_name(word) {
                Some(arch) => {
                    self.syscall_archs.insert(arch);
                }
                None => ctx.warn(a, format!("'{word}' is not a system call architecture")),
            }
        }
    }

    fn address_families(&mut self, ctx: &mut Ctx, a: &Assignment) {
        let af = &mut self.address_families;
        match a.value.as_str() {
            "" => *af = AddressFamilies::default(),
            "none" => {
                *af = AddressFamilies {
                    allow_list: true,
                    families: None,
                }
            }
            value => {
                let (invert, rest) = match value.strip_prefix('~') {
                    Some(r) => (true, r),
                    None => (false, value),
                };
                if af.families.is_none() {
                    af.allow_list = !invert;
                }
                let allow_list = af.allow_list;
                let set = af.families.get_or_insert_with(BTreeSet::new);
                for word in rest.split_whitespace() {
                    match address_family(word) {
                        // Allowing after denying (or the reverse) takes the name out.
                        Some(n) if invert != allow_list => {
                            set.insert(n);
                        }
                        Some(n) => {
                            set.remove(&n);
                        }
                        None => ctx.warn(a, format!("'{word}' is not an address family")),
                    }
                }
            }
        }
    }

    fn restrict_namespaces(&mut self, ctx: &mut Ctx, a: &Assignment) {
        let v = a.value.as_str();
        if v.is_empty() {
            self.restrict_namespaces = None;
            return;
        }
        // A boolean replaces what was there: yes allows none, no allows all.
        if let Ok(b) = values::boolean(v) {
            self.restrict_namespaces = Some(if b { 0 } else { NAMESPACES_ALL });
            return;
        }
        let (invert, rest) = match v.strip_prefix('~') {
            Some(r) => (true, r),
            None => (false, v),
        };
        let mut flags = 0;
        for word in rest.split_whitespace() {
            match NAMESPACES.iter().find(|(n, _)| *n == word) {
                Some((_, f)) => flags |= f,
                None => {
                    ctx.warn(a, format!("'{word}' is not a namespace type"));
                    return;
                }
            }
        }
        self.restrict_namespaces = Some(match self.restrict_namespaces {
            None if invert => !flags & NAMESPACES_ALL,
            None => flags,
            Some(old) if invert => old & !flags,
            Some(old) => old | flags,
        });
    }
}

/// Adds `name` (a system call or a group, recursively) to `filter`, or takes it out when
/// `invert` differs from the list's kind (systemd's seccomp_parse_syscall_filter). A name
/// that is neither a known system call nor a group goes to `warn` (when `check`); the
/// members of a group are systemd's own and are taken as they are.
fn add_syscalls(
    filter: &mut SyscallFilter,
    name: &str,
    action: Option<ErrorAction>,
    invert: bool,
    warn: &mut dyn FnMut(&str),
    check: bool,
) {
    if name.starts_with('@') {
        match group(name) {
            Some(members) => {
                for m in members {
                    add_syscalls(filter, m, action, invert, &mut |_| {}, false);
                }
            }
            None => warn("unknown system call group"),
        }
    } else if check && !is_known_syscall(name) {
        warn("unknown system call");
    } else if invert != filter.allow_list {
        filter.syscalls.insert(name.to_owned(), action);
    } else {
        filter.syscalls.remove(name);
    }
}

/// The members of a group (`@clock`): system calls and groups, as systemd 252 lists them.
pub fn group(name: &str) -> Option<&'static [&'static str]> {
    GROUPS.iter().find(|(n, _)| *n == name).map(|(_, m)| *m)
}

/// Every system call of a group, its groups expanded, sorted.
pub fn expand_group(name: &str) -> BTreeSet<&'static str> {
    let mut out = BTreeSet::new();
    for m in group(name).unwrap_or_default() {
        if m.starts_with('@') {
            out.extend(expand_group(m));
        } else {
            out.insert(*m);
        }
    }
    out
}

/// A name libseccomp would resolve: one of the x86 ABIs' or in one of systemd's groups
/// (`@known` has every system call systemd knows of, on any architecture).
pub fn is_known_syscall(name: &str) -> bool {
    crate::sys::seccomp_bpf::syscall_numbers(name).is_some()
        || GROUPS.iter().any(|(_, members)| members.contains(&name))
}

/// An errno name (`EPERM`) or number, or `kill` (systemd's seccomp_parse_errno_or_action);
/// `zero_ok` for the per-call `name:0`.
pub fn error_action(v: &str, zero_ok: bool) -> Option<ErrorAction> {
    if v == "kill" {
        return Some(ErrorAction::Kill);
    }
    let n = match ERRNO_NAMES.iter().find(|(n, _)| *n == v) {
        Some((_, n)) => *n,
        None => v.parse::<i32>().ok()?,
    };
    match n {
        0 if zero_ok => Some(ErrorAction::Errno(0)),
        1..=4095 => Some(ErrorAction::Errno(n as u16)),
        _ => None,
    }
}

/// An address family by its name (`AF_INET`).
pub fn address_family(name: &str) -> Option<i32> {
    ADDRESS_FAMILIES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, v)| *v)
}
