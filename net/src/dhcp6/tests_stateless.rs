//! The stateless DHCPv6 client on a virtual clock: the Information-request RFC 8415
//! §18.2.6 asks for, its retransmission, the REPLY's DNS and refresh time, and garbage.

use std::net::Ipv6Addr;
use std::time::Duration;

use dhcproto::v6::{
    DhcpOption, Message, MessageType, NtpSuboption, OptionCode, Status, StatusCode, ORO,
};
use dhcproto::Encodable;
use proptest::prelude::*;

use super::machine::{decode, duid_ll};
use super::stateless::{IRT_DEFAULT, IRT_MINIMUM};
use super::*;

const MAC: [u8; 6] = [0x52, 0x54, 0, 1, 2, 3];
const DELAY: Duration = Duration::from_millis(300);

fn ip(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

fn sent(actions: &[Action6]) -> Vec<Message> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action6::Send(m) => Some((**m).clone()),
            _ => None,
        })
        .collect()
}

fn logs(actions: &[Action6]) -> String {
    actions
        .iter()
        .filter_map(|a| match a {
            Action6::Log(l) => Some(format!("{l}\n")),
            _ => None,
        })
        .collect()
}

/// A REPLY to `xid`: DNS 2001:db8::53 and 2001:db8::54, search `corp.example` and
/// `example`, NTP 2001:db8::123, multicast ff05::101 and `time.example`, and `refresh` as
/// option 32 when given.
fn reply_msg(xid: u32, refresh: Option<u32>) -> Message {
    let mut msg = Message::new(MessageType::Reply);
    msg.set_xid_num(xid);
    let opts = msg.opts_mut();
    opts.insert(DhcpOption::ServerId(vec![0, 1, 9, 9]));
    opts.insert(DhcpOption::ClientId(duid_ll(&MAC)));
    opts.insert(DhcpOption::DomainNameServers(vec![
        ip("2001:db8::53"),
        ip("2001:db8::54"),
    ]));
    opts.insert(DhcpOption::DomainSearchList(vec![
        "corp.example.".parse().unwrap(),
        "example.".parse().unwrap(),
    ]));
    opts.insert(DhcpOption::NtpServer(vec![
        NtpSuboption::ServerAddress(ip("2001:db8::123")),
        NtpSuboption::MulticastAddress(ip("ff05::101")),
        NtpSuboption::FQDN("Time.Example.".parse().unwrap()),
    ]));
    if let Some(t) = refresh {
        opts.insert(DhcpOption::InformationRefreshTime(t));
    }
    msg
}

fn reply(xid: u32, refresh: Option<u32>) -> Vec<u8> {
    reply_msg(xid, refresh).to_vec().unwrap()
}

/// A started client past its random delay, with its first Information-request.
fn asking() -> (InfoClient, Message) {
    let mut c = InfoClient::new(MAC, 41, DELAY);
    assert!(c.handle(Duration::ZERO, Event6::Start).is_empty());
    assert_eq!(c.state(), InfoState::Waiting);
    assert_eq!(c.deadline(), Some(DELAY));
    let out = c.handle(DELAY, Event6::Timeout);
    let msgs = sent(&out);
    assert_eq!(msgs.len(), 1);
    (c, msgs[0].clone())
}

/// A client that has its answer (the [`reply_msg`] one, refresh 3600 s), for other tests.
pub(crate) fn informed() -> InfoClient {
    let (mut c, ir) = asking();
    c.handle(DELAY, Event6::Packet(&reply(ir.xid_num(), Some(3600))));
    assert_eq!(c.state(), InfoState::Informed);
    c
}

