//! A DHCPv4 lease: what an OFFER or ACK grants, validated, and the routes it implies.
//!
//! The server's packet is untrusted: every option is checked here once (a mask that is
//! not contiguous, a missing server identifier, a host name with a slash) and the rest of
//! the daemon uses the [`Lease`] type only. The route plan follows RFC 3442 (option 121
//! replaces option 3 when present) and puts an on-link route to any gateway outside the
//! leased prefix before the routes through it: a GCE lease is a /32 whose gateway is
//! reachable only that way.

use std::net::Ipv4Addr;

use dhcproto::v4::{DhcpOption, Message, OptionCode};

use crate::config::{prefix_mask, Ipv4Prefix};

/// Why a packet is not a usable lease.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LeaseError {
    #[error("no address offered (yiaddr is 0.0.0.0)")]
    NoAddress,
    #[error("the offered address {0} is not a unicast host address")]
    BadAddress(Ipv4Addr),
    #[error("no server identifier (option 54)")]
    NoServerId,
    #[error("subnet mask {0} (option 1) is not contiguous")]
    BadMask(Ipv4Addr),
    #[error("no lease time (option 51)")]
    NoLeaseTime,
}

/// What an OFFER or ACK grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub address: Ipv4Prefix,
    pub server: Ipv4Addr,
    pub routers: Vec<Ipv4Addr>,
    /// Option 121, as (destination, gateway); gateway 0.0.0.0 means on-link.
    pub classless_routes: Vec<(Ipv4Prefix, Ipv4Addr)>,
    pub mtu: Option<u16>,
    pub dns: Vec<Ipv4Addr>,
    /// NTP servers (option 42), for berth-timesync.
    pub ntp: Vec<Ipv4Addr>,
    pub domain: Option<String>,
    pub search: Vec<String>,
    pub hostname: Option<String>,
    /// Seconds; `u32::MAX` is an infinite lease.
    pub lease_time: u32,
    pub t1: u32,
    pub t2: u32,
    /// Options that were present but unusable, to be logged.
    pub ignored: Vec<String>,
}

/// One route to install: `gateway` `None` is on-link (scope link).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PlannedRoute {
    pub destination: Ipv4Prefix,
    pub gateway: Option<Ipv4Addr>,
}

impl Lease {
    /// Validates `msg` (an OFFER or ACK) into a lease.
    pub fn from_message(msg: &Message) -> Result<Lease, LeaseError> {
        let addr = msg.yiaddr();
        if addr.is_unspecified() {
            return Err(LeaseError::NoAddress);
        }
        if addr.is_broadcast() || addr.is_multicast() || addr.is_loopback() {
            return Err(LeaseError::BadAddress(addr));
        }
        let opts = msg.opts();
        let get = |code| opts.get(code);
        let server = match get(OptionCode::ServerIdentifier) {
            Some(DhcpOption::ServerIdentifier(ip)) if !ip.is_unspecified() => *ip,
            _ => return Err(LeaseError::NoServerId),
        };
        let len = match get(OptionCode::SubnetMask) {
            Some(DhcpOption::SubnetMask(mask)) => {
                mask_len(*mask).ok_or(LeaseError::BadMask(*mask))?
            }
            _ => classful_len(addr),
        };
        let lease_time = match get(OptionCode::AddressLeaseTime) {
            Some(DhcpOption::AddressLeaseTime(t)) if *t > 0 => *t,
            _ => return Err(LeaseError::NoLeaseTime),
        };
        let mut ignored = Vec::new();
        let (t1, t2) = timers(
            lease_time,
            match get(OptionCode::Renewal) {
                Some(DhcpOption::Renewal(t)) => Some(*t),
                _ => None,
            },
            match get(OptionCode::Rebinding) {
                Some(DhcpOption::Rebinding(t)) => Some(*t),
                _ => None,
            },
        );
        let routers = match get(OptionCode::Router) {
            Some(DhcpOption::Router(r)) => usable(r),
            _ => Vec::new(),
        };
        let classless_routes = match get(OptionCode::ClasslessStaticRoute) {
            Some(DhcpOption::ClasslessStaticRoute(routes)) => routes
                .iter()
                .map(|(net, gw)| {
                    let destination = Ipv4Prefix {
                        addr: net.network(),
                        len: net.prefix_len(),
                    };
                    (destination, *gw)
                })
                .collect(),
            _ => Vec::new(),
        };
        let mtu = match get(OptionCode::InterfaceMtu) {
            // RFC 2132: the minimum legal value is 68.
            Some(DhcpOption::InterfaceMtu(m)) if *m >= 68 => Some(*m),
            Some(DhcpOption::InterfaceMtu(m)) => {
                ignored.push(format!("MTU {m} (option 26) is below 68"));
                None
            }
            _ => None,
        };
        let dns = match get(OptionCode::DomainNameServer) {
            Some(DhcpOption::DomainNameServer(d)) => usable(d),
            _ => Vec::new(),
        };
        let ntp = match get(OptionCode::NtpServers) {
            Some(DhcpOption::NtpServers(servers)) => usable(servers),
            _ => Vec::new(),
        };
        let mut name_opt = |what: &str, name: &str| match clean_name(name) {
            Some(n) => Some(n),
            None => {
                ignored.push(format!("{what} {name:?} is not a valid DNS name"));
                None
            }
        };
        let domain = match get(OptionCode::DomainName) {
            Some(DhcpOption::DomainName(d)) => name_opt("domain (option 15)", d),
            _ => None,
        };
        let hostname = match get(OptionCode::Hostname) {
            Some(DhcpOption::Hostname(h)) => name_opt("host name (option 12)", h),
            _ => None,
        };
        let search = match get(OptionCode::DomainSearch) {
            Some(DhcpOption::DomainSearch(names)) => names
                .iter()
                .filter_map(|n| name_opt("search domain (option 119)", &n.to_string()))
                .collect(),
            _ => Vec::new(),
        };
        Ok(Lease {
            address: Ipv4Prefix { addr, len },
            server,
            routers,
            classless_routes,
            mtu,
            dns,
            ntp,
            domain,
            search,
            hostname,
            lease_time,
            t1,
            t2,
            ignored,
        })
    }

