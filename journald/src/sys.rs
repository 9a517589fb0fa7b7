//! The socket syscalls the collector needs, as safe functions: binding its sockets
//! (replacing stale socket files), taking the sockets PID 1 passed (sd_listen_fds(3)) and
//! what they are (type, bound path), setting the same options on both, a peer's
//! credentials, receiving a datagram with its sender's credentials, passed descriptors and
//! receive time, and reading a sealed memfd or deleted file passed by sd_journal_send(3).
//! The crate's `unsafe` (taking ownership of descriptors the kernel or PID 1 passed us) is
//! here, and only here.

use nix::cmsg_space;
use nix::fcntl::{fcntl, FcntlArg, FdFlag};
use nix::sys::socket::{
    getsockname, getsockopt, recv, recvmsg, setsockopt, sockopt, AddressFamily,
    ControlMessageOwned, MsgFlags, SockType, SockaddrLike, SockaddrStorage, UnixAddr,
    UnixCredentials,
};
use nix::sys::time::TimeVal;
use std::io::{self, IoSliceMut};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixDatagram, UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

/// A socket that could not be set up, with its path.
#[derive(Debug, thiserror::Error)]
pub enum SocketError {
    #[error("binding {path}")]
    Bind {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("setting {option} on {path}")]
    Option {
        path: String,
        option: &'static str,
        #[source]
        source: nix::Error,
    },
    #[error("making the socket passed at {path} non-blocking")]
    NonBlocking {
        path: String,
        #[source]
        source: io::Error,
    },
}

/// Removes a stale socket file at `path` and creates the parent folder.
fn prepare(path: &Path) -> Result<(), SocketError> {
    let bind_error = |source| SocketError::Bind {
        path: path.display().to_string(),
        source,
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(bind_error)?;
    }
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => std::fs::remove_file(path).map_err(bind_error),
        Ok(_) => Err(bind_error(io::Error::new(
            io::ErrorKind::AlreadyExists,
            "exists and is not a socket",
        ))),
        Err(_) => Ok(()),
    }
}

/// Everyone may log: journald's sockets are mode 0666.
fn open_to_all(path: &Path) -> Result<(), SocketError> {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666)).map_err(|source| {
        SocketError::Bind {
            path: path.display().to_string(),
            source,
        }
    })
}

/// Binds a listening stream socket at `path`, non-blocking.
pub fn bind_stream(path: &Path) -> Result<UnixListener, SocketError> {
    prepare(path)?;
    let bind_error = |source| SocketError::Bind {
        path: path.display().to_string(),
        source,
    };
    let listener = UnixListener::bind(path).map_err(bind_error)?;
    listener.set_nonblocking(true).map_err(bind_error)?;
    configure_stream(&listener, path)?;
    open_to_all(path)?;
    Ok(listener)
}

/// A listening stream socket PID 1 bound at `path` and passed: made non-blocking, with the
/// options [`bind_stream`] sets. The socket file is left as PID 1 made it.
pub fn adopt_stream(fd: OwnedFd, path: &Path) -> Result<UnixListener, SocketError> {
    let listener = UnixListener::from(fd);
    listener
        .set_nonblocking(true)
        .map_err(|source| SocketError::NonBlocking {
            path: path.display().to_string(),
            source,
        })?;
    configure_stream(&listener, path)?;
    Ok(listener)
}

/// The options of the stdout listener, bound or passed (beside non-blocking).
fn configure_stream(listener: &UnixListener, path: &Path) -> Result<(), SocketError> {
    // Inherited by accepted connections, so that every write carries its writer's
    // credentials from the first byte (see `receive_stream`).
    setsockopt(listener, sockopt::PassCred, &true).map_err(|source| SocketError::Option {
        path: path.display().to_string(),
        option: "SO_PASSCRED",
        source,
    })
}

