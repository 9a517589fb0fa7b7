//! The parser of one ICMPv6 Router Advertisement (RFC 4861 §4.2) and the options Berth
//! reads from it: RDNSS (25) and DNSSL (31) of RFC 8106. Other options are skipped by
//! their length, as the RFC asks; a malformed option makes the whole RA an error.

use std::net::Ipv6Addr;

/// ICMPv6 type of a Router Advertisement.
pub const ROUTER_ADVERTISEMENT: u8 = 134;
const OPT_RDNSS: u8 = 25;
const OPT_DNSSL: u8 = 31;
/// Type, code, checksum, hop limit, flags, router lifetime, reachable, retrans timers.
const HEADER_LEN: usize = 16;

/// Why an ICMPv6 message is not a usable RA.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RaError {
    #[error("{0} bytes is shorter than a router advertisement (16)")]
    TooShort(usize),
    #[error("ICMPv6 type {0} code {1} is not a router advertisement (134/0)")]
    NotAnRa(u8, u8),
    #[error("from {0}, which is not a link-local address (not from an on-link router)")]
    NotLinkLocal(String),
    #[error("hop limit {0}, not 255: forwarded from off the link")]
    HopLimit(String),
    #[error("option at byte {offset}: {message}")]
    BadOption { offset: usize, message: String },
}

/// What Berth reads from one RA; lifetimes in seconds (`u32::MAX`: infinite).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Advert {
    /// M: addresses are available by DHCPv6.
    pub managed: bool,
    /// O: other configuration (DNS) is available by DHCPv6.
    pub other: bool,
    /// Seconds this router is a default router; 0: it is not one.
    pub router_lifetime: u16,
    /// RDNSS options: (lifetime, servers).
    pub dns_servers: Vec<(u32, Vec<Ipv6Addr>)>,
    /// DNSSL options: (lifetime, domains without the final dot).
    pub search_domains: Vec<(u32, Vec<String>)>,
}

/// RFC 4861 §6.1.2: an RA counts only from a link-local source with hop limit 255, which
/// no router can forward. `None` (the kernel did not say) is refused too.
pub fn check_origin(source: Option<Ipv6Addr>, hop_limit: Option<i32>) -> Result<(), RaError> {
    match source {
        Some(ip) if ip.segments()[0] & 0xffc0 == 0xfe80 => {}
        other => {
            return Err(RaError::NotLinkLocal(
                other.map_or("an unknown source".into(), |ip| ip.to_string()),
            ))
        }
    }
    match hop_limit {
        Some(255) => Ok(()),
        other => Err(RaError::HopLimit(
            other.map_or("unknown".into(), |h| h.to_string()),
        )),
    }
}

/// Parses `icmp`, the ICMPv6 message as a raw ICMPv6 socket delivers it (no IPv6 header).
pub fn parse(icmp: &[u8]) -> Result<Advert, RaError> {
    if icmp.len() < HEADER_LEN {
        return Err(RaError::TooShort(icmp.len()));
    }
    if icmp[0] != ROUTER_ADVERTISEMENT || icmp[1] != 0 {
        return Err(RaError::NotAnRa(icmp[0], icmp[1]));
    }
    let mut ra = Advert {
        managed: icmp[5] & 0x80 != 0,
        other: icmp[5] & 0x40 != 0,
        router_lifetime: u16::from_be_bytes([icmp[6], icmp[7]]),
        ..Advert::default()
    };
    let mut offset = HEADER_LEN;
    while offset < icmp.len() {
        let bad = |message: String| RaError::BadOption { offset, message };
        let rest = &icmp[offset..];
        if rest.len() < 2 {
            return Err(bad("truncated option header".into()));
        }
        let len = usize::from(rest[1]) * 8;
        if len == 0 {
            return Err(bad(format!("type {} has length 0", rest[0])));
        }
        let body = rest
            .get(..len)
            .ok_or_else(|| bad(format!("type {} runs past the end", rest[0])))?;
        match body[0] {
            OPT_RDNSS => ra.dns_servers.push(rdnss(body).map_err(bad)?),
            OPT_DNSSL => ra.search_domains.push(dnssl(body).map_err(bad)?),
            _ => {}
        }
        offset += len;
    }
    Ok(ra)
}

fn lifetime(body: &[u8]) -> u32 {
    u32::from_be_bytes([body[4], body[5], body[6], body[7]])
}

/// RFC 8106 §5.1: type, length, reserved (2), lifetime (4), addresses (16 each).
fn rdnss(body: &[u8]) -> Result<(u32, Vec<Ipv6Addr>), String> {
    if body.len() < 24 {
        return Err("RDNSS without an address".into());
    }
    let servers = body[8..]
        .chunks_exact(16)
        .filter_map(|c| <[u8; 16]>::try_from(c).ok())
        .map(Ipv6Addr::from)
        .collect();
    Ok((lifetime(body), servers))
}

/// RFC 8106 §5.2: type, length, reserved (2), lifetime (4), then domain names in DNS wire
/// format (no compression), zero-padded to the option's end.
fn dnssl(body: &[u8]) -> Result<(u32, Vec<String>), String> {
    if body.len() < 16 {
        return Err("DNSSL without a domain".into());
    }
    let mut domains = Vec::new();
    let mut labels: Vec<String> = Vec::new();
    let mut names = &body[8..];
    while let Some((&len, rest)) = names.split_first() {
        let len = usize::from(len);
        if len == 0 {
            // The end of a name, or padding after the last one.
            if !labels.is_empty() {
                domains.push(labels.join("."));
                labels.clear();
            }
            names = rest;
            continue;
        }
        if len > 63 {
            return Err(format!("DNSSL label of {len} bytes (at most 63)"));
        }
        let label = rest
            .get(..len)
            .ok_or_else(|| "DNSSL label runs past the option".to_string())?;
        let label = std::str::from_utf8(label)
            .ok()
            .filter(|l| {
                l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            })
            .ok_or_else(|| {
                format!(
                    "DNSSL label {:?} is not a host name label",
                    label.escape_ascii().to_string()
                )
            })?;
        labels.push(label.to_string());
        names = &rest[len..];
    }
    if !labels.is_empty() {
        return Err("DNSSL name without its final zero label".into());
    }
    Ok((lifetime(body), domains))
}
