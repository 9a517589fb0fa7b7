//! `StandardOutput=journal`: a unit's standard output and error connected to the
//! journal's stream socket, as systemd 252 does it. The connection is made by the forked
//! child before `exec`, so the journal's `SO_PEERCRED` sees the unit's own PID (and its
//! cgroup), and a slow journal can only ever block the unit, never PID 1. The child
//! first writes systemd's stream header (journald-stream.c):
//!
//! ```text
//! IDENTIFIER\nUNIT\nPRIORITY\nLEVEL_PREFIX\nFORWARD_TO_SYSLOG\nFORWARD_TO_KMSG\nFORWARD_TO_CONSOLE\n
//! ```
//!
//! When nothing listens (the journal not started, or the journal's own unit), the stream
//! goes to the console instead, so no line is lost silently.

use std::io;

/// The journal's stream socket (systemd's path, which journal daemons listen on).
pub const JOURNAL_STDOUT_SOCKET: &str = "/run/systemd/journal/stdout";

/// What the journal is told about a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamHeader {
    pub identifier: String,
    pub unit: String,
    /// Priority of lines without a `<N>` prefix (0..=7).
    pub priority: u8,
    pub level_prefix: bool,
    /// `journal+console`: the journal also copies the lines to the console.
    pub to_console: bool,
}

impl StreamHeader {
    pub fn render(&self) -> Vec<u8> {
        let clean = |s: &str| s.replace('\n', " ");
        format!(
            "{}\n{}\n{}\n{}\n0\n0\n{}\n",
            clean(&self.identifier),
            clean(&self.unit),
            self.priority,
            u8::from(self.level_prefix),
            u8::from(self.to_console)
        )
        .into_bytes()
    }
}

/// Everything the child needs, made before the fork (the child may not allocate).
pub struct PreparedStream {
    addr: nix::libc::sockaddr_un,
    header: Vec<u8>,
}

impl PreparedStream {
    pub fn new(socket_path: &str, header: &StreamHeader) -> io::Result<PreparedStream> {
        // SAFETY: sockaddr_un is plain old data; all zeroes is a valid value.
        let mut addr: nix::libc::sockaddr_un = unsafe { std::mem::zeroed() };
        addr.sun_family = nix::libc::AF_UNIX as nix::libc::sa_family_t;
        let bytes = socket_path.as_bytes();
        if bytes.len() >= addr.sun_path.len() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("socket path {socket_path} is too long"),
            ));
        }
        for (dst, src) in addr.sun_path.iter_mut().zip(bytes) {
            *dst = *src as nix::libc::c_char;
        }
        Ok(PreparedStream {
            addr,
            header: header.render(),
        })
    }

    /// In the child: connects, sends the header, and puts the stream on each of
    /// `targets` (1, 2); falls back to `/dev/console` when the journal does not answer.
    /// Only async-signal-safe calls, nothing allocated.
    pub fn attach_in_child(&self, targets: &[i32]) -> io::Result<()> {
        let fd = match self.connect() {
            Ok(fd) => fd,
            Err(_) => console()?,
        };
        for &target in targets {
            // SAFETY: `fd` is open (just made); dup2 onto a standard descriptor number.
            if unsafe { nix::libc::dup2(fd, target) } < 0 {
                return Err(io::Error::last_os_error());
            }
        }
        if !targets.contains(&fd) {
            // SAFETY: `fd` was made above and is closed once; the targets hold copies.
            unsafe { nix::libc::close(fd) };
        }
        Ok(())
    }

    fn connect(&self) -> io::Result<i32> {
        // SAFETY: socket(2) with constant arguments.
        let fd = unsafe {
            nix::libc::socket(
                nix::libc::AF_UNIX,
                nix::libc::SOCK_STREAM | nix::libc::SOCK_CLOEXEC,
                0,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let len = std::mem::size_of::<nix::libc::sockaddr_un>() as nix::libc::socklen_t;
        // SAFETY: `addr` is a fully initialised sockaddr_un of `len` bytes.
        let rc = unsafe { nix::libc::connect(fd, (&raw const self.addr).cast(), len) };
        let sent = rc == 0 && write_all(fd, &self.header);
        // SAFETY: shutdown(2) on the socket made above; the unit never reads from it.
        let shut = sent && unsafe { nix::libc::shutdown(fd, nix::libc::SHUT_RD) } == 0;
        if !shut {
            let e = io::Error::last_os_error();
            // SAFETY: `fd` was made above and is closed once.
            unsafe { nix::libc::close(fd) };
            return Err(e);
        }
        Ok(fd)
    }
}

fn write_all(fd: i32, mut bytes: &[u8]) -> bool {
    while !bytes.is_empty() {
        // SAFETY: `bytes` is a valid slice and `fd` an open descriptor.
        let n = unsafe { nix::libc::write(fd, bytes.as_ptr().cast(), bytes.len()) };
        if n <= 0 {
            return false;
        }
        bytes = &bytes[n as usize..];
    }
    true
}

fn console() -> io::Result<i32> {
    // SAFETY: a NUL-terminated literal; open(2) is async-signal-safe.
    let fd = unsafe {
        nix::libc::open(
            c"/dev/console".as_ptr(),
            nix::libc::O_WRONLY | nix::libc::O_NOCTTY | nix::libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(fd)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_is_systemds() {
        let h = StreamHeader {
            identifier: "berth-runtime".into(),
            unit: "berth-runtime.service".into(),
            priority: 6,
            level_prefix: true,
            to_console: false,
        };
        assert_eq!(
            h.render(),
            b"berth-runtime\nberth-runtime.service\n6\n1\n0\n0\n0\n"
        );
    }

    /// A real listener gets the header and then the child's lines (here: this process
    /// plays the child, with descriptors other than 1 and 2).
    #[test]
    fn connects_and_sends_the_header() {
        use std::io::Read;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("stdout");
        let listener = std::os::unix::net::UnixListener::bind(&path).expect("bind");
        let header = StreamHeader {
            identifier: "x".into(),
            unit: "x.service".into(),
            priority: 5,
            level_prefix: false,
            to_console: true,
        };
        let prepared =
            PreparedStream::new(path.to_str().expect("utf-8"), &header).expect("prepare");
        let fd = prepared.connect().expect("connect");
        assert!(write_all(fd, b"hello\n"));
        // SAFETY: closing the descriptor made by connect, once.
        unsafe { nix::libc::close(fd) };
        let (mut conn, _) = listener.accept().expect("accept");
        let mut got = String::new();
        conn.read_to_string(&mut got).expect("read");
        assert_eq!(got, "x\nx.service\n5\n0\n0\n0\n1\nhello\n");
    }
}
