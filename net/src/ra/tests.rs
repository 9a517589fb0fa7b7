//! Router advertisements: the parser on real-shaped RAs, bad options and arbitrary bytes;
//! the learned DNS set on a virtual clock.

use std::net::Ipv6Addr;
use std::time::Duration;

use proptest::prelude::*;

use super::*;

/// An RA with flags `flags`, router lifetime 1800 and `options` appended.
pub(crate) fn ra_bytes(flags: u8, options: &[Vec<u8>]) -> Vec<u8> {
    let mut out = vec![134, 0, 0, 0, 64, flags, 0x07, 0x08, 0, 0, 0, 0, 0, 0, 0, 0];
    for o in options {
        out.extend_from_slice(o);
    }
    out
}

pub(crate) fn rdnss(lifetime: u32, servers: &[Ipv6Addr]) -> Vec<u8> {
    let len = 1 + 2 * servers.len() as u8;
    let mut out = vec![25, len, 0, 0];
    out.extend_from_slice(&lifetime.to_be_bytes());
    for s in servers {
        out.extend_from_slice(&s.octets());
    }
    out
}

fn dnssl(lifetime: u32, names: &[&str]) -> Vec<u8> {
    let mut wire = Vec::new();
    for name in names {
        for label in name.split('.') {
            wire.push(label.len() as u8);
            wire.extend_from_slice(label.as_bytes());
        }
        wire.push(0);
    }
    while (8 + wire.len()) % 8 != 0 {
        wire.push(0);
    }
    let mut out = vec![31, ((8 + wire.len()) / 8) as u8, 0, 0];
    out.extend_from_slice(&lifetime.to_be_bytes());
    out.extend_from_slice(&wire);
    out
}

/// A prefix information option (type 3), which Berth skips: the kernel does SLAAC.
fn prefix_info() -> Vec<u8> {
    let mut out = vec![3, 4, 64, 0xc0];
    out.extend_from_slice(&[0xff; 8]);
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&"2001:db8:1::".parse::<Ipv6Addr>().unwrap().octets());
    out
}

