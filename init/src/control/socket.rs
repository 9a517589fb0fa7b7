//! The control socket's descriptors: the listener, and the accepted connections that have
//! not sent their request yet. Everything is non-blocking; the event loop polls
//! [`ControlSocket::poll_fds`] and calls [`ControlSocket::serve`] when any is readable.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;
use std::time::Duration;

use nix::sys::socket::{
    accept4, bind, getsockopt, listen, recv, send, socket, sockopt, AddressFamily, Backlog,
    MsgFlags, SockFlag, SockType, UnixAddr,
};

use super::{Reply, Request, CLIENT_DEADLINE, MAX_MESSAGE};

/// Connections waiting at most; more are refused until some finish.
const MAX_WAITING: usize = 32;

pub struct ControlSocket {
    listener: OwnedFd,
    /// Accepted, no request read yet, with when they were accepted.
    waiting: Vec<(OwnedFd, Duration)>,
}

impl ControlSocket {
    /// Binds and listens at `path` (a stale socket file is replaced).
    pub fn bind(path: &Path) -> nix::Result<ControlSocket> {
        if let Some(parent) = path.parent() {
            let _ = std::fs::create_dir_all(parent);
        }
        let _ = std::fs::remove_file(path);
        let listener = socket(
            AddressFamily::Unix,
            SockType::SeqPacket,
            SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
            None,
        )?;
        bind(listener.as_raw_fd(), &UnixAddr::new(path)?)?;
        // Anyone may ask for state (as with systemctl); changes are checked per request.
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666));
        }
        listen(&listener, Backlog::new(16)?)?;
        Ok(ControlSocket {
            listener,
            waiting: Vec::new(),
        })
    }

    /// The listener and every waiting connection, to poll for reading.
    pub fn poll_fds(&self) -> Vec<BorrowedFd<'_>> {
        std::iter::once(self.listener.as_fd())
            .chain(self.waiting.iter().map(|(fd, _)| fd.as_fd()))
            .collect()
    }

    /// The earliest moment a waiting client is dropped, for the loop's timeout.
    pub fn next_deadline(&self) -> Option<Duration> {
        self.waiting
            .iter()
            .map(|(_, at)| *at + CLIENT_DEADLINE)
            .min()
    }

    /// Accepts new connections, answers every one whose request has arrived through
    /// `answer(request, peer uid)`, and drops those past their deadline. Never blocks.
    pub fn serve(&mut self, now: Duration, mut answer: impl FnMut(Request, u32) -> Reply) {
        while self.waiting.len() < MAX_WAITING {
            match accept4(
                self.listener.as_raw_fd(),
                SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
            ) {
                Ok(fd) => self.waiting.push((owned(fd), now)),
                Err(_) => break,
            }
        }
        let mut still = Vec::new();
        for (conn, since) in std::mem::take(&mut self.waiting) {
            let mut buf = vec![0u8; MAX_MESSAGE];
            match recv(conn.as_raw_fd(), &mut buf, MsgFlags::MSG_DONTWAIT) {
                Ok(len) => {
                    let uid = getsockopt(&conn, sockopt::PeerCredentials)
                        .map(|c| c.uid())
                        .unwrap_or(u32::MAX);
                    let reply = match Request::decode(&buf[..len]) {
                        Some(request) => answer(request, uid),
                        None => Reply::error(1, "malformed request"),
                    };
                    // A client that went away, or a full buffer: the reply is dropped.
                    let _ = send(
                        conn.as_raw_fd(),
                        &reply.encode(),
                        MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_NOSIGNAL,
                    );
                }
                Err(nix::errno::Errno::EAGAIN) if now < since + CLIENT_DEADLINE => {
                    still.push((conn, since))
                }
                Err(_) => {}
            }
        }
        self.waiting = still;
    }
}

fn owned(fd: std::os::fd::RawFd) -> OwnedFd {
    use std::os::fd::FromRawFd;
    // SAFETY: `fd` was just returned by accept4 and is owned by no other value.
    unsafe { OwnedFd::from_raw_fd(fd) }
}
