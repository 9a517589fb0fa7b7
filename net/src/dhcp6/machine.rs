//! The DHCPv6 client of one link as a pure state machine (RFC 8415 §18): SOLICIT (with
//! Rapid Commit) → ADVERTISE → REQUEST → REPLY, RENEW at T1, REBIND at T2, a new SOLICIT
//! when the valid lifetime ends, RELEASE at stop. Events in, actions out, as
//! [`crate::dhcp::Client`]; every message goes to All_DHCP_Relay_Agents_and_Servers.
//! The first acceptable ADVERTISE is taken (no wait for a better preference).

use std::time::Duration;

use dhcproto::v6::{DhcpOption, IAAddr, Message, MessageType, OptionCode, IANA, ORO};
use dhcproto::{Decodable, Decoder};

use super::lease::Lease6;

/// What the daemon must do.
#[derive(Debug, Clone, PartialEq)]
pub enum Action6 {
    /// Send to ff02::1:2 port 547 out of the link.
    Send(Box<Message>),
    Configure(Box<Lease6>),
    Deconfigure(Box<Lease6>),
    /// New DNS servers and search domains from a stateless exchange.
    Inform(Box<super::stateless::Info6>),
    Log(String),
}

/// What happened.
#[derive(Debug, Clone, Copy)]
pub enum Event6<'a> {
    Start,
    /// A UDP payload received on port 546 of the link.
    Packet(&'a [u8]),
    Timeout,
    Stop,
}

#[derive(Debug, Clone, PartialEq)]
pub enum State6 {
    Idle,
    Soliciting,
    Requesting { offer: Box<Lease6>, tries: u32 },
    Bound { lease: Box<Lease6>, since: Duration },
    Renewing { lease: Box<Lease6>, since: Duration },
    Rebinding { lease: Box<Lease6>, since: Duration },
    Stopped,
}

/// RFC 8415 §7.6 (without the random factor).
const SOL_TIMEOUT: Duration = Duration::from_secs(1);
const SOL_MAX_RT: Duration = Duration::from_secs(3600);
const REQ_TIMEOUT: Duration = Duration::from_secs(1);
const REQ_MAX_RT: Duration = Duration::from_secs(30);
const REQ_MAX_RC: u32 = 10;
const REN_TIMEOUT: Duration = Duration::from_secs(10);
const REN_MAX_RT: Duration = Duration::from_secs(600);

/// One link's DHCPv6 client.
#[derive(Debug)]
pub struct Client6 {
    duid: Vec<u8>,
    iaid: u32,
    xid: u32,
    state: State6,
    deadline: Option<Duration>,
    /// The current retransmission timeout.
    rt: Duration,
    /// When the current exchange began (for the Elapsed Time option).
    started: Duration,
}

/// DUID-LL (RFC 8415 §11.4): type 3, hardware type 1 (Ethernet), the MAC.
pub fn duid_ll(mac: &[u8; 6]) -> Vec<u8> {
    let mut duid = vec![0, 3, 0, 1];
    duid.extend_from_slice(mac);
    duid
}

fn secs(s: u32) -> Duration {
    Duration::from_secs(u64::from(s))
}

impl Client6 {
    /// A client with DUID-LL of `mac`, IA_NA `iaid` and transaction ids from `xid`.
    pub fn new(mac: [u8; 6], iaid: u32, xid: u32) -> Client6 {
        Client6 {
            duid: duid_ll(&mac),
            iaid,
            xid,
            state: State6::Idle,
            deadline: None,
            rt: SOL_TIMEOUT,
            started: Duration::ZERO,
        }
    }

    pub fn state(&self) -> &State6 {
        &self.state
    }

    pub fn deadline(&self) -> Option<Duration> {
        self.deadline
    }

    pub fn lease(&self) -> Option<&Lease6> {
        match &self.state {
            State6::Bound { lease, .. }
            | State6::Renewing { lease, .. }
            | State6::Rebinding { lease, .. } => Some(lease),
            _ => None,
        }
    }

    pub fn handle(&mut self, now: Duration, event: Event6<'_>) -> Vec<Action6> {
        let mut out = Vec::new();
        match event {
            Event6::Start => self.solicit(now, &mut out),
            Event6::Packet(bytes) => self.packet(now, bytes, &mut out),
            Event6::Timeout => self.timeout(now, &mut out),
            Event6::Stop => self.stop(&mut out),
        }
        out
    }

    fn new_exchange(&mut self, now: Duration, rt: Duration) {
        self.xid = self.xid.wrapping_add(1) & 0x00ff_ffff;
        self.started = now;
        self.rt = rt;
    }

