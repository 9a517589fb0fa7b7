//! The `execve(2)` of a unit's command, prepared before `fork`: program, argv and
//! environment as C strings with their pointer arrays, so the child only fills in what it
//! alone knows and calls `execve`.
//!
//! The one thing the child alone knows is its PID: systemd.service(5) gives a service with
//! `WatchdogSec=` `$WATCHDOG_PID`, and one started with sockets `$LISTEN_PID`, its own PID,
//! which sd_watchdog_enabled(3) and sd_listen_fds(3) compare with `getpid()`. Each such
//! entry is a fixed buffer reserved here and written by the child (a plain memory write
//! into its copy of the buffer, then async-signal-safe `execve`).

use std::ffi::{CString, NulError};
use std::io;
use std::os::raw::c_char;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Room for the digits of any PID (pid_max is at most 2^22) and the NUL.
const PID_DIGITS: usize = 11;

/// Everything `execve` takes, owned; the pointer arrays point into the owned strings.
pub struct PreparedExec {
    program: CString,
    _argv: Vec<CString>,
    argv_ptrs: Vec<*const c_char>,
    _env: Vec<CString>,
    /// `NAME=` and room for the digits, for each variable that holds the child's PID.
    pid_entries: Vec<Vec<u8>>,
    env_ptrs: Vec<*const c_char>,
}

// SAFETY: the raw pointers point only into the heap buffers this struct owns (moving the
// struct moves no buffer), and nothing else refers to them; `pre_exec` wants Send + Sync.
unsafe impl Send for PreparedExec {}
// SAFETY: as above; shared references never write through the pointers.
unsafe impl Sync for PreparedExec {}

impl PreparedExec {
    /// Fails on a NUL byte in any string. `pid_vars` are the variables set to the child's
    /// PID (replacing any of `env`'s).
    pub fn new(
        program: &Path,
        argv: &[String],
        env: &[(String, String)],
        pid_vars: &[&str],
    ) -> Result<PreparedExec, NulError> {
        let program = CString::new(program.as_os_str().as_bytes())?;
        // A program always gets an argv[0]: its path when none is given.
        let argv: Vec<CString> = if argv.is_empty() {
            vec![program.clone()]
        } else {
            argv.iter()
                .map(|a| CString::new(a.as_bytes()))
                .collect::<Result<_, _>>()?
        };
        let env: Vec<CString> = env
            .iter()
            .filter(|(k, _)| !pid_vars.contains(&k.as_str()))
            .map(|(k, v)| CString::new(format!("{k}={v}")))
            .collect::<Result<_, _>>()?;
        let mut argv_ptrs: Vec<*const c_char> = argv.iter().map(|a| a.as_ptr()).collect();
        argv_ptrs.push(std::ptr::null());
        let pid_entries: Vec<Vec<u8>> = pid_vars
            .iter()
            .map(|name| {
                let mut b = format!("{name}=").into_bytes();
                b.resize(name.len() + 1 + PID_DIGITS, 0);
                b
            })
            .collect();
        let mut env_ptrs: Vec<*const c_char> = env.iter().map(|e| e.as_ptr()).collect();
        env_ptrs.extend(pid_entries.iter().map(|b| b.as_ptr().cast::<c_char>()));
        env_ptrs.push(std::ptr::null());
        Ok(PreparedExec {
            program,
            _argv: argv,
            argv_ptrs,
            _env: env,
            pid_entries,
            env_ptrs,
        })
    }

    /// In the child: writes its PID into the PID variables and executes the program.
    /// Returns only with the reason `execve` failed. Allocates nothing.
    pub fn exec_in_child(&mut self) -> io::Error {
        let pid = std::process::id();
        for entry in &mut self.pid_entries {
            // The digits go after `NAME=`, at the end of the buffer's fixed prefix.
            let start = entry.len() - PID_DIGITS;
            write_digits(&mut entry[start..], pid);
        }
        // SAFETY: the program and both arrays are NUL-terminated and point into buffers
        // owned by `self`, alive across the call; execve is async-signal-safe.
        unsafe {
            nix::libc::execve(
                self.program.as_ptr(),
                self.argv_ptrs.as_ptr(),
                self.env_ptrs.as_ptr(),
            )
        };
        io::Error::last_os_error()
    }
}

/// Writes `n` in decimal and a NUL into `out` (which has room for any u32).
fn write_digits(out: &mut [u8], n: u32) {
    let mut digits = [0u8; 10];
    let mut len = 0;
    let mut rest = n;
    loop {
        digits[len] = b'0' + (rest % 10) as u8;
        len += 1;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    for (slot, d) in out.iter_mut().zip(digits[..len].iter().rev()) {
        *slot = *d;
    }
    out[len] = 0;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_are_written_in_decimal_and_terminated() {
        let mut b = [b'x'; PID_DIGITS];
        write_digits(&mut b, 4_194_304);
        assert_eq!(&b[..8], b"4194304\0");
        write_digits(&mut b, 0);
        assert_eq!(&b[..2], b"0\0");
        write_digits(&mut b, u32::MAX);
        assert_eq!(&b[..11], b"4294967295\0");
    }

    #[test]
    fn the_pid_entry_replaces_a_given_watchdog_pid_and_nul_bytes_are_refused() {
        let env = [
            ("A".to_owned(), "1".to_owned()),
            ("WATCHDOG_PID".to_owned(), "7".to_owned()),
        ];
        let p = PreparedExec::new(
            Path::new("/bin/true"),
            &["true".into()],
            &env,
            &["WATCHDOG_PID"],
        )
        .expect("no NUL");
        assert_eq!(p.env_ptrs.len(), 3, "A=1, the PID entry, NULL");
        assert_eq!(p._env.len(), 1);
        let p = PreparedExec::new(
            Path::new("/bin/true"),
            &[],
            &env,
            &["WATCHDOG_PID", "LISTEN_PID"],
        )
        .expect("no NUL");
        assert_eq!(p.env_ptrs.len(), 4, "A=1, two PID entries, NULL");
        assert_eq!(&p.pid_entries[1][..11], b"LISTEN_PID=");
        assert!(PreparedExec::new(Path::new("/bin/a\0"), &[], &[], &[]).is_err());
        let p = PreparedExec::new(Path::new("/bin/true"), &[], &[], &[]).expect("no NUL");
        assert_eq!(p._argv, vec![CString::new("/bin/true").expect("no NUL")]);
        assert_eq!(p.argv_ptrs.len(), 2);
    }
}