#[test]
fn information_request_carries_what_rfc_8415_asks() {
    let (c, ir) = asking();
    assert_eq!(c.state(), InfoState::Asking);
    assert_eq!(ir.msg_type(), MessageType::InformationRequest);
    let opts = ir.opts();
    assert_eq!(
        opts.get(OptionCode::ElapsedTime),
        Some(&DhcpOption::ElapsedTime(0))
    );
    assert_eq!(
        opts.get(OptionCode::ClientId),
        Some(&DhcpOption::ClientId(duid_ll(&MAC)))
    );
    assert_eq!(
        opts.get(OptionCode::ORO),
        Some(&DhcpOption::ORO(ORO {
            opts: vec![
                OptionCode::DomainNameServers,
                OptionCode::DomainSearchList,
                OptionCode::NtpServer,
                OptionCode::InformationRefreshTime
            ]
        }))
    );
    // No IA of any kind and no server id (§18.2.6).
    for code in [
        OptionCode::IANA,
        OptionCode::IATA,
        OptionCode::IAPD,
        OptionCode::ServerId,
    ] {
        assert!(opts.get(code).is_none(), "{code:?} in {ir:?}");
    }
    // The bytes decode as an Information-request (type 11).
    let bytes = ir.to_vec().unwrap();
    assert_eq!(bytes[0], 11);
    assert_eq!(decode(&bytes).unwrap(), ir);
}

#[test]
fn the_delay_is_at_most_inf_max_delay() {
    let mut c = InfoClient::new(MAC, 1, Duration::from_secs(9));
    c.handle(Duration::ZERO, Event6::Start);
    assert_eq!(c.deadline(), Some(stateless::INF_MAX_DELAY));
}

#[test]
fn retransmits_doubling_to_inf_max_rt_and_never_gives_up() {
    let (mut c, first) = asking();
    let mut now = DELAY;
    let mut gaps = Vec::new();
    for _ in 0..16 {
        let next = c.deadline().unwrap();
        gaps.push((next - now).as_secs());
        now = next;
        let msgs = sent(&c.handle(now, Event6::Timeout));
        assert_eq!(msgs.len(), 1);
        // The same transaction, its elapsed time growing (hundredths, capped at 0xffff).
        assert_eq!(msgs[0].xid_num(), first.xid_num());
        let elapsed = ((now - DELAY).as_millis() / 10).min(0xffff) as u16;
        assert_eq!(
            msgs[0].opts().get(OptionCode::ElapsedTime),
            Some(&DhcpOption::ElapsedTime(elapsed))
        );
    }
    assert_eq!(
        gaps,
        [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 3600, 3600, 3600, 3600]
    );
    assert_eq!(c.state(), InfoState::Asking);
}

#[test]
fn reply_gives_dns_and_domains_and_sets_the_refresh() {
    let (mut c, ir) = asking();
    let t = Duration::from_secs(2);
    let out = c.handle(t, Event6::Packet(&reply(ir.xid_num(), Some(7200))));
    let info = match out.iter().find_map(|a| match a {
        Action6::Inform(i) => Some(i.clone()),
        _ => None,
    }) {
        Some(i) => i,
        None => panic!("no Inform in {out:?}"),
    };
    assert_eq!(info.dns, [ip("2001:db8::53"), ip("2001:db8::54")]);
    assert_eq!(info.domains, ["corp.example", "example"]);
    // The multicast server is left out (and named in the log).
    assert_eq!(info.ntp, ["2001:db8::123", "time.example"]);
    assert!(
        logs(&out).contains("ignored NTP server ff05::101 (option 56)"),
        "{out:?}"
    );
    assert_eq!(info.refresh, Some(7200));
    assert_eq!(c.state(), InfoState::Informed);
    assert_eq!(c.info(), Some(&*info));
    assert_eq!(c.deadline(), Some(t + Duration::from_secs(7200)));
    let dhcp6 = Dhcp6::Stateless(c);
    assert_eq!(dhcp6.dns().0, [ip("2001:db8::53"), ip("2001:db8::54")]);
    assert!(dhcp6.lease().is_none() && !dhcp6.is_stateful());
}

