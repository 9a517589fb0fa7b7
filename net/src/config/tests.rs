//! `.network` parsing, matching and precedence, with the bad cases and a proptest.

use std::net::Ipv4Addr;
use std::path::Path;

use proptest::prelude::*;

use super::*;

fn link(name: &str, physical: bool) -> LinkFacts {
    LinkFacts {
        name: name.into(),
        index: 2,
        mac: Some([0x52, 0x54, 0, 1, 2, 3]),
        kind: "ether".into(),
        physical,
    }
}

#[test]
fn parses_the_keys_berth_reads() {
    let text = "\
# comment
[Match]
Name=eth* ens3
MACAddress=52:54:00:01:02:03
Type=ether

[Network]
DHCP=ipv4
Address=10.0.0.5/24
Gateway=10.0.0.1
IPv6AcceptRA=no
DNS=1.1.1.1 10.0.0.53
Domains=example.com ~corp.

[Route]
Destination=192.168.0.0/16
Gateway=10.0.0.254

[DHCPv4]
UseHostname=no
UseMTU=false
UseRoutes=yes
UseDNS=0
";
    let (f, warnings) = parse(Path::new("a.network"), text).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(f.matches.names, ["eth*", "ens3"]);
    assert_eq!(f.matches.macs, [[0x52, 0x54, 0, 1, 2, 3]]);
    assert_eq!(f.dhcp, DhcpMode::Ipv4);
    assert_eq!(
        f.addresses,
        [Ipv4Prefix {
            addr: Ipv4Addr::new(10, 0, 0, 5),
            len: 24
        }]
    );
    assert_eq!(f.gateways, [Ipv4Addr::new(10, 0, 0, 1)]);
    assert_eq!(f.dns.len(), 2);
    assert_eq!(f.domains, ["example.com", "corp"]);
    assert_eq!(f.ipv6_accept_ra, Some(false));
    assert!(f.manages() && !f.accepts_ra());
    assert_eq!(f.routes.len(), 1);
    assert_eq!(
        f.dhcpv4,
        DhcpSettings {
            use_hostname: false,
            use_mtu: false,
            use_routes: true,
            use_dns: false,
            use_domains: UseDomains::Yes,
            use_ntp: true,
        }
    );
    assert!(f.matches(&link("eth0", true)));
    assert!(!f.matches(&link("wlan0", true)));
    let plan = crate::plan::static_routes(&f);
    assert_eq!(plan.len(), 2);
}

#[test]
fn errors_name_file_line_and_field() {
    let err = parse(
        Path::new("/etc/systemd/network/10-x.network"),
        "[Network]\n\nAddress=10.0.0.300/24\n",
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "/etc/systemd/network/10-x.network:3: [Network] Address= \"10.0.0.300/24\": \"10.0.0.300\" is not an IPv4 address"
    );
    let err = parse(Path::new("x.network"), "[Network]\nDHCP=maybe\n").unwrap_err();
    assert!(
        err.to_string()
            .starts_with("x.network:2: [Network] DHCP= \"maybe\""),
        "{err}"
    );
    let err = parse(Path::new("x.network"), "[Match\n").unwrap_err();
    assert!(err.to_string().starts_with("x.network:1: "), "{err}");
    let err = parse(Path::new("x.network"), "[Route]\nDestination=10.0.0.0/33\n").unwrap_err();
    assert!(err.to_string().contains("prefix length"), "{err}");
}

#[test]
fn unknown_keys_warn() {
    let (_, warnings) = parse(
        Path::new("x.network"),
        "[Network]\nLLMNR=no\n[Link]\nMTUBytes=9000\n",
    )
    .unwrap();
    let text: Vec<String> = warnings.iter().map(ToString::to_string).collect();
    assert_eq!(
        text,
        [
            "x.network:2: unknown key [Network] LLMNR=, ignored",
            "x.network:3: unknown section [Link], ignored",
            "x.network:4: unknown key [Link] MTUBytes=, ignored"
        ]
    );
}

