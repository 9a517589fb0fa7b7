//! The client state machine driven by hand-made server replies, the lease's route plan
//! applied to the recording fake, and proptests of the untrusted input paths.

use std::net::Ipv4Addr;
use std::time::Duration;

use dhcproto::v4::{DhcpOption, Message, MessageType, Opcode};
use dhcproto::Encodable;
use proptest::prelude::*;

use super::*;
use crate::config::{DhcpSettings, Ipv4Prefix};
use crate::plan;
use crate::sys::fake::FakeNet;

const MAC: [u8; 6] = [0x52, 0x54, 0, 0x12, 0x34, 0x56];
const SERVER: Ipv4Addr = Ipv4Addr::new(10, 128, 0, 1);
const S: fn(u64) -> Duration = Duration::from_secs;

/// A reply of `kind` to `xid` with GCE's options (a /32 and option 121).
fn reply(xid: u32, kind: MessageType) -> Message {
    let z = Ipv4Addr::UNSPECIFIED;
    let mut m = Message::new_with_id(xid, z, Ipv4Addr::new(10, 128, 0, 10), z, z, &MAC);
    m.set_opcode(Opcode::BootReply);
    let o = m.opts_mut();
    o.insert(DhcpOption::MessageType(kind));
    o.insert(DhcpOption::ServerIdentifier(SERVER));
    o.insert(DhcpOption::SubnetMask(Ipv4Addr::BROADCAST));
    o.insert(DhcpOption::AddressLeaseTime(3600));
    o.insert(DhcpOption::Router(vec![Ipv4Addr::new(10, 128, 0, 99)]));
    o.insert(DhcpOption::ClasslessStaticRoute(vec![
        ("10.128.0.1/32".parse().unwrap(), Ipv4Addr::UNSPECIFIED),
        ("0.0.0.0/0".parse().unwrap(), SERVER),
    ]));
    o.insert(DhcpOption::InterfaceMtu(1460));
    o.insert(DhcpOption::DomainNameServer(vec![Ipv4Addr::new(
        169, 254, 169, 254,
    )]));
    o.insert(DhcpOption::Hostname("node-1.c.proj.internal".into()));
    o.insert(DhcpOption::NtpServers(vec![
        Ipv4Addr::new(169, 254, 169, 254),
        Ipv4Addr::UNSPECIFIED,
    ]));
    m
}

fn bytes(m: &Message) -> Vec<u8> {
    m.to_vec().unwrap()
}

fn sent(actions: &[Action]) -> Vec<(MessageType, Destination)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Send { message, to } => Some((message.opts().msg_type().unwrap(), *to)),
            _ => None,
        })
        .collect()
}

/// A client driven to BOUND at t=10 s; returns it and its xid.
pub(crate) fn bound() -> (Client, u32) {
    let mut c = Client::new(MAC, 41);
    c.handle(S(0), Event::Start);
    let xid = 42;
    c.handle(S(0), Event::Packet(&bytes(&reply(xid, MessageType::Offer))));
    let actions = c.handle(S(10), Event::Packet(&bytes(&reply(xid, MessageType::Ack))));
    assert!(
        actions.iter().any(|a| matches!(a, Action::Configure(_))),
        "{actions:?}"
    );
    (c, xid)
}

#[test]
fn discover_offer_request_ack() {
    let mut c = Client::new(MAC, 41);
    let a = c.handle(S(0), Event::Start);
    assert_eq!(sent(&a), [(MessageType::Discover, Destination::Broadcast)]);
    assert!(c.unconfigured());
    // No answer: retransmitted with back-off.
    assert_eq!(c.deadline(), Some(S(1)));
    let a = c.handle(S(1), Event::Timeout);
    assert_eq!(sent(&a), [(MessageType::Discover, Destination::Broadcast)]);
    assert_eq!(c.deadline(), Some(S(3)));
    let a = c.handle(S(2), Event::Packet(&bytes(&reply(42, MessageType::Offer))));
    let Action::Send { message, .. } = &a[1] else {
        panic!("{a:?}")
    };
    assert_eq!(
        message
            .opts()
            .get(dhcproto::v4::OptionCode::ServerIdentifier),
        Some(&DhcpOption::ServerIdentifier(SERVER))
    );
    assert_eq!(message.ciaddr(), Ipv4Addr::UNSPECIFIED);
    let a = c.handle(S(2), Event::Packet(&bytes(&reply(42, MessageType::Ack))));
    let lease = c.lease().expect("bound");
    assert_eq!(
        lease.address,
        Ipv4Prefix {
            addr: Ipv4Addr::new(10, 128, 0, 10),
            len: 32
        }
    );
    assert_eq!((lease.t1, lease.t2), (1800, 3150));
    assert!(!c.unconfigured());
    assert_eq!(c.deadline(), Some(S(2 + 1800)));
    assert!(a.iter().any(|x| matches!(x, Action::Configure(_))));
}

