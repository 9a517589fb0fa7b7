//! berth-networkd: brings a Berth node onto the network with no configuration.
//!
//! DHCPv4 on every physical link (GCE's /32 leases with option 121 routes and MTU 1460
//! included), IPv6 by router advertisements (the kernel's SLAAC, DNS from RDNSS) and
//! DHCPv6 where an RA has the M flag, overrides in systemd-networkd's `.network` files, addresses and routes set
//! over netlink, `resolv.conf` and the host name from the lease, and `READY=1` to the
//! service manager once the node is online ([`online`]). Pure parts ([`config`], [`dhcp`],
//! [`dhcp6`], [`ra`], [`online`], [`plan`])
//! are tested without root; the kernel is reached only through [`sys::Net`].

pub mod config;
pub mod daemon;
pub mod dhcp;
pub mod dhcp6;
pub mod online;
pub mod output;
pub mod plan;
pub mod ra;
pub mod sys;
