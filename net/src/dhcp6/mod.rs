//! DHCPv6 (RFC 8415), stateful addresses only (one IA_NA): the lease ([`lease`]) and the
//! client state machine ([`machine`]), pure like the DHCPv4 client; the daemon does the
//! I/O and starts the client when a router advertisement has the M flag. The address is
//! added as a /128: the on-link prefix is the RA's, which the kernel installs.

pub mod lease;
pub mod machine;
#[cfg(test)]
mod tests;

pub use lease::{Lease6, Lease6Error};
pub use machine::{Action6, Client6, Event6, State6};