#[test]
fn replies_for_others_are_ignored() {
    let mut c = Client::new(MAC, 41);
    c.handle(S(0), Event::Start);
    assert!(c
        .handle(S(0), Event::Packet(&bytes(&reply(7, MessageType::Offer))))
        .is_empty());
    let mut other = reply(42, MessageType::Offer);
    other.set_chaddr(&[1, 2, 3, 4, 5, 6]);
    assert!(c.handle(S(0), Event::Packet(&bytes(&other))).is_empty());
    assert_eq!(*c.state(), State::Selecting);
}

#[test]
fn renew_unicast_at_t1_rebind_broadcast_at_t2_then_expire() {
    let (mut c, xid) = bound();
    let a = c.handle(S(10 + 1800), Event::Timeout);
    assert_eq!(
        sent(&a),
        [(MessageType::Request, Destination::Unicast(SERVER))]
    );
    let Action::Send { message, .. } = &a[1] else {
        panic!("{a:?}")
    };
    assert_eq!(message.ciaddr(), Ipv4Addr::new(10, 128, 0, 10));
    assert_eq!(message.xid(), xid);
    assert!(matches!(c.state(), State::Renewing { .. }));
    // Retransmissions until T2, then a broadcast.
    let mut now;
    loop {
        now = c.deadline().unwrap();
        let a = c.handle(now, Event::Timeout);
        if matches!(c.state(), State::Rebinding { .. }) {
            assert_eq!(sent(&a), [(MessageType::Request, Destination::Broadcast)]);
            break;
        }
        assert_eq!(
            sent(&a),
            [(MessageType::Request, Destination::Unicast(SERVER))]
        );
    }
    assert_eq!(now, S(10 + 3150));
    // Nothing until the lease ends: removed, and discovery starts again.
    let a = loop {
        now = c.deadline().unwrap();
        let a = c.handle(now, Event::Timeout);
        if a.iter().any(|x| matches!(x, Action::Deconfigure(_))) {
            break a;
        }
    };
    assert_eq!(now, S(10 + 3600));
    assert_eq!(sent(&a), [(MessageType::Discover, Destination::Broadcast)]);
    assert_eq!(*c.state(), State::Selecting);
}

#[test]
fn ack_while_renewing_keeps_the_lease() {
    let (mut c, xid) = bound();
    c.handle(S(1810), Event::Timeout);
    let a = c.handle(
        S(1811),
        Event::Packet(&bytes(&reply(xid, MessageType::Ack))),
    );
    assert!(
        !a.iter().any(|x| matches!(x, Action::Deconfigure(_))),
        "{a:?}"
    );
    assert!(matches!(c.state(), State::Bound { since, .. } if *since == S(1811)));
}

#[test]
fn nak_removes_the_lease_and_starts_over() {
    let (mut c, xid) = bound();
    c.handle(S(1810), Event::Timeout);
    let mut nak = reply(xid, MessageType::Nak);
    nak.opts_mut()
        .insert(DhcpOption::Message("address in use".into()));
    let a = c.handle(S(1811), Event::Packet(&bytes(&nak)));
    assert!(a.iter().any(|x| matches!(x, Action::Deconfigure(_))));
    assert!(a
        .iter()
        .any(|x| matches!(x, Action::Log(l) if l.contains("address in use"))));
    assert_eq!(sent(&a), [(MessageType::Discover, Destination::Broadcast)]);
}

