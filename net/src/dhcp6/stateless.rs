//! Stateless DHCPv6 (RFC 8415 §18.2.6): the client of a link whose router advertisements
//! have the O flag and not M, which asks for DNS servers and search domains only, with
//! an Information-request, and asks again after the server's Information Refresh Time.
//! Pure like [`super::Client6`]: events in, [`Action6`]s out; no address, so nothing to
//! release at stop.

use std::net::Ipv6Addr;
use std::time::Duration;

use dhcproto::v6::{DhcpOption, DhcpOptions, Message, MessageType, OptionCode};

use super::lease::{checked_reply, dns_options, ntp_option, Lease6Error};
use super::machine::{decode_or_say, duid_ll, new_message, Action6, Event6};

/// RFC 8415 §7.6.
const INF_TIMEOUT: Duration = Duration::from_secs(1);
const INF_MAX_RT: Duration = Duration::from_secs(3600);
/// The first Information-request waits a random time up to this (§18.2.6), so that the
/// hosts a router wakes at once do not all ask at once.
pub const INF_MAX_DELAY: Duration = Duration::from_secs(1);
/// Information Refresh Time (option 32) when the server gives none, and its floor (§21.23).
pub const IRT_DEFAULT: u32 = 86_400;
pub const IRT_MINIMUM: u32 = 600;

/// What a REPLY to an Information-request gave; the refresh in seconds (`None`: never).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Info6 {
    pub server_id: Vec<u8>,
    pub dns: Vec<Ipv6Addr>,
    /// Search domains, without the final dot.
    pub domains: Vec<String>,
    /// NTP servers (option 56).
    pub ntp: Vec<String>,
    pub refresh: Option<u32>,
}

impl Info6 {
    /// The answer in `msg` for the client `duid`, checked as RFC 8415 §16.10 asks of a
    /// REPLY (a server id, our client id since we sent one, no error status).
    pub fn from_message(msg: &Message, duid: &[u8]) -> Result<(Info6, Vec<String>), Lease6Error> {
        let opts = msg.opts();
        let server_id = checked_reply(opts, duid)?;
        let (dns, domains, mut ignored) = dns_options(opts);
        let ntp = ntp_option(opts, &mut ignored);
        let refresh = match refresh_time(opts) {
            Ok(Some(u32::MAX)) => None,
            Ok(Some(t)) => Some(t.max(IRT_MINIMUM)),
            Ok(None) => Some(IRT_DEFAULT),
            Err(len) => {
                ignored.push(format!(
                    "Information Refresh Time (option 32) of {len} bytes, not 4"
                ));
                Some(IRT_DEFAULT)
            }
        };
        let info = Info6 {
            server_id: server_id.to_vec(),
            dns,
            domains,
            ntp,
            refresh,
        };
        Ok((info, ignored))
    }
}

/// Option 32's value; `Err(length)` when it is not 4 bytes long. dhcproto 0.15 encodes
/// the option but decodes it as an unknown one, so both forms are read.
fn refresh_time(opts: &DhcpOptions) -> Result<Option<u32>, usize> {
    match opts.get(OptionCode::InformationRefreshTime) {
        Some(DhcpOption::InformationRefreshTime(t)) => Ok(Some(*t)),
        Some(DhcpOption::Unknown(raw)) => match <[u8; 4]>::try_from(raw.data()) {
            Ok(bytes) => Ok(Some(u32::from_be_bytes(bytes))),
            Err(_) => Err(raw.data().len()),
        },
        _ => Ok(None),
    }
}

/// Where the client is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InfoState {
    Idle,
    /// Before the first Information-request (the random delay).
    Waiting,
    /// An Information-request is out; retransmitted until a REPLY.
    Asking,
    /// Answered; asks again at the refresh time.
    Informed,
    Stopped,
}

/// One link's stateless DHCPv6 client.
#[derive(Debug)]
pub struct InfoClient {
    duid: Vec<u8>,
    xid: u32,
    delay: Duration,
    state: InfoState,
    /// The last answer, kept while a refresh is asked for.
    info: Option<Info6>,
    deadline: Option<Duration>,
    rt: Duration,
    started: Duration,
}

