//! The decisions on links that appear and disappear after start, through the recording
//! fakes: a sysfs tree in a temporary folder, [`FakeWatch`]'s notifications and
//! [`FakeNet`]'s record of what would have been asked of the kernel.
//!
//! The link names exist on no host (`berthhp*`), so the DHCP and RA sockets the daemon
//! tries to open for them fail (and are logged) instead of touching a real NIC.

use std::time::{Duration, Instant};

use super::hotplug::{self, Known};
use super::report::write_outputs;
use super::*;
use crate::dhcp::State;
use crate::sys::fake::{FakeNet, FakeWatch};
use crate::sys::LinkEvent;

struct World {
    dir: tempfile::TempDir,
    opts: Options,
    known: Known,
    links: Vec<Link>,
    net: FakeNet,
    epoch: Instant,
}

impl World {
    /// No link yet; `files` (name, text) in the one config folder.
    fn new(files: &[(&str, &str)]) -> World {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("network");
        std::fs::create_dir_all(&config).unwrap();
        for (name, text) in files {
            std::fs::write(config.join(name), text).unwrap();
        }
        std::fs::create_dir_all(dir.path().join("sys")).unwrap();
        std::fs::create_dir_all(dir.path().join("run")).unwrap();
        let opts = Options {
            config_dirs: vec![config],
            sys_class_net: dir.path().join("sys"),
            run_dir: dir.path().join("run"),
            etc_resolv_conf: None,
            cmdline: dir.path().join("cmdline"),
            metadata_hostname: dir.path().join("metadata-hostname"),
            set_hostname: false,
            online_timeout: Duration::from_secs(30),
        };
        let (files, warnings) = config::load(&opts.config_dirs);
        assert!(warnings.is_empty(), "{warnings:?}");
        World {
            dir,
            opts,
            known: Known::new(files),
            links: Vec::new(),
            net: FakeNet::default(),
            epoch: Instant::now(),
        }
    }

    /// A link in the fake sysfs, backed by a device when `physical`.
    fn plug(&self, name: &str, index: u32, physical: bool) {
        let link = self.dir.path().join("sys").join(name);
        std::fs::create_dir_all(&link).unwrap();
        std::fs::write(link.join("ifindex"), format!("{index}\n")).unwrap();
        std::fs::write(
            link.join("address"),
            format!("52:54:00:12:34:{index:02x}\n"),
        )
        .unwrap();
        std::fs::write(link.join("type"), "1\n").unwrap();
        if physical {
            std::fs::create_dir_all(link.join("device")).unwrap();
        }
    }

    fn unplug(&self, name: &str) {
        std::fs::remove_dir_all(self.dir.path().join("sys").join(name)).unwrap();
    }

    /// Hands `events` to the daemon's handler; true when it changed something.
    fn notify(&mut self, events: Vec<LinkEvent>) -> bool {
        let mut watch = FakeWatch::with(events);
        hotplug::on_events(
            &self.opts,
            &mut self.net,
            &mut watch,
            &mut self.known,
            &mut self.links,
            self.epoch,
        )
    }

    fn names(&self) -> Vec<&str> {
        self.links.iter().map(|l| l.facts.name.as_str()).collect()
    }

    fn read(&self, file: &str) -> String {
        std::fs::read_to_string(self.opts.run_dir.join(file)).unwrap_or_default()
    }
}

fn new(index: u32, name: &str) -> LinkEvent {
    LinkEvent::New {
        index,
        name: name.into(),
    }
}

fn removed(index: u32, name: &str) -> LinkEvent {
    LinkEvent::Removed {
        index,
        name: name.into(),
    }
}

#[test]
fn a_physical_link_that_appears_is_started_as_one_found_at_start() {
    let mut w = World::new(&[]);
    w.plug("berthhp1", 7, true);
    assert!(w.notify(vec![new(7, "berthhp1")]));
    assert_eq!(w.names(), ["berthhp1"]);
    // The built-in default, as at start: RAs taken (set before the link is up), the link
    // up, DHCPv4 wanted (its sockets cannot open on a link that does not exist).
    assert_eq!(
        w.net.calls,
        [
            "sysctl net.ipv6.conf.berthhp1.autoconf=1",
            "sysctl net.ipv6.conf.berthhp1.accept_ra=2",
            "up 7",
        ]
    );
    assert!(w.links[0].file.dhcp.v4());
    assert_eq!(w.links[0].facts.mac, Some([0x52, 0x54, 0, 0x12, 0x34, 7]));

    // Its own up and carrier changes come as RTM_NEWLINK too: nothing more is done.
    w.net.calls.clear();
    assert!(!w.notify(vec![new(7, "berthhp1"), new(7, "berthhp1")]));
    assert!(w.net.calls.is_empty(), "{:?}", w.net.calls);
    assert_eq!(w.names(), ["berthhp1"]);
}

