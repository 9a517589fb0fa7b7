//! Ambient capabilities (`AmbientCapabilities=`, capabilities(7)): a service that changes
//! user keeps these capabilities across the change and its `execve`. The child asks the
//! kernel to keep its permitted set through `setuid` (`PR_SET_KEEPCAPS`), then adds the
//! set to its inheritable capabilities (`capset`) and raises each one into the ambient set
//! (`PR_CAP_AMBIENT_RAISE`). Raw system calls on stack values only: safe between `fork`
//! and `exec`.

use std::io;

/// `_LINUX_CAPABILITY_VERSION_3`: two 32-bit words per set.
const VERSION_3: u32 = 0x2008_0522;

#[repr(C)]
struct Header {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct Data {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

fn check(rc: i64) -> io::Result<()> {
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Before `setuid`: keep the permitted capabilities through the change of user.
pub fn keep_through_setuid() -> io::Result<()> {
    // SAFETY: PR_SET_KEEPCAPS takes plain integers.
    check(unsafe { nix::libc::prctl(nix::libc::PR_SET_KEEPCAPS, 1, 0, 0, 0) }.into())
}

/// After `setuid`: every capability of `set` (bit n for capability n) inheritable and
/// ambient, so `execve` gives it to the program.
pub fn raise_ambient(set: u64) -> io::Result<()> {
    let mut header = Header {
        version: VERSION_3,
        pid: 0,
    };
    let mut data = [Data::default(); 2];
    // SAFETY: capget writes two `Data` (version 3) into `data`; both live on this stack.
    check(unsafe { nix::libc::syscall(nix::libc::SYS_capget, &mut header, data.as_mut_ptr()) })?;
    data[0].inheritable |= set as u32;
    data[1].inheritable |= (set >> 32) as u32;
    // SAFETY: as above; capset only reads them.
    check(unsafe { nix::libc::syscall(nix::libc::SYS_capset, &mut header, data.as_ptr()) })?;
    for cap in (0..64).filter(|c| set & (1 << c) != 0) {
        // SAFETY: PR_CAP_AMBIENT takes plain integers.
        let rc = unsafe {
            nix::libc::prctl(
                nix::libc::PR_CAP_AMBIENT,
                nix::libc::PR_CAP_AMBIENT_RAISE,
                cap,
                0,
                0,
            )
        };
        check(rc.into())?;
    }
    Ok(())
}

/// `CAP_SYS_ADMIN` (capability.h).
pub const CAP_SYS_ADMIN: u32 = 21;

/// Whether the calling process has capability `cap` in its effective set (capget(2)).
pub fn effective_has(cap: u32) -> bool {
    let mut header = Header {
        version: VERSION_3,
        pid: 0,
    };
    let mut data = [Data::default(); 2];
    // SAFETY: capget writes two `Data` (version 3) into `data`; both live on this stack.
    let rc = unsafe { nix::libc::syscall(nix::libc::SYS_capget, &mut header, data.as_mut_ptr()) };
    let word = data.get((cap / 32) as usize).map_or(0, |d| d.effective);
    rc == 0 && word & (1 << (cap % 32)) != 0
}
