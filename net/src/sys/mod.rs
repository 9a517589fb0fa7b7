//! The one boundary between berth-networkd and the kernel's network configuration.
//!
//! [`Net`] is what the daemon changes: links up, MTU, addresses and routes, the IPv6
//! sysctls that let the kernel take router advertisements, and what it reads back (the
//! link's IPv6 state, for readiness). [`Netlink`] does it over rtnetlink and `/proc/sys`;
//! [`LinkEvents`] ([`LinkWatch`]) says when links appear and disappear. The unit tests use
//! the recording fakes (`fake.rs`) to check what a lease or a new link turns into, and in
//! which order, without root. The DHCP sockets are in [`socket`]: the packet socket's
//! `bind` and the ICMPv6 socket's type filter are the crate's only `unsafe`.

#[cfg(test)]
pub(crate) mod fake;
mod netlink;
pub mod socket;

use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::Path;

pub use netlink::{describe, LinkEvents, Netlink};

use crate::config::{parse_mac, Ipv4Prefix, LinkFacts};
use crate::online::Ipv6Status;

/// A failed kernel operation.
#[derive(Debug, thiserror::Error)]
pub enum SysError {
    #[error("netlink {op}: {source}")]
    Netlink { op: String, source: std::io::Error },
    #[error("netlink {op}: bad reply: {message}")]
    Reply { op: String, message: String },
    #[error("reading {path}: {source}")]
    Sysfs {
        path: String,
        source: std::io::Error,
    },
    #[error("writing {value:?} to {path}: {source}")]
    Sysctl {
        path: String,
        value: String,
        source: std::io::Error,
    },
    #[error("{what} on {link}: {source}")]
    Socket {
        what: &'static str,
        link: String,
        source: std::io::Error,
    },
}

/// Where a route is installed: its table entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RouteSpec {
    pub destination: Ipv4Prefix,
    /// `None`: on-link (scope link).
    pub gateway: Option<Ipv4Addr>,
    /// The preferred source address, if any.
    pub source: Option<Ipv4Addr>,
    /// From DHCP (`proto dhcp`) or from a `.network` file (`proto static`).
    pub dhcp: bool,
    pub metric: u32,
}

/// What the kernel said about its links (rtnetlink's `RTMGRP_LINK` group).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkEvent {
    /// `RTM_NEWLINK`: a link was created, or one that exists changed (flags, MTU, name).
    New { index: u32, name: String },
    /// `RTM_DELLINK`: the link is gone.
    Removed { index: u32, name: String },
    /// The socket's buffer overflowed (`ENOBUFS`): notifications were lost, and the links
    /// must be listed again.
    Lost,
}

/// Where link notifications come from: [`LinkEvents`] over rtnetlink, or the tests' fake.
pub trait LinkWatch {
    /// The notifications waiting, without blocking (empty when there are none).
    fn events(&mut self) -> Result<Vec<LinkEvent>, SysError>;
}

/// The network configuration calls. Adding what exists replaces it; removing what is
/// gone is not an error (the kernel may have removed it with the address).
pub trait Net {
    fn link_up(&mut self, index: u32) -> Result<(), SysError>;
    fn set_mtu(&mut self, index: u32, mtu: u32) -> Result<(), SysError>;
    fn add_address(&mut self, index: u32, address: Ipv4Prefix) -> Result<(), SysError>;
    fn del_address(&mut self, index: u32, address: Ipv4Prefix) -> Result<(), SysError>;
    fn add_route(&mut self, index: u32, route: &RouteSpec) -> Result<(), SysError>;
    fn del_route(&mut self, index: u32, route: &RouteSpec) -> Result<(), SysError>;
    /// Adds `address/len` (DHCPv6: a /128) to link `index`.
    fn add_address6(&mut self, index: u32, address: Ipv6Addr, len: u8) -> Result<(), SysError>;
    fn del_address6(&mut self, index: u32, address: Ipv6Addr, len: u8) -> Result<(), SysError>;
    /// Sets `net.ipv6.conf.<link>.<key>` to `value`.
    fn set_ipv6_sysctl(&mut self, link: &str, key: &str, value: &str) -> Result<(), SysError>;
    /// Whether link `index` has a usable global IPv6 address and an IPv6 default route.
    fn ipv6_status(&mut self, index: u32) -> Result<Ipv6Status, SysError>;
}

/// The links under `sys_class_net` (`/sys/class/net`), sorted by interface index.
pub fn links(sys_class_net: &Path) -> Result<Vec<LinkFacts>, SysError> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(sys_class_net).map_err(|source| SysError::Sysfs {
        path: sys_class_net.display().to_string(),
        source,
    })? {
        let Ok(entry) = entry else { continue };
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(facts) = link(sys_class_net, &name)? {
            out.push(facts);
        }
    }
    out.sort_by_key(|l| l.index);
    Ok(out)
}

/// The link `name` under `sys_class_net`, read as [`links`] reads each one; `None` when
/// it has no interface index (or is gone: a link that disappeared since it was announced).
pub fn link(sys_class_net: &Path, name: &str) -> Result<Option<LinkFacts>, SysError> {
    let dir = sys_class_net.join(name);
    let index_path = dir.join("ifindex");
    let index = match std::fs::read_to_string(&index_path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(SysError::Sysfs {
                path: index_path.display().to_string(),
                source,
            })
        }
    };
    let Ok(index) = index.trim().parse::<u32>() else {
        return Ok(None);
    };
    let mac = std::fs::read_to_string(dir.join("address"))
        .ok()
        .and_then(|m| parse_mac(m.trim()).ok());
    let arp_type = std::fs::read_to_string(dir.join("type")).unwrap_or_default();
    let devtype = std::fs::read_to_string(dir.join("uevent"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("DEVTYPE=").map(str::to_string));
    // ARPHRD_LOOPBACK is 772, ARPHRD_ETHER 1 (include/uapi/linux/if_arp.h).
    let kind = match (arp_type.trim(), devtype) {
        ("772", _) => "loopback".to_string(),
        (_, Some(devtype)) => devtype,
        ("1", None) => "ether".to_string(),
        _ => "none".to_string(),
    };
    Ok(Some(LinkFacts {
        physical: dir.join("device").exists(),
        name: name.to_string(),
        index,
        mac,
        kind,
    }))
}
