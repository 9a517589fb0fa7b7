//! DHCPv4: the lease type ([`lease`]), the client state machine ([`machine`]) and the
//! IPv4/UDP framing of packets read below IP ([`frame`]). All pure; the daemon does I/O.

pub mod frame;
pub mod lease;
pub mod machine;
#[cfg(test)]
pub(crate) mod tests;

pub use lease::{Lease, LeaseError, PlannedRoute};
pub use machine::{Action, Client, Destination, Event, State};
