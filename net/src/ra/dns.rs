//! The DNS servers and search domains one link learned from router advertisements, each
//! kept until its RDNSS/DNSSL lifetime runs out (RFC 8106 §5.1: lifetime 0 removes it,
//! `0xffffffff` keeps it for ever; a later RA refreshes the lifetime).

use std::net::Ipv6Addr;
use std::time::Duration;

use super::{check_origin, parse, Advert, RaError};

/// Learned entries with their expiry on the daemon's monotonic clock (`None`: never).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RaDns {
    servers: Vec<(Ipv6Addr, Option<Duration>)>,
    domains: Vec<(String, Option<Duration>)>,
}

fn expiry(now: Duration, lifetime: u32) -> Option<Duration> {
    (lifetime != u32::MAX).then(|| now + Duration::from_secs(u64::from(lifetime)))
}

/// Adds, refreshes (in place, keeping the order servers were first learned) or, for
/// lifetime 0, removes `item`; true when the set changed.
fn learn<T: PartialEq>(
    list: &mut Vec<(T, Option<Duration>)>,
    item: T,
    until: Option<Duration>,
    lifetime: u32,
) -> bool {
    let pos = list.iter().position(|(i, _)| *i == item);
    match (pos, lifetime) {
        (Some(p), 0) => {
            list.remove(p);
            true
        }
        (None, 0) => false,
        (Some(p), _) => {
            list[p].1 = until;
            false
        }
        (None, _) => {
            list.push((item, until));
            true
        }
    }
}

impl RaDns {
    /// Takes the RDNSS and DNSSL options of `ra`; true when the servers or domains changed.
    pub fn learn(&mut self, now: Duration, ra: &Advert) -> bool {
        let mut changed = false;
        for (lifetime, servers) in &ra.dns_servers {
            for server in servers {
                changed |= learn(
                    &mut self.servers,
                    *server,
                    expiry(now, *lifetime),
                    *lifetime,
                );
            }
        }
        for (lifetime, domains) in &ra.search_domains {
            for domain in domains {
                changed |= learn(
                    &mut self.domains,
                    domain.clone(),
                    expiry(now, *lifetime),
                    *lifetime,
                );
            }
        }
        changed
    }

    /// Takes one ICMPv6 message as received: checked to be an RA from an on-link router,
    /// parsed, learned. Returns whether the servers or domains changed, and the RA.
    pub fn receive(
        &mut self,
        now: Duration,
        icmp: &[u8],
        source: Option<Ipv6Addr>,
        hop_limit: Option<i32>,
    ) -> Result<(bool, Advert), RaError> {
        check_origin(source, hop_limit)?;
        let ra = parse(icmp)?;
        Ok((self.learn(now, &ra), ra))
    }

    /// Drops what expired by `now`; true when anything did.
    pub fn expire(&mut self, now: Duration) -> bool {
        let before = (self.servers.len(), self.domains.len());
        let alive = |until: &Option<Duration>| until.is_none_or(|u| u > now);
        self.servers.retain(|(_, u)| alive(u));
        self.domains.retain(|(_, u)| alive(u));
        before != (self.servers.len(), self.domains.len())
    }

    /// When [`RaDns::expire`] next has work.
    pub fn deadline(&self) -> Option<Duration> {
        let servers = self.servers.iter().filter_map(|(_, u)| *u);
        let domains = self.domains.iter().filter_map(|(_, u)| *u);
        servers.chain(domains).min()
    }

    pub fn servers(&self) -> impl Iterator<Item = Ipv6Addr> + '_ {
        self.servers.iter().map(|(s, _)| *s)
    }

    pub fn domains(&self) -> impl Iterator<Item = &str> + '_ {
        self.domains.iter().map(|(d, _)| d.as_str())
    }
}
