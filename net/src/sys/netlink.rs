//! [`Net`] over rtnetlink, synchronously: one request, one ACK.
//!
//! netlink-packet-route builds and parses the messages and netlink-sys owns the socket;
//! neither needs an async runtime, which keeps tokio out of a daemon that sends a handful
//! of requests per lease.

use std::net::{IpAddr, Ipv6Addr};

use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP,
    NLM_F_REPLACE, NLM_F_REQUEST,
};
use netlink_packet_route::address::{
    AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage, AddressScope,
};
use netlink_packet_route::link::{LinkAttribute, LinkFlags, LinkMessage};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};

use super::{LinkEvent, LinkWatch, Net, RouteSpec, SysError};
use crate::config::{prefix_mask, Ipv4Prefix};
use crate::online::Ipv6Status;

/// Where the IPv6 sysctls of each link are.
const IPV6_CONF: &str = "/proc/sys/net/ipv6/conf";
/// The main routing table (RT_TABLE_MAIN).
const MAIN_TABLE: u8 = 254;
/// ENOENT and ESRCH: what deleting something already gone returns.
const GONE: [i32; 3] = [libc::ENOENT, libc::ESRCH, libc::EADDRNOTAVAIL];

/// An rtnetlink socket.
pub struct Netlink {
    socket: Socket,
    seq: u32,
}

impl Netlink {
    pub fn open() -> Result<Netlink, SysError> {
        let err = |source| SysError::Netlink {
            op: "open".into(),
            source,
        };
        let mut socket = Socket::new(NETLINK_ROUTE).map_err(err)?;
        socket.bind_auto().map_err(err)?;
        socket.connect(&SocketAddr::new(0, 0)).map_err(err)?;
        Ok(Netlink { socket, seq: 0 })
    }

    /// Sends `payload` with `flags` and waits for its ACK; `tolerate` lists errnos that
    /// count as success.
    fn request(
        &mut self,
        op: &str,
        payload: RouteNetlinkMessage,
        flags: u16,
        tolerate: &[i32],
    ) -> Result<(), SysError> {
        self.exchange(op, payload, NLM_F_ACK | flags, tolerate)
            .map(|_| ())
    }

    /// Sends a dump request and returns every message of the answer.
    fn dump(
        &mut self,
        op: &str,
        payload: RouteNetlinkMessage,
    ) -> Result<Vec<RouteNetlinkMessage>, SysError> {
        self.exchange(op, payload, NLM_F_DUMP, &[])
    }

    /// Sends `payload` and collects the replies of the same sequence number until the
    /// ACK, an error or the end of a dump.
    fn exchange(
        &mut self,
        op: &str,
        payload: RouteNetlinkMessage,
        flags: u16,
        tolerate: &[i32],
    ) -> Result<Vec<RouteNetlinkMessage>, SysError> {
        self.seq = self.seq.wrapping_add(1);
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | flags;
        header.sequence_number = self.seq;
        let mut msg = NetlinkMessage::new(header, NetlinkPayload::from(payload));
        msg.finalize();
        let mut buf = vec![0u8; msg.buffer_len()];
        msg.serialize(&mut buf);
        let io = |source| SysError::Netlink {
            op: op.to_string(),
            source,
        };
        self.socket.send(&buf, 0).map_err(io)?;
        let mut answer = Vec::new();
        let mut reply = vec![0u8; 32 * 1024];
        loop {
            let n = self.socket.recv(&mut &mut reply[..], 0).map_err(io)?;
            let mut offset = 0;
            while offset < n {
                let bytes = &reply[offset..n];
                let parsed =
                    NetlinkMessage::<RouteNetlinkMessage>::deserialize(bytes).map_err(|e| {
                        SysError::Reply {
                            op: op.to_string(),
                            message: e.to_string(),
                        }
                    })?;
                let len = parsed.header.length as usize;
                if parsed.header.sequence_number == self.seq {
                    match parsed.payload {
                        NetlinkPayload::Error(e) => {
                            return match e.code {
                                None => Ok(answer),
                                Some(code) if tolerate.contains(&-code.get()) => Ok(answer),
                                Some(code) => {
                                    Err(io(std::io::Error::from_raw_os_error(-code.get())))
                                }
                            };
                        }
                        NetlinkPayload::Done(_) => return Ok(answer),
                        NetlinkPayload::InnerMessage(m) => answer.push(m),
                        _ => {}
                    }
                }
                if len == 0 {
                    break;
                }
                offset += len;
            }
        }
    }