#[test]
fn stop_releases_to_the_server() {
    let (mut c, _) = bound();
    let a = c.handle(S(20), Event::Stop);
    assert_eq!(
        sent(&a),
        [(MessageType::Release, Destination::Unicast(SERVER))]
    );
    assert!(a.iter().any(|x| matches!(x, Action::Deconfigure(_))));
    assert_eq!(c.deadline(), None);
    // Stopping without a lease sends nothing.
    let mut idle = Client::new(MAC, 1);
    idle.handle(S(0), Event::Start);
    assert!(sent(&idle.handle(S(1), Event::Stop)).is_empty());
}

#[test]
fn bad_offers_are_logged_and_discovery_goes_on() {
    let mut c = Client::new(MAC, 41);
    c.handle(S(0), Event::Start);
    let a = c.handle(S(0), Event::Packet(b"\x02\x01\x06\x00nonsense"));
    assert!(
        matches!(&a[..], [Action::Log(l)] if l.contains("not DHCP")),
        "{a:?}"
    );
    let mut no_server = reply(42, MessageType::Offer);
    no_server
        .opts_mut()
        .remove(dhcproto::v4::OptionCode::ServerIdentifier);
    let a = c.handle(S(0), Event::Packet(&bytes(&no_server)));
    assert!(
        matches!(&a[..], [Action::Log(l)] if l.contains("no server identifier")),
        "{a:?}"
    );
    let mut bad_mask = reply(42, MessageType::Offer);
    bad_mask
        .opts_mut()
        .insert(DhcpOption::SubnetMask(Ipv4Addr::new(255, 0, 255, 0)));
    let a = c.handle(S(0), Event::Packet(&bytes(&bad_mask)));
    assert!(
        matches!(&a[..], [Action::Log(l)] if l.contains("not contiguous")),
        "{a:?}"
    );
    assert_eq!(*c.state(), State::Selecting);
    assert_eq!(
        sent(&c.handle(S(1), Event::Timeout)),
        [(MessageType::Discover, Destination::Broadcast)]
    );
}

#[test]
fn gce_lease_plan_puts_the_on_link_route_first() {
    let lease = Lease::from_message(&reply(1, MessageType::Ack)).unwrap();
    let mut net = FakeNet::default();
    plan::apply_lease(&mut net, 2, &lease, &DhcpSettings::default()).unwrap();
    // Option 3 (10.128.0.99) is ignored because option 121 is present (RFC 3442).
    assert_eq!(
        net.calls,
        [
            "mtu 2 1460",
            "add-addr 2 10.128.0.10/32",
            "add-route 2 10.128.0.1/32 on-link",
            "add-route 2 0.0.0.0/0 via 10.128.0.1"
        ]
    );
    net.calls.clear();
    plan::remove_lease(&mut net, 2, &lease, &DhcpSettings::default()).unwrap();
    assert_eq!(
        net.calls,
        [
            "del-route 2 0.0.0.0/0 via 10.128.0.1",
            "del-route 2 10.128.0.1/32 on-link",
            "del-addr 2 10.128.0.10/32"
        ]
    );
}

#[test]
fn router_option_and_settings() {
    let mut m = reply(1, MessageType::Ack);
    m.opts_mut()
        .remove(dhcproto::v4::OptionCode::ClasslessStaticRoute);
    m.opts_mut()
        .insert(DhcpOption::SubnetMask(Ipv4Addr::new(255, 255, 255, 0)));
    m.opts_mut()
        .insert(DhcpOption::Router(vec![Ipv4Addr::new(10, 128, 0, 1)]));
    let lease = Lease::from_message(&m).unwrap();
    let mut net = FakeNet::default();
    plan::apply_lease(&mut net, 3, &lease, &DhcpSettings::default()).unwrap();
    assert_eq!(
        net.calls,
        [
            "mtu 3 1460",
            "add-addr 3 10.128.0.10/24",
            "add-route 3 0.0.0.0/0 via 10.128.0.1"
        ]
    );
    // A router outside the subnet gets an on-link route first.
    m.opts_mut()
        .insert(DhcpOption::Router(vec![Ipv4Addr::new(192, 168, 1, 1)]));
    let routes = Lease::from_message(&m).unwrap().route_plan(true);
    assert_eq!(
        routes[0],
        PlannedRoute {
            destination: Ipv4Prefix {
                addr: Ipv4Addr::new(192, 168, 1, 1),
                len: 32
            },
            gateway: None
        }
    );
    let settings = DhcpSettings {
        use_mtu: false,
        use_routes: false,
        ..DhcpSettings::default()
    };
    let mut net = FakeNet::default();
    plan::apply_lease(&mut net, 3, &lease, &settings).unwrap();
    assert_eq!(net.calls, ["add-addr 3 10.128.0.10/24"]);
}