#[test]
fn refresh_time_default_minimum_and_infinity() {
    for (given, want) in [
        (None, Some(IRT_DEFAULT)),
        (Some(30), Some(IRT_MINIMUM)),
        (Some(600), Some(600)),
        (Some(u32::MAX), None),
    ] {
        let (mut c, ir) = asking();
        c.handle(DELAY, Event6::Packet(&reply(ir.xid_num(), given)));
        assert_eq!(c.info().unwrap().refresh, want, "{given:?}");
        assert_eq!(
            c.deadline(),
            want.map(|s| DELAY + Duration::from_secs(u64::from(s)))
        );
    }
}

#[test]
fn refresh_asks_again_keeping_the_old_answer_until_a_new_one() {
    let (mut c, ir) = asking();
    c.handle(DELAY, Event6::Packet(&reply(ir.xid_num(), Some(600))));
    let refresh_at = DELAY + Duration::from_secs(600);
    let msgs = sent(&c.handle(refresh_at, Event6::Timeout));
    assert_eq!(msgs[0].msg_type(), MessageType::InformationRequest);
    assert_ne!(msgs[0].xid_num(), ir.xid_num(), "a new transaction");
    assert_eq!(
        msgs[0].opts().get(OptionCode::ElapsedTime),
        Some(&DhcpOption::ElapsedTime(0))
    );
    assert_eq!(c.state(), InfoState::Asking);
    assert!(c.info().is_some(), "the old answer stays while asking");
    assert_eq!(c.deadline(), Some(refresh_at + Duration::from_secs(1)));
    // The same answer again: no Inform (nothing changed), the refresh rearmed.
    let out = c.handle(
        refresh_at,
        Event6::Packet(&reply(msgs[0].xid_num(), Some(600))),
    );
    assert!(
        !out.iter().any(|a| matches!(a, Action6::Inform(_))),
        "{out:?}"
    );
    assert_eq!(c.deadline(), Some(refresh_at + Duration::from_secs(600)));
}

#[test]
fn bad_replies_are_logged_and_ignored() {
    let (mut c, ir) = asking();
    let xid = ir.xid_num();
    let l = logs(&c.handle(DELAY, Event6::Packet(b"\x07\x01")));
    assert!(l.contains("not DHCPv6"), "{l}");
    let mut status = reply_msg(xid, None);
    status.opts_mut().insert(DhcpOption::StatusCode(StatusCode {
        status: Status::UnspecFail,
        msg: "no".into(),
    }));
    let l = logs(&c.handle(DELAY, Event6::Packet(&status.to_vec().unwrap())));
    assert!(l.contains("the server says UnspecFail"), "{l}");
    let mut no_client = reply_msg(xid, None);
    no_client.opts_mut().remove(OptionCode::ClientId);
    let l = logs(&c.handle(DELAY, Event6::Packet(&no_client.to_vec().unwrap())));
    assert!(l.contains("not for this client"), "{l}");
    let mut no_server = reply_msg(xid, None);
    no_server.opts_mut().remove(OptionCode::ServerId);
    let l = logs(&c.handle(DELAY, Event6::Packet(&no_server.to_vec().unwrap())));
    assert!(l.contains("no server identifier"), "{l}");
    // Another transaction, or an ADVERTISE: silently ignored.
    assert!(c
        .handle(DELAY, Event6::Packet(&reply(xid + 1, None)))
        .is_empty());
    let mut adv = reply_msg(xid, None);
    adv.set_msg_type(MessageType::Advertise);
    assert!(c
        .handle(DELAY, Event6::Packet(&adv.to_vec().unwrap()))
        .is_empty());
    assert_eq!(c.state(), InfoState::Asking);
    assert!(c.info().is_none());
    // Unusable entries are left out and named; the rest is taken.
    let mut odd = reply_msg(xid, None);
    odd.opts_mut().insert(DhcpOption::DomainNameServers(vec![
        Ipv6Addr::UNSPECIFIED,
        ip("ff02::1"),
        ip("2001:db8::53"),
    ]));
    let out = c.handle(DELAY, Event6::Packet(&odd.to_vec().unwrap()));
    let l = logs(&out);
    assert!(l.contains("ignored DNS server :: (option 23)"), "{l}");
    assert!(l.contains("ignored DNS server ff02::1 (option 23)"), "{l}");
    assert_eq!(c.info().unwrap().dns, [ip("2001:db8::53")]);
}

