//! Classic BPF programs for seccomp (seccomp(2), `SECCOMP_SET_MODE_FILTER`), written the
//! way libseccomp writes the ones systemd 252 loads: one program per architecture, which
//! lets every other architecture's calls through (systemd's `SCMP_FLTATR_ACT_BADARCH` of
//! allow), compares the call number, then each argument as two 32-bit halves, and returns
//! the rule's action or the program's default. Pure code: the programs are built and
//! tested without installing them ([`super::seccomp`] installs them).
//!
//! Not the `seccompiler` crate: it writes programs for one architecture that kill every
//! other architecture's calls, cannot tell x32 calls from x86-64 ones and has one action
//! for all rules; systemd's filters need all three.

use super::syscall_table::SYSCALLS;

/// The x86 system call ABIs a 64-bit x86 kernel runs (systemd's local architectures).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Abi {
    X86_64,
    /// i386 (`int 0x80`), `AUDIT_ARCH_I386`.
    X86,
    /// x32: `AUDIT_ARCH_X86_64` with `__X32_SYSCALL_BIT` in the number.
    X32,
}

impl Abi {
    /// In systemd's order of seccomp_local_archs (native last).
    pub const ALL: [Abi; 3] = [Abi::X86, Abi::X32, Abi::X86_64];

    fn audit_arch(self) -> u32 {
        match self {
            Abi::X86_64 | Abi::X32 => AUDIT_ARCH_X86_64,
            Abi::X86 => AUDIT_ARCH_I386,
        }
    }

    /// systemd's name of the architecture.
    pub fn name(self) -> &'static str {
        match self {
            Abi::X86_64 => "x86-64",
            Abi::X86 => "x86",
            Abi::X32 => "x32",
        }
    }
}

const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
const AUDIT_ARCH_I386: u32 = 0x4000_0003;
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// The number of system call `name` in each ABI (`None` where the ABI lacks it); `None`
/// for a name no x86 ABI has.
pub fn syscall_numbers(name: &str) -> Option<[Option<u32>; 3]> {
    let i = SYSCALLS.binary_search_by_key(&name, |s| s.0).ok()?;
    let (_, x86_64, x86, x32) = SYSCALLS[i];
    Some([x86_64, x86, x32])
}

/// The number of `name` in `abi`, if it has one there.
pub fn syscall_number(abi: Abi, name: &str) -> Option<u32> {
    let [x86_64, x86, x32] = syscall_numbers(name)?;
    match abi {
        Abi::X86_64 => x86_64,
        Abi::X86 => x86,
        Abi::X32 => x32,
    }
}

/// What the kernel does with a call (`SECCOMP_RET_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Allow,
    Errno(u16),
    KillProcess,
    KillThread,
}

impl Action {
    pub fn ret(self) -> u32 {
        match self {
            Action::Allow => 0x7fff_0000,
            Action::Errno(e) => 0x0005_0000 | u32::from(e),
            Action::KillProcess => 0x8000_0000,
            Action::KillThread => 0,
        }
    }
}

/// A comparison of one 64-bit argument, as libseccomp's `SCMP_CMP_*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmp {
    Eq(u64),
    Ne(u64),
    Lt(u64),
    Gt(u64),
    /// `arg & mask == value`.
    MaskedEq {
        mask: u64,
        value: u64,
    },
}

/// A rule: call `nr` whose arguments pass every check gets `action`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub nr: u32,
    pub args: Vec<(u8, Cmp)>,
    pub action: Action,
}

/// One architecture's filter: rules (the first that matches decides) and the action of
/// every other call of that architecture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchFilter {
    pub abi: Abi,
    pub rules: Vec<Rule>,
    pub default: Action,
}

