//! The sockets of one link's DHCP client.
//!
//! Sending: a UDP socket on port 68 bound to the link (`SO_BINDTODEVICE`) with
//! `SO_BROADCAST`; the kernel sends a limited broadcast out of the bound link even before
//! the link has an address (source 0.0.0.0, as RFC 2131 wants). Receiving before the
//! lease: an `AF_PACKET` socket for IPv4 on the link, because the IP layer may drop the
//! server's replies to an address the link does not have yet (reverse-path filtering);
//! after the lease, the UDP socket alone. The packet socket's `bind` is one `unsafe`.
//!
//! Router advertisements: a raw ICMPv6 socket bound to the link, filtered in the kernel to
//! type 134 (`ICMP6_FILTER`, the other `unsafe`), with each packet's hop limit and source,
//! so that only RAs from an on-link router (link-local source, hop limit 255, RFC 4861
//! §6.1.2) are taken. The kernel gets its own copy of every RA for SLAAC.

use std::io;
use std::io::IoSliceMut;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4, UdpSocket};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use nix::sys::socket::{
    self, sockopt, AddressFamily, ControlMessageOwned, SockFlag, SockProtocol, SockType,
    SockaddrIn, SockaddrIn6,
};

use super::SysError;

/// Maps a socket call's error to [`SysError::Socket`] naming the call and the link.
fn socket_error<'a>(link: &'a str, what: &'static str) -> impl FnOnce(nix::Error) -> SysError + 'a {
    move |e| SysError::Socket {
        what,
        link: link.to_string(),
        source: e.into(),
    }
}

/// A non-blocking UDP socket of `family` bound to link `name` (`SO_BINDTODEVICE`), with
/// `SO_REUSEADDR` so that a restarted client gets its port at once.
fn link_udp(name: &str, family: AddressFamily) -> Result<OwnedFd, SysError> {
    let err = |what| socket_error(name, what);
    let fd = socket::socket(
        family,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
        None,
    )
    .map_err(err("udp socket"))?;
    socket::setsockopt(&fd, sockopt::ReuseAddr, &true).map_err(err("SO_REUSEADDR"))?;
    socket::setsockopt(&fd, sockopt::BindToDevice, &name.into()).map_err(err("SO_BINDTODEVICE"))?;
    Ok(fd)
}

/// One datagram from a non-blocking socket, or `None` when none is waiting.
fn recv_waiting(socket: &UdpSocket, buf: &mut [u8]) -> io::Result<Option<usize>> {
    match socket.recv_from(buf) {
        Ok((n, _)) => Ok(Some(n)),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
        Err(e) => Err(e),
    }
}

pub const CLIENT_PORT: u16 = 68;
pub const SERVER_PORT: u16 = 67;

/// The UDP socket of one link.
pub struct UdpLink {
    socket: UdpSocket,
}

impl UdpLink {
    /// Port 68 on link `name`.
    pub fn open(name: &str) -> Result<UdpLink, SysError> {
        let err = |what| socket_error(name, what);
        let fd = link_udp(name, AddressFamily::Inet)?;
        socket::setsockopt(&fd, sockopt::Broadcast, &true).map_err(err("SO_BROADCAST"))?;
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
        recv_waiting(&self.socket, buf)
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

pub const CLIENT6_PORT: u16 = 546;
pub const SERVER6_PORT: u16 = 547;
/// All_DHCP_Relay_Agents_and_Servers (RFC 8415 §7.1).
pub const ALL_DHCP6: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 1, 2);

/// The DHCPv6 client's UDP socket of one link: port 546, bound to the link, sending to
/// ff02::1:2 from the link-local address (which must have passed DAD: until then sending
/// fails and the client's retransmission tries again).
pub struct Udp6Link {
    socket: UdpSocket,
    index: u32,
}

impl Udp6Link {
    pub fn open(name: &str, index: u32) -> Result<Udp6Link, SysError> {
        let err = |what| socket_error(name, what);
        let fd = link_udp(name, AddressFamily::Inet6)?;
        let any = std::net::SocketAddrV6::new(Ipv6Addr::UNSPECIFIED, CLIENT6_PORT, 0, 0);
        socket::bind(fd.as_raw_fd(), &SockaddrIn6::from(any)).map_err(err("bind to port 546"))?;
        Ok(Udp6Link {
            socket: UdpSocket::from(fd),
            index,
        })
    }

