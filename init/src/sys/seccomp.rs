//! Installing seccomp filters in a unit's child, just before `execve` (seccomp(2)): raw
//! system calls on values prepared before the fork, safe between `fork` and `exec`. The
//! programs are [`super::seccomp_bpf`]'s.

use std::io;

use super::child_report::Step;
use super::seccomp_bpf::Insn;

/// One filter to install in the child.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeccompProgram {
    /// The setting, for messages (`SystemCallFilter=`).
    pub setting: &'static str,
    /// The step (and exit status) of a failure to install it.
    pub step: Step,
    pub insns: Vec<Insn>,
}

/// `struct sock_fprog`.
#[repr(C)]
struct SockFprog {
    len: u16,
    filter: *const Insn,
}

const SECCOMP_SET_MODE_FILTER: nix::libc::c_ulong = 1;

/// Installs `prog` on the calling thread. Like systemd (libseccomp with
/// `SCMP_FLTATR_CTL_NNP` off), without setting no_new_privs itself: the kernel takes the
/// filter from a process that has CAP_SYS_ADMIN or no_new_privs, and refuses it with
/// EACCES otherwise.
pub fn install(prog: &[Insn]) -> io::Result<()> {
    let len = u16::try_from(prog.len())
        .ok()
        .filter(|n| *n > 0 && usize::from(*n) <= super::seccomp_bpf::MAX_INSNS)
        .ok_or_else(|| io::Error::from_raw_os_error(nix::libc::EINVAL))?;
    let fprog = SockFprog {
        len,
        filter: prog.as_ptr(),
    };
    // SAFETY: `fprog` points at `len` instructions of `prog`, which outlives the call;
    // the kernel copies the program and keeps no pointer to it.
    let rc = unsafe {
        nix::libc::syscall(
            nix::libc::SYS_seccomp,
            SECCOMP_SET_MODE_FILTER,
            0 as nix::libc::c_ulong,
            &fprog as *const SockFprog,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Whether a failure to install is the end of the start: systemd's ERRNO_IS_SECCOMP_FATAL
/// (EPERM, EACCES). Any other error (a kernel without seccomp) is skipped, as systemd
/// skips it.
pub fn is_fatal(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(nix::libc::EPERM) | Some(nix::libc::EACCES)
    )
}

/// The execution domain `LockPersonality=` keeps when none is set: PER_LINUX32 if this
/// process runs as one, else PER_LINUX (systemd's opinionated_personality).
pub fn current_personality() -> u64 {
    // SAFETY: personality(0xffffffff) only reads the current execution domain.
    let current = unsafe { nix::libc::personality(0xffff_ffff) };
    const PER_LINUX32: i32 = 0x0008;
    match current >= 0 && current & 0xff == PER_LINUX32 {
        true => PER_LINUX32 as u64,
        false => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_program_header_has_the_kernel_layout() {
        assert_eq!(std::mem::size_of::<Insn>(), 8);
        assert_eq!(std::mem::size_of::<SockFprog>(), 16);
        assert_eq!(std::mem::offset_of!(SockFprog, filter), 8);
        assert_eq!(std::mem::offset_of!(Insn, k), 4);
    }

    #[test]
    fn only_a_refusal_is_fatal() {
        assert!(is_fatal(&io::Error::from_raw_os_error(nix::libc::EACCES)));
        assert!(is_fatal(&io::Error::from_raw_os_error(nix::libc::EPERM)));
        assert!(!is_fatal(&io::Error::from_raw_os_error(nix::libc::EINVAL)));
    }
}
