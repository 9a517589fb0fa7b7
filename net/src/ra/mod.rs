//! IPv6 router advertisements: what berth-networkd itself takes from them.
//!
//! The kernel does SLAAC, the default route and the MTU from each RA (the daemon only sets
//! `accept_ra=2`, so forwarding nodes still listen); it does not hand DNS servers to the
//! resolver. So the daemon reads the same RAs on an ICMPv6 socket: [`advert`] parses one
//! (an untrusted packet: proptested), [`dns`] keeps its RDNSS and DNSSL options (RFC 8106)
//! for as long as their lifetimes say. Both pure; the socket is in `sys::socket`.

pub mod advert;
pub mod dns;
#[cfg(test)]
mod tests;

pub use advert::{check_origin, parse, Advert, RaError};
pub use dns::RaDns;
