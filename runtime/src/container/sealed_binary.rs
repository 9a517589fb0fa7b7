//! A sealed in-memory copy of the OCI runtime's binary, made once per daemon, that the
//! runtime is run from instead of its file.
//!
//! Why: against CVE-2019-5736 (a container overwriting the host's runtime binary through
//! `/proc/<pid>/exe`), crun re-executes itself from a private read-only copy at every
//! call unless its binary already is one: a file on a read-only filesystem, or a memfd
//! with every seal (no write, grow, shrink or further seal; crun's `is_self_cloned`). On
//! a node `/usr` is dm-verity, read-only, and nothing is needed; on a host whose binary is
//! writable each create, start, state, kill and delete paid that second exec (about 2 ms
//! on the test host, two of them per pod start). A fully sealed memfd cannot be written
//! by anyone, so running from it keeps the protection while crun runs at once; it lives
//! while the daemon holds it, and leaves nothing on any filesystem or mount table.
//! Children run it as `/proc/<daemon pid>/fd/<n>` (the monitor too: it runs `create`
//! while the daemon waits for it).
//!
//! The two host operations go through [`SealSys`]; [`RealSealSys`] is the real one.

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, SealFlag};
use nix::sys::memfd::{memfd_create, MFdFlags};
use nix::sys::statvfs::{statvfs, FsFlags};

/// The host operations [`seal`] needs.
pub trait SealSys {
    /// Whether `path` lies on a read-only mount.
    fn read_only(&self, path: &Path) -> io::Result<bool>;
    /// A close-on-exec memfd holding a copy of `path`, with every seal added.
    fn sealed_copy(&self, path: &Path) -> io::Result<OwnedFd>;
}

/// The seals crun checks for (all four, exactly).
pub fn all_seals() -> SealFlag {
    SealFlag::F_SEAL_SEAL | SealFlag::F_SEAL_SHRINK | SealFlag::F_SEAL_GROW | SealFlag::F_SEAL_WRITE
}

/// The real host.
pub struct RealSealSys;

impl SealSys for RealSealSys {
    fn read_only(&self, path: &Path) -> io::Result<bool> {
        Ok(statvfs(path)?.flags().contains(FsFlags::ST_RDONLY))
    }

    fn sealed_copy(&self, path: &Path) -> io::Result<OwnedFd> {
        const NAME: &str = "berth-oci-runtime";
        let flags = MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING;
        // Executable said explicitly: where vm.memfd_noexec is 1 a memfd is otherwise made
        // non-executable, and where it is 2 this fails (the binary then runs as is).
        // Kernels before 6.3 do not know the flag.
        let exec = MFdFlags::from_bits_retain(nix::libc::MFD_EXEC);
        let memfd = match memfd_create(NAME, flags | exec) {
            Err(Errno::EINVAL) => memfd_create(NAME, flags)?,
            made => made?,
        };
        let mut copy = File::from(memfd);
        io::copy(&mut File::open(path)?, &mut copy)?;
        fcntl(&copy, FcntlArg::F_ADD_SEALS(all_seals()))?;
        Ok(copy.into())
    }
}

/// A sealed copy of a binary, run by its [`SealedBinary::path`] while this value lives.
#[derive(Debug)]
pub struct SealedBinary {
    _fd: OwnedFd,
    path: PathBuf,
}

impl SealedBinary {
    /// `/proc/<this process>/fd/<n>`: what to execute.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// A sealed copy of `binary` to run it from, or `None` when its file is on a read-only
/// mount already (the runtime then runs from it without copying itself).
pub fn seal(binary: &Path, sys: &dyn SealSys) -> io::Result<Option<SealedBinary>> {
    if sys.read_only(binary)? {
        return Ok(None);
    }
    let fd = sys.sealed_copy(binary)?;
    let path = PathBuf::from(format!(
        "/proc/{}/fd/{}",
        std::process::id(),
        fd.as_raw_fd()
    ));
    Ok(Some(SealedBinary { _fd: fd, path }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::io::Write;

    /// Records the calls; answers `read_only` as told and copies into a temp file.
    struct Recording {
        read_only: bool,
        fail_copy: bool,
        calls: RefCell<Vec<String>>,
    }

    impl Recording {
        fn new(read_only: bool, fail_copy: bool) -> Self {
            Recording {
                read_only,
                fail_copy,
                calls: RefCell::new(Vec::new()),
            }
        }
    }

    impl SealSys for Recording {
        fn read_only(&self, path: &Path) -> io::Result<bool> {
            self.calls
                .borrow_mut()
                .push(format!("read_only {}", path.display()));
            Ok(self.read_only)
        }

        fn sealed_copy(&self, path: &Path) -> io::Result<OwnedFd> {
            self.calls
                .borrow_mut()
                .push(format!("sealed_copy {}", path.display()));
            if self.fail_copy {
                return Err(io::Error::other("no memfd here"));
            }
            Ok(tempfile::tempfile()?.into())
        }
    }

    #[test]
    fn a_binary_on_a_read_only_mount_is_run_as_is() {
        let sys = Recording::new(true, false);
        assert!(seal(Path::new("/usr/bin/crun"), &sys).unwrap().is_none());
        assert_eq!(*sys.calls.borrow(), ["read_only /usr/bin/crun"]);
    }

    #[test]
    fn a_writable_binary_is_run_from_its_copy_through_this_process_fd() {
        let sys = Recording::new(false, false);
        let sealed = seal(Path::new("/usr/bin/crun"), &sys).unwrap().unwrap();
        assert_eq!(
            *sys.calls.borrow(),
            ["read_only /usr/bin/crun", "sealed_copy /usr/bin/crun"]
        );
        let prefix = format!("/proc/{}/fd/", std::process::id());
        let path = sealed.path().to_string_lossy().into_owned();
        let fd: i32 = path.strip_prefix(&prefix).unwrap().parse().unwrap();
        assert_eq!(fd, sealed._fd.as_raw_fd());
    }

    #[test]
    fn a_failed_copy_is_an_error() {
        let sys = Recording::new(false, true);
        let err = seal(Path::new("/usr/bin/crun"), &sys).unwrap_err();
        assert!(err.to_string().contains("no memfd"), "{err}");
    }

    #[test]
    fn the_real_copy_is_sealed_and_runs() {
        let script = tempfile::NamedTempFile::new().unwrap();
        // A real binary is needed for exec; a sealed script would run too, but check the
        // seals on a file whose content is known.
        script.as_file().write_all(b"#!/bin/sh\nexit 0\n").unwrap();
        let copy = RealSealSys.sealed_copy(script.path()).unwrap();
        let seals = fcntl(&copy, FcntlArg::F_GET_SEALS).unwrap();
        assert_eq!(seals, all_seals().bits());
        let mut file = File::from(copy);
        assert!(file.write_all(b"x").is_err(), "sealed against writes");

        let sealed = seal(Path::new("/bin/true"), &RealSealSys).unwrap();
        // /bin/true is on a writable filesystem on a build host, read-only on a node.
        let program = sealed.as_ref().map_or(Path::new("/bin/true"), |s| s.path());
        let status = std::process::Command::new(program).status().unwrap();
        assert!(status.success(), "{} did not run", program.display());
    }
}
