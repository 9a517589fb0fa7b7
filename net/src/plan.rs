//! What a lease or a static `.network` file turns into, as [`Net`] calls in order.
//!
//! Order matters to the kernel: the address before routes that use it as source, an
//! on-link route to a gateway before any route through it (the kernel refuses a gateway
//! it cannot reach). Removal is the reverse.

use std::net::Ipv4Addr;

use crate::config::{DhcpSettings, Ipv4Prefix, NetworkFile};
use crate::dhcp::Lease;
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