#[test]
fn a_link_matched_by_a_file_gets_the_files_configuration() {
    let file = "[Match]\nName=berthhp*\n\n[Network]\nDHCP=no\nAddress=10.9.0.5/24\nGateway=10.9.0.1\nIPv6AcceptRA=no\n";
    let mut w = World::new(&[("50-hp.network", file)]);
    w.plug("berthhp2", 8, true);
    assert!(w.notify(vec![new(8, "berthhp2")]));
    assert_eq!(
        w.net.calls,
        [
            "sysctl net.ipv6.conf.berthhp2.accept_ra=0",
            "up 8",
            "add-addr 8 10.9.0.5/24",
            "add-route 8 0.0.0.0/0 via 10.9.0.1",
        ]
    );
    assert!(w.links[0].client.is_none(), "DHCP=no");
}

#[test]
fn virtual_links_and_links_a_file_leaves_alone_are_not_managed() {
    let file = "[Match]\nName=berthhp3\n\n[Network]\nDHCP=no\n";
    let mut w = World::new(&[("50-off.network", file)]);
    w.plug("berthveth0", 9, false);
    w.plug("berthhp3", 10, true);
    // Announced before sysfs has it, or gone again: nothing to match yet.
    assert!(!w.notify(vec![
        new(9, "berthveth0"),
        new(10, "berthhp3"),
        new(11, "berthhp4")
    ]));
    assert!(w.names().is_empty());
    assert!(w.net.calls.is_empty(), "{:?}", w.net.calls);
    // And their removal is no business of the daemon's.
    assert!(!w.notify(vec![removed(9, "berthveth0"), removed(10, "berthhp3")]));
}

#[test]
fn a_removed_link_stops_its_client_and_leaves_resolv_conf_and_the_state() {
    let dns = "[Match]\nName=berthhp5\n\n[Network]\nDHCP=yes\nDNS=10.9.9.9\n";
    let mut w = World::new(&[("50-dns.network", dns)]);
    w.plug("berthhp5", 12, true);
    w.plug("berthhp6", 13, true);
    assert!(w.notify(vec![new(12, "berthhp5"), new(13, "berthhp6")]));
    assert_eq!(w.names(), ["berthhp5", "berthhp6"]);
    // As if DHCP had run on the first: a bound client.
    let (client, _) = crate::dhcp::tests::bound();
    w.links[0].client = Some(client);
    write_outputs(&w.opts, &w.links);
    assert!(w.read("resolv.conf").contains("nameserver 10.9.9.9"));
    assert!(w.read("state").contains("berthhp5 dhcp 10.128.0.10/32"));

    w.net.calls.clear();
    w.unplug("berthhp5");
    let gone = hotplug::remove(&mut w.links, 12, Duration::from_secs(20)).unwrap();
    assert_eq!(
        gone.client.as_ref().map(|c| c.state()),
        Some(&State::Stopped)
    );
    assert!(gone.udp.is_none() && gone.raw.is_none() && gone.ra_socket.is_none());
    // The kernel took the address and routes with the link: nothing is asked of it.
    assert!(w.net.calls.is_empty(), "{:?}", w.net.calls);
    assert_eq!(w.names(), ["berthhp6"]);
    write_outputs(&w.opts, &w.links);
    assert!(
        !w.read("resolv.conf").contains("10.9.9.9"),
        "{}",
        w.read("resolv.conf")
    );
    assert!(!w.read("state").contains("berthhp5"), "{}", w.read("state"));
    assert!(w.read("state").contains("berthhp6"), "{}", w.read("state"));

    // Through a notification; a second one for the same link changes nothing.
    w.unplug("berthhp6");
    assert!(w.notify(vec![removed(13, "berthhp6")]));
    assert!(!w.notify(vec![removed(13, "berthhp6")]));
    assert!(w.names().is_empty());
    assert!(w.net.calls.is_empty(), "{:?}", w.net.calls);
}

#[test]
fn lost_notifications_are_made_up_for_by_listing_the_links() {
    let mut w = World::new(&[]);
    w.plug("berthhp7", 14, true);
    assert!(w.notify(vec![new(14, "berthhp7")]));
    // berthhp7 went and berthhp8 came while the socket's buffer was full.
    w.unplug("berthhp7");
    w.plug("berthhp8", 15, true);
    assert!(w.notify(vec![LinkEvent::Lost]));
    assert_eq!(w.names(), ["berthhp8"]);
    assert!(
        w.net.calls.contains(&"up 15".to_string()),
        "{:?}",
        w.net.calls
    );
}

