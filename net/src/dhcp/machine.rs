//! The DHCPv4 client of one link as a pure state machine (RFC 2131 §4.4).
//!
//! [`Client::handle`] takes an event (start, a received datagram, the deadline reached,
//! stop) and the current monotonic time, and returns actions (send this message to the
//! broadcast or a unicast address, configure or remove a lease, log a line). No sockets
//! and no clock inside: the daemon does the I/O, and the tests drive every transition —
//! including garbage from the server — without root.

use std::net::Ipv4Addr;
use std::time::Duration;

use dhcproto::v4::{DhcpOption, Message, MessageType, Opcode, OptionCode};
use dhcproto::{Decodable, Decoder};

use super::lease::Lease;

/// Where a message goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Destination {
    /// 255.255.255.255:67 out of the link.
    Broadcast,
    /// The server, at its address (renewal, release).
    Unicast(Ipv4Addr),
}

/// What the daemon must do.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Send {
        message: Box<Message>,
        to: Destination,
    },
    Configure(Box<Lease>),
    Deconfigure(Box<Lease>),
    Log(String),
}

/// What happened.
#[derive(Debug, Clone, Copy)]
pub enum Event<'a> {
    Start,
    /// A UDP payload received on port 68 of the link.
    Packet(&'a [u8]),
    /// The time returned by [`Client::deadline`] has come.
    Timeout,
    /// Shutdown: release the lease.
    Stop,
}

/// RFC 2131's client states (INIT-REBOOT is not used: leases are not kept across boots).
#[derive(Debug, Clone, PartialEq)]
pub enum State {
    Idle,
    Selecting,
    Requesting { offer: Box<Lease>, tries: u32 },
    Bound { lease: Box<Lease>, since: Duration },
    Renewing { lease: Box<Lease>, since: Duration },
    Rebinding { lease: Box<Lease>, since: Duration },
    Stopped,
}

/// REQUESTs sent for one OFFER before starting over with a DISCOVER.
const REQUEST_TRIES: u32 = 4;
/// The longest wait between retransmissions (RFC 2131 §4.1: 64 s).
const MAX_BACKOFF: Duration = Duration::from_secs(64);
/// The shortest wait between renewal retransmissions (RFC 2131 §4.4.5: 60 s).
const MIN_RENEW_RETRY: Duration = Duration::from_secs(60);

/// One link's client.
#[derive(Debug)]
pub struct Client {
    mac: [u8; 6],
    xid: u32,
    state: State,
    deadline: Option<Duration>,
    attempt: u32,
    started: Duration,
}

impl Client {
    /// A client for the link with hardware address `mac`; `xid` seeds the transaction ids
    /// (random in the daemon, fixed in tests).
    pub fn new(mac: [u8; 6], xid: u32) -> Client {
        Client {
            mac,
            xid,
            state: State::Idle,
            deadline: None,
            attempt: 0,
            started: Duration::ZERO,
        }
    }

    pub fn state(&self) -> &State {
        &self.state
    }

    /// When the client wants a [`Event::Timeout`].
    pub fn deadline(&self) -> Option<Duration> {
        self.deadline
    }

    /// Whether the link has no leased address yet, so replies must be read below IP.
    pub fn unconfigured(&self) -> bool {
        matches!(self.state, State::Selecting | State::Requesting { .. })
    }

    /// The lease in force, if any.
    pub fn lease(&self) -> Option<&Lease> {
        match &self.state {
            State::Bound { lease, .. }
            | State::Renewing { lease, .. }
            | State::Rebinding { lease, .. } => Some(lease),
            _ => None,
        }
    }

    /// Feeds one event at monotonic time `now`.
    pub fn handle(&mut self, now: Duration, event: Event<'_>) -> Vec<Action> {
        let mut out = Vec::new();
        match event {
            Event::Start => self.discover(now, &mut out),
            Event::Packet(bytes) => self.packet(now, bytes, &mut out),
            Event::Timeout => self.timeout(now, &mut out),
            Event::Stop => self.stop(&mut out),
        }
        out
    }

    fn discover(&mut self, now: Duration, out: &mut Vec<Action>) {
        self.xid = self.xid.wrapping_add(1);
        self.attempt = 0;
        self.started = now;
        self.state = State::Selecting;
        self.send_discover(now, out);
    }

    fn send_discover(&mut self, now: Duration, out: &mut Vec<Action>) {
        let msg = self.message(now, MessageType::Discover, Ipv4Addr::UNSPECIFIED);
        out.push(Action::Send {
            message: Box::new(msg),
            to: Destination::Broadcast,
        });
        self.deadline = Some(now + self.backoff());
        self.attempt += 1;
    }