/// Binds a datagram socket at `path`, non-blocking, receiving senders' credentials
/// (SO_PASSCRED), receive times (SO_TIMESTAMP) and a large buffer.
pub fn bind_datagram(path: &Path) -> Result<UnixDatagram, SocketError> {
    prepare(path)?;
    let bind_error = |source| SocketError::Bind {
        path: path.display().to_string(),
        source,
    };
    let socket = UnixDatagram::bind(path).map_err(bind_error)?;
    socket.set_nonblocking(true).map_err(bind_error)?;
    configure_datagram(&socket, path)?;
    open_to_all(path)?;
    Ok(socket)
}

/// A datagram socket PID 1 bound at `path` and passed: made non-blocking, with the
/// options [`bind_datagram`] sets. The socket file is left as PID 1 made it.
pub fn adopt_datagram(fd: OwnedFd, path: &Path) -> Result<UnixDatagram, SocketError> {
    let socket = UnixDatagram::from(fd);
    socket
        .set_nonblocking(true)
        .map_err(|source| SocketError::NonBlocking {
            path: path.display().to_string(),
            source,
        })?;
    configure_datagram(&socket, path)?;
    Ok(socket)
}

/// The options of the native and syslog sockets, bound or passed (beside non-blocking).
fn configure_datagram(socket: &UnixDatagram, path: &Path) -> Result<(), SocketError> {
    let option_error = |option| {
        move |source| SocketError::Option {
            path: path.display().to_string(),
            option,
            source,
        }
    };
    setsockopt(socket, sockopt::PassCred, &true).map_err(option_error("SO_PASSCRED"))?;
    setsockopt(socket, sockopt::ReceiveTimestamp, &true).map_err(option_error("SO_TIMESTAMP"))?;
    // As journald: 8 MiB of kernel buffer absorbs bursts; needs CAP_NET_ADMIN to exceed
    // rmem_max, so fall back to the plain option.
    const RCVBUF: usize = 8 << 20;
    if setsockopt(socket, sockopt::RcvBufForce, &RCVBUF).is_err() {
        let _ = setsockopt(socket, sockopt::RcvBuf, &RCVBUF);
    }
    Ok(())
}

/// The first descriptor socket activation passes (SD_LISTEN_FDS_START).
pub const LISTEN_FDS_START: RawFd = 3;

/// Set once the passed descriptors are taken: each is owned once.
static LISTEN_FDS_TAKEN: AtomicBool = AtomicBool::new(false);

/// Descriptors passed by socket activation that could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum ListenFdsError {
    #[error("descriptor {fd}, passed by LISTEN_FDS, is not open")]
    NotOpen {
        fd: RawFd,
        #[source]
        source: io::Error,
    },
    #[error("setting close-on-exec on passed descriptor {fd}")]
    CloseOnExec {
        fd: RawFd,
        #[source]
        source: nix::Error,
    },
    #[error("the passed descriptors were taken already")]
    Taken,
}

/// Takes the `count` descriptors from [`LISTEN_FDS_START`] on that PID 1 passed to this
/// process (sd_listen_fds(3)), and sets close-on-exec on them again. Once per process: a
/// second call fails, nothing is owned twice.
pub fn take_listen_fds(count: usize) -> Result<Vec<OwnedFd>, ListenFdsError> {
    if count == 0 {
        return Ok(Vec::new());
    }
    if LISTEN_FDS_TAKEN.swap(true, Ordering::SeqCst) {
        return Err(ListenFdsError::Taken);
    }
    let end = LISTEN_FDS_START.saturating_add(RawFd::try_from(count).unwrap_or(RawFd::MAX));
    let mut fds = Vec::with_capacity(count);
    for fd in LISTEN_FDS_START..end {
        // SAFETY: F_GETFD only reads the descriptor's flags; on a number that is not an
        // open descriptor it fails with EBADF and changes nothing.
        if unsafe { nix::libc::fcntl(fd, nix::libc::F_GETFD) } < 0 {
            return Err(ListenFdsError::NotOpen {
                fd,
                source: io::Error::last_os_error(),
            });
        }
        // SAFETY: `fd` is open (checked just above) and, by the sd_listen_fds protocol
        // (LISTEN_PID is this process), was passed for this process to own; nothing else
        // in it refers to the number, and `LISTEN_FDS_TAKEN` makes this the only taking, so
        // OwnedFd closes it exactly once.
        let owned = unsafe { OwnedFd::from_raw_fd(fd) };
        fcntl(&owned, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC))
            .map_err(|source| ListenFdsError::CloseOnExec { fd, source })?;
        fds.push(owned);
    }
    Ok(fds)
}

