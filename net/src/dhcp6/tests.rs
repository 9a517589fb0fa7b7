//! The DHCPv6 client on a virtual clock against hand-made server messages, and garbage.

use std::net::Ipv6Addr;
use std::time::Duration;

use dhcproto::v6::{
    DhcpOption, IAAddr, Message, MessageType, OptionCode, Status, StatusCode, IANA,
};
use dhcproto::Encodable;
use proptest::prelude::*;

use super::machine::duid_ll;
use super::*;

const MAC: [u8; 6] = [0x52, 0x54, 0, 1, 2, 3];
const IAID: u32 = 7;

fn ip(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

fn sent(actions: &[Action6]) -> Vec<(MessageType, u32)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action6::Send(m) => Some((m.msg_type(), m.xid_num())),
            _ => None,
        })
        .collect()
}

fn last_sent(actions: &[Action6]) -> Message {
    actions
        .iter()
        .rev()
        .find_map(|a| match a {
            Action6::Send(m) => Some((**m).clone()),
            _ => None,
        })
        .expect("a message sent")
}

/// A server's answer of `kind` to transaction `xid`: address `addr`, T1 100, T2 160,
/// preferred 200, valid 300, DNS 2001:db8::53.
fn reply(kind: MessageType, xid: u32, addr: &str) -> Vec<u8> {
    let mut msg = Message::new(kind);
    msg.set_xid_num(xid);
    let opts = msg.opts_mut();
    opts.insert(DhcpOption::ServerId(vec![0, 1, 9, 9]));
    opts.insert(DhcpOption::ClientId(duid_ll(&MAC)));
    let mut ia = dhcproto::v6::DhcpOptions::new();
    ia.insert(DhcpOption::IAAddr(IAAddr {
        addr: ip(addr),
        preferred_life: 200,
        valid_life: 300,
        opts: Default::default(),
    }));
    opts.insert(DhcpOption::IANA(IANA {
        id: IAID,
        t1: 100,
        t2: 160,
        opts: ia,
    }));
    opts.insert(DhcpOption::DomainNameServers(vec![ip("2001:db8::53")]));
    msg.to_vec().unwrap()
}

fn bound() -> (Client6, Duration) {
    let mut c = Client6::new(MAC, IAID, 41);
    let out = c.handle(Duration::ZERO, Event6::Start);
    let (kind, xid) = sent(&out)[0];
    assert_eq!(kind, MessageType::Solicit);
    let out = c.handle(
        Duration::from_millis(5),
        Event6::Packet(&reply(MessageType::Advertise, xid, "2001:db8::105")),
    );
    let (kind, xid) = sent(&out)[0];
    assert_eq!(kind, MessageType::Request);
    let req = last_sent(&out);
    assert_eq!(
        req.opts().get(OptionCode::ServerId),
        Some(&DhcpOption::ServerId(vec![0, 1, 9, 9]))
    );
    let t = Duration::from_millis(10);
    let out = c.handle(
        t,
        Event6::Packet(&reply(MessageType::Reply, xid, "2001:db8::105")),
    );
    assert!(
        out.iter()
            .any(|a| matches!(a, Action6::Configure(l) if l.address == ip("2001:db8::105"))),
        "{out:?}"
    );
    (c, t)
}

#[test]
fn solicit_advertise_request_reply() {
    let (c, t) = bound();
    let lease = c.lease().unwrap();
    assert_eq!((lease.t1, lease.t2, lease.valid), (100, 160, 300));
    assert_eq!(lease.dns, [ip("2001:db8::53")]);
    assert_eq!(c.deadline(), Some(t + Duration::from_secs(100)));
}

