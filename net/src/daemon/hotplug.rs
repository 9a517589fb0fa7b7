//! Links that appear or disappear while the daemon runs (a NIC attached to or detached
//! from a running VM), from the kernel's link notifications.
//!
//! A link never seen before is matched against the `.network` files read at start, exactly
//! as the links found at start are ([`super::managing_file`]), and started the same way
//! ([`super::start_link`]: RA, up, static configuration, DHCP). A managed link that is
//! removed has its clients stopped and is dropped, its sockets closed; its DNS servers
//! and state line go with the next rewrite of the outputs. Nothing is released or
//! deconfigured over netlink for it: the kernel took its addresses and routes with it.
//!
//! `RTM_NEWLINK` also comes for every change of an existing link (up, carrier, MTU), so
//! the index of every link seen, managed or not, is remembered and only a new index (or a
//! new name for an index) is looked at. When notifications were lost, the links are listed
//! again and compared with what is known.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::{managing_file, start_link, Link, Options};
use crate::config::{LinkFacts, NetworkFile};
use crate::dhcp::Event;
use crate::dhcp6::Event6;
use crate::sys::{self, LinkEvent, LinkWatch, Net};

/// The `.network` files read at start and every link seen since, by index.
pub(super) struct Known {
    pub(super) files: Vec<NetworkFile>,
    names: BTreeMap<u32, String>,
}

impl Known {
    pub(super) fn new(files: Vec<NetworkFile>) -> Known {
        Known {
            files,
            names: BTreeMap::new(),
        }
    }

    pub(super) fn seen(&mut self, facts: &LinkFacts) {
        self.names.insert(facts.index, facts.name.clone());
    }
}

/// Reads the waiting notifications and carries them out; true when the set of links or
/// their configuration changed (the outputs are to be rewritten).
pub(super) fn on_events(
    opts: &Options,
    net: &mut dyn Net,
    watch: &mut dyn LinkWatch,
    known: &mut Known,
    links: &mut Vec<Link>,
    epoch: Instant,
) -> bool {
    let events = match watch.events() {
        Ok(events) => events,
        Err(e) => {
            eprintln!("berth-networkd: {e}");
            return false;
        }
    };
    let mut changed = false;
    for event in events {
        changed |= match event {
            LinkEvent::New { index, name } => {
                appeared(opts, net, known, links, index, &name, epoch)
            }
            LinkEvent::Removed { index, .. } => {
                known.names.remove(&index);
                remove(links, index, epoch.elapsed()).is_some()
            }
            LinkEvent::Lost => {
                eprintln!("berth-networkd: link notifications were lost; listing the links again");
                relist(opts, net, known, links, epoch)
            }
        };
    }
    changed
}

/// A `RTM_NEWLINK` for link `index`, now called `name`: started if it is new and managed.
fn appeared(
    opts: &Options,
    net: &mut dyn Net,
    known: &mut Known,
    links: &mut Vec<Link>,
    index: u32,
    name: &str,
    epoch: Instant,
) -> bool {
    match known.names.get(&index) {
        Some(old) if old == name => return false,
        Some(old) => {
            if let Some(link) = links.iter_mut().find(|l| l.facts.index == index) {
                // Already configured: keeps its file, under its new name.
                eprintln!("berth-networkd: {old} renamed {name}");
                link.facts.name = name.to_string();
                known.names.insert(index, name.to_string());
                return true;
            }
        }
        None => {}
    }
    known.names.insert(index, name.to_string());
    // sysfs has the link before the kernel announces it.
    let facts = match sys::link(&opts.sys_class_net, name) {
        Ok(Some(facts)) if facts.index == index => facts,
        // Gone or renamed again already: the next notification says.
        Ok(_) => return false,
        Err(e) => {
            eprintln!("berth-networkd: {name}: {e}");
            return false;
        }
    };
    let Some(file) = managing_file(net, &known.files, &facts) else {
        return false;
    };
    eprintln!("berth-networkd: {name} appeared");
    match start_link(opts, net, facts, file, epoch) {
        Some(link) => {
            links.push(link);
            true
        }
        None => false,
    }
}

/// Drops the managed link `index`, its clients stopped (nothing is sent or deconfigured:
/// the link and what the kernel had on it are gone); returns it, `None` if it was not
/// managed.
pub(super) fn remove(links: &mut Vec<Link>, index: u32, now: Duration) -> Option<Link> {
    let position = links.iter().position(|l| l.facts.index == index)?;
    let mut link = links.remove(position);
    eprintln!("berth-networkd: {} removed", link.facts.name);
    if let Some(client) = link.client.as_mut() {
        // The RELEASE and the deconfiguration it asks for are moot.
        client.handle(now, Event::Stop);
        link.log("DHCP client stopped");
    }
    if let Some(client) = link.dhcp6.as_mut() {
        client.handle(now, Event6::Stop);
        link.log("DHCPv6 client stopped");
    }
    link.udp = None;
    link.raw = None;
    link.ra_socket = None;
    link.udp6 = None;
    Some(link)
}

/// After lost notifications: the links of sysfs compared with what is known, the gone
/// removed and the new started.
fn relist(
    opts: &Options,
    net: &mut dyn Net,
    known: &mut Known,
    links: &mut Vec<Link>,
    epoch: Instant,
) -> bool {
    let now = match sys::links(&opts.sys_class_net) {
        Ok(now) => now,
        Err(e) => {
            eprintln!("berth-networkd: {e}");
            return false;
        }
    };
    let mut changed = false;
    let gone: Vec<u32> = known
        .names
        .keys()
        .filter(|index| !now.iter().any(|f| f.index == **index))
        .copied()
        .collect();
    for index in gone {
        known.names.remove(&index);
        changed |= remove(links, index, epoch.elapsed()).is_some();
    }
    for facts in now {
        changed |= appeared(opts, net, known, links, facts.index, &facts.name, epoch);
    }
    changed
}