#[test]
fn names_are_checked() {
    let mut m = reply(1, MessageType::Ack);
    m.opts_mut()
        .insert(DhcpOption::Hostname("../../etc/passwd".into()));
    m.opts_mut()
        .insert(DhcpOption::DomainName("c.proj.internal.".into()));
    let lease = Lease::from_message(&m).unwrap();
    assert_eq!(lease.hostname, None);
    assert_eq!(lease.ignored.len(), 1, "{:?}", lease.ignored);
    assert_eq!(lease.search_domains(), ["c.proj.internal"]);
}

#[test]
fn frame_takes_the_udp_payload() {
    let payload = b"hello";
    let mut pkt = vec![
        0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 17, 0, 0, 10, 0, 0, 1, 255, 255, 255, 255,
    ];
    pkt.extend_from_slice(&[0, 67, 0, 68, 0, 13, 0, 0]);
    pkt.extend_from_slice(payload);
    let total = pkt.len() as u16;
    pkt[2..4].copy_from_slice(&total.to_be_bytes());
    assert_eq!(frame::udp_payload(&pkt, 68), Some(&payload[..]));
    assert_eq!(frame::udp_payload(&pkt, 67), None);
    pkt[9] = 6; // TCP
    assert_eq!(frame::udp_payload(&pkt, 68), None);
}

proptest! {
    /// Any datagram: the client never panics, and only a valid reply moves it on.
    #[test]
    fn client_survives_any_datagram(data in proptest::collection::vec(any::<u8>(), 0..600)) {
        let mut c = Client::new(MAC, 41);
        c.handle(S(0), Event::Start);
        c.handle(S(0), Event::Packet(&data));
        let moved_on = matches!(c.state(), State::Selecting | State::Requesting { .. });
        prop_assert!(moved_on);
    }

    /// A real reply with any bytes changed: decoding and lease extraction never panic,
    /// and a lease that comes out is self-consistent.
    #[test]
    fn mutated_replies(flips in proptest::collection::vec((0usize..400, any::<u8>()), 1..20)) {
        let mut data = bytes(&reply(42, MessageType::Ack));
        for (at, byte) in flips {
            let len = data.len();
            data[at % len] = byte;
        }
        if let Ok(msg) = machine::decode(&data) {
            if let Ok(lease) = Lease::from_message(&msg) {
                prop_assert!(lease.address.len <= 32);
                prop_assert!(lease.t1 <= lease.t2 && (lease.t2 < lease.lease_time || lease.lease_time == u32::MAX));
                let plan = lease.route_plan(true);
                // Every gateway is reachable by an earlier on-link route or the prefix.
                for (i, r) in plan.iter().enumerate() {
                    if let Some(gw) = r.gateway {
                        let on_link = plan[..i].iter().any(|p| p.gateway.is_none() && p.destination.contains(gw));
                        prop_assert!(on_link || (lease.address.len < 32 && lease.address.contains(gw)), "{plan:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn frame_never_panics(data in proptest::collection::vec(any::<u8>(), 0..100)) {
        let _ = frame::udp_payload(&data, 68);
    }
}

/// Option 42 is asked for and its usable servers taken (0.0.0.0 is not one).
#[test]
fn ntp_servers_are_asked_for_and_taken() {
    let mut c = Client::new(MAC, 41);
    let a = c.handle(S(0), Event::Start);
    let discover = a
        .iter()
        .find_map(|a| match a {
            Action::Send { message, .. } => Some(message.clone()),
            _ => None,
        })
        .unwrap();
    match discover
        .opts()
        .get(dhcproto::v4::OptionCode::ParameterRequestList)
    {
        Some(DhcpOption::ParameterRequestList(codes)) => {
            assert!(
                codes.contains(&dhcproto::v4::OptionCode::NtpServers),
                "{codes:?}"
            )
        }
        other => panic!("no parameter request list: {other:?}"),
    }
    let lease = Lease::from_message(&reply(1, MessageType::Ack)).unwrap();
    assert_eq!(lease.ntp, [Ipv4Addr::new(169, 254, 169, 254)]);
}
