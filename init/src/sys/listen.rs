//! The listening sockets of socket units, made by PID 1 (systemd's
//! `socket_address_listen`): the socket, its options, `bind`, the file's mode and owner,
//! `listen`, and the symbolic links to it. A stale socket file at the path (left by a
//! daemon that bound it itself, or by a previous run) is replaced; any other file there is
//! an error. FIFOs are made if missing (an existing FIFO is kept), special files opened as
//! they are, netlink sockets bound to their multicast group.
//! Descriptors are made close-on-exec and non-blocking; the spawn of the service that
//! gets them (`$LISTEN_FDS`) places them at 3.. without close-on-exec.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

pub use crate::unit::socket::{Address, ListenKind};
use nix::sys::socket::{
    self, sockopt, AddressFamily, Backlog, SockFlag, SockType, SockaddrIn, SockaddrIn6, UnixAddr,
};

/// One socket to make, with the settings of its unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenSpec {
    pub kind: ListenKind,
    pub address: Address,
    pub socket_mode: u32,
    pub directory_mode: u32,
    pub pass_credentials: bool,
    pub pass_security: bool,
    pub receive_buffer: Option<u64>,
    pub send_buffer: Option<u64>,
    pub backlog: u32,
    /// A special file opened for writing too.
    pub writable: bool,
    /// `(uid, gid)` of socket files and FIFOs; `None`: root's.
    pub owner: Option<(u32, u32)>,
    /// Links made to a file-system socket.
    pub symlinks: Vec<PathBuf>,
}

/// Makes the socket of `spec`, bound (and listening, for stream and packet sockets).
pub fn listen(spec: &ListenSpec) -> io::Result<OwnedFd> {
    let kind = match (spec.kind, &spec.address) {
        (ListenKind::Stream, _) => SockType::Stream,
        (ListenKind::Datagram, _) => SockType::Datagram,
        (ListenKind::SequentialPacket, _) => SockType::SeqPacket,
        (ListenKind::Fifo, Address::Path(path)) => return fifo(path, spec),
        (ListenKind::Special, Address::Path(path)) => return special(path, spec.writable),
        (ListenKind::Netlink, Address::Netlink { protocol, group }) => {
            return netlink(*protocol, *group, spec)
        }
        (kind, address) => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} cannot listen at {address}", kind.name()),
            ))
        }
    };
    let flags = SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK;
    let fd = match &spec.address {
        Address::Path(path) => {
            prepare_path(path, spec.directory_mode)?;
            let fd = socket::socket(AddressFamily::Unix, kind, flags, None)?;
            set_options(&fd, spec)?;
            socket::bind(fd.as_raw_fd(), &UnixAddr::new(path.as_path())?)?;
            set_mode_and_owner(path, spec)?;
            for link in &spec.symlinks {
                make_link(path, link)?;
            }
            fd
        }
        Address::Abstract(name) => {
            let fd = socket::socket(AddressFamily::Unix, kind, flags, None)?;
            set_options(&fd, spec)?;
            socket::bind(fd.as_raw_fd(), &UnixAddr::new_abstract(name.as_bytes())?)?;
            fd
        }
        Address::Inet(addr) => {
            let family = match addr {
                std::net::SocketAddr::V4(_) => AddressFamily::Inet,
                std::net::SocketAddr::V6(_) => AddressFamily::Inet6,
            };
            let fd = socket::socket(family, kind, flags, None)?;
            socket::setsockopt(&fd, sockopt::ReuseAddr, &true)?;
            set_buffers(&fd, spec)?;
            match addr {
                std::net::SocketAddr::V4(a) => {
                    socket::bind(fd.as_raw_fd(), &SockaddrIn::from(*a))?;
                }
                std::net::SocketAddr::V6(a) => {
                    // `[::]:port` serves both families, as systemd's BindIPv6Only=default.
                    socket::setsockopt(&fd, sockopt::Ipv6V6Only, &false)?;
                    socket::bind(fd.as_raw_fd(), &SockaddrIn6::from(*a))?;
                }
            }
            fd
        }
        Address::Netlink { .. } => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a netlink address for a stream or datagram socket",
            ))
        }
    };
    if spec.kind != ListenKind::Datagram {
        let backlog =
            Backlog::new(spec.backlog.min(i32::MAX as u32) as i32).unwrap_or(Backlog::MAXCONN);
        socket::listen(&fd, backlog)?;
    }
    Ok(fd)
}

/// `SocketMode=`, and `SocketUser=`/`SocketGroup=` when set.
fn set_mode_and_owner(path: &Path, spec: &ListenSpec) -> io::Result<()> {
    std::fs::set_permissions(
        path,
        std::os::unix::fs::PermissionsExt::from_mode(spec.socket_mode),
    )?;
    if let Some((uid, gid)) = spec.owner {
        std::os::unix::fs::chown(path, Some(uid), Some(gid))?;
    }
    Ok(())
}