/// `struct sock_filter`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C)]
pub struct Insn {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

const LD_W_ABS: u16 = 0x20;
const JEQ: u16 = 0x15;
const JGT: u16 = 0x25;
const JGE: u16 = 0x35;
const AND: u16 = 0x54;
const RET: u16 = 0x06;

/// Offsets in `struct seccomp_data`.
const NR: u32 = 0;
const ARCH: u32 = 4;
fn arg_lo(i: u8) -> u32 {
    16 + 8 * u32::from(i)
}
fn arg_hi(i: u8) -> u32 {
    arg_lo(i) + 4
}

/// Longest program the kernel takes (`BPF_MAXINSNS`).
pub const MAX_INSNS: usize = 4096;

fn stmt(code: u16, k: u32) -> Insn {
    Insn {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

fn jump(code: u16, k: u32, jt: u8, jf: u8) -> Insn {
    Insn { code, jt, jf, k }
}

impl ArchFilter {
    /// The program: other architectures allowed, then the rules, then the default.
    pub fn compile(&self) -> Vec<Insn> {
        let allow = Action::Allow.ret();
        let mut p = vec![
            stmt(LD_W_ABS, ARCH),
            jump(JEQ, self.abi.audit_arch(), 1, 0),
            stmt(RET, allow),
            stmt(LD_W_ABS, NR),
        ];
        // x86-64 and x32 share the audit architecture: the number tells them apart. -1
        // (a tracer's skipped call) counts as x86-64's, as libseccomp counts it.
        match self.abi {
            Abi::X86_64 => p.extend([
                jump(JGE, X32_SYSCALL_BIT, 0, 2),
                jump(JEQ, u32::MAX, 1, 0),
                stmt(RET, allow),
            ]),
            Abi::X32 => p.extend([
                jump(JGE, X32_SYSCALL_BIT, 1, 0),
                stmt(RET, allow),
                jump(JEQ, u32::MAX, 0, 1),
                stmt(RET, allow),
            ]),
            Abi::X86 => {}
        }
        let mut a_holds_nr = true;
        for rule in &self.rules {
            if !a_holds_nr {
                p.push(stmt(LD_W_ABS, NR));
            }
            let body = rule_body(rule);
            p.push(jump(JEQ, rule.nr, 0, body.len() as u8));
            p.extend(body);
            a_holds_nr = rule.args.is_empty();
        }
        p.push(stmt(RET, self.default.ret()));
        p
    }
}

/// After the number matched: each argument check (jumping past the `ret` when one fails),
/// then the rule's `ret`.
fn rule_body(rule: &Rule) -> Vec<Insn> {
    // Built backwards, so that a failing check knows how far the end is.
    let mut tail = vec![stmt(RET, rule.action.ret())];
    for (arg, cmp) in rule.args.iter().rev() {
        let mut code = arg_check(*arg, *cmp, tail.len());
        code.extend(tail);
        tail = code;
    }
    assert!(tail.len() < 256, "a rule's checks fit a short jump");
    tail
}

/// One argument check followed by `rest` instructions; jumping `rest` from its end skips
/// them all (the check failed), falling through goes on with them (it passed).
fn arg_check(arg: u8, cmp: Cmp, rest: usize) -> Vec<Insn> {
    let v = match cmp {
        Cmp::Eq(v) | Cmp::Ne(v) | Cmp::Lt(v) | Cmp::Gt(v) => v,
        Cmp::MaskedEq { value, .. } => value,
    };
    let (hi, lo) = ((v >> 32) as u32, v as u32);
    // `fail(n)`: the offset that skips the rest of this check and `rest`, from an
    // instruction with `n` instructions of the check after it.
    let fail = |after: usize| (after + rest) as u8;
    match cmp {
        // hi == H && lo == L
        Cmp::Eq(_) => vec![
            stmt(LD_W_ABS, arg_hi(arg)),
            jump(JEQ, hi, 0, fail(2)),
            stmt(LD_W_ABS, arg_lo(arg)),
            jump(JEQ, lo, 0, fail(0)),
        ],
        // hi != H || lo != L
        Cmp::Ne(_) => vec![
            stmt(LD_W_ABS, arg_hi(arg)),
            jump(JEQ, hi, 0, 2),
            stmt(LD_W_ABS, arg_lo(arg)),
            jump(JEQ, lo, fail(0), 0),
        ],
        // hi > H || (hi == H && lo > L)
        Cmp::Gt(_) => vec![
            stmt(LD_W_ABS, arg_hi(arg)),
            jump(JGT, hi, 3, 0),
            jump(JEQ, hi, 0, fail(2)),
            stmt(LD_W_ABS, arg_lo(arg)),
            jump(JGT, lo, 0, fail(0)),
        ],
        // hi < H || (hi == H && lo < L), as: not (hi > H) and not (hi == H && lo >= L)
        Cmp::Lt(_) => vec![
            stmt(LD_W_ABS, arg_hi(arg)),
            jump(JGT, hi, fail(3), 0),
            jump(JEQ, hi, 0, 2),
            stmt(LD_W_ABS, arg_lo(arg)),
            jump(JGE, lo, fail(0), 0),
        ],
        Cmp::MaskedEq { mask, .. } => vec![
            stmt(LD_W_ABS, arg_hi(arg)),
            stmt(AND, (mask >> 32) as u32),
            jump(JEQ, hi, 0, fail(3)),
            stmt(LD_W_ABS, arg_lo(arg)),
            stmt(AND, mask as u32),
            jump(JEQ, lo, 0, fail(0)),
        ],
    }
}

/// `SystemCallArchitectures=`: calls of an ABI not in `allowed` end the thread (libseccomp's
/// default for a foreign architecture), x86-64 always runs; `None` when nothing is blocked.
pub fn restrict_archs(allowed: &[Abi]) -> Option<Vec<Insn>> {
    let ok = |abi| match allowed.contains(&abi) {
        true => Action::Allow.ret(),
        false => Action::KillThread.ret(),
    };
    if allowed.contains(&Abi::X86) && allowed.contains(&Abi::X32) {
        return None;
    }
    Some(vec![
        stmt(LD_W_ABS, ARCH),
        jump(JEQ, AUDIT_ARCH_X86_64, 0, 5),
        stmt(LD_W_ABS, NR),
        jump(JGE, X32_SYSCALL_BIT, 0, 2),
        jump(JEQ, u32::MAX, 1, 0),
        stmt(RET, ok(Abi::X32)),
        stmt(RET, Action::Allow.ret()),
        jump(JEQ, AUDIT_ARCH_I386, 0, 1),
        stmt(RET, ok(Abi::X86)),
        stmt(RET, Action::KillThread.ret()),
    ])
}

/// Runs `prog` on one call, as the kernel's classic BPF interpreter would (for tests).
pub fn evaluate(prog: &[Insn], arch: u32, nr: u32, args: [u64; 6]) -> u32 {
    let word = |off: u32| -> u32 {
        match off {
            NR => nr,
            ARCH => arch,
            o if (16..64).contains(&o) => {
                let a = args[((o - 16) / 8) as usize];
                if (o - 16) % 8 == 0 {
                    a as u32
                } else {
                    (a >> 32) as u32
                }
            }
            _ => 0,
        }
    };
    let mut a = 0u32;
    let mut pc = 0;
    loop {
        let i = prog[pc];
        pc += 1;
        let cond = |c: bool| if c { i.jt } else { i.jf } as usize;
        match i.code {
            LD_W_ABS => a = word(i.k),
            AND => a &= i.k,
            RET => return i.k,
            JEQ => pc += cond(a == i.k),
            JGT => pc += cond(a > i.k),
            JGE => pc += cond(a >= i.k),
            other => panic!("unknown instruction {other:#x}"),
        }
    }
}

/// The audit architecture numbers, for tests that call [`evaluate`].
pub fn audit_arch(abi: Abi) -> u32 {
    abi.audit_arch()
}
