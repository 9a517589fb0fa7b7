//! A link's IPv6 beyond what the kernel does itself: its router advertisements read for
//! DNS and for the M and O flags, and the DHCPv6 client those flags start (stateful on M,
//! stateless on O without M; RFC 4861 §4.2, RFC 8415 §18.2.6), driven like the DHCPv4 one.

use std::time::{Duration, Instant};

use dhcproto::Encodable;

use super::{xid_seed, Link};
use crate::dhcp6::stateless::INF_MAX_DELAY;
use crate::dhcp6::{Action6, Client6, Dhcp6, Event6, InfoClient};
use crate::plan;
use crate::ra::Advert;
use crate::sys::socket::{RaLink, Udp6Link};
use crate::sys::Net;

/// Sets the link's RA sysctls and opens its RA socket, before the link comes up so that
/// the answer to the kernel's first router solicitation is seen.
pub(super) fn start_ra(net: &mut dyn Net, link: &mut Link) {
    let accept = link.file.accepts_ra();
    if let Err(e) = plan::accept_ra(net, &link.facts.name, accept) {
        link.log(&format!("IPv6 router advertisements not set up: {e}"));
        return;
    }
    if !accept {
        return;
    }
    match RaLink::open(&link.facts.name) {
        Ok(socket) => link.ra_socket = Some(socket),
        Err(e) => link.log(&format!("no DNS from router advertisements: {e}")),
    }
}

/// Reads the router advertisements waiting on the link's ICMPv6 socket and learns their
/// DNS options; true when the link's DNS changed.
pub(super) fn receive_ra(
    net: &mut dyn Net,
    link: &mut Link,
    epoch: Instant,
    buf: &mut [u8],
) -> bool {
    let mut changed = false;
    for _ in 0..64 {
        let Some(socket) = &link.ra_socket else {
            return changed;
        };
        let got = match socket.recv(buf) {
            Ok(Some(got)) => got,
            Ok(None) => break,
            Err(e) => {
                link.log(&format!("receiving a router advertisement: {e}"));
                break;
            }
        };
        let icmp = buf.get(..got.len).unwrap_or(buf);
        let now = epoch.elapsed();
        match link.ra_dns.receive(now, icmp, got.source, got.hop_limit) {
            Ok((learned, ra)) => {
                changed |= on_flags(net, link, now, &ra);
                if !learned {
                    continue;
                }
                let servers: Vec<String> = link.ra_dns.servers().map(|s| s.to_string()).collect();
                let domains: Vec<&str> = link.ra_dns.domains().collect();
                link.log(&format!(
                    "DNS from router advertisements: servers [{}] search [{}]",
                    servers.join(" "),
                    domains.join(" ")
                ));
                changed = true;
            }
            Err(e) => link.log(&format!("ignored a router advertisement: {e}")),
        }
    }
    link.refresh_ipv6(net);
    changed
}

/// What an RA's flags ask of a link whose `DHCP=` allows DHCPv6: M starts the stateful
/// client (replacing a stateless one, whose DNS the stateful one also asks for); O alone
/// starts the stateless one. A running client is left as it is otherwise.
fn on_flags(net: &mut dyn Net, link: &mut Link, now: Duration, ra: &Advert) -> bool {
    if !link.file.dhcp.v6() {
        return false;
    }
    let stateful = link.dhcp6.as_ref().map(Dhcp6::is_stateful);
    match (ra.managed, ra.other, stateful) {
        (true, _, None | Some(false)) => {
            let changed = stop_dhcp6(net, link, now);
            start_dhcp6(net, link, now, true) | changed
        }
        (false, true, None) => start_dhcp6(net, link, now, false),
        _ => false,
    }
}

/// Stops and drops the link's DHCPv6 client; true when there was one, since what it had
/// learned (a stateless client's DNS) leaves the outputs with it.
fn stop_dhcp6(net: &mut dyn Net, link: &mut Link, now: Duration) -> bool {
    drive6(net, link, now, Event6::Stop);
    link.dhcp6.take().is_some()
}

/// Starts the link's DHCPv6 client: stateful (an RA had the M flag) or stateless (O only).
fn start_dhcp6(net: &mut dyn Net, link: &mut Link, now: Duration, stateful: bool) -> bool {
    let Some(mac) = link.facts.mac else {
        link.log("no hardware address; DHCPv6 not started");
        return false;
    };
    if link.udp6.is_none() {
        match Udp6Link::open(&link.facts.name, link.facts.index) {
            Ok(udp6) => link.udp6 = Some(udp6),
            Err(e) => {
                link.log(&format!("DHCPv6 not started: {e}"));
                return false;
            }
        }
    }
    let seed = xid_seed(&mac);
    link.dhcp6 = Some(if stateful {
        link.log("router advertisement with the M flag: starting DHCPv6");
        let iaid = u32::from_be_bytes([mac[2], mac[3], mac[4], mac[5]]);
        Dhcp6::Stateful(Client6::new(mac, iaid, seed))
    } else {
        link.log("router advertisement with the O flag only: asking DHCPv6 for DNS (Information-request)");
        // The random delay before the first Information-request, from the seed's top bits.
        let delay = INF_MAX_DELAY.mul_f64(f64::from(seed >> 16) / 65536.0);
        Dhcp6::Stateless(InfoClient::new(mac, seed, delay))
    });
    drive6(net, link, now, Event6::Start)
}

/// Reads the DHCPv6 datagrams waiting for `link`'s client.
pub(super) fn receive6(net: &mut dyn Net, link: &mut Link, epoch: Instant, buf: &mut [u8]) -> bool {
    let mut changed = false;
    for _ in 0..64 {
        let Some(udp6) = &link.udp6 else {
            return changed;
        };
        let n = match udp6.recv(buf) {
            Ok(Some(n)) => n,
            Ok(None) => break,
            Err(e) => {
                link.log(&format!("receiving DHCPv6: {e}"));
                break;
            }
        };
        let payload = buf.get(..n).unwrap_or_default().to_vec();
        changed |= drive6(net, link, epoch.elapsed(), Event6::Packet(&payload));
    }
    changed
}

/// Feeds `event` to the link's DHCPv6 client and carries out the actions; true when the
/// link's configuration or DNS changed.
pub(super) fn drive6(net: &mut dyn Net, link: &mut Link, now: Duration, event: Event6<'_>) -> bool {
    let Some(client) = link.dhcp6.as_mut() else {
        return false;
    };
    let actions = client.handle(now, event);
    let mut changed = false;
    for action in actions {
        match action {
            Action6::Log(line) => link.log(&line),
            Action6::Send(message) => {
                let Some(udp6) = &link.udp6 else { continue };
                let sent = message
                    .to_vec()
                    .map_err(|e| format!("encoding a DHCPv6 message: {e}"))
                    .and_then(|bytes| {
                        udp6.send(&bytes)
                            .map_err(|e| format!("sending DHCPv6 to ff02::1:2: {e}"))
                    });
                if let Err(e) = sent {
                    link.log(&e);
                }
            }
            Action6::Configure(lease) => {
                if let Err(e) = plan::apply_lease6(net, link.facts.index, &lease) {
                    link.log(&format!("applying the DHCPv6 lease: {e}"));
                }
                changed = true;
            }
            Action6::Deconfigure(lease) => {
                if let Err(e) = plan::remove_lease6(net, link.facts.index, &lease) {
                    link.log(&format!("removing the DHCPv6 lease: {e}"));
                }
                changed = true;
            }
            Action6::Inform(_) => changed = true,
        }
    }
    changed
}
