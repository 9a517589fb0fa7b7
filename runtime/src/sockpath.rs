//! Unix socket paths of any length.
//!
//! A unix socket address holds at most 107 bytes of path (`sun_path` is 108 with the NUL),
//! but the daemon's sockets live below configured folders of any length (the monitor's
//! `<state>/containers/<64-hex id>/ctl`, the CRI socket). A path that does not fit is
//! reached through the folder instead: the folder is opened with `O_PATH` and the socket
//! is bound or connected as `/proc/self/fd/<n>/<name>`, which the kernel resolves to the
//! same folder; the socket file ends up where the long path names it.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

/// The longest path a `sockaddr_un` holds.
pub const MAX_SUN_PATH: usize = 107;

/// Runs `f` with a path to the same socket file as `path` that fits in a socket address.
pub fn with_short_path<T>(path: &Path, f: impl FnOnce(&Path) -> io::Result<T>) -> io::Result<T> {
    if path.as_os_str().len() <= MAX_SUN_PATH {
        return f(path);
    }
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} is not a socket file path", path.display()),
        ));
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    // O_PATH: a handle on the folder itself, needing no read permission; closed when
    // `f` returns (the kernel holds the folder itself from then on).
    let folder = File::options()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_DIRECTORY)
        .open(dir)?;
    let short: PathBuf = Path::new(&format!("/proc/self/fd/{}", folder.as_raw_fd())).join(name);
    if short.as_os_str().len() > MAX_SUN_PATH {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("socket file name {name:?} is too long"),
        ));
    }
    f(&short)
}

/// Binds a listening socket at `path`, whatever its length.
pub fn bind(path: &Path) -> io::Result<UnixListener> {
    with_short_path(path, |p| UnixListener::bind(p))
}

/// Connects to the socket at `path`, whatever its length.
pub fn connect(path: &Path) -> io::Result<UnixStream> {
    with_short_path(path, |p| UnixStream::connect(p))
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};

    use super::*;

    /// A folder whose path is `len` bytes long, below a temporary folder.
    fn long_dir(base: &Path, len: usize) -> PathBuf {
        let mut dir = base.to_path_buf();
        while dir.as_os_str().len() + 51 < len {
            dir.push("d".repeat(50));
        }
        let pad = len - dir.as_os_str().len() - 1;
        dir.push("e".repeat(pad));
        std::fs::create_dir_all(&dir).unwrap();
        assert_eq!(dir.as_os_str().len(), len);
        dir
    }

    #[test]
    fn a_socket_below_a_200_byte_folder_binds_and_connects() {
        let base = tempfile::tempdir().unwrap();
        let dir = long_dir(base.path(), 200);
        let path = dir.join("ctl");
        assert!(
            UnixListener::bind(&path).is_err(),
            "the plain path must be too long"
        );
        let listener = bind(&path).unwrap();
        assert!(path.exists(), "the socket file is where the long path says");
        let mut client = connect(&path).unwrap();
        let (mut server, _) = listener.accept().unwrap();
        client.write_all(b"hi").unwrap();
        let mut got = [0u8; 2];
        server.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"hi");
    }

    #[test]
    fn short_paths_are_used_as_they_are_and_missing_folders_fail() {
        let base = tempfile::tempdir().unwrap();
        let path = base.path().join("s");
        let _listener = bind(&path).unwrap();
        connect(&path).unwrap();
        let missing = long_dir(base.path(), 150).join("nope").join("ctl");
        assert_eq!(
            connect(&missing).unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
    }
}