#[test]
fn etc_overrides_usr_lib_and_first_match_wins() {
    let dir = tempfile::tempdir().unwrap();
    let (usr, etc) = (dir.path().join("usr"), dir.path().join("etc"));
    std::fs::create_dir_all(&usr).unwrap();
    std::fs::create_dir_all(&etc).unwrap();
    std::fs::write(
        usr.join("50-eth.network"),
        "[Match]\nName=eth*\n[Network]\nDHCP=yes\n",
    )
    .unwrap();
    std::fs::write(
        etc.join("50-eth.network"),
        "[Match]\nName=eth*\n[Network]\nAddress=10.0.0.5/24\n",
    )
    .unwrap();
    std::fs::write(
        usr.join("10-first.network"),
        "[Match]\nName=eth1\n[Network]\nDHCP=no\n",
    )
    .unwrap();
    std::fs::write(usr.join("20-broken.network"), "[Network]\nDHCP=perhaps\n").unwrap();
    std::fs::write(usr.join("30-masked.network"), "[Network]\nDHCP=yes\n").unwrap();
    std::os::unix::fs::symlink("/dev/null", etc.join("30-masked.network")).unwrap();
    let (files, warnings) = load(&[usr, etc.clone()]);
    assert_eq!(files.len(), 2, "{files:?}");
    assert_eq!(warnings.len(), 1);
    assert!(
        warnings[0].contains("20-broken.network:2: [Network] DHCP="),
        "{warnings:?}"
    );
    let eth0 = choose(&files, &link("eth0", true)).unwrap();
    assert_eq!(eth0.path, etc.join("50-eth.network"));
    assert_eq!(eth0.dhcp, DhcpMode::No);
    let eth1 = choose(&files, &link("eth1", true)).unwrap();
    assert!(eth1.path.ends_with("10-first.network"));
    assert!(choose(&files, &link("ens4", true)).is_none());
}

#[test]
fn default_is_dhcp_on_physical_links_only() {
    assert_eq!(NetworkFile::builtin_default(true).dhcp, DhcpMode::Yes);
    assert_eq!(NetworkFile::builtin_default(false).dhcp, DhcpMode::No);
}

#[test]
fn links_from_a_fake_sysfs() {
    let dir = tempfile::tempdir().unwrap();
    let mk = |name: &str, index: &str, kind: &str, devtype: Option<&str>, device: bool| {
        let d = dir.path().join(name);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("ifindex"), index).unwrap();
        std::fs::write(d.join("type"), kind).unwrap();
        std::fs::write(d.join("address"), "52:54:00:12:34:56\n").unwrap();
        std::fs::write(
            d.join("uevent"),
            devtype
                .map(|t| format!("DEVTYPE={t}\n"))
                .unwrap_or_default(),
        )
        .unwrap();
        if device {
            std::fs::create_dir(d.join("device")).unwrap();
        }
    };
    mk("lo", "1\n", "772\n", None, false);
    mk("eth0", "2\n", "1\n", None, true);
    mk("cni0", "3\n", "1\n", Some("bridge"), false);
    let links = crate::sys::links(dir.path()).unwrap();
    let summary: Vec<(&str, &str, bool)> = links
        .iter()
        .map(|l| (l.name.as_str(), l.kind.as_str(), l.physical))
        .collect();
    assert_eq!(
        summary,
        [
            ("lo", "loopback", false),
            ("eth0", "ether", true),
            ("cni0", "bridge", false)
        ]
    );
}

proptest! {
    /// Any text: the parser returns a file or an error naming a line inside the text.
    #[test]
    fn parser_never_panics(text in "(\\[(Match|Network|Route|DHCPv4|DHCPv6|IPv6AcceptRA|X)\\]\n|(Name|DHCP|Address|Gateway|DNS|Domains|Destination|UseMTU|UseDNS|UseDomains|MACAddress|Type|Foo)=[ -~]{0,20}\n|[ -~]{0,30}\n){0,12}") {
        match parse(Path::new("p.network"), &text) {
            Ok((_, warnings)) => for w in warnings { prop_assert!(w.line >= 1 && w.line <= text.lines().count()); },
            Err(ConfigError::Syntax { line, .. } | ConfigError::Value { line, .. }) => prop_assert!(line >= 1 && line <= text.lines().count()),
            Err(e) => prop_assert!(false, "{e}"),
        }
    }

    /// Generated valid files parse back to what was written.
    #[test]
    fn round_trip(octets in any::<[u8; 4]>(), len in 0u8..=32, dhcp in any::<bool>(), mtu in any::<bool>(), name in "[a-z]{1,6}[0-9*]?") {
        let addr = Ipv4Addr::from(octets);
        let text = format!("[Match]\nName={name}\n[Network]\nDHCP={}\nAddress={addr}/{len}\n[DHCPv4]\nUseMTU={}\n", if dhcp { "yes" } else { "no" }, if mtu { "on" } else { "off" });
        let (f, warnings) = parse(Path::new("r.network"), &text).unwrap();
        prop_assert!(warnings.is_empty());
        prop_assert_eq!(f.matches.names, vec![name]);
        prop_assert_eq!(f.dhcp.v4(), dhcp);
        prop_assert_eq!(f.addresses, vec![Ipv4Prefix { addr, len }]);
        prop_assert_eq!(f.dhcpv4.use_mtu, mtu);
    }
}