/// `ListenFIFO=`: made with the unit's mode if missing (an existing FIFO is kept, with its
/// queued data), opened for reading and writing so that it never reports end of file.
fn fifo(path: &Path, spec: &ListenSpec) -> io::Result<OwnedFd> {
    make_parents(path, spec.directory_mode)?;
    match nix::unistd::mkfifo(
        path,
        nix::sys::stat::Mode::from_bits_truncate(spec.socket_mode),
    ) {
        Ok(()) => {}
        Err(nix::errno::Errno::EEXIST) => {
            if !std::fs::symlink_metadata(path)?.file_type().is_fifo() {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    "the path exists and is not a FIFO",
                ));
            }
        }
        Err(e) => return Err(e.into()),
    }
    set_mode_and_owner(path, spec)?;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(nix::libc::O_NONBLOCK | nix::libc::O_NOCTTY)
        .open(path)?;
    Ok(file.into())
}

/// `ListenSpecial=`: the file as it is (it must exist), read-only unless `Writable=yes`.
fn special(path: &Path, writable: bool) -> io::Result<OwnedFd> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(writable)
        .custom_flags(nix::libc::O_NONBLOCK | nix::libc::O_NOCTTY)
        .open(path)?;
    Ok(file.into())
}

/// `ListenNetlink=`: a raw netlink socket of the family, bound to the multicast group.
fn netlink(protocol: i32, group: u32, spec: &ListenSpec) -> io::Result<OwnedFd> {
    use nix::sys::socket::{NetlinkAddr, SockProtocol};
    let family = [
        SockProtocol::NetlinkRoute,
        SockProtocol::NetlinkUserSock,
        SockProtocol::NetlinkSockDiag,
        SockProtocol::NetlinkNFLOG,
        SockProtocol::NetlinkSELinux,
        SockProtocol::NetlinkISCSI,
        SockProtocol::NetlinkAudit,
        SockProtocol::NetlinkFIBLookup,
        SockProtocol::NetlinkNetFilter,
        SockProtocol::NetlinkSCSITransport,
        SockProtocol::NetlinkRDMA,
        SockProtocol::NetlinkIPv6Firewall,
        SockProtocol::NetlinkDECNetRoutingMessage,
        SockProtocol::NetlinkKObjectUEvent,
        SockProtocol::NetlinkGeneric,
        SockProtocol::NetlinkCrypto,
    ]
    .into_iter()
    .find(|p| *p as i32 == protocol)
    .ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::Unsupported,
            format!("netlink family {protocol} is not supported by Berth"),
        )
    })?;
    let fd = socket::socket(
        AddressFamily::Netlink,
        SockType::Raw,
        SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
        family,
    )?;
    set_options(&fd, spec)?;
    socket::bind(fd.as_raw_fd(), &NetlinkAddr::new(0, group))?;
    Ok(fd)
}

/// `path`'s missing parent folders, made with `DirectoryMode=`.
fn make_parents(path: &Path, mode: u32) -> io::Result<()> {
    match path.parent() {
        Some(parent) => std::fs::DirBuilder::new()
            .recursive(true)
            .mode(mode)
            .create(parent),
        None => Ok(()),
    }
}

/// The parent folders (made with `mode`), and no stale socket in the way.
fn prepare_path(path: &Path, mode: u32) -> io::Result<()> {
    make_parents(path, mode)?;
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => std::fs::remove_file(path),
        Ok(_) => Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            "the path exists and is not a socket",
        )),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// `Symlinks=`: a link already there is replaced; a failure is the unit's.
fn make_link(target: &Path, link: &Path) -> io::Result<()> {
    let at = |e: io::Error| io::Error::new(e.kind(), format!("link {}: {e}", link.display()));
    match std::fs::symlink_metadata(link) {
        Ok(meta) if meta.file_type().is_symlink() || meta.file_type().is_socket() => {
            std::fs::remove_file(link).map_err(at)?
        }
        Ok(_) => {
            return Err(at(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "exists and is not a link",
            )))
        }
        Err(_) => {}
    }
    if let Some(parent) = link.parent() {
        std::fs::create_dir_all(parent).map_err(at)?;
    }
    std::os::unix::fs::symlink(target, link).map_err(at)
}

/// The options of a unix socket: credentials and security context passed as control
/// messages (which only unix sockets carry), and the buffers.
fn set_options(fd: &OwnedFd, spec: &ListenSpec) -> io::Result<()> {
    if spec.pass_credentials {
        socket::setsockopt(fd, sockopt::PassCred, &true)?;
    }
    if spec.pass_security {
        pass_security(fd)?;
    }
    set_buffers(fd, spec)
}

fn set_buffers(fd: &OwnedFd, spec: &ListenSpec) -> io::Result<()> {
    // The forcing variants pass the rmem_max/wmem_max caps, as systemd tries first.
    if let Some(n) = spec.receive_buffer {
        let n = n.min(i32::MAX as u64) as usize;
        if socket::setsockopt(fd, sockopt::RcvBufForce, &n).is_err() {
            socket::setsockopt(fd, sockopt::RcvBuf, &n)?;
        }
    }
    if let Some(n) = spec.send_buffer {
        let n = n.min(i32::MAX as u64) as usize;
        if socket::setsockopt(fd, sockopt::SndBufForce, &n).is_err() {
            socket::setsockopt(fd, sockopt::SndBuf, &n)?;
        }
    }
    Ok(())
}

