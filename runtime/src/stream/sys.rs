//! The two raw calls terminals need: receiving the pty master that the OCI runtime sends
//! over the console socket (SCM_RIGHTS), and setting a terminal's size (TIOCSWINSZ).

use std::io::IoSliceMut;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;

use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};

/// Receives one file descriptor sent with SCM_RIGHTS on `stream` (blocking).
pub fn recv_fd(stream: &UnixStream) -> std::io::Result<OwnedFd> {
    let mut data = [0u8; 4096];
    let mut iov = [IoSliceMut::new(&mut data)];
    let mut space = nix::cmsg_space!([RawFd; 4]);
    let msg = recvmsg::<()>(
        stream.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .map_err(std::io::Error::from)?;
    let mut received: Vec<OwnedFd> = Vec::new();
    for cmsg in msg.cmsgs().map_err(std::io::Error::from)? {
        if let ControlMessageOwned::ScmRights(fds) = cmsg {
            for fd in fds {
                // SAFETY: the kernel just installed `fd` in our table for this message;
                // nothing else owns it, so the OwnedFd takes sole ownership.
                received.push(unsafe { OwnedFd::from_raw_fd(fd) });
            }
        }
    }
    // Extra descriptors (none expected) are closed when `received` drops.
    if received.is_empty() {
        return Err(std::io::Error::other(
            "the console socket message carried no file descriptor",
        ));
    }
    Ok(received.swap_remove(0))
}

/// Sets the size of the terminal `fd` (a pty master or slave).
pub fn set_winsize(fd: BorrowedFd<'_>, cols: u16, rows: u16) -> std::io::Result<()> {
    let size = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads one `struct winsize` from the pointer, which points to a
    // live, initialised value for the whole call; `fd` is a valid open descriptor.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, &size) };
    if rc < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::socket::{sendmsg, ControlMessage};
    use std::io::IoSlice;
    use std::os::fd::AsFd;

    #[test]
    fn a_descriptor_crosses_a_socket_pair() {
        let (a, b) = UnixStream::pair().unwrap();
        let file = tempfile::tempfile().unwrap();
        let fds = [file.as_raw_fd()];
        sendmsg::<()>(
            a.as_raw_fd(),
            &[IoSlice::new(b"x")],
            &[ControlMessage::ScmRights(&fds)],
            MsgFlags::empty(),
            None,
        )
        .unwrap();
        let got = recv_fd(&b).unwrap();
        assert_ne!(got.as_raw_fd(), file.as_raw_fd());
        // A message without a descriptor is an error, not a hang.
        sendmsg::<()>(
            a.as_raw_fd(),
            &[IoSlice::new(b"y")],
            &[],
            MsgFlags::empty(),
            None,
        )
        .unwrap();
        assert!(recv_fd(&b).is_err());
    }

    #[test]
    fn winsize_on_a_pty() {
        let pty = nix::pty::openpty(None, None).unwrap();
        set_winsize(pty.master.as_fd(), 100, 30).unwrap();
        let mut size = libc::winsize {
            ws_row: 0,
            ws_col: 0,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCGWINSZ writes one winsize into the live local.
        let rc = unsafe { libc::ioctl(pty.slave.as_raw_fd(), libc::TIOCGWINSZ, &mut size) };
        assert_eq!(rc, 0);
        assert_eq!((size.ws_col, size.ws_row), (100, 30));
        let file = tempfile::tempfile().unwrap();
        assert!(set_winsize(file.as_fd(), 1, 1).is_err());
    }
}