    fn address_message(index: u32, address: Ipv4Prefix) -> AddressMessage {
        let mut msg = AddressMessage::default();
        msg.header.family = AddressFamily::Inet;
        msg.header.prefix_len = address.len;
        msg.header.index = index;
        let ip = IpAddr::V4(address.addr);
        msg.attributes.push(AddressAttribute::Local(ip));
        msg.attributes.push(AddressAttribute::Address(ip));
        if address.len < 31 {
            let broadcast = u32::from(address.addr) | !prefix_mask(address.len);
            msg.attributes
                .push(AddressAttribute::Broadcast(broadcast.into()));
        }
        msg
    }

    fn address6_message(index: u32, address: Ipv6Addr, len: u8) -> AddressMessage {
        let mut msg = AddressMessage::default();
        msg.header.family = AddressFamily::Inet6;
        msg.header.prefix_len = len;
        msg.header.index = index;
        msg.attributes
            .push(AddressAttribute::Address(IpAddr::V6(address)));
        msg
    }

    fn route_message(index: u32, route: &RouteSpec) -> RouteMessage {
        let mut msg = RouteMessage::default();
        let h = &mut msg.header;
        h.address_family = AddressFamily::Inet;
        h.destination_prefix_length = route.destination.len;
        h.table = MAIN_TABLE;
        h.protocol = if route.dhcp {
            RouteProtocol::Dhcp
        } else {
            RouteProtocol::Static
        };
        h.scope = if route.gateway.is_some() {
            RouteScope::Universe
        } else {
            RouteScope::Link
        };
        h.kind = RouteType::Unicast;
        if route.destination.len > 0 {
            msg.attributes
                .push(RouteAttribute::Destination(RouteAddress::Inet(
                    route.destination.addr,
                )));
        }
        if let Some(gw) = route.gateway {
            msg.attributes
                .push(RouteAttribute::Gateway(RouteAddress::Inet(gw)));
        }
        if let Some(src) = route.source {
            msg.attributes
                .push(RouteAttribute::PrefSource(RouteAddress::Inet(src)));
        }
        msg.attributes.push(RouteAttribute::Oif(index));
        msg.attributes.push(RouteAttribute::Priority(route.metric));
        msg
    }
}

impl Net for Netlink {
    fn link_up(&mut self, index: u32) -> Result<(), SysError> {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        msg.header.flags = LinkFlags::Up;
        msg.header.change_mask = LinkFlags::Up;
        self.request(
            &format!("link {index} up"),
            RouteNetlinkMessage::SetLink(msg),
            0,
            &[],
        )
    }

    fn set_mtu(&mut self, index: u32, mtu: u32) -> Result<(), SysError> {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        msg.attributes.push(LinkAttribute::Mtu(mtu));
        self.request(
            &format!("link {index} mtu {mtu}"),
            RouteNetlinkMessage::SetLink(msg),
            0,
            &[],
        )
    }

    fn add_address(&mut self, index: u32, address: Ipv4Prefix) -> Result<(), SysError> {
        let msg = Self::address_message(index, address);
        let op = format!("add address {address} on link {index}");
        self.request(
            &op,
            RouteNetlinkMessage::NewAddress(msg),
            NLM_F_CREATE | NLM_F_REPLACE,
            &[],
        )
    }

    fn del_address(&mut self, index: u32, address: Ipv4Prefix) -> Result<(), SysError> {
        let msg = Self::address_message(index, address);
        let op = format!("delete address {address} on link {index}");
        self.request(&op, RouteNetlinkMessage::DelAddress(msg), 0, &GONE)
    }

    /// Adds the route beside any other with the same destination and metric: a replace
    /// would take the route of another link (the kernel matches IPv4 routes by
    /// destination, TOS and metric, whatever the device), so a second NIC's DHCP default
    /// route would remove the first's. The same route again (a renewal) is not an error.
    fn add_route(&mut self, index: u32, route: &RouteSpec) -> Result<(), SysError> {
        let msg = Self::route_message(index, route);
        let op = format!("add route {} on link {index}", describe(route));
        self.request(
            &op,
            RouteNetlinkMessage::NewRoute(msg),
            NLM_F_CREATE,
            &[libc::EEXIST],
        )
    }

