//! The daemon: one poll loop over every link's DHCP and router advertisement sockets, the
//! clients' deadlines, the RA DNS lifetimes, the kernel's link notifications and SIGTERM,
//! applying what the state machines decide.
//!
//! Links are listed once at start; after that the kernel's notifications ([`hotplug`])
//! say when one appears (a NIC attached to a running VM), which is then matched and
//! started exactly as the links found at start, and when one disappears, whose clients
//! are stopped and whose DNS and state lines go.
//!
//! Errors on one link (a socket that will not open, a route the kernel refuses) are
//! logged and that link is left as it is; the daemon itself stops only on SIGTERM or
//! SIGINT, after releasing its leases. `READY=1` is sent once a link is online by
//! [`crate::online`] (IPv4, or IPv6 on a link without DHCPv4), or when the online timeout
//! passes (with a line saying so), so that
//! `network-online.target` never blocks the boot for ever.

use std::net::Ipv4Addr;
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use dhcproto::Encodable;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};

use crate::config::{self, LinkFacts, NetworkFile};

mod hotplug;
mod ipv6;
mod report;
#[cfg(test)]
mod tests;
use crate::dhcp::{frame, Action, Client, Destination, Event};
use crate::dhcp6::{Dhcp6, Event6};
use crate::online::{self, Ipv6Status, LinkState};
use crate::plan;
use crate::ra::RaDns;
use crate::sys::socket::{PacketLink, RaLink, Udp6Link, UdpLink, CLIENT_PORT};
use crate::sys::{self, LinkEvents, Net, SysError};
use hotplug::Known;
use ipv6::{drive6, receive6, receive_ra, start_ra};
use report::{hostname, write_outputs};

/// How often the IPv6 state is asked for while the node is not online yet.
const IPV6_POLL: Duration = Duration::from_secs(1);

/// Where the daemon reads and writes; every path can be moved for tests.
#[derive(Debug, Clone)]
pub struct Options {
    /// `.network` folders, lowest precedence first.
    pub config_dirs: Vec<PathBuf>,
    pub sys_class_net: PathBuf,
    /// Holds `resolv.conf`, `hostname` and `state`.
    pub run_dir: PathBuf,
    /// Made a link to `<run_dir>/resolv.conf`; `None` leaves it alone.
    pub etc_resolv_conf: Option<PathBuf>,
    pub cmdline: PathBuf,
    pub metadata_hostname: PathBuf,
    pub set_hostname: bool,
    pub online_timeout: Duration,
}