#[test]
fn solicit_asks_for_rapid_commit_and_takes_it() {
    let mut c = Client6::new(MAC, IAID, 1);
    let out = c.handle(Duration::ZERO, Event6::Start);
    let solicit = last_sent(&out);
    assert!(solicit.opts().get(OptionCode::RapidCommit).is_some());
    assert_eq!(
        solicit.opts().get(OptionCode::ClientId),
        Some(&DhcpOption::ClientId(duid_ll(&MAC)))
    );
    let mut msg = dhcproto::v6::Message::decode_from(&reply(
        MessageType::Reply,
        solicit.xid_num(),
        "2001:db8::1a0",
    ));
    msg.opts_mut().insert(DhcpOption::RapidCommit);
    let out = c.handle(
        Duration::from_millis(3),
        Event6::Packet(&msg.to_vec().unwrap()),
    );
    assert!(matches!(c.state(), State6::Bound { .. }), "{out:?}");
    // Without Rapid Commit a REPLY to a SOLICIT is not taken.
    let mut c = Client6::new(MAC, IAID, 1);
    let xid = sent(&c.handle(Duration::ZERO, Event6::Start))[0].1;
    c.handle(
        Duration::ZERO,
        Event6::Packet(&reply(MessageType::Reply, xid, "2001:db8::1a0")),
    );
    assert_eq!(c.state(), &State6::Soliciting);
}

trait DecodeFrom {
    fn decode_from(bytes: &[u8]) -> Message;
}
impl DecodeFrom for Message {
    fn decode_from(bytes: &[u8]) -> Message {
        super::machine::decode(bytes).unwrap()
    }
}

#[test]
fn solicit_backs_off() {
    let mut c = Client6::new(MAC, IAID, 1);
    c.handle(Duration::ZERO, Event6::Start);
    assert_eq!(c.deadline(), Some(Duration::from_secs(1)));
    let out = c.handle(Duration::from_secs(1), Event6::Timeout);
    assert_eq!(sent(&out)[0].0, MessageType::Solicit);
    assert_eq!(c.deadline(), Some(Duration::from_secs(3)));
    let elapsed = last_sent(&out).opts().get(OptionCode::ElapsedTime).cloned();
    assert_eq!(elapsed, Some(DhcpOption::ElapsedTime(100)));
}

#[test]
fn renew_at_t1_rebind_at_t2_then_expire() {
    let (mut c, t) = bound();
    let out = c.handle(t + Duration::from_secs(100), Event6::Timeout);
    let (kind, renew_xid) = sent(&out)[0];
    assert_eq!(kind, MessageType::Renew);
    assert!(last_sent(&out).opts().get(OptionCode::ServerId).is_some());
    let out = c.handle(t + Duration::from_secs(110), Event6::Timeout);
    assert_eq!(sent(&out)[0], (MessageType::Renew, renew_xid));
    // Retransmissions stop at T2 (160 s), where REBIND starts without a server id.
    let mut now = t + Duration::from_secs(110);
    let mut rebind = None;
    for _ in 0..10 {
        now = c.deadline().unwrap();
        let out = c.handle(now, Event6::Timeout);
        if let Some((MessageType::Rebind, xid)) = sent(&out).first().copied() {
            assert!(last_sent(&out).opts().get(OptionCode::ServerId).is_none());
            rebind = Some(xid);
            break;
        }
    }
    assert_eq!(now, t + Duration::from_secs(160));
    assert_ne!(rebind, Some(renew_xid));
    // No answer: at the valid lifetime's end the address goes and SOLICIT starts.
    let mut out = Vec::new();
    for _ in 0..10 {
        now = c.deadline().unwrap();
        out = c.handle(now, Event6::Timeout);
        if c.state() == &State6::Soliciting {
            break;
        }
    }
    assert_eq!(now, t + Duration::from_secs(300));
    assert!(out.iter().any(|a| matches!(a, Action6::Deconfigure(_))));
    assert_eq!(sent(&out)[0].0, MessageType::Solicit);
}