fn ip(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

#[test]
fn parses_flags_rdnss_and_dnssl() {
    let bytes = ra_bytes(
        0x80,
        &[
            prefix_info(),
            rdnss(600, &[ip("2001:db8::53"), ip("2001:db8::54")]),
            dnssl(600, &["corp.example", "example"]),
            vec![5, 1, 0, 0, 0, 0, 0x05, 0xdc], // MTU 1500, skipped
        ],
    );
    let ra = parse(&bytes).unwrap();
    assert!(ra.managed && !ra.other);
    assert_eq!(ra.router_lifetime, 0x0708);
    assert_eq!(
        ra.dns_servers,
        [(600, vec![ip("2001:db8::53"), ip("2001:db8::54")])]
    );
    assert_eq!(
        ra.search_domains,
        [(600, vec!["corp.example".to_string(), "example".to_string()])]
    );
    assert!(parse(&ra_bytes(0x40, &[])).unwrap().other);
}

#[test]
fn bad_ras_say_what_is_wrong() {
    assert_eq!(parse(&[134, 0, 0]), Err(RaError::TooShort(3)));
    let mut echo = ra_bytes(0, &[]);
    echo[0] = 128;
    assert_eq!(parse(&echo), Err(RaError::NotAnRa(128, 0)));
    let zero = ra_bytes(0, &[vec![25, 0, 0, 0, 0, 0, 0, 0]]);
    assert_eq!(
        parse(&zero).unwrap_err().to_string(),
        "option at byte 16: type 25 has length 0"
    );
    let mut long = rdnss(1, &[ip("::1")]);
    long[1] = 9;
    let err = parse(&ra_bytes(0, &[long])).unwrap_err().to_string();
    assert!(err.contains("runs past the end"), "{err}");
    let empty = ra_bytes(0, &[vec![25, 1, 0, 0, 0, 0, 0, 1]]);
    assert!(parse(&empty)
        .unwrap_err()
        .to_string()
        .contains("RDNSS without an address"));
    let mut unterminated = dnssl(1, &["example"]);
    unterminated[8] = 20;
    assert!(parse(&ra_bytes(0, &[unterminated])).is_err());
}

#[test]
fn only_on_link_routers_count() {
    assert_eq!(check_origin(Some(ip("fe80::1")), Some(255)), Ok(()));
    assert_eq!(
        check_origin(Some(ip("fe80::1")), Some(64))
            .unwrap_err()
            .to_string(),
        "hop limit 64, not 255: forwarded from off the link"
    );
    assert_eq!(
        check_origin(Some(ip("2001:db8::1")), Some(255)),
        Err(RaError::NotLinkLocal("2001:db8::1".into()))
    );
    assert!(check_origin(None, Some(255)).is_err());
    assert!(check_origin(Some(ip("fe80::1")), None).is_err());
}

#[test]
fn learned_dns_follows_the_lifetimes() {
    let mut dns = RaDns::default();
    let s = |n: &str| Advert {
        dns_servers: vec![(60, vec![ip(n)])],
        ..Advert::default()
    };
    let t0 = Duration::from_secs(10);
    assert!(dns.learn(t0, &s("2001:db8::53")));
    assert!(!dns.learn(t0, &s("2001:db8::53")), "a refresh is no change");
    let forever = Advert {
        dns_servers: vec![(u32::MAX, vec![ip("2001:db8::54")])],
        search_domains: vec![(30, vec!["example".into()])],
        ..Advert::default()
    };
    assert!(dns.learn(t0, &forever));
    assert_eq!(dns.deadline(), Some(Duration::from_secs(40)));
    assert!(dns.expire(Duration::from_secs(40)));
    assert_eq!(dns.domains().count(), 0);
    // Refreshed at 50 s: lives to 110 s, not 70 s.
    assert!(!dns.learn(Duration::from_secs(50), &s("2001:db8::53")));
    assert!(!dns.expire(Duration::from_secs(100)));
    assert_eq!(
        dns.servers().collect::<Vec<_>>(),
        [ip("2001:db8::53"), ip("2001:db8::54")]
    );
    assert!(dns.expire(Duration::from_secs(110)));
    assert_eq!(dns.servers().collect::<Vec<_>>(), [ip("2001:db8::54")]);
    assert_eq!(dns.deadline(), None);
    // Lifetime 0 withdraws a server.
    let gone = Advert {
        dns_servers: vec![(0, vec![ip("2001:db8::54")])],
        ..Advert::default()
    };
    assert!(dns.learn(Duration::from_secs(120), &gone));
    assert_eq!(dns.servers().count(), 0);
}

#[test]
fn received_ras_are_checked_then_learned() {
    let mut dns = RaDns::default();
    let bytes = ra_bytes(0, &[rdnss(600, &[ip("2001:db8::53")])]);
    let router = Some(ip("fe80::1"));
    assert_eq!(
        dns.receive(Duration::ZERO, &bytes, Some(ip("2001:db8::1")), Some(255))
            .unwrap_err(),
        RaError::NotLinkLocal("2001:db8::1".into())
    );
    assert!(matches!(
        dns.receive(Duration::ZERO, &bytes[..10], router, Some(255)),
        Err(RaError::TooShort(10))
    ));
    assert_eq!(dns.servers().count(), 0);
    let (changed, ra) = dns
        .receive(Duration::ZERO, &bytes, router, Some(255))
        .unwrap();
    assert!(changed && !ra.managed);
    assert!(
        !dns.receive(Duration::ZERO, &bytes, router, Some(255))
            .unwrap()
            .0
    );
    assert_eq!(dns.servers().collect::<Vec<_>>(), [ip("2001:db8::53")]);
}

proptest! {
    #[test]
    fn parse_never_panics(data in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = parse(&data);
    }

    #[test]
    fn mutated_ras_never_panic(flips in proptest::collection::vec((0usize..120, any::<u8>()), 1..12)) {
        let mut bytes = ra_bytes(0xc0, &[rdnss(600, &[ip("2001:db8::53")]), dnssl(600, &["a.example", "b"])]);
        for (at, value) in flips {
            let at = at % bytes.len();
            bytes[at] = value;
        }
        if let Ok(ra) = parse(&bytes) {
            RaDns::default().learn(Duration::ZERO, &ra);
        }
    }
}