#[test]
fn a_refresh_time_of_the_wrong_length_is_named_and_the_default_taken() {
    let (mut c, ir) = asking();
    let mut msg = reply_msg(ir.xid_num(), None);
    msg.opts_mut()
        .insert(DhcpOption::Unknown(dhcproto::v6::UnknownOption::new(
            OptionCode::InformationRefreshTime,
            vec![0, 0, 9],
        )));
    let l = logs(&c.handle(DELAY, Event6::Packet(&msg.to_vec().unwrap())));
    assert!(
        l.contains("ignored Information Refresh Time (option 32) of 3 bytes, not 4"),
        "{l}"
    );
    assert_eq!(c.info().unwrap().refresh, Some(IRT_DEFAULT));
}

#[test]
fn stop_forgets_and_sends_nothing() {
    let (mut c, ir) = asking();
    c.handle(DELAY, Event6::Packet(&reply(ir.xid_num(), None)));
    assert!(c.handle(DELAY, Event6::Stop).is_empty());
    assert_eq!(c.state(), InfoState::Stopped);
    assert!(c.info().is_none() && c.deadline().is_none());
    assert!(c.handle(DELAY, Event6::Timeout).is_empty());
}

#[test]
fn stateful_lease_takes_the_search_list_too() {
    let mut msg = reply_msg(5, None);
    msg.opts_mut().insert(DhcpOption::IANA(dhcproto::v6::IANA {
        id: 7,
        t1: 0,
        t2: 0,
        opts: {
            let mut o = dhcproto::v6::DhcpOptions::new();
            o.insert(DhcpOption::IAAddr(dhcproto::v6::IAAddr {
                addr: ip("2001:db8::9"),
                preferred_life: 100,
                valid_life: 200,
                opts: Default::default(),
            }));
            o
        },
    }));
    let lease = Lease6::from_message(&msg, &duid_ll(&MAC), 7).unwrap();
    assert_eq!(lease.domains, ["corp.example", "example"]);
    assert_eq!(lease.ntp, ["2001:db8::123", "time.example"]);
    assert_eq!(lease.dns, [ip("2001:db8::53"), ip("2001:db8::54")]);
}

proptest! {
    #[test]
    fn stateless_client_survives_any_datagram(data in proptest::collection::vec(any::<u8>(), 0..400)) {
        let (mut c, _) = asking();
        c.handle(DELAY, Event6::Packet(&data));
    }

    /// Mutated REPLYs: never a panic; whatever is taken holds only usable entries.
    #[test]
    fn mutated_replies(flips in proptest::collection::vec((0usize..200, any::<u8>()), 1..16)) {
        let (mut c, ir) = asking();
        let mut bytes = reply(ir.xid_num(), Some(3600));
        for (at, value) in flips {
            let at = at % bytes.len();
            bytes[at] = value;
        }
        c.handle(DELAY, Event6::Packet(&bytes));
        if let Some(info) = c.info() {
            prop_assert!(info.dns.iter().all(|s| !s.is_unspecified() && !s.is_multicast()));
            prop_assert!(info.refresh.is_none_or(|r| r >= IRT_MINIMUM));
            prop_assert!(info.domains.iter().all(|d| !d.is_empty() && !d.ends_with('.')));
        }
    }

    /// Any refresh time the server sends comes out at least IRT_MINIMUM, or never.
    #[test]
    fn any_refresh_time(t in any::<u32>()) {
        let (mut c, ir) = asking();
        c.handle(DELAY, Event6::Packet(&reply(ir.xid_num(), Some(t))));
        let want = if t == u32::MAX { None } else { Some(t.max(IRT_MINIMUM)) };
        prop_assert_eq!(c.info().map(|i| i.refresh), Some(want));
    }
}