    fn del_route(&mut self, index: u32, route: &RouteSpec) -> Result<(), SysError> {
        let msg = Self::route_message(index, route);
        let op = format!("delete route {} on link {index}", describe(route));
        self.request(&op, RouteNetlinkMessage::DelRoute(msg), 0, &GONE)
    }

    fn add_address6(&mut self, index: u32, address: Ipv6Addr, len: u8) -> Result<(), SysError> {
        let msg = Self::address6_message(index, address, len);
        let op = format!("add address {address}/{len} on link {index}");
        self.request(
            &op,
            RouteNetlinkMessage::NewAddress(msg),
            NLM_F_CREATE | NLM_F_REPLACE,
            &[],
        )
    }

    fn del_address6(&mut self, index: u32, address: Ipv6Addr, len: u8) -> Result<(), SysError> {
        let msg = Self::address6_message(index, address, len);
        let op = format!("delete address {address}/{len} on link {index}");
        self.request(&op, RouteNetlinkMessage::DelAddress(msg), 0, &GONE)
    }

    fn set_ipv6_sysctl(&mut self, link: &str, key: &str, value: &str) -> Result<(), SysError> {
        let path = std::path::Path::new(IPV6_CONF).join(link).join(key);
        std::fs::write(&path, value).map_err(|source| SysError::Sysctl {
            path: path.display().to_string(),
            value: value.to_string(),
            source,
        })
    }

    fn ipv6_status(&mut self, index: u32) -> Result<Ipv6Status, SysError> {
        let mut addr = AddressMessage::default();
        addr.header.family = AddressFamily::Inet6;
        addr.header.index = index;
        let addresses = self.dump(
            &format!("list IPv6 addresses of link {index}"),
            RouteNetlinkMessage::GetAddress(addr),
        )?;
        let mut route = RouteMessage::default();
        route.header.address_family = AddressFamily::Inet6;
        let routes = self.dump("list IPv6 routes", RouteNetlinkMessage::GetRoute(route))?;
        Ok(Ipv6Status {
            global_address: addresses.iter().any(
                |m| matches!(m, RouteNetlinkMessage::NewAddress(a) if usable_global_v6(a, index)),
            ),
            default_route: routes
                .iter()
                .any(|m| matches!(m, RouteNetlinkMessage::NewRoute(r) if v6_default_via(r, index))),
        })
    }
}

/// A global IPv6 address of `index` the kernel may use (DAD done and passed).
fn usable_global_v6(msg: &AddressMessage, index: u32) -> bool {
    let h = &msg.header;
    let flags = msg
        .attributes
        .iter()
        .find_map(|a| match a {
            AddressAttribute::Flags(f) => Some(*f),
            _ => None,
        })
        .unwrap_or_else(|| AddressFlags::from_bits_retain(u32::from(h.flags.bits())));
    h.family == AddressFamily::Inet6
        && h.index == index
        && h.scope == AddressScope::Universe
        && !flags.intersects(AddressFlags::Tentative | AddressFlags::Dadfailed)
        && !h
            .flags
            .intersects(AddressHeaderFlags::Tentative | AddressHeaderFlags::Dadfailed)
}

/// An IPv6 default route out of `index` in the main table.
fn v6_default_via(msg: &RouteMessage, index: u32) -> bool {
    let h = &msg.header;
    let table = msg
        .attributes
        .iter()
        .find_map(|a| match a {
            RouteAttribute::Table(t) => Some(*t),
            _ => None,
        })
        .unwrap_or(u32::from(h.table));
    h.address_family == AddressFamily::Inet6
        && h.destination_prefix_length == 0
        && h.kind == RouteType::Unicast
        && table == u32::from(MAIN_TABLE)
        && msg
            .attributes
            .iter()
            .any(|a| matches!(a, RouteAttribute::Oif(i) if *i == index))
}

/// rtnetlink's multicast group of link notifications (RTMGRP_LINK, linux/rtnetlink.h).
const RTMGRP_LINK: u32 = 1;

/// A second rtnetlink socket, in the `RTMGRP_LINK` group: the kernel's notifications of
/// links created, changed and deleted, read without blocking when `poll` says so. Kept
/// apart from [`Netlink`]'s socket so that a notification never lands among the answers
/// to a request.
pub struct LinkEvents {
    socket: Socket,
    buf: Vec<u8>,
}