#[test]
fn a_link_index_reused_after_removal_is_a_new_link() {
    let mut w = World::new(&[]);
    w.plug("berthhp9", 16, true);
    assert!(w.notify(vec![new(16, "berthhp9")]));
    w.net.calls.clear();
    assert!(w.notify(vec![removed(16, "berthhp9"), new(16, "berthhp9")]));
    assert_eq!(w.names(), ["berthhp9"]);
    assert!(
        w.net.calls.contains(&"up 16".to_string()),
        "{:?}",
        w.net.calls
    );
}

/// `[IPv6AcceptRA]` and `[DHCPv6]` `UseDNS=`/`UseDomains=` decide which of the RA's and
/// the stateless DHCPv6 answer's servers and domains reach resolv.conf.
#[test]
fn use_dns_and_use_domains_of_ra_and_dhcpv6_are_honoured() {
    let cases = [
        // (the sections' text, servers wanted, search line wanted)
        (
            "",
            vec!["2001:db8::5", "2001:db8::53", "2001:db8::54"],
            Some("search ra.example corp.example example"),
        ),
        (
            "[IPv6AcceptRA]\nUseDNS=no\nUseDomains=no\n",
            vec!["2001:db8::53", "2001:db8::54"],
            Some("search corp.example example"),
        ),
        (
            "[IPv6AcceptRA]\nUseDomains=route\n[DHCPv6]\nUseDNS=no\nUseDomains=no\n",
            vec!["2001:db8::5"],
            None,
        ),
    ];
    for (sections, servers, search) in cases {
        let text = format!("[Match]\nName=berthhp9\n\n[Network]\nDHCP=ipv6\n\n{sections}");
        let mut w = World::new(&[("50-v6.network", &text)]);
        w.plug("berthhp9", 19, true);
        assert!(w.notify(vec![new(19, "berthhp9")]));
        let link = &mut w.links[0];
        let ra = crate::ra::Advert {
            other: true,
            dns_servers: vec![(600, vec!["2001:db8::5".parse().unwrap()])],
            search_domains: vec![(600, vec!["ra.example".into()])],
            ..Default::default()
        };
        assert!(link.ra_dns.learn(Duration::ZERO, &ra));
        link.dhcp6 = Some(Dhcp6::Stateless(crate::dhcp6::tests_stateless::informed()));
        write_outputs(&w.opts, &w.links);
        let resolv = w.read("resolv.conf");
        let got: Vec<&str> = resolv
            .lines()
            .filter_map(|l| l.strip_prefix("nameserver "))
            .collect();
        assert_eq!(got, servers, "{sections}: {resolv}");
        assert_eq!(
            resolv.lines().find(|l| l.starts_with("search")),
            search,
            "{sections}: {resolv}"
        );
        assert!(
            w.read("state")
                .contains("berthhp9 dhcp6 information dns 2001:db8::53,2001:db8::54"),
            "{}",
            w.read("state")
        );
        // Option 56 (no file here turns UseNTP= off).
        assert_eq!(w.read("ntp-servers"), "2001:db8::123\ntime.example\n");
    }
}

/// `ntp-servers`, berth-timesync's list: the files' `NTP=` then the leases' option 42,
/// without duplicates; `UseNTP=no` leaves the lease's out.
#[test]
fn ntp_servers_file_from_network_files_and_leases() {
    for (use_ntp, want) in [
        ("", "time.example.com\n169.254.169.254\n"),
        ("[DHCPv4]\nUseNTP=no\n", "time.example.com\n"),
    ] {
        let text = format!(
            "[Match]\nName=berthhp7\n\n[Network]\nDHCP=yes\nNTP=time.example.com\n\n{use_ntp}"
        );
        let mut w = World::new(&[("50-ntp.network", &text)]);
        w.plug("berthhp7", 17, true);
        assert!(w.notify(vec![new(17, "berthhp7")]));
        let (client, _) = crate::dhcp::tests::bound();
        w.links[0].client = Some(client);
        write_outputs(&w.opts, &w.links);
        assert_eq!(w.read("ntp-servers"), want, "{use_ntp}");
    }
    // No link, no server: an empty list (berth-timesync then takes the cloud's source).
    let w = World::new(&[]);
    write_outputs(&w.opts, &w.links);
    assert_eq!(w.read("ntp-servers"), "");
}
