//! DHCPv6 (RFC 8415): stateful addresses (one IA_NA: the lease in [`lease`], the client in
//! [`machine`]) when a router advertisement has the M flag, and stateless DNS only
//! ([`stateless`], an Information-request) when it has the O flag and not M. Pure like
//! the DHCPv4 client; the daemon does the I/O. The address is added as a /128: the
//! on-link prefix is the RA's, which the kernel installs.

pub mod lease;
pub mod machine;
pub mod stateless;
#[cfg(test)]
mod tests;
#[cfg(test)]
pub(crate) mod tests_stateless;

use std::net::Ipv6Addr;
use std::time::Duration;

pub use lease::{Lease6, Lease6Error};
pub use machine::{Action6, Client6, Event6, State6};
pub use stateless::{Info6, InfoClient, InfoState};

/// A link's DHCPv6 client, of the kind its router advertisements asked for.
#[derive(Debug)]
pub enum Dhcp6 {
    Stateful(Client6),
    Stateless(InfoClient),
}

impl Dhcp6 {
    pub fn handle(&mut self, now: Duration, event: Event6<'_>) -> Vec<Action6> {
        match self {
            Dhcp6::Stateful(c) => c.handle(now, event),
            Dhcp6::Stateless(c) => c.handle(now, event),
        }
    }

    pub fn deadline(&self) -> Option<Duration> {
        match self {
            Dhcp6::Stateful(c) => c.deadline(),
            Dhcp6::Stateless(c) => c.deadline(),
        }
    }

    pub fn is_stateful(&self) -> bool {
        matches!(self, Dhcp6::Stateful(_))
    }

    /// The bound address, if stateful and bound.
    pub fn lease(&self) -> Option<&Lease6> {
        match self {
            Dhcp6::Stateful(c) => c.lease(),
            Dhcp6::Stateless(_) => None,
        }
    }

    /// The NTP servers the server gave, either way.
    pub fn ntp(&self) -> &[String] {
        match self {
            Dhcp6::Stateful(c) => c.lease().map_or(&[], |l| &l.ntp),
            Dhcp6::Stateless(c) => c.info().map_or(&[], |i| &i.ntp),
        }
    }

    /// The DNS servers and search domains the server gave, either way.
    pub fn dns(&self) -> (&[Ipv6Addr], &[String]) {
        match self {
            Dhcp6::Stateful(c) => c.lease().map_or((&[], &[]), |l| (&l.dns, &l.domains)),
            Dhcp6::Stateless(c) => c.info().map_or((&[], &[]), |i| (&i.dns, &i.domains)),
        }
    }
}