    /// Arms the retransmission timer and doubles it up to `max` (RFC 8415 §15).
    fn backoff(&mut self, now: Duration, max: Duration) {
        self.deadline = Some(now + self.rt);
        self.rt = (self.rt * 2).min(max);
    }

    fn solicit(&mut self, now: Duration, out: &mut Vec<Action6>) {
        self.new_exchange(now, SOL_TIMEOUT);
        self.state = State6::Soliciting;
        self.send_solicit(now, out);
    }

    fn send_solicit(&mut self, now: Duration, out: &mut Vec<Action6>) {
        let mut msg = self.message(now, MessageType::Solicit, None, None);
        msg.opts_mut().insert(DhcpOption::RapidCommit);
        out.push(Action6::Send(Box::new(msg)));
        self.backoff(now, SOL_MAX_RT);
    }

    /// A message of the current exchange: client id, elapsed time, the DNS option asked
    /// for, the IA_NA (with `address` if given) and `server`'s id if given.
    fn message(
        &self,
        now: Duration,
        kind: MessageType,
        server: Option<&[u8]>,
        address: Option<&Lease6>,
    ) -> Message {
        let mut msg = new_message(
            kind,
            self.xid,
            &self.duid,
            now.saturating_sub(self.started),
            &[
                OptionCode::DomainNameServers,
                OptionCode::DomainSearchList,
                OptionCode::NtpServer,
            ],
        );
        let opts = msg.opts_mut();
        if let Some(id) = server {
            opts.insert(DhcpOption::ServerId(id.to_vec()));
        }
        let mut ia_opts = dhcproto::v6::DhcpOptions::new();
        if let Some(lease) = address {
            ia_opts.insert(DhcpOption::IAAddr(IAAddr {
                addr: lease.address,
                preferred_life: 0,
                valid_life: 0,
                opts: Default::default(),
            }));
        }
        opts.insert(DhcpOption::IANA(IANA {
            id: self.iaid,
            t1: 0,
            t2: 0,
            opts: ia_opts,
        }));
        msg
    }

    fn packet(&mut self, now: Duration, bytes: &[u8], out: &mut Vec<Action6>) {
        let Some(msg) = decode_or_say(bytes, out) else {
            return;
        };
        if msg.xid_num() != self.xid {
            return;
        }
        let kind = msg.msg_type();
        let rapid = msg.opts().get(OptionCode::RapidCommit).is_some();
        let expected = match &self.state {
            State6::Soliciting => {
                kind == MessageType::Advertise || (kind == MessageType::Reply && rapid)
            }
            State6::Requesting { .. } | State6::Renewing { .. } | State6::Rebinding { .. } => {
                kind == MessageType::Reply
            }
            _ => false,
        };
        if !expected {
            return;
        }
        let lease = match Lease6::from_message(&msg, &self.duid, self.iaid) {
            Ok(l) => l,
            Err(e) => return out.push(Action6::Log(format!("ignored a DHCPv6 {kind:?}: {e}"))),
        };
        if kind == MessageType::Advertise {
            out.push(Action6::Log(format!(
                "DHCPv6 ADVERTISE of {}",
                lease.address
            )));
            self.new_exchange(now, REQ_TIMEOUT);
            let offer = Box::new(lease);
            self.send_request(now, &offer, out);
            self.state = State6::Requesting { offer, tries: 1 };
            return;
        }
        let old = self.lease().cloned();
        if let Some(old) = old.filter(|o| o.address != lease.address) {
            out.push(Action6::Deconfigure(Box::new(old)));
        }
        out.push(Action6::Log(format!(
            "DHCPv6 bound {}/128 valid {}s, renew in {}s",
            lease.address, lease.valid, lease.t1
        )));
        out.push(Action6::Configure(Box::new(lease.clone())));
        self.deadline = Some(now + secs(lease.t1));
        self.state = State6::Bound {
            lease: Box::new(lease),
            since: now,
        };
    }

    /// A REQUEST for `offer`, and the next retransmission's deadline.
    fn send_request(&mut self, now: Duration, offer: &Lease6, out: &mut Vec<Action6>) {
        out.push(Action6::Send(Box::new(self.message(
            now,
            MessageType::Request,
            Some(&offer.server_id),
            Some(offer),
        ))));
        self.backoff(now, REQ_MAX_RT);
    }