#[test]
fn reply_to_renew_extends_the_lease() {
    let (mut c, t) = bound();
    let renew_at = t + Duration::from_secs(100);
    let xid = sent(&c.handle(renew_at, Event6::Timeout))[0].1;
    let out = c.handle(
        renew_at,
        Event6::Packet(&reply(MessageType::Reply, xid, "2001:db8::105")),
    );
    assert!(!out.iter().any(|a| matches!(a, Action6::Deconfigure(_))));
    assert_eq!(c.deadline(), Some(renew_at + Duration::from_secs(100)));
    assert!(matches!(c.state(), State6::Bound { .. }));
}

#[test]
fn stop_releases() {
    let (mut c, _) = bound();
    let out = c.handle(Duration::from_secs(5), Event6::Stop);
    assert_eq!(sent(&out)[0].0, MessageType::Release);
    assert!(out
        .iter()
        .any(|a| matches!(a, Action6::Deconfigure(l) if l.address == ip("2001:db8::105"))));
    assert_eq!(c.deadline(), None);
    assert!(Client6::new(MAC, IAID, 1)
        .handle(Duration::ZERO, Event6::Stop)
        .is_empty());
}

#[test]
fn bad_answers_are_logged_and_ignored() {
    let mut c = Client6::new(MAC, IAID, 1);
    let xid = sent(&c.handle(Duration::ZERO, Event6::Start))[0].1;
    let log = |out: Vec<Action6>| -> String {
        out.iter()
            .filter_map(|a| match a {
                Action6::Log(l) => Some(l.clone()),
                _ => None,
            })
            .collect()
    };
    c.handle(Duration::ZERO, Event6::Packet(b"\x02garbage"));
    assert_eq!(c.state(), &State6::Soliciting);
    let mut msg = Message::decode_from(&reply(MessageType::Advertise, xid, "2001:db8::1"));
    msg.opts_mut().insert(DhcpOption::StatusCode(StatusCode {
        status: Status::NoAddrsAvail,
        msg: "full".into(),
    }));
    let l = log(c.handle(Duration::ZERO, Event6::Packet(&msg.to_vec().unwrap())));
    assert!(l.contains("the server says NoAddrsAvail"), "{l}");
    let mut other = Message::decode_from(&reply(MessageType::Advertise, xid, "2001:db8::1"));
    other
        .opts_mut()
        .insert(DhcpOption::ClientId(vec![0, 3, 0, 1, 1, 1, 1, 1, 1, 1]));
    let l = log(c.handle(Duration::ZERO, Event6::Packet(&other.to_vec().unwrap())));
    assert!(l.contains("not for this client"), "{l}");
    let mut no_server = Message::decode_from(&reply(MessageType::Advertise, xid, "2001:db8::1"));
    no_server.opts_mut().remove(OptionCode::ServerId);
    let l = log(c.handle(Duration::ZERO, Event6::Packet(&no_server.to_vec().unwrap())));
    assert!(l.contains("no server identifier"), "{l}");
    // Another transaction: silently ignored.
    assert!(c
        .handle(
            Duration::ZERO,
            Event6::Packet(&reply(MessageType::Advertise, xid + 1, "2001:db8::1"))
        )
        .is_empty());
    assert_eq!(c.state(), &State6::Soliciting);
}

proptest! {
    #[test]
    fn client_survives_any_datagram(data in proptest::collection::vec(any::<u8>(), 0..400)) {
        let mut c = Client6::new(MAC, IAID, 1);
        c.handle(Duration::ZERO, Event6::Start);
        c.handle(Duration::ZERO, Event6::Packet(&data));
    }

    #[test]
    fn mutated_replies(flips in proptest::collection::vec((0usize..200, any::<u8>()), 1..16)) {
        let (mut c, t) = bound();
        let xid = sent(&c.handle(t + Duration::from_secs(100), Event6::Timeout))[0].1;
        let mut bytes = reply(MessageType::Reply, xid, "2001:db8::105");
        for (at, value) in flips {
            let at = at % bytes.len();
            bytes[at] = value;
        }
        c.handle(t + Duration::from_secs(101), Event6::Packet(&bytes));
    }
}