impl LinkEvents {
    pub fn open() -> Result<LinkEvents, SysError> {
        let err = |source| SysError::Netlink {
            op: "subscribe to link notifications".into(),
            source,
        };
        let mut socket = Socket::new(NETLINK_ROUTE).map_err(err)?;
        socket.bind(&SocketAddr::new(0, RTMGRP_LINK)).map_err(err)?;
        socket.set_non_blocking(true).map_err(err)?;
        // Room for a burst (a CNI plugin making many veths at once); an overflow is
        // still survived, by listing the links again.
        let _ = socket.set_rx_buf_sz(1 << 20);
        Ok(LinkEvents {
            socket,
            buf: vec![0u8; 64 * 1024],
        })
    }

    /// What `poll` waits on.
    pub fn fd(&self) -> std::os::fd::BorrowedFd<'_> {
        std::os::fd::AsFd::as_fd(&self.socket)
    }
}

impl LinkWatch for LinkEvents {
    fn events(&mut self) -> Result<Vec<LinkEvent>, SysError> {
        let mut out = Vec::new();
        // A bounded batch: the rest waits for the next turn of the loop.
        for _ in 0..64 {
            let n = match self.socket.recv(&mut &mut self.buf[..], 0) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                    out.push(LinkEvent::Lost);
                    continue;
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(source) => {
                    return Err(SysError::Netlink {
                        op: "read link notifications".into(),
                        source,
                    })
                }
            };
            out.extend(parse_link_events(&self.buf[..n]));
        }
        Ok(out)
    }
}

/// The link notifications in one datagram of the `RTMGRP_LINK` group; anything else (and
/// what does not parse) is left out.
fn parse_link_events(datagram: &[u8]) -> Vec<LinkEvent> {
    let mut out = Vec::new();
    let mut offset = 0;
    while offset + 4 <= datagram.len() {
        let bytes = &datagram[offset..];
        let len = u32::from_ne_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize;
        if len < 16 || len > bytes.len() {
            break;
        }
        if let Ok(msg) = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&bytes[..len]) {
            let event =
                match msg.payload {
                    NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(m)) => link_name(&m)
                        .map(|name| LinkEvent::New {
                            index: m.header.index,
                            name,
                        }),
                    NetlinkPayload::InnerMessage(RouteNetlinkMessage::DelLink(m)) => link_name(&m)
                        .map(|name| LinkEvent::Removed {
                            index: m.header.index,
                            name,
                        }),
                    _ => None,
                };
            out.extend(event);
        }
        // Netlink messages are 4-byte aligned.
        offset += (len + 3) & !3;
    }
    out
}

fn link_name(msg: &LinkMessage) -> Option<String> {
    msg.attributes.iter().find_map(|a| match a {
        LinkAttribute::IfName(name) => Some(name.clone()),
        _ => None,
    })
}

/// `0.0.0.0/0 via 10.0.0.1` or `10.0.0.1/32 on-link`.
pub fn describe(route: &RouteSpec) -> String {
    match route.gateway {
        Some(gw) => format!("{} via {gw}", route.destination),
        None => format!("{} on-link", route.destination),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link_message(new: bool, index: u32, name: &str) -> Vec<u8> {
        let mut link = LinkMessage::default();
        link.header.index = index;
        link.attributes
            .push(LinkAttribute::IfName(name.to_string()));
        let payload = if new {
            RouteNetlinkMessage::NewLink(link)
        } else {
            RouteNetlinkMessage::DelLink(link)
        };
        let mut msg = NetlinkMessage::new(NetlinkHeader::default(), NetlinkPayload::from(payload));
        msg.finalize();
        let mut buf = vec![0u8; msg.buffer_len()];
        msg.serialize(&mut buf);
        buf
    }

    #[test]
    fn link_notifications_are_parsed() {
        let mut datagram = link_message(true, 3, "eth1");
        datagram.extend(link_message(false, 2, "eth0"));
        assert_eq!(
            parse_link_events(&datagram),
            [
                LinkEvent::New {
                    index: 3,
                    name: "eth1".into()
                },
                LinkEvent::Removed {
                    index: 2,
                    name: "eth0".into()
                },
            ]
        );
        // A truncated message ends the datagram instead of failing it.
        let cut = &datagram[..datagram.len() - 8];
        assert_eq!(parse_link_events(cut).len(), 1);
    }
}