    fn timeout(&mut self, now: Duration, out: &mut Vec<Action6>) {
        match std::mem::replace(&mut self.state, State6::Idle) {
            State6::Soliciting => {
                self.state = State6::Soliciting;
                self.send_solicit(now, out);
            }
            State6::Requesting { offer, tries } if tries < REQ_MAX_RC => {
                self.send_request(now, &offer, out);
                self.state = State6::Requesting {
                    offer,
                    tries: tries + 1,
                };
            }
            State6::Requesting { .. } => {
                out.push(Action6::Log(
                    "no DHCPv6 REPLY to REQUEST; soliciting again".into(),
                ));
                self.solicit(now, out);
            }
            State6::Bound { lease, since } => self.renew(now, lease, since, 0, out),
            State6::Renewing { lease, since } => self.renew(now, lease, since, 1, out),
            State6::Rebinding { lease, since } => self.renew(now, lease, since, 2, out),
            other => {
                self.state = other;
                self.deadline = None;
            }
        }
    }

    /// At T1 RENEW (to the server), at T2 REBIND (to any), at the end of the valid
    /// lifetime remove the address and solicit again. `phase` is where the client was:
    /// 0 bound, 1 renewing, 2 rebinding; each move starts a new exchange.
    fn renew(
        &mut self,
        now: Duration,
        lease: Box<Lease6>,
        since: Duration,
        phase: u8,
        out: &mut Vec<Action6>,
    ) {
        let (t2, end) = (since + secs(lease.t2), since + secs(lease.valid));
        if lease.valid != u32::MAX && now >= end {
            out.push(Action6::Log(format!(
                "DHCPv6 lease of {} expired",
                lease.address
            )));
            out.push(Action6::Deconfigure(lease));
            return self.solicit(now, out);
        }
        let rebinding = now >= t2;
        if phase == 0 || (rebinding && phase == 1) {
            self.new_exchange(now, REN_TIMEOUT);
        }
        let (kind, server) = if rebinding {
            (MessageType::Rebind, None)
        } else {
            (MessageType::Renew, Some(lease.server_id.as_slice()))
        };
        out.push(Action6::Send(Box::new(self.message(
            now,
            kind,
            server,
            Some(&lease),
        ))));
        self.backoff(now, REN_MAX_RT);
        let limit = if rebinding {
            (lease.valid != u32::MAX).then_some(end)
        } else {
            Some(t2)
        };
        if let (Some(limit), Some(d)) = (limit, self.deadline) {
            self.deadline = Some(d.min(limit));
        }
        self.state = if rebinding {
            State6::Rebinding { lease, since }
        } else {
            State6::Renewing { lease, since }
        };
    }

    fn stop(&mut self, out: &mut Vec<Action6>) {
        if let Some(lease) = self.lease().cloned() {
            self.new_exchange(self.started, REN_TIMEOUT);
            let msg = self.message(
                self.started,
                MessageType::Release,
                Some(&lease.server_id),
                Some(&lease),
            );
            out.push(Action6::Send(Box::new(msg)));
            out.push(Action6::Log(format!("DHCPv6 released {}", lease.address)));
            out.push(Action6::Deconfigure(Box::new(lease)));
        }
        self.state = State6::Stopped;
        self.deadline = None;
    }
}

/// A message of transaction `xid` with what every client message carries: the client's
/// DUID, the Elapsed Time option (in hundredths of a second, RFC 8415 §21.9) and the
/// options `wanted` in an Option Request option.
pub(super) fn new_message(
    kind: MessageType,
    xid: u32,
    duid: &[u8],
    elapsed: Duration,
    wanted: &[OptionCode],
) -> Message {
    let b = xid.to_be_bytes();
    let mut msg = Message::new_with_id(kind, [b[1], b[2], b[3]]);
    let opts = msg.opts_mut();
    opts.insert(DhcpOption::ClientId(duid.to_vec()));
    let elapsed = (elapsed.as_millis() / 10).min(0xffff) as u16;
    opts.insert(DhcpOption::ElapsedTime(elapsed));
    opts.insert(DhcpOption::ORO(ORO {
        opts: wanted.to_vec(),
    }));
    msg
}

/// Decodes a datagram for a client; one that is not DHCPv6 is said in `out` and gives
/// `None`.
pub(crate) fn decode_or_say(bytes: &[u8], out: &mut Vec<Action6>) -> Option<Message> {
    match decode(bytes) {
        Ok(m) => Some(m),
        Err(e) => {
            out.push(Action6::Log(format!(
                "ignored a datagram that is not DHCPv6: {e}"
            )));
            None
        }
    }
}

/// Decodes a datagram; a panic in the decoder (as dhcproto's v4 one has had) is caught
/// and reported as an error, so no packet can stop the client.
pub(crate) fn decode(bytes: &[u8]) -> Result<Message, String> {
    match std::panic::catch_unwind(|| Message::decode(&mut Decoder::new(bytes))) {
        Ok(Ok(msg)) => Ok(msg),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("the decoder rejected it".to_string()),
    }
}
