//! When the node is online, for `network-online.target`: a link has an IPv4 address and an
//! IPv4 default route (from its DHCPv4 lease or its `.network` file), or — on a link that
//! runs no DHCPv4, so no IPv4 is coming — a global IPv6 address and an IPv6 default route
//! (from router advertisements). A link with DHCPv4 waits for its lease (or the online
//! timeout) even when IPv6 came first, so IPv4-only services are not started too early.

/// What the kernel has of IPv6 on one link.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Ipv6Status {
    /// A global-scope address that is not tentative (DAD done) nor failed.
    pub global_address: bool,
    /// A `::/0` route out of the link in the main table.
    pub default_route: bool,
}

/// One link's facts for the decision.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LinkState {
    /// An IPv4 address and an IPv4 default route are configured.
    pub ipv4_online: bool,
    /// The link runs a DHCPv4 client.
    pub dhcpv4: bool,
    pub ipv6: Ipv6Status,
}

/// Whether `link` makes the node online.
pub fn online(link: &LinkState) -> bool {
    link.ipv4_online || (!link.dhcpv4 && link.ipv6.global_address && link.ipv6.default_route)
}

/// The words for the `online: …` line.
pub fn describe(link: &LinkState) -> &'static str {
    if link.ipv4_online {
        "an IPv4 address and a default route"
    } else {
        "a global IPv6 address and an IPv6 default route"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const V6: Ipv6Status = Ipv6Status {
        global_address: true,
        default_route: true,
    };

    #[test]
    fn decision() {
        let v4 = LinkState {
            ipv4_online: true,
            dhcpv4: true,
            ipv6: Ipv6Status::default(),
        };
        assert!(online(&v4));
        assert_eq!(describe(&v4), "an IPv4 address and a default route");
        // DHCPv4 still running: IPv6 alone is not enough.
        assert!(!online(&LinkState {
            ipv4_online: false,
            ..v4
        }));
        assert!(!online(&LinkState {
            ipv4_online: false,
            dhcpv4: true,
            ipv6: V6
        }));
        // No DHCPv4 (DHCP=ipv6 or no, or a static file without a gateway): IPv6 counts,
        // but only with both an address and a default route.
        let v6 = LinkState {
            ipv4_online: false,
            dhcpv4: false,
            ipv6: V6,
        };
        assert!(online(&v6));
        assert_eq!(
            describe(&v6),
            "a global IPv6 address and an IPv6 default route"
        );
        for ipv6 in [
            Ipv6Status {
                global_address: true,
                default_route: false,
            },
            Ipv6Status {
                global_address: false,
                default_route: true,
            },
            Ipv6Status::default(),
        ] {
            assert!(!online(&LinkState { ipv6, ..v6 }), "{ipv6:?}");
        }
        // Both families: online by either.
        assert!(online(&LinkState {
            ipv4_online: true,
            dhcpv4: false,
            ipv6: V6
        }));
    }
}