    /// The routes this lease asks for, in the order to add them (on-link routes to
    /// gateways first). With `use_routes` false, none.
    pub fn route_plan(&self, use_routes: bool) -> Vec<PlannedRoute> {
        if !use_routes {
            return Vec::new();
        }
        let wanted: Vec<(Ipv4Prefix, Ipv4Addr)> = if !self.classless_routes.is_empty() {
            self.classless_routes.clone()
        } else {
            let default = Ipv4Prefix {
                addr: Ipv4Addr::UNSPECIFIED,
                len: 0,
            };
            self.routers
                .first()
                .map(|gw| (default, *gw))
                .into_iter()
                .collect()
        };
        let mut plan: Vec<PlannedRoute> = Vec::new();
        let mut push = |route: PlannedRoute| {
            if !plan.contains(&route) {
                plan.push(route);
            }
        };
        for (destination, gw) in wanted {
            if gw.is_unspecified() {
                push(PlannedRoute {
                    destination,
                    gateway: None,
                });
                continue;
            }
            if !self.address.contains(gw) || self.address.len == 32 {
                push(PlannedRoute {
                    destination: Ipv4Prefix { addr: gw, len: 32 },
                    gateway: None,
                });
            }
            push(PlannedRoute {
                destination,
                gateway: Some(gw),
            });
        }
        // An on-link route to a gateway from option 121 itself must come before its users.
        plan.sort_by_key(|r| r.gateway.is_some());
        plan
    }

    /// The search list: option 119 when given, else option 15.
    pub fn search_domains(&self) -> Vec<String> {
        if !self.search.is_empty() {
            self.search.clone()
        } else {
            self.domain.iter().cloned().collect()
        }
    }
}

/// The prefix length of a contiguous netmask.
pub fn mask_len(mask: Ipv4Addr) -> Option<u8> {
    let bits = u32::from(mask);
    let len = bits.leading_ones() as u8;
    (prefix_mask(len) == bits).then_some(len)
}

/// The class-based prefix length RFC 2131 clients fall back to without option 1.
fn classful_len(addr: Ipv4Addr) -> u8 {
    match addr.octets()[0] {
        0..=127 => 8,
        128..=191 => 16,
        _ => 24,
    }
}

/// T1 and T2 as RFC 2131 §4.4.5 defines them (0.5 and 0.875 of the lease), keeping
/// T1 < T2 < lease when the server sends values that are not.
fn timers(lease: u32, t1: Option<u32>, t2: Option<u32>) -> (u32, u32) {
    if lease == u32::MAX {
        return (u32::MAX, u32::MAX);
    }
    let default_t2 = (u64::from(lease) * 7 / 8) as u32;
    let t2 = t2.filter(|t| *t < lease && *t > 0).unwrap_or(default_t2);
    let default_t1 = if lease / 2 < t2 { lease / 2 } else { t2 / 2 };
    let t1 = t1.filter(|t| *t < t2 && *t > 0).unwrap_or(default_t1);
    (t1, t2)
}

fn usable(addrs: &[Ipv4Addr]) -> Vec<Ipv4Addr> {
    addrs
        .iter()
        .copied()
        .filter(|a| !a.is_unspecified() && !a.is_broadcast())
        .collect()
}

/// A DNS name (letters, digits, `-`, `_`, dots; 1..=253 bytes), without a trailing dot.
pub(crate) fn clean_name(name: &str) -> Option<String> {
    let name = name.trim_end_matches('\0').trim_end_matches('.');
    let ok = !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    ok.then(|| name.to_ascii_lowercase())
}