    /// 1, 2, 4 … 64 s: quick first tries, since a cloud's server answers in milliseconds.
    fn backoff(&self) -> Duration {
        Duration::from_secs(1u64 << self.attempt.min(6)).min(MAX_BACKOFF)
    }

    fn timeout(&mut self, now: Duration, out: &mut Vec<Action>) {
        match self.state.clone() {
            State::Selecting => self.send_discover(now, out),
            State::Requesting { offer, tries } if tries < REQUEST_TRIES => {
                self.send_request(now, &offer, Destination::Broadcast, out);
                self.state = State::Requesting {
                    offer,
                    tries: tries + 1,
                };
            }
            State::Requesting { .. } => {
                out.push(Action::Log(
                    "no ACK for the offer; discovering again".into(),
                ));
                self.discover(now, out);
            }
            State::Bound { lease, since } => {
                out.push(Action::Log(format!(
                    "renewing {} with {}",
                    lease.address, lease.server
                )));
                self.state = State::Renewing { lease, since };
                self.renew(now, out);
            }
            State::Renewing { .. } | State::Rebinding { .. } => self.renew(now, out),
            State::Idle | State::Stopped => self.deadline = None,
        }
    }

    /// Renewing and rebinding: expire, move on to rebinding at T2, or retransmit.
    fn renew(&mut self, now: Duration, out: &mut Vec<Action>) {
        let (lease, since, rebinding) = match &self.state {
            State::Renewing { lease, since } => (lease.clone(), *since, false),
            State::Rebinding { lease, since } => (lease.clone(), *since, true),
            _ => return,
        };
        let at = |secs: u32| since + Duration::from_secs(u64::from(secs));
        if now >= at(lease.lease_time) {
            out.push(Action::Log(format!("lease of {} expired", lease.address)));
            out.push(Action::Deconfigure(lease));
            self.discover(now, out);
            return;
        }
        let rebinding = rebinding || now >= at(lease.t2);
        if rebinding && !matches!(self.state, State::Rebinding { .. }) {
            out.push(Action::Log(format!(
                "no answer from {}; rebinding",
                lease.server
            )));
            self.state = State::Rebinding {
                lease: lease.clone(),
                since,
            };
        }
        let (to, until) = if rebinding {
            (Destination::Broadcast, at(lease.lease_time))
        } else {
            (Destination::Unicast(lease.server), at(lease.t2))
        };
        self.send_request(now, &lease, to, out);
        let half = until.saturating_sub(now) / 2;
        self.deadline = Some((now + half.max(MIN_RENEW_RETRY)).min(until));
    }

    fn send_request(
        &mut self,
        now: Duration,
        lease: &Lease,
        to: Destination,
        out: &mut Vec<Action>,
    ) {
        let selecting = matches!(self.state, State::Selecting | State::Requesting { .. });
        let ciaddr = if selecting {
            Ipv4Addr::UNSPECIFIED
        } else {
            lease.address.addr
        };
        let mut msg = self.message(now, MessageType::Request, ciaddr);
        if selecting {
            // RFC 2131 §4.3.2: options 50 and 54 only in SELECTING.
            msg.opts_mut()
                .insert(DhcpOption::RequestedIpAddress(lease.address.addr));
            msg.opts_mut()
                .insert(DhcpOption::ServerIdentifier(lease.server));
            self.deadline = Some(now + Duration::from_secs(1u64 << self.attempt.min(4)));
            self.attempt += 1;
        }
        out.push(Action::Send {
            message: Box::new(msg),
            to,
        });
    }