/// What a descriptor is, as sd_is_socket_unix(3) asks: family, type, listening, bound path.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SocketInfo {
    /// `None`: not a socket.
    pub family: Option<AddressFamily>,
    /// `None`: not a socket, or a type unknown here.
    pub kind: Option<SockType>,
    /// A stream socket that listen(2) was called on.
    pub listening: bool,
    /// The path a unix socket is bound to (`None`: unbound, abstract, or not unix).
    pub path: Option<PathBuf>,
}

impl std::fmt::Display for SocketInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Some(family) = self.family else {
            return f.write_str("not a socket");
        };
        let kind = match self.kind {
            Some(SockType::Stream) if self.listening => "listening stream",
            Some(SockType::Stream) => "stream",
            Some(SockType::Datagram) => "datagram",
            Some(SockType::SeqPacket) => "seqpacket",
            _ => "other",
        };
        let family = match family {
            AddressFamily::Unix => "unix".to_string(),
            other => format!("{other:?}"),
        };
        match &self.path {
            Some(path) => write!(f, "{family} {kind} socket at {}", path.display()),
            None => write!(f, "{family} {kind} socket with no path"),
        }
    }
}

/// Describes `fd` (SO_TYPE, SO_ACCEPTCONN, getsockname); what the kernel will not say
/// is left out.
pub fn socket_info(fd: BorrowedFd<'_>) -> SocketInfo {
    // ENOTSOCK for both when `fd` is not a socket; a type nix does not know is `None`.
    let address = getsockname::<SockaddrStorage>(fd.as_raw_fd()).ok();
    SocketInfo {
        family: address.as_ref().and_then(SockaddrLike::family),
        kind: getsockopt(&fd, sockopt::SockType).ok(),
        listening: getsockopt(&fd, sockopt::AcceptConn).unwrap_or(false),
        path: address
            .as_ref()
            .and_then(SockaddrStorage::as_unix_addr)
            .and_then(UnixAddr::path)
            .map(Path::to_path_buf),
    }
}

/// Credentials of a stream peer (SO_PEERCRED): (pid, uid, gid).
pub fn peer_credentials(stream: &UnixStream) -> io::Result<(u32, u32, u32)> {
    let cred = getsockopt(stream, sockopt::PeerCredentials).map_err(io::Error::from)?;
    Ok((cred.pid() as u32, cred.uid(), cred.gid()))
}

/// A process's (pid, uid, gid).
pub type Credentials = (u32, u32, u32);

