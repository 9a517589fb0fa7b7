//! The `sd_notify` socket (`$NOTIFY_SOCKET`, sd_notify(3)): a datagram socket with
//! `SO_PASSCRED`, so that every message carries the sender's PID as the kernel vouches for
//! it; the manager checks that PID against the unit (NotifyAccess=).

use std::io::IoSliceMut;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;

use nix::sys::socket::{
    bind, recvmsg, setsockopt, socket, sockopt, AddressFamily, ControlMessageOwned, MsgFlags,
    SockFlag, SockType, UnixAddr, UnixCredentials,
};

/// Largest message read (systemd accepts up to its pipe buffer size; sd_notify messages are
/// short).
const MAX_MESSAGE: usize = 4096;

pub struct NotifySocket {
    fd: OwnedFd,
}

impl NotifySocket {
    /// Binds the socket at `path` (an old one from a previous PID 1 is replaced).
    pub fn bind(path: &Path) -> nix::Result<NotifySocket> {
        if let Some(parent) = path.parent() {
            let _ = std::fs::create_dir_all(parent);
        }
        let _ = std::fs::remove_file(path);
        let fd = socket(
            AddressFamily::Unix,
            SockType::Datagram,
            SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
            None,
        )?;
        setsockopt(&fd, sockopt::PassCred, &true)?;
        bind(fd.as_raw_fd(), &UnixAddr::new(path)?)?;
        Ok(NotifySocket { fd })
    }

    pub fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// The next waiting message and its sender's PID; `None` when none is waiting.
    pub fn receive(&self) -> Option<(u32, String)> {
        loop {
            let mut buf = [0u8; MAX_MESSAGE];
            let mut cmsg = nix::cmsg_space!(UnixCredentials);
            let mut iov = [IoSliceMut::new(&mut buf)];
            let (pid, len) = {
                let msg = match recvmsg::<()>(
                    self.fd.as_raw_fd(),
                    &mut iov,
                    Some(&mut cmsg),
                    MsgFlags::MSG_DONTWAIT,
                ) {
                    Ok(m) => m,
                    Err(nix::errno::Errno::EINTR) => continue,
                    Err(_) => return None,
                };
                let pid = msg.cmsgs().ok().and_then(|mut c| {
                    c.find_map(|c| match c {
                        ControlMessageOwned::ScmCredentials(cred) => u32::try_from(cred.pid()).ok(),
                        _ => None,
                    })
                });
                (pid, msg.bytes)
            };
            // A message without credentials cannot be attributed: dropped, read the next.
            let Some(pid) = pid else { continue };
            let text = String::from_utf8_lossy(&buf[..len]).into_owned();
            return Some((pid, text));
        }
    }
}
