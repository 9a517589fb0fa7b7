//! What a lease or a static `.network` file turns into, as [`Net`] calls in order.
//!
//! Order matters to the kernel: the address before routes that use it as source, an
//! on-link route to a gateway before any route through it (the kernel refuses a gateway
//! it cannot reach). Removal is the reverse.

use std::net::Ipv4Addr;

use crate::config::{DhcpSettings, Ipv4Prefix, NetworkFile};
use crate::dhcp::Lease;
use crate::dhcp6::Lease6;
use crate::sys::{Net, RouteSpec, SysError};

/// networkd's metric for DHCP routes.
pub const DHCP_METRIC: u32 = 1024;
/// networkd's metric for static routes (0: the kernel's default).
pub const STATIC_METRIC: u32 = 0;

/// The routes of `lease` under `settings`.
pub fn lease_routes(lease: &Lease, settings: &DhcpSettings) -> Vec<RouteSpec> {
    lease
        .route_plan(settings.use_routes)
        .into_iter()
        .map(|r| RouteSpec {
            destination: r.destination,
            gateway: r.gateway,
            source: Some(lease.address.addr),
            dhcp: true,
            metric: DHCP_METRIC,
        })
        .collect()
}

/// Configures `lease` on link `index`: MTU, address, routes.
pub fn apply_lease(
    net: &mut dyn Net,
    index: u32,
    lease: &Lease,
    settings: &DhcpSettings,
) -> Result<(), SysError> {
    if let Some(mtu) = lease.mtu.filter(|_| settings.use_mtu) {
        net.set_mtu(index, u32::from(mtu))?;
    }
    net.add_address(index, lease.address)?;
    for route in lease_routes(lease, settings) {
        net.add_route(index, &route)?;
    }
    Ok(())
}

/// Removes what [`apply_lease`] added, routes first; every step is tried.
pub fn remove_lease(
    net: &mut dyn Net,
    index: u32,
    lease: &Lease,
    settings: &DhcpSettings,
) -> Result<(), SysError> {
    let mut first_error = None;
    for route in lease_routes(lease, settings).iter().rev() {
        if let Err(e) = net.del_route(index, route) {
            first_error.get_or_insert(e);
        }
    }
    if let Err(e) = net.del_address(index, lease.address) {
        first_error.get_or_insert(e);
    }
    first_error.map_or(Ok(()), Err)
}

/// The routes of a static file: `Gateway=` as default routes and `[Route]` sections,
/// with on-link routes first to gateways outside every address of the file.
pub fn static_routes(file: &NetworkFile) -> Vec<RouteSpec> {
    let default = Ipv4Prefix {
        addr: Ipv4Addr::UNSPECIFIED,
        len: 0,
    };
    let wanted = file.gateways.iter().map(|gw| (default, Some(*gw))).chain(
        file.routes
            .iter()
            .map(|r| (r.destination.unwrap_or(default), r.gateway)),
    );
    let mut routes: Vec<RouteSpec> = Vec::new();
    let spec = |destination, gateway| RouteSpec {
        destination,
        gateway,
        source: None,
        dhcp: false,
        metric: STATIC_METRIC,
    };
    for (destination, gateway) in wanted {
        if let Some(gw) =
            gateway.filter(|gw| !file.addresses.iter().any(|a| a.len < 32 && a.contains(*gw)))
        {
            let on_link = spec(Ipv4Prefix { addr: gw, len: 32 }, None);
            if !routes.contains(&on_link) {
                routes.insert(0, on_link);
            }
        }
        let route = spec(destination, gateway);
        if !routes.contains(&route) {
            routes.push(route);
        }
    }
    routes
}

/// Configures the addresses and routes of a static file on link `index`.
pub fn apply_static(net: &mut dyn Net, index: u32, file: &NetworkFile) -> Result<(), SysError> {
    for address in &file.addresses {
        net.add_address(index, *address)?;
    }
    for route in static_routes(file) {
        net.add_route(index, &route)?;
    }
    Ok(())
}

/// Adds a DHCPv6 address as a /128 (the on-link prefix is the RA's).
pub fn apply_lease6(net: &mut dyn Net, index: u32, lease: &Lease6) -> Result<(), SysError> {
    net.add_address6(index, lease.address, 128)
}

/// Removes what [`apply_lease6`] added.
pub fn remove_lease6(net: &mut dyn Net, index: u32, lease: &Lease6) -> Result<(), SysError> {
    net.del_address6(index, lease.address, 128)
}

/// Makes the kernel take router advertisements on link `name` (SLAAC, the default route
/// and MTU from the RA) or not. `accept_ra=2` because a Kubernetes node forwards, and with
/// forwarding on `accept_ra=1` ignores every RA. Set before the link comes up, so that
/// the router solicitation the kernel sends at link-up is answered.
pub fn accept_ra(net: &mut dyn Net, name: &str, accept: bool) -> Result<(), SysError> {
    if accept {
        net.set_ipv6_sysctl(name, "autoconf", "1")?;
        net.set_ipv6_sysctl(name, "accept_ra", "2")
    } else {
        net.set_ipv6_sysctl(name, "accept_ra", "0")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::fake::FakeNet;

    #[test]
    fn dhcpv6_address_is_a_host_route() {
        let lease = Lease6 {
            address: "2001:db8::105".parse().unwrap(),
            preferred: 200,
            valid: 300,
            t1: 100,
            t2: 160,
            server_id: vec![0, 1],
            dns: Vec::new(),
            domains: Vec::new(),
            ntp: Vec::new(),
        };
        let mut net = FakeNet::default();
        apply_lease6(&mut net, 2, &lease).unwrap();
        remove_lease6(&mut net, 2, &lease).unwrap();
        assert_eq!(
            net.calls,
            [
                "add-addr 2 2001:db8::105/128",
                "del-addr 2 2001:db8::105/128"
            ]
        );
    }

    #[test]
    fn router_advertisements_on_and_off() {
        let mut net = FakeNet::default();
        accept_ra(&mut net, "eth0", true).unwrap();
        accept_ra(&mut net, "eth1", false).unwrap();
        assert_eq!(
            net.calls,
            [
                "sysctl net.ipv6.conf.eth0.autoconf=1",
                "sysctl net.ipv6.conf.eth0.accept_ra=2",
                "sysctl net.ipv6.conf.eth1.accept_ra=0",
            ]
        );
    }
}