/// Why the daemon could not run at all.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("opening netlink: {0}")]
    Netlink(#[source] SysError),
    #[error("listing links: {0}")]
    Links(#[source] SysError),
    #[error("{what}: {source}")]
    Signals {
        what: &'static str,
        source: nix::Error,
    },
}

/// One managed link.
struct Link {
    facts: LinkFacts,
    file: NetworkFile,
    client: Option<Client>,
    udp: Option<UdpLink>,
    raw: Option<PacketLink>,
    /// A default route from the static file is in place.
    static_online: bool,
    /// The ICMPv6 socket reading router advertisements, when the link accepts them.
    ra_socket: Option<RaLink>,
    /// DNS servers and search domains from the RAs.
    ra_dns: RaDns,
    /// The kernel's IPv6 state of the link, as last asked.
    ipv6: Ipv6Status,
    /// The DHCPv6 client, started by an RA with the M flag (stateful) or the O flag alone
    /// (stateless).
    dhcp6: Option<Dhcp6>,
    udp6: Option<Udp6Link>,
}

impl Link {
    fn log(&self, message: &str) {
        eprintln!("berth-networkd: {}: {message}", self.facts.name);
    }

    fn state(&self) -> LinkState {
        let ipv4_online = self.static_online
            || self
                .client
                .as_ref()
                .and_then(|c| c.lease())
                .is_some_and(|lease| {
                    plan::lease_routes(lease, &self.file.dhcpv4)
                        .iter()
                        .any(|r| r.destination.len == 0 && r.gateway.is_some())
                });
        LinkState {
            ipv4_online,
            dhcpv4: self.file.dhcp.v4(),
            ipv6: self.ipv6,
        }
    }

    /// Asks the kernel for the link's IPv6 state (SLAAC address, RA default route).
    fn refresh_ipv6(&mut self, net: &mut dyn Net) {
        if !self.file.accepts_ra() {
            return;
        }
        match net.ipv6_status(self.facts.index) {
            Ok(status) => self.ipv6 = status,
            Err(e) => self.log(&format!("reading the IPv6 state: {e}")),
        }
    }
}

/// Runs until SIGTERM or SIGINT.
pub fn run(opts: &Options) -> Result<(), DaemonError> {
    let mut signals = SigSet::empty();
    signals.add(Signal::SIGTERM);
    signals.add(Signal::SIGINT);
    signals
        .thread_block()
        .map_err(|source| DaemonError::Signals {
            what: "blocking SIGTERM",
            source,
        })?;
    let sigfd = SignalFd::with_flags(&signals, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
        .map_err(|source| DaemonError::Signals {
            what: "signalfd",
            source,
        })?;

    let mut net = sys::Netlink::open().map_err(DaemonError::Netlink)?;
    // Subscribed before the links are listed, so that none appears unseen in between.
    let mut watch = match LinkEvents::open() {
        Ok(watch) => Some(watch),
        Err(e) => {
            eprintln!("berth-networkd: {e}; links that appear after start are not configured");
            None
        }
    };
    let epoch = Instant::now();
    let (mut links, mut known) = start_links(opts, &mut net, epoch)?;
    write_outputs(opts, &links);
    let mut ready = false;
    let mut buf = vec![0u8; 4096];
    loop {
        let now = epoch.elapsed();
        if !ready {
            for link in links.iter_mut() {
                link.refresh_ipv6(&mut net);
            }
            if let Some(state) = links
                .iter()
                .map(|l| (l, l.state()))
                .find(|(_, s)| online::online(s))
            {
                let msg = format!(
                    "online: {} has {} after {:.3}s",
                    state.0.facts.name,
                    online::describe(&state.1),
                    now.as_secs_f64()
                );
                eprintln!("berth-networkd: {msg}");
                notify(&format!("READY=1\nSTATUS={msg}"));
                ready = true;
            } else if now >= opts.online_timeout {
                let msg = format!(
                    "timed out after {}s waiting for a link with an address and a default route; going on without",
                    opts.online_timeout.as_secs()
                );
                eprintln!("berth-networkd: {msg}");
                notify(&format!("READY=1\nSTATUS={msg}"));
                ready = true;
            }
        }
        let mut deadline = links
            .iter()
            .filter_map(|l| l.client.as_ref()?.deadline())
            .chain(links.iter().filter_map(|l| l.ra_dns.deadline()))
            .chain(links.iter().filter_map(|l| l.dhcp6.as_ref()?.deadline()))
            .min();
        if !ready {
            // Until online, the IPv6 state (which the kernel changes on its own) is asked
            // for at least every second.
            let mut wake = opts.online_timeout;
            if links.iter().any(|l| l.file.accepts_ra()) {
                wake = wake.min(now + IPV6_POLL);
            }
            deadline = Some(deadline.map_or(wake, |d| d.min(wake)));
        }
        let timeout = match deadline {
            None => PollTimeout::NONE,
            Some(d) => {
                let ms = d.saturating_sub(now).as_millis().min(i32::MAX as u128) as i32;
                PollTimeout::try_from(ms.max(1)).unwrap_or(PollTimeout::MAX)
            }
        };
        // Which (link, socket) each poll entry is; socket 0 = UDP, 1 = packet, 2 = ICMPv6,
        // 3 = DHCPv6.
        let mut owners = Vec::new();
        let mut fds = vec![PollFd::new(sigfd.as_fd(), PollFlags::POLLIN)];
        if let Some(watch) = &watch {
            fds.push(PollFd::new(watch.fd(), PollFlags::POLLIN));
        }
        let first_link_fd = fds.len();
        for (i, link) in links.iter().enumerate() {
            if let Some(udp) = &link.udp {
                fds.push(PollFd::new(udp.fd(), PollFlags::POLLIN));
                owners.push((i, 0));
            }
            if let Some(raw) = &link.raw {
                fds.push(PollFd::new(raw.fd(), PollFlags::POLLIN));
                owners.push((i, 1));
            }
            if let Some(ra) = &link.ra_socket {
                fds.push(PollFd::new(ra.fd(), PollFlags::POLLIN));
                owners.push((i, 2));
            }
            if let Some(udp6) = &link.udp6 {
                fds.push(PollFd::new(udp6.fd(), PollFlags::POLLIN));
                owners.push((i, 3));
            }
        }
        match poll(&mut fds, timeout) {
            Ok(_) | Err(nix::Error::EINTR) => {}
            Err(source) => {
                return Err(DaemonError::Signals {
                    what: "poll",
                    source,
                })
            }
        }
        let stop = fds[0].revents().is_some_and(|r| !r.is_empty());
        let link_events = first_link_fd == 2 && fds[1].revents().is_some_and(|r| !r.is_empty());
        let readable: Vec<(usize, u8)> = fds[first_link_fd..]
            .iter()
            .zip(&owners)
            .filter(|(fd, _)| fd.revents().is_some_and(|r| !r.is_empty()))
            .map(|(_, owner)| *owner)
            .collect();
        drop(fds);
        if stop {
            if let Ok(Some(info)) = sigfd.read_signal() {
                eprintln!(
                    "berth-networkd: signal {}: releasing leases and stopping",
                    info.ssi_signo
                );
            }
            for link in &mut links {
                drive(opts, &mut net, link, epoch.elapsed(), Event::Stop);
                drive6(&mut net, link, epoch.elapsed(), Event6::Stop);
            }
            write_outputs(opts, &links);
            return Ok(());
        }
        let mut changed = false;
        for (i, socket) in readable {
            changed |= match socket {
                2 => receive_ra(&mut net, &mut links[i], epoch, &mut buf),
                3 => receive6(&mut net, &mut links[i], epoch, &mut buf),
                _ => receive(opts, &mut net, &mut links[i], socket, epoch, &mut buf),
            };
        }
        // After the sockets' turn, since a link removed here shifts the indices above.
        if let Some(watch) = watch.as_mut().filter(|_| link_events) {
            changed |= hotplug::on_events(opts, &mut net, watch, &mut known, &mut links, epoch);
        }
        let now = epoch.elapsed();
        for link in &mut links {
            if link
                .dhcp6
                .as_ref()
                .and_then(Dhcp6::deadline)
                .is_some_and(|d| d <= now)
            {
                changed |= drive6(&mut net, link, now, Event6::Timeout);
            }
            if link.ra_dns.expire(now) {
                link.log("DNS from router advertisements expired");
                changed = true;
            }
            if link
                .client
                .as_ref()
                .and_then(Client::deadline)
                .is_some_and(|d| d <= now)
            {
                changed |= drive(opts, &mut net, link, now, Event::Timeout);
            }
        }
        if changed {
            write_outputs(opts, &links);
        }
    }
}

/// Brings up `lo` and every link a file (or the default) configures, and starts their
/// DHCP clients; also returns what is known of every link, for [`hotplug`].
fn start_links(
    opts: &Options,
    net: &mut sys::Netlink,
    epoch: Instant,
) -> Result<(Vec<Link>, Known), DaemonError> {
    let (files, warnings) = config::load(&opts.config_dirs);
    for w in warnings {
        eprintln!("berth-networkd: {w}");
    }
    let mut known = Known::new(files);
    let mut links = Vec::new();
    for facts in sys::links(&opts.sys_class_net).map_err(DaemonError::Links)? {
        known.seen(&facts);
        let Some(file) = managing_file(net, &known.files, &facts) else {
            continue;
        };
        links.extend(start_link(opts, net, facts, file, epoch));
    }
    Ok((links, known))
}

/// The file that configures `facts` (or the built-in default), `None` when the link is not
/// berth-networkd's to configure; `lo` is brought up here.
fn managing_file(
    net: &mut dyn Net,
    files: &[NetworkFile],
    facts: &LinkFacts,
) -> Option<NetworkFile> {
    if facts.kind == "loopback" {
        if let Err(e) = net.link_up(facts.index) {
            eprintln!("berth-networkd: {}: {e}", facts.name);
        }
        return None;
    }
    let file = config::choose(files, facts)
        .cloned()
        .unwrap_or_else(|| NetworkFile::builtin_default(facts.physical));
    file.manages().then_some(file)
}

/// Sets up one managed link: RA, up, the static part of `file`, DHCP. `None` when the link
/// would not come up.
fn start_link(
    opts: &Options,
    net: &mut dyn Net,
    facts: LinkFacts,
    file: NetworkFile,
    epoch: Instant,
) -> Option<Link> {
    let mut link = Link {
        facts,
        file,
        client: None,
        udp: None,
        raw: None,
        static_online: false,
        ra_socket: None,
        ra_dns: RaDns::default(),
        ipv6: Ipv6Status::default(),
        dhcp6: None,
        udp6: None,
    };
    link.log(&format!("configured by {}", link.file.path.display()));
    start_ra(net, &mut link);
    if let Err(e) = net.link_up(link.facts.index) {
        link.log(&e.to_string());
        return None;
    }
    match plan::apply_static(net, link.facts.index, &link.file) {
        Ok(()) => {
            link.static_online = !link.file.addresses.is_empty() && !link.file.gateways.is_empty()
        }
        Err(e) => link.log(&e.to_string()),
    }
    if link.file.dhcp.v4() {
        start_dhcp(opts, net, &mut link, epoch);
    }
    Some(link)
}

fn start_dhcp(opts: &Options, net: &mut dyn Net, link: &mut Link, epoch: Instant) {
    let Some(mac) = link.facts.mac else {
        link.log("no hardware address; DHCP not started");
        return;
    };
    match UdpLink::open(&link.facts.name) {
        Ok(udp) => link.udp = Some(udp),
        Err(e) => {
            link.log(&format!("DHCP not started: {e}"));
            return;
        }
    }
    // Listening below IP before the first DISCOVER goes out, so no early reply is lost.
    match PacketLink::open(&link.facts.name, link.facts.index) {
        Ok(raw) => link.raw = Some(raw),
        Err(e) => link.log(&e.to_string()),
    }
    link.client = Some(Client::new(mac, xid_seed(&mac)));
    drive(opts, net, link, epoch.elapsed(), Event::Start);
}

/// A transaction id seed that differs between boots and links.
pub(super) fn xid_seed(mac: &[u8; 6]) -> u32 {
    let mut seed = [0u8; 4];
    let random = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut seed));
    if random.is_err() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        seed = nanos.subsec_nanos().to_le_bytes();
    }
    u32::from_le_bytes(seed) ^ u32::from_le_bytes([mac[2], mac[3], mac[4], mac[5]])
}

