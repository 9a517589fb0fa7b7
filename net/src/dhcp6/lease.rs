//! A DHCPv6 lease validated from an ADVERTISE or REPLY: what the server must have said
//! for the client to take the address, each refusal a [`Lease6Error`].

use std::net::Ipv6Addr;

use dhcproto::v6::{DhcpOption, DhcpOptions, Message, NtpSuboption, OptionCode, Status};

use crate::dhcp::lease::clean_name;

/// Why an ADVERTISE or REPLY cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Lease6Error {
    #[error("no server identifier (option 2)")]
    NoServerId,
    #[error("not for this client (option 1 missing or another DUID)")]
    NotOurs,
    #[error("the server says {0}")]
    Status(String),
    #[error("no IA_NA {0} (option 3) in it")]
    NoIaNa(u32),
    #[error("IA_NA without an address (option 5) with a valid lifetime")]
    NoAddress,
}

/// A bound address and what came with it; times in seconds (`u32::MAX`: infinite).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease6 {
    pub address: Ipv6Addr,
    pub preferred: u32,
    pub valid: u32,
    /// Renew after `t1`, rebind after `t2` (RFC 8415 §21.4; filled in when the server
    /// leaves them to the client: 0.5 and 0.8 of the preferred lifetime).
    pub t1: u32,
    pub t2: u32,
    pub server_id: Vec<u8>,
    pub dns: Vec<Ipv6Addr>,
    /// Search domains (option 24), without the final dot.
    pub domains: Vec<String>,
    /// NTP servers (option 56): addresses and host names, for berth-timesync.
    pub ntp: Vec<String>,
}

/// The NTP servers of option 56 (RFC 5908): server addresses and host names; multicast
/// ones (which an SNTP client cannot ask) and unusable entries are left out and named.
pub fn ntp_option(opts: &DhcpOptions, ignored: &mut Vec<String>) -> Vec<String> {
    let Some(DhcpOption::NtpServer(subs)) = opts.get(OptionCode::NtpServer) else {
        return Vec::new();
    };
    subs.iter()
        .filter_map(|sub| match sub {
            NtpSuboption::ServerAddress(ip)
                if !ip.is_unspecified() && !ip.is_multicast() && !ip.is_loopback() =>
            {
                Some(ip.to_string())
            }
            NtpSuboption::FQDN(name) => {
                let clean = clean_name(&name.to_string());
                if clean.is_none() {
                    ignored.push(format!(
                        "NTP server name {:?} (option 56)",
                        name.to_string()
                    ));
                }
                clean
            }
            NtpSuboption::ServerAddress(ip) | NtpSuboption::MulticastAddress(ip) => {
                ignored.push(format!("NTP server {ip} (option 56)"));
                None
            }
        })
        .collect()
}

/// The DNS servers (option 23) and search domains (option 24) of a message; unusable
/// entries (an unspecified or multicast server, a name that is not a host name) are left
/// out and named in the third element, for the log.
pub fn dns_options(opts: &DhcpOptions) -> (Vec<Ipv6Addr>, Vec<String>, Vec<String>) {
    let mut ignored = Vec::new();
    let servers = match opts.get(OptionCode::DomainNameServers) {
        Some(DhcpOption::DomainNameServers(servers)) => servers
            .iter()
            .copied()
            .filter(|s| {
                let ok = !s.is_unspecified() && !s.is_multicast() && !s.is_loopback();
                if !ok {
                    ignored.push(format!("DNS server {s} (option 23)"));
                }
                ok
            })
            .collect(),
        _ => Vec::new(),
    };
    let domains = match opts.get(OptionCode::DomainSearchList) {
        Some(DhcpOption::DomainSearchList(names)) => names
            .iter()
            .filter_map(|n| {
                let name = n.to_string();
                let clean = clean_name(&name);
                if clean.is_none() {
                    ignored.push(format!("search domain {name:?} (option 24)"));
                }
                clean
            })
            .collect(),
        _ => Vec::new(),
    };
    (servers, domains, ignored)
}

pub(super) fn status_error(opts: &DhcpOptions) -> Option<Lease6Error> {
    match opts.get(OptionCode::StatusCode) {
        Some(DhcpOption::StatusCode(s)) if s.status != Status::Success => Some(
            Lease6Error::Status(format!("{:?}: {}", s.status, s.msg.escape_debug())),
        ),
        _ => None,
    }
}

/// The checks RFC 8415 §16.10 asks of every REPLY, stateful or not: a server id, our
/// client id (`duid`, since we sent one), no error status. Returns the server id.
pub(super) fn checked_reply<'a>(
    opts: &'a DhcpOptions,
    duid: &[u8],
) -> Result<&'a [u8], Lease6Error> {
    let Some(DhcpOption::ServerId(server_id)) = opts.get(OptionCode::ServerId) else {
        return Err(Lease6Error::NoServerId);
    };
    match opts.get(OptionCode::ClientId) {
        Some(DhcpOption::ClientId(id)) if id == duid => {}
        _ => return Err(Lease6Error::NotOurs),
    }
    match status_error(opts) {
        Some(e) => Err(e),
        None => Ok(server_id),
    }
}

impl Lease6 {
    /// The lease in `msg` for the client `duid` and its IA_NA `iaid`.
    pub fn from_message(msg: &Message, duid: &[u8], iaid: u32) -> Result<Lease6, Lease6Error> {
        let opts = msg.opts();
        let server_id = checked_reply(opts, duid)?;
        let iana = opts
            .iter()
            .find_map(|o| match o {
                DhcpOption::IANA(ia) if ia.id == iaid => Some(ia),
                _ => None,
            })
            .ok_or(Lease6Error::NoIaNa(iaid))?;
        if let Some(e) = status_error(&iana.opts) {
            return Err(e);
        }
        let addr = iana
            .opts
            .iter()
            .find_map(|o| match o {
                DhcpOption::IAAddr(a) if a.valid_life > 0 && a.preferred_life <= a.valid_life => {
                    Some(a)
                }
                _ => None,
            })
            .ok_or(Lease6Error::NoAddress)?;
        let (mut t1, mut t2) = (iana.t1, iana.t2);
        if t1 == 0 || t2 == 0 || t1 > t2 {
            t1 = addr.preferred_life / 2;
            t2 = (u64::from(addr.preferred_life) * 4 / 5) as u32;
        }
        let (dns, domains, mut ignored) = dns_options(opts);
        let ntp = ntp_option(opts, &mut ignored);
        Ok(Lease6 {
            address: addr.addr,
            preferred: addr.preferred_life,
            valid: addr.valid_life,
            t1,
            t2,
            server_id: server_id.to_vec(),
            dns,
            domains,
            ntp,
        })
    }
}