impl InfoClient {
    /// A client with DUID-LL of `mac`, transaction ids from `xid`, and `delay` (at most
    /// [`INF_MAX_DELAY`], chosen at random by the caller) before its first message.
    pub fn new(mac: [u8; 6], xid: u32, delay: Duration) -> InfoClient {
        InfoClient {
            duid: duid_ll(&mac),
            xid,
            delay: delay.min(INF_MAX_DELAY),
            state: InfoState::Idle,
            info: None,
            deadline: None,
            rt: INF_TIMEOUT,
            started: Duration::ZERO,
        }
    }

    pub fn state(&self) -> InfoState {
        self.state
    }

    pub fn deadline(&self) -> Option<Duration> {
        self.deadline
    }

    pub fn info(&self) -> Option<&Info6> {
        self.info.as_ref()
    }

    pub fn handle(&mut self, now: Duration, event: Event6<'_>) -> Vec<Action6> {
        let mut out = Vec::new();
        match (event, self.state) {
            (Event6::Start, InfoState::Idle) => {
                self.state = InfoState::Waiting;
                self.deadline = Some(now + self.delay);
            }
            (Event6::Timeout, InfoState::Waiting | InfoState::Informed) => {
                self.xid = self.xid.wrapping_add(1) & 0x00ff_ffff;
                self.started = now;
                self.rt = INF_TIMEOUT;
                self.state = InfoState::Asking;
                self.ask(now, &mut out);
            }
            (Event6::Timeout, InfoState::Asking) => self.ask(now, &mut out),
            (Event6::Packet(bytes), InfoState::Asking) => self.packet(now, bytes, &mut out),
            (Event6::Stop, _) => {
                self.state = InfoState::Stopped;
                self.info = None;
                self.deadline = None;
            }
            _ => {}
        }
        out
    }

    /// Sends (or resends) the Information-request; the timeout doubles up to INF_MAX_RT
    /// and never gives up (MRC and MRD are 0).
    fn ask(&mut self, now: Duration, out: &mut Vec<Action6>) {
        let msg = new_message(
            MessageType::InformationRequest,
            self.xid,
            &self.duid,
            now.saturating_sub(self.started),
            &[
                OptionCode::DomainNameServers,
                OptionCode::DomainSearchList,
                OptionCode::NtpServer,
                OptionCode::InformationRefreshTime,
            ],
        );
        out.push(Action6::Send(Box::new(msg)));
        self.deadline = Some(now + self.rt);
        self.rt = (self.rt * 2).min(INF_MAX_RT);
    }

    fn packet(&mut self, now: Duration, bytes: &[u8], out: &mut Vec<Action6>) {
        let Some(msg) = decode_or_say(bytes, out) else {
            return;
        };
        if msg.xid_num() != self.xid || msg.msg_type() != MessageType::Reply {
            return;
        }
        let (info, ignored) = match Info6::from_message(&msg, &self.duid) {
            Ok(got) => got,
            Err(e) => return out.push(Action6::Log(format!("ignored a DHCPv6 Reply: {e}"))),
        };
        for what in ignored {
            out.push(Action6::Log(format!("DHCPv6 Reply: ignored {what}")));
        }
        let servers: Vec<String> = info.dns.iter().map(ToString::to_string).collect();
        out.push(Action6::Log(format!(
            "DHCPv6 information: servers [{}] search [{}], refresh {}",
            servers.join(" "),
            info.domains.join(" "),
            info.refresh.map_or("never".into(), |s| format!("in {s}s"))
        )));
        self.deadline = info
            .refresh
            .map(|s| now + Duration::from_secs(u64::from(s)));
        self.state = InfoState::Informed;
        if self.info.as_ref() != Some(&info) {
            out.push(Action6::Inform(Box::new(info.clone())));
        }
        self.info = Some(info);
    }
}