/// `SO_PASSSEC` (the sender's security context as a control message), which nix lacks.
fn pass_security(fd: &OwnedFd) -> io::Result<()> {
    let on: nix::libc::c_int = 1;
    // SAFETY: `fd` is an open socket; the option value is a c_int on the stack whose size
    // is passed with it.
    let rc = unsafe {
        nix::libc::setsockopt(
            fd.as_raw_fd(),
            nix::libc::SOL_SOCKET,
            nix::libc::SO_PASSSEC,
            (&on as *const nix::libc::c_int).cast(),
            std::mem::size_of::<nix::libc::c_int>() as nix::libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn spec(kind: ListenKind, address: Address) -> ListenSpec {
        ListenSpec {
            kind,
            address,
            socket_mode: 0o600,
            directory_mode: 0o755,
            pass_credentials: true,
            pass_security: false,
            receive_buffer: Some(1 << 16),
            send_buffer: None,
            backlog: 8,
            writable: false,
            owner: None,
            symlinks: Vec::new(),
        }
    }

    #[test]
    fn a_stream_socket_listens_with_its_mode_and_links_and_replaces_a_stale_one() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("a/b/stdout");
        let link = dir.path().join("log");
        let mut s = spec(ListenKind::Stream, Address::Path(path.clone()));
        s.symlinks = vec![link.clone()];
        let fd = listen(&s).expect("listens");
        let mode = std::fs::metadata(&path)
            .expect("socket")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(std::fs::read_link(&link).expect("link"), path);
        // A client connects before anyone accepts: the backlog holds it.
        std::os::unix::net::UnixStream::connect(&link).expect("connects through the link");
        drop(fd);
        // The socket file of the closed socket is stale: the next start replaces it.
        let _again = listen(&s).expect("replaces the stale socket");
        std::fs::write(dir.path().join("file"), "x").expect("write");
        let err = listen(&spec(
            ListenKind::Datagram,
            Address::Path(dir.path().join("file")),
        ))
        .expect_err("a regular file is not replaced");
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
    }

    #[test]
    fn fifos_are_made_or_kept_and_special_files_and_netlink_open() {
        use std::io::{Read, Write};
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("run/initctl");
        let fd = listen(&spec(ListenKind::Fifo, Address::Path(path.clone()))).expect("fifo");
        let meta = std::fs::metadata(&path).expect("made");
        assert!(meta.file_type().is_fifo());
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .expect("a writer")
            .write_all(b"x")
            .expect("written");
        drop(fd);
        // The existing FIFO is used again, not replaced.
        let ino = meta.ino();
        let mut again = std::fs::File::from(
            listen(&spec(ListenKind::Fifo, Address::Path(path.clone()))).expect("again"),
        );
        assert_eq!(std::fs::metadata(&path).expect("fifo").ino(), ino);
        let mut buf = [0u8; 4];
        assert!(again.read(&mut buf).is_err(), "empty and non-blocking");
        let file = dir.path().join("plain");
        std::fs::write(&file, "x").expect("write");
        assert!(listen(&spec(ListenKind::Fifo, Address::Path(file))).is_err());
        let null = listen(&spec(
            ListenKind::Special,
            Address::Path("/dev/null".into()),
        ));
        null.expect("/dev/null opens");
        let missing = listen(&spec(
            ListenKind::Special,
            Address::Path(dir.path().join("no")),
        ));
        assert_eq!(
            missing.expect_err("missing").kind(),
            io::ErrorKind::NotFound
        );
        let route = Address::Netlink {
            protocol: 0,
            group: 0,
        };
        listen(&spec(ListenKind::Netlink, route)).expect("a route netlink socket");
        let xfrm = Address::Netlink {
            protocol: 6,
            group: 0,
        };
        let err = listen(&spec(ListenKind::Netlink, xfrm)).expect_err("not in nix");
        assert_eq!(err.kind(), io::ErrorKind::Unsupported);
    }

    #[test]
    fn a_datagram_socket_receives_and_an_inet_one_binds() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("dgram");
        let fd = listen(&spec(ListenKind::Datagram, Address::Path(path.clone()))).expect("binds");
        let client = std::os::unix::net::UnixDatagram::unbound().expect("client");
        client.send_to(b"hi", &path).expect("send");
        let server = std::os::unix::net::UnixDatagram::from(fd);
        let mut buf = [0u8; 8];
        assert_eq!(server.recv(&mut buf).expect("recv"), 2);
        let tcp = listen(&spec(
            ListenKind::Stream,
            Address::Inet("127.0.0.1:0".parse().expect("addr")),
        ))
        .expect("tcp");
        let addr: SockaddrIn = socket::getsockname(tcp.as_raw_fd()).expect("name");
        std::net::TcpStream::connect(("127.0.0.1", addr.port())).expect("connects");
    }
}