    /// Sends `payload` to ff02::1:2 port 547 out of the link.
    pub fn send(&self, payload: &[u8]) -> io::Result<()> {
        let to = std::net::SocketAddrV6::new(ALL_DHCP6, SERVER6_PORT, 0, self.index);
        self.socket.send_to(payload, to).map(|_| ())
    }

    /// One datagram, or `None` when none is waiting.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        recv_waiting(&self.socket, buf)
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.socket.as_fd()
    }
}

/// `ICMP6_FILTER` (include/uapi/linux/icmpv6.h), not in the libc crate.
const ICMP6_FILTER: libc::c_int = 1;

/// A received ICMPv6 message with where it came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Icmpv6From {
    pub len: usize,
    pub source: Option<Ipv6Addr>,
    pub hop_limit: Option<i32>,
}

/// The raw ICMPv6 socket of one link, receiving router advertisements only.
pub struct RaLink {
    fd: OwnedFd,
}

impl RaLink {
    pub fn open(name: &str) -> Result<RaLink, SysError> {
        let err = |what| {
            move |source: io::Error| SysError::Socket {
                what,
                link: name.to_string(),
                source,
            }
        };
        let fd = socket::socket(
            AddressFamily::Inet6,
            SockType::Raw,
            SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
            SockProtocol::IcmpV6,
        )
        .map_err(|e| err("ICMPv6 socket")(e.into()))?;
        // Every type blocked but 134 (ICMP6_FILTER_SETBLOCKALL, then SETPASS).
        let mut filter = [u32::MAX; 8];
        let ra = usize::from(crate::ra::advert::ROUTER_ADVERTISEMENT);
        filter[ra >> 5] &= !(1u32 << (ra & 31));
        // SAFETY: `fd` is an open socket we own; `filter` is the kernel's `struct
        // icmp6_filter` (eight u32s), alive across the call, and its size is passed.
        let rc = unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::IPPROTO_ICMPV6,
                ICMP6_FILTER,
                filter.as_ptr().cast::<libc::c_void>(),
                std::mem::size_of_val(&filter) as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(err("ICMP6_FILTER")(io::Error::last_os_error()));
        }
        socket::setsockopt(&fd, sockopt::BindToDevice, &name.into())
            .map_err(|e| err("SO_BINDTODEVICE")(e.into()))?;
        socket::setsockopt(&fd, sockopt::Ipv6RecvHopLimit, &true)
            .map_err(|e| err("IPV6_RECVHOPLIMIT")(e.into()))?;
        Ok(RaLink { fd })
    }

    /// One ICMPv6 message into `buf`, or `None` when none is waiting.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<Option<Icmpv6From>> {
        let mut cmsg = nix::cmsg_space!(libc::c_int);
        let mut iov = [IoSliceMut::new(buf)];
        let msg = match socket::recvmsg::<SockaddrIn6>(
            self.fd.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg),
            socket::MsgFlags::empty(),
        ) {
            Ok(msg) => msg,
            Err(nix::Error::EAGAIN) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let hop_limit = msg.cmsgs().ok().and_then(|mut c| {
            c.find_map(|m| match m {
                ControlMessageOwned::Ipv6HopLimit(h) => Some(h),
                _ => None,
            })
        });
        Ok(Some(Icmpv6From {
            len: msg.bytes,
            source: msg.address.map(|a| a.ip()),
            hop_limit,
        }))
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}
