//! What the daemon tells the node after a change: `resolv.conf` (all links' servers and
//! search domains, in link order, IPv4 servers before IPv6 ones, at most three), the state
//! file, `ntp-servers` (the files' `NTP=`, DHCPv4's option 42 and DHCPv6's option 56, one a line, which
//! berth-timesync reads), and the host name by the design's precedence. Rewritten whole after every change, so a reader never sees a mix.

use std::net::IpAddr;

use super::{Link, Options};
use crate::dhcp::Lease;
use crate::dhcp6::Dhcp6;
use crate::output::{self, HostnameOwner};
use crate::plan;

/// Records the lease's host name and sets it unless a higher-precedence name exists.
pub(super) fn hostname(opts: &Options, link: &Link, lease: &Lease) {
    let Some(name) = &lease.hostname else { return };
    if let Err(e) = output::write_atomic(&opts.run_dir.join("hostname"), &format!("{name}\n")) {
        link.log(&e.to_string());
    }
    let cmdline = std::fs::read_to_string(&opts.cmdline).unwrap_or_default();
    let metadata = std::fs::read_to_string(&opts.metadata_hostname).ok();
    match output::hostname_owner(&cmdline, metadata.as_deref()) {
        HostnameOwner::Cmdline(n) => link.log(&format!(
            "host name {name:?} from DHCP not set: berth.hostname={n} wins"
        )),
        HostnameOwner::Metadata(n) => link.log(&format!(
            "host name {name:?} from DHCP not set: the cloud's metadata ({n}) wins"
        )),
        HostnameOwner::Dhcp if opts.set_hostname => {
            match nix::unistd::sethostname(output::kernel_hostname(name)) {
                Ok(()) => link.log(&format!("host name set to {name:?} from DHCP")),
                Err(e) => link.log(&format!("sethostname {name:?}: {e}")),
            }
        }
        HostnameOwner::Dhcp => {}
    }
}

/// Rewrites `resolv.conf` and the state file from every link's configuration.
pub(super) fn write_outputs(opts: &Options, links: &[Link]) {
    let mut servers: Vec<IpAddr> = Vec::new();
    let mut search: Vec<String> = Vec::new();
    let mut state = String::new();
    let mut ntp: Vec<String> = Vec::new();
    for link in links {
        ntp.extend(link.file.ntp.iter().cloned());
        servers.extend(&link.file.dns);
        search.extend(link.file.domains.iter().cloned());
        let lease = link.client.as_ref().and_then(|c| c.lease());
        if let Some(lease) = lease.filter(|_| link.file.dhcpv4.use_dns) {
            servers.extend(lease.dns.iter().map(|ip| IpAddr::V4(*ip)));
        }
        if let Some(lease) = lease.filter(|_| link.file.dhcpv4.use_ntp) {
            ntp.extend(lease.ntp.iter().map(ToString::to_string));
        }
        if let Some(lease) = lease.filter(|_| link.file.dhcpv4.use_domains.search()) {
            search.extend(lease.search_domains());
        }
        let ra = link.file.ra;
        if ra.use_dns {
            servers.extend(link.ra_dns.servers().map(IpAddr::V6));
        }
        if ra.use_domains.search() {
            search.extend(link.ra_dns.domains().map(str::to_string));
        }
        if let Some(dhcp6) = &link.dhcp6 {
            let (dns, domains) = dhcp6.dns();
            let use6 = link.file.dhcpv6;
            if use6.use_dns {
                servers.extend(dns.iter().map(|ip| IpAddr::V6(*ip)));
            }
            if use6.use_domains.search() {
                search.extend(domains.iter().cloned());
            }
            if use6.use_ntp {
                ntp.extend(dhcp6.ntp().iter().cloned());
            }
            state.push_str(&dhcp6_line(&link.facts.name, dhcp6));
        }
        state.push_str(&state_line(link, lease));
        if link.file.accepts_ra() {
            let ra: Vec<String> = link.ra_dns.servers().map(|s| s.to_string()).collect();
            state.push_str(&format!(
                "{} ra dns {}\n",
                link.facts.name,
                if ra.is_empty() {
                    "-".to_string()
                } else {
                    ra.join(",")
                }
            ));
        }
    }
    let servers = output::order_nameservers(&servers);
    dedup(&mut search);
    dedup(&mut ntp);
    let ntp: String = ntp.iter().map(|s| format!("{s}\n")).collect();
    let resolv = opts.run_dir.join("resolv.conf");
    let results = [
        output::write_atomic(&resolv, &output::render_resolv(&servers, &search)),
        output::write_atomic(&opts.run_dir.join("state"), &state),
        output::write_atomic(&opts.run_dir.join("ntp-servers"), &ntp),
    ];
    for e in results.into_iter().filter_map(Result::err) {
        eprintln!("berth-networkd: {e}");
    }
    if let Some(etc) = &opts.etc_resolv_conf {
        if let Err(e) = output::symlink_atomic(etc, &resolv) {
            eprintln!("berth-networkd: {e}");
        }
    }
}

/// `eth0 dhcp6 2001:db8::105/128 valid 3600s`, or for a stateless client
/// `eth0 dhcp6 information dns 2001:db8::53` (`-` for none, `waiting` before a REPLY).
fn dhcp6_line(name: &str, dhcp6: &Dhcp6) -> String {
    match dhcp6 {
        Dhcp6::Stateful(c) => match c.lease() {
            Some(l) => format!("{name} dhcp6 {}/128 valid {}s\n", l.address, l.valid),
            None => format!("{name} dhcp6 waiting\n"),
        },
        Dhcp6::Stateless(c) => match c.info() {
            Some(info) if info.dns.is_empty() => format!("{name} dhcp6 information dns -\n"),
            Some(info) => {
                let dns: Vec<String> = info.dns.iter().map(ToString::to_string).collect();
                format!("{name} dhcp6 information dns {}\n", dns.join(","))
            }
            None => format!("{name} dhcp6 information waiting\n"),
        },
    }
}

/// `eth0 bound 10.0.0.5/32 via 10.0.0.1 mtu 1460 lease 3600s` (one line per link).
fn state_line(link: &Link, lease: Option<&Lease>) -> String {
    let name = &link.facts.name;
    match (lease, &link.client) {
        (Some(l), _) => {
            let gw = plan::lease_routes(l, &link.file.dhcpv4)
                .iter()
                .find(|r| r.destination.len == 0)
                .and_then(|r| r.gateway)
                .map_or("none".to_string(), |g| g.to_string());
            let mtu = l.mtu.map_or("-".to_string(), |m| m.to_string());
            format!(
                "{name} dhcp {} via {gw} mtu {mtu} server {} lease {}s\n",
                l.address, l.server, l.lease_time
            )
        }
        (None, Some(_)) => format!("{name} dhcp waiting\n"),
        (None, None) => {
            let addrs: Vec<String> = link
                .file
                .addresses
                .iter()
                .map(ToString::to_string)
                .collect();
            format!("{name} static {}\n", addrs.join(","))
        }
    }
}

fn dedup<T: PartialEq + Clone>(items: &mut Vec<T>) {
    let mut seen: Vec<T> = Vec::new();
    items.retain(|i| {
        let new = !seen.contains(i);
        if new {
            seen.push(i.clone());
        }
        new
    });
}