#[test]
fn which_links_accept_router_advertisements() {
    let parse_text = |text: &str| parse(Path::new("a.network"), text).unwrap().0;
    // The built-in default: a physical link takes RAs beside DHCPv4, a virtual one nothing.
    assert!(NetworkFile::builtin_default(true).accepts_ra());
    assert!(!NetworkFile::builtin_default(false).manages());
    assert!(parse_text("[Network]\nDHCP=ipv4\n").accepts_ra());
    assert!(parse_text("[Network]\nDHCP=ipv6\n").dhcp.v6());
    assert!(!parse_text("[Network]\nDHCP=ipv4\n").dhcp.v6());
    assert!(parse_text("[Network]\nAddress=10.0.0.5/24\n").accepts_ra());
    // Unmanaged unless RAs are asked for; then managed for them alone.
    assert!(!parse_text("[Network]\nDHCP=no\n").manages());
    let ra_only = parse_text("[Network]\nIPv6AcceptRA=yes\n");
    assert!(ra_only.manages() && ra_only.accepts_ra() && !ra_only.dhcp.v4());
    assert!(!parse_text("[Network]\nDHCP=yes\nIPv6AcceptRA=0\n").accepts_ra());
    assert!(parse(Path::new("a.network"), "[Network]\nIPv6AcceptRA=maybe\n").is_err());
}

#[test]
fn dns_keys_of_dhcpv6_and_ipv6acceptra() {
    let text = "\
[Network]
DHCP=ipv6

[IPv6AcceptRA]
UseDNS=no
UseDomains=route

[DHCPv6]
UseDNS=yes
UseDomains=false
UseNTP=no

[DHCPv4]
UseDomains=no
";
    let (f, warnings) = parse(Path::new("a.network"), text).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(
        f.ra,
        DnsUse {
            use_dns: false,
            use_domains: UseDomains::Route,
            use_ntp: true,
        }
    );
    assert_eq!(
        f.dhcpv6,
        DnsUse {
            use_dns: true,
            use_domains: UseDomains::No,
            use_ntp: false,
        }
    );
    assert_eq!(f.dhcpv4.use_domains, UseDomains::No);
    // Neither `no` nor `route` puts domains in the search list; Berth's default does.
    assert!(!UseDomains::No.search() && !UseDomains::Route.search());
    let default = parse(Path::new("b.network"), "[Network]\nDHCP=yes\n")
        .unwrap()
        .0;
    assert_eq!(default.ra, DnsUse::default());
    assert_eq!(default.dhcpv6, DnsUse::default());
    assert!(default.ra.use_dns && default.ra.use_domains.search());
    assert!(default.dhcpv6.use_dns && default.dhcpv6.use_domains.search());
    assert_eq!(NetworkFile::builtin_default(true).ra, DnsUse::default());
}

#[test]
fn bad_dns_keys_name_file_line_and_field() {
    let err = parse(
        Path::new("/etc/systemd/network/20-v6.network"),
        "[Network]\nDHCP=yes\n[IPv6AcceptRA]\nUseDomains=sometimes\n",
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "/etc/systemd/network/20-v6.network:4: [IPv6AcceptRA] UseDomains= \"sometimes\": \"sometimes\" is not a boolean (yes/no) or \"route\""
    );
    let err = parse(Path::new("x.network"), "[DHCPv6]\n\nUseDNS=perhaps\n").unwrap_err();
    assert_eq!(
        err.to_string(),
        "x.network:3: [DHCPv6] UseDNS= \"perhaps\": \"perhaps\" is not a boolean (yes/no)"
    );
    // A key of another section is unknown there, not silently taken.
    let (f, warnings) = parse(Path::new("x.network"), "[DHCPv6]\nUseMTU=no\n").unwrap();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert_eq!(f.dhcpv4, DhcpSettings::default());
}

#[test]
fn ntp_servers_and_use_ntp() {
    let (f, warnings) = parse(
        Path::new("a.network"),
        "[Network]\nNTP=10.0.0.123 Time.Example.com.\nNTP=2001:db8::123\n[DHCPv4]\nUseNTP=no\n",
    )
    .unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(f.ntp, ["10.0.0.123", "time.example.com", "2001:db8::123"]);
    assert!(!f.dhcpv4.use_ntp);
    assert!(DhcpSettings::default().use_ntp);
    // An empty value resets the list, as for the other lists.
    let (f, _) = parse(Path::new("a.network"), "[Network]\nNTP=10.0.0.1\nNTP=\n").unwrap();
    assert!(f.ntp.is_empty());
    let err = parse(
        Path::new("/etc/systemd/network/9.network"),
        "[Network]\nNTP=10.0.0.1 bad/name\n",
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "/etc/systemd/network/9.network:2: [Network] NTP= \"10.0.0.1 bad/name\": \"bad/name\" is neither an IP address nor a host name"
    );
}
