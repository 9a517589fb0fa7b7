//! The sockets of one link's DHCP client.
//!
//! Sending: a UDP socket on port 68 bound to the link (`SO_BINDTODEVICE`) with
//! `SO_BROADCAST`; the kernel sends a limited broadcast out of the bound link even before
//! the link has an address (source 0.0.0.0, as RFC 2131 wants). Receiving before the
//! lease: an `AF_PACKET` socket for IPv4 on the link, because the IP layer may drop the
//! server's replies to an address the link does not have yet (reverse-path filtering);
//! after the lease, the UDP socket alone. The packet socket's `bind` is the one `unsafe`.

use std::io;
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use nix::sys::socket::{
    self, sockopt, AddressFamily, SockFlag, SockProtocol, SockType, SockaddrIn,
};

use super::SysError;

pub const CLIENT_PORT: u16 = 68;
pub const SERVER_PORT: u16 = 67;

/// The UDP socket of one link.
pub struct UdpLink {
    socket: UdpSocket,
}

impl UdpLink {
    /// Port 68 on link `name`.
    pub fn open(name: &str) -> Result<UdpLink, SysError> {
        let err = |what| {
            move |e: nix::Error| SysError::Socket {
                what,
                link: name.to_string(),
                source: e.into(),
            }
        };
        let fd = socket::socket(
            AddressFamily::Inet,
            SockType::Datagram,
            SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
            None,
        )
        .map_err(err("udp socket"))?;
        socket::setsockopt(&fd, sockopt::ReuseAddr, &true).map_err(err("SO_REUSEADDR"))?;
        socket::setsockopt(&fd, sockopt::Broadcast, &true).map_err(err("SO_BROADCAST"))?;
        socket::setsockopt(&fd, sockopt::BindToDevice, &name.into())
            .map_err(err("SO_BINDTODEVICE"))?;
        socket::bind(fd.as_raw_fd(), &SockaddrIn::new(0, 0, 0, 0, CLIENT_PORT))
            .map_err(err("bind to port 68"))?;
        Ok(UdpLink {
            socket: UdpSocket::from(fd),
        })
    }

    /// Sends `payload` to `to` port 67.
    pub fn send(&self, payload: &[u8], to: Ipv4Addr) -> io::Result<()> {
        self.socket
            .send_to(payload, SocketAddrV4::new(to, SERVER_PORT))
            .map(|_| ())
    }

    /// One datagram, or `None` when none is waiting.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        match self.socket.recv_from(buf) {
            Ok((n, _)) => Ok(Some(n)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.socket.as_fd()
    }
}

/// An `AF_PACKET` socket receiving the IPv4 packets of one link (the IP header on).
pub struct PacketLink {
    fd: OwnedFd,
}

impl PacketLink {
    pub fn open(name: &str, index: u32) -> Result<PacketLink, SysError> {
        let err = |what| {
            move |source: io::Error| SysError::Socket {
                what,
                link: name.to_string(),
                source,
            }
        };
        let fd = socket::socket(
            AddressFamily::Packet,
            SockType::Datagram,
            SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
            SockProtocol::EthIp,
        )
        .map_err(|e| err("packet socket")(e.into()))?;
        let ifindex = i32::try_from(index)
            .map_err(|_| err("bind packet socket")(io::ErrorKind::InvalidInput.into()))?;
        let addr = libc::sockaddr_ll {
            sll_family: libc::AF_PACKET as u16,
            sll_protocol: (libc::ETH_P_IP as u16).to_be(),
            sll_ifindex: ifindex,
            sll_hatype: 0,
            sll_pkttype: 0,
            sll_halen: 0,
            sll_addr: [0; 8],
        };
        // SAFETY: `fd` is an open socket we own; `addr` is a fully initialised
        // `sockaddr_ll` living across the call, and the length passed is its size.
        let rc = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&raw const addr).cast::<libc::sockaddr>(),
                std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(err("bind packet socket")(io::Error::last_os_error()));
        }
        Ok(PacketLink { fd })
    }

    /// One IPv4 packet, or `None` when none is waiting.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        match socket::recv(self.fd.as_raw_fd(), buf, socket::MsgFlags::empty()) {
            Ok(n) => Ok(Some(n)),
            Err(nix::Error::EAGAIN) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}
