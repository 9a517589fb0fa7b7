//! The image code's only raw syscalls: extended attributes on a path without following
//! a final symlink (`lsetxattr`/`lgetxattr`), which nix does not wrap. Everything else
//! goes through nix or std.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

fn cstring(bytes: &[u8]) -> io::Result<CString> {
    CString::new(bytes)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "embedded NUL byte"))
}

/// Sets extended attribute `name` on `path` itself (a symlink is not followed).
pub fn lsetxattr(path: &Path, name: &str, value: &[u8]) -> io::Result<()> {
    let c_path = cstring(path.as_os_str().as_bytes())?;
    let c_name = cstring(name.as_bytes())?;
    // SAFETY: both pointers are valid NUL-terminated strings owned for the call; `value`
    // is a live slice whose pointer and length are passed together.
    let rc = unsafe {
        libc::lsetxattr(
            c_path.as_ptr(),
            c_name.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Reads extended attribute `name` of `path` itself; `None` when it is not set.
pub fn lgetxattr(path: &Path, name: &str) -> io::Result<Option<Vec<u8>>> {
    let c_path = cstring(path.as_os_str().as_bytes())?;
    let c_name = cstring(name.as_bytes())?;
    let mut buf = vec![0u8; 4096];
    // SAFETY: valid NUL-terminated strings; `buf` is writable for `buf.len()` bytes, and
    // the kernel writes at most that many.
    let rc = unsafe {
        libc::lgetxattr(
            c_path.as_ptr(),
            c_name.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    if rc >= 0 {
        buf.truncate(rc as usize);
        return Ok(Some(buf));
    }
    let err = io::Error::last_os_error();
    match err.raw_os_error() {
        Some(libc::ENODATA) => Ok(None),
        _ => Err(err),
    }
}