/// Reads what is waiting on one socket of `link` and feeds the DHCP payloads to its client.
fn receive(
    opts: &Options,
    net: &mut sys::Netlink,
    link: &mut Link,
    socket: u8,
    epoch: Instant,
    buf: &mut [u8],
) -> bool {
    let mut changed = false;
    // A bounded batch, so one flooded link cannot starve the others.
    for _ in 0..64 {
        let got = match (socket, &link.udp, &link.raw) {
            (0, Some(udp), _) => udp.recv(buf),
            (1, _, Some(raw)) => raw.recv(buf),
            _ => return changed,
        };
        let n = match got {
            Ok(Some(n)) => n,
            Ok(None) => break,
            Err(e) => {
                link.log(&format!("receiving: {e}"));
                break;
            }
        };
        // While the packet socket is open it sees everything the UDP socket does.
        let payload = match socket {
            0 if link.raw.is_some() => continue,
            0 => &buf[..n],
            _ => match frame::udp_payload(&buf[..n], CLIENT_PORT) {
                Some(p) => p,
                None => continue,
            },
        };
        let payload = payload.to_vec();
        changed |= drive(opts, net, link, epoch.elapsed(), Event::Packet(&payload));
    }
    changed
}

/// Feeds `event` to the link's client and carries out the actions; true when the
/// link's configuration changed.
fn drive(
    opts: &Options,
    net: &mut dyn Net,
    link: &mut Link,
    now: Duration,
    event: Event<'_>,
) -> bool {
    let Some(client) = link.client.as_mut() else {
        return false;
    };
    let actions = client.handle(now, event);
    let unconfigured = client.unconfigured();
    let mut changed = false;
    for action in actions {
        match action {
            Action::Log(line) => link.log(&line),
            Action::Send { message, to } => send(link, &message, to),
            Action::Configure(lease) => {
                if let Err(e) = plan::apply_lease(net, link.facts.index, &lease, &link.file.dhcpv4)
                {
                    link.log(&format!("applying the lease: {e}"));
                }
                if link.file.dhcpv4.use_hostname {
                    hostname(opts, link, &lease);
                }
                changed = true;
            }
            Action::Deconfigure(lease) => {
                if let Err(e) = plan::remove_lease(net, link.facts.index, &lease, &link.file.dhcpv4)
                {
                    link.log(&format!("removing the lease: {e}"));
                }
                changed = true;
            }
        }
    }
    if unconfigured && link.raw.is_none() {
        match PacketLink::open(&link.facts.name, link.facts.index) {
            Ok(raw) => link.raw = Some(raw),
            Err(e) => link.log(&e.to_string()),
        }
    } else if !unconfigured {
        link.raw = None;
    }
    changed
}

fn send(link: &Link, message: &dhcproto::v4::Message, to: Destination) {
    let Some(udp) = &link.udp else { return };
    let bytes = match message.to_vec() {
        Ok(b) => b,
        Err(e) => return link.log(&format!("encoding a DHCP message: {e}")),
    };
    let ip = match to {
        Destination::Broadcast => Ipv4Addr::BROADCAST,
        Destination::Unicast(ip) => ip,
    };
    if let Err(e) = udp.send(&bytes, ip) {
        link.log(&format!("sending to {ip}: {e}"));
    }
}

/// Tells the service manager `state` (`READY=1\nSTATUS=…`) over `$NOTIFY_SOCKET`, if set.
fn notify(state: &str) {
    if let Err(e) = sd_notify::notify(&[sd_notify::NotifyState::Custom(state)]) {
        eprintln!("berth-networkd: telling the service manager {state:?}: {e}");
    }
}