/// Reads from a stream socket with SO_PASSCRED set: the bytes, and the (pid, uid, gid)
/// of the process that wrote them (the kernel never merges two writers' data into one
/// read), when the kernel attached them. `WouldBlock` when nothing is waiting.
pub fn receive_stream(
    stream: &UnixStream,
    buf: &mut [u8],
) -> io::Result<(usize, Option<Credentials>)> {
    let mut cmsg = cmsg_space!(UnixCredentials);
    let mut iov = [IoSliceMut::new(buf)];
    let msg = recvmsg::<UnixAddr>(
        stream.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .map_err(io::Error::from)?;
    let mut credentials = None;
    for c in msg.cmsgs().map_err(io::Error::from)? {
        if let ControlMessageOwned::ScmCredentials(cred) = c {
            if cred.pid() > 0 {
                credentials = Some((cred.pid() as u32, cred.uid(), cred.gid()));
            }
        }
    }
    Ok((msg.bytes, credentials))
}

/// Asks the kernel to attach the writer's credentials to stream data (SO_PASSCRED).
pub fn pass_credentials(stream: &UnixStream) -> io::Result<()> {
    setsockopt(stream, sockopt::PassCred, &true).map_err(io::Error::from)
}

/// One received datagram's ancillary data.
#[derive(Debug, Default)]
pub struct Received {
    /// Length of the datagram in the buffer.
    pub len: usize,
    /// The sender's (pid, uid, gid).
    pub credentials: Option<(u32, u32, u32)>,
    /// Descriptors passed with it (SCM_RIGHTS), now ours.
    pub fds: Vec<OwnedFd>,
    /// The kernel's receive time, µs since the epoch.
    pub realtime_usec: Option<u64>,
}

/// Receives one datagram into `buf` (grown to the datagram's size); `Ok(None)` when
/// there is none waiting.
pub fn receive(socket: &UnixDatagram, buf: &mut Vec<u8>) -> io::Result<Option<Received>> {
    let fd = socket.as_raw_fd();
    // Learn the size first (MSG_TRUNC returns the real length on AF_UNIX) so that no
    // datagram is cut and the buffer stays as small as the largest message.
    let size = match recv(
        fd,
        &mut [],
        MsgFlags::MSG_PEEK | MsgFlags::MSG_TRUNC | MsgFlags::MSG_DONTWAIT,
    ) {
        Ok(size) => size,
        Err(nix::Error::EAGAIN) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    if buf.len() < size.max(1) {
        buf.resize(size.max(1), 0);
    }
    let mut cmsg = cmsg_space!(UnixCredentials, TimeVal, [std::os::fd::RawFd; 16]);
    let mut iov = [IoSliceMut::new(&mut buf[..])];
    let msg = match recvmsg::<UnixAddr>(
        fd,
        &mut iov,
        Some(&mut cmsg),
        MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_CMSG_CLOEXEC,
    ) {
        Ok(msg) => msg,
        Err(nix::Error::EAGAIN) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let mut received = Received {
        len: msg.bytes,
        ..Received::default()
    };
    for c in msg.cmsgs().map_err(io::Error::from)? {
        match c {
            ControlMessageOwned::ScmCredentials(cred) => {
                received.credentials = Some((cred.pid() as u32, cred.uid(), cred.gid()));
            }
            ControlMessageOwned::ScmRights(fds) => {
                for raw in fds {
                    // SAFETY: the kernel installed `raw` in our descriptor table for this
                    // message (SCM_RIGHTS); nothing else refers to it, so we own it and
                    // OwnedFd closes it exactly once.
                    received.fds.push(unsafe { OwnedFd::from_raw_fd(raw) });
                }
            }
            ControlMessageOwned::ScmTimestamp(tv) => {
                received.realtime_usec = Some(tv.tv_sec() as u64 * 1_000_000 + tv.tv_usec() as u64);
            }
            _ => {}
        }
    }
    Ok(Some(received))
}

/// Reads a payload passed as a descriptor, as journald accepts it: a memfd sealed
/// against writes and resizes, or a regular file with no name left (deleted), at most
/// `max` bytes.
pub fn read_passed_payload(fd: OwnedFd, max: u64) -> io::Result<Vec<u8>> {
    use nix::fcntl::{fcntl, FcntlArg, SealFlag};
    use std::os::unix::fs::FileExt;
    let file = std::fs::File::from(fd);
    let meta = file.metadata()?;
    if !meta.file_type().is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "passed descriptor is not a regular file",
        ));
    }
    let needed = SealFlag::F_SEAL_SHRINK | SealFlag::F_SEAL_GROW | SealFlag::F_SEAL_WRITE;
    let sealed = fcntl(&file, FcntlArg::F_GET_SEALS)
        .map(|seals| SealFlag::from_bits_truncate(seals).contains(needed))
        .unwrap_or(false);
    if !sealed && meta.nlink() != 0 {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            "passed file is neither a sealed memfd nor deleted",
        ));
    }
    if meta.len() > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "passed payload too large",
        ));
    }
    let mut data = vec![0u8; meta.len() as usize];
    // Read from offset 0: the sender's writes left the shared offset at the end.
    file.read_exact_at(&mut data, 0)?;
    Ok(data)
}