    fn packet(&mut self, now: Duration, bytes: &[u8], out: &mut Vec<Action>) {
        let msg = match decode(bytes) {
            Ok(msg) => msg,
            Err(e) => {
                out.push(Action::Log(format!(
                    "ignored a {}-byte packet that is not DHCP: {e}",
                    bytes.len()
                )));
                return;
            }
        };
        // Replies to other clients (and our own broadcasts) are not for us: skip quietly.
        if msg.opcode() != Opcode::BootReply
            || msg.xid() != self.xid
            || msg.chaddr().get(..6) != Some(&self.mac[..])
        {
            return;
        }
        let kind = msg.opts().msg_type();
        match (&self.state, kind) {
            (State::Selecting, Some(MessageType::Offer)) => match Lease::from_message(&msg) {
                Ok(offer) => {
                    out.push(Action::Log(format!(
                        "offer of {} from {}",
                        offer.address, offer.server
                    )));
                    self.attempt = 0;
                    self.state = State::Requesting {
                        offer: Box::new(offer.clone()),
                        tries: 1,
                    };
                    self.send_request(now, &offer, Destination::Broadcast, out);
                }
                Err(e) => out.push(Action::Log(format!("ignored an OFFER: {e}"))),
            },
            (
                State::Requesting { .. } | State::Renewing { .. } | State::Rebinding { .. },
                Some(MessageType::Ack),
            ) => match Lease::from_message(&msg) {
                Ok(lease) => self.bind(now, lease, out),
                Err(e) => out.push(Action::Log(format!("ignored an ACK: {e}"))),
            },
            (
                State::Requesting { .. } | State::Renewing { .. } | State::Rebinding { .. },
                Some(MessageType::Nak),
            ) => {
                let why = match msg.opts().get(OptionCode::Message) {
                    Some(DhcpOption::Message(m)) => format!(": {m}"),
                    _ => String::new(),
                };
                out.push(Action::Log(format!(
                    "NAK from the server{why}; starting over"
                )));
                if let Some(lease) = self.lease().cloned() {
                    out.push(Action::Deconfigure(Box::new(lease)));
                }
                self.discover(now, out);
            }
            (_, None) => out.push(Action::Log(
                "ignored a reply without a message type (option 53)".into(),
            )),
            _ => {}
        }
    }

    fn bind(&mut self, now: Duration, lease: Lease, out: &mut Vec<Action>) {
        let old = self.lease().cloned();
        out.push(Action::Log(format!(
            "bound {} from {} for {}s (renew in {}s)",
            lease.address, lease.server, lease.lease_time, lease.t1
        )));
        for note in &lease.ignored {
            out.push(Action::Log(format!("ignored from the lease: {note}")));
        }
        if let Some(old) = old.filter(|o| o.address != lease.address) {
            out.push(Action::Deconfigure(Box::new(old)));
        }
        self.deadline =
            (lease.t1 != u32::MAX).then(|| now + Duration::from_secs(u64::from(lease.t1)));
        out.push(Action::Configure(Box::new(lease.clone())));
        self.state = State::Bound {
            lease: Box::new(lease),
            since: now,
        };
    }

    fn stop(&mut self, out: &mut Vec<Action>) {
        if let Some(lease) = self.lease().cloned() {
            let mut msg = self.message(self.started, MessageType::Release, lease.address.addr);
            msg.opts_mut()
                .insert(DhcpOption::ServerIdentifier(lease.server));
            out.push(Action::Send {
                message: Box::new(msg),
                to: Destination::Unicast(lease.server),
            });
            out.push(Action::Log(format!(
                "released {} to {}",
                lease.address, lease.server
            )));
            out.push(Action::Deconfigure(Box::new(lease)));
        }
        self.state = State::Stopped;
        self.deadline = None;
    }

    /// A BOOTREQUEST of `kind` with the options every message carries.
    fn message(&self, now: Duration, kind: MessageType, ciaddr: Ipv4Addr) -> Message {
        let zero = Ipv4Addr::UNSPECIFIED;
        let mut msg = Message::new_with_id(self.xid, ciaddr, zero, zero, zero, &self.mac);
        msg.set_secs(
            now.saturating_sub(self.started)
                .as_secs()
                .min(u64::from(u16::MAX)) as u16,
        );
        let opts = msg.opts_mut();
        opts.insert(DhcpOption::MessageType(kind));
        let mut id = vec![1u8];
        id.extend_from_slice(&self.mac);
        opts.insert(DhcpOption::ClientIdentifier(id));
        if kind != MessageType::Release {
            opts.insert(DhcpOption::MaxMessageSize(1500));
            opts.insert(DhcpOption::ParameterRequestList(vec![
                OptionCode::SubnetMask,
                OptionCode::Router,
                OptionCode::DomainNameServer,
                OptionCode::Hostname,
                OptionCode::DomainName,
                OptionCode::InterfaceMtu,
                OptionCode::AddressLeaseTime,
                OptionCode::ServerIdentifier,
                OptionCode::Renewal,
                OptionCode::Rebinding,
                OptionCode::DomainSearch,
                OptionCode::ClasslessStaticRoute,
                OptionCode::NtpServers,
            ]));
        }
        msg
    }
}

/// Decodes a datagram. dhcproto 0.15 has a `debug_assert!` on the length of option 94
/// (`ClientNetworkInterface`, v4/options.rs), so a debug build panics on such garbage (the
/// proptest below found it); the panic is caught and reported as a decode error, so a
/// hostile server can never stop the client.
pub(crate) fn decode(bytes: &[u8]) -> Result<Message, String> {
    match std::panic::catch_unwind(|| Message::decode(&mut Decoder::new(bytes))) {
        Ok(Ok(msg)) => Ok(msg),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("the decoder rejected it".to_string()),
    }
}
