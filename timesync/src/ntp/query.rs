//! The exchange with one server: a request over UDP, the matching reply within a time
//! limit, several times, keeping the sample with the shortest round trip (the least
//! disturbed by queueing, as RFC 5905's clock filter does).
//!
//! The socket is connected to the server, so the kernel drops datagrams from anyone
//! else; a datagram that is not the answer to our request (garbage, a stale reply) is
//! remembered and waited past, so a server sending junk ends in a timeout that says what
//! the junk was, never in a panic.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use thiserror::Error;

use super::packet::{NtpTimestamp, Packet};
use super::sample::{evaluate, Reject, Sample};
use crate::clock::Clock;

/// How many samples to take and how.
#[derive(Debug, Clone, Copy)]
pub struct QueryOptions {
    pub samples: u32,
    /// The pause between two requests to the same server.
    pub interval: Duration,
    /// How long to wait for each reply.
    pub timeout: Duration,
}

impl Default for QueryOptions {
    fn default() -> QueryOptions {
        QueryOptions {
            samples: 4,
            interval: Duration::from_millis(250),
            timeout: Duration::from_secs(1),
        }
    }
}

#[derive(Debug, Error)]
pub enum QueryError {
    #[error("{server}: cannot open a UDP socket to it: {source}")]
    Socket {
        server: SocketAddr,
        source: io::Error,
    },
    #[error("{server}: sending the request failed: {source}")]
    Send {
        server: SocketAddr,
        source: io::Error,
    },
    #[error("{server}: receiving failed: {source}")]
    Receive {
        server: SocketAddr,
        source: io::Error,
    },
    #[error("{server}: no usable reply within {waited:?}{}", last.as_ref().map(|l| format!(" (last datagram: {l})")).unwrap_or_default())]
    Timeout {
        server: SocketAddr,
        waited: Duration,
        last: Option<String>,
    },
    #[error("{server}: reply rejected: {reason}")]
    Rejected { server: SocketAddr, reason: Reject },
    #[error("cannot make a request cookie: {0}")]
    Random(String),
}

/// Takes `options.samples` samples of `server` and returns the one with the shortest
/// round trip; the error of the last attempt when none succeeded. A kiss-o'-death ends
/// the series at once (the server asked us to stop).
pub fn sample_server(
    clock: &dyn Clock,
    server: SocketAddr,
    options: &QueryOptions,
) -> Result<Sample, QueryError> {
    let mut best: Option<Sample> = None;
    let mut last_error = None;
    for i in 0..options.samples.max(1) {
        if i > 0 {
            clock.sleep(options.interval);
        }
        match query_once(clock, server, options.timeout) {
            Ok(sample) => {
                if best.as_ref().is_none_or(|b| sample.delay < b.delay) {
                    best = Some(sample);
                }
            }
            Err(
                e @ QueryError::Rejected {
                    reason: Reject::KissOfDeath(_),
                    ..
                },
            ) => return Err(e),
            Err(e) => last_error = Some(e),
        }
    }
    match (best, last_error) {
        (Some(sample), _) => Ok(sample),
        (None, Some(e)) => Err(e),
        (None, None) => Err(QueryError::Timeout {
            server,
            waited: options.timeout,
            last: None,
        }),
    }
}

/// One request and its reply.
pub fn query_once(
    clock: &dyn Clock,
    server: SocketAddr,
    timeout: Duration,
) -> Result<Sample, QueryError> {
    let socket_error = |source| QueryError::Socket { server, source };
    let local: SocketAddr = if server.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        ([0u16; 8], 0).into()
    };
    let socket = UdpSocket::bind(local).map_err(socket_error)?;
    socket.connect(server).map_err(socket_error)?;
    let mut random = [0u8; 8];
    getrandom::getrandom(&mut random).map_err(|e| QueryError::Random(e.to_string()))?;
    let cookie = NtpTimestamp(u64::from_ne_bytes(random));

    let t1 = clock.realtime();
    let sent_at = clock.monotonic();
    socket
        .send(&Packet::request(cookie).to_bytes())
        .map_err(|source| QueryError::Send { server, source })?;

    let mut last = None;
    let mut buf = [0u8; 1024];
    loop {
        let waited = clock.monotonic().saturating_sub(sent_at);
        let Some(left) = timeout.checked_sub(waited).filter(|d| !d.is_zero()) else {
            return Err(QueryError::Timeout {
                server,
                waited: timeout,
                last,
            });
        };
        socket.set_read_timeout(Some(left)).map_err(socket_error)?;
        let len = match socket.recv(&mut buf) {
            Ok(len) => len,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                continue
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            // ICMP port unreachable, reported on the connected socket: nobody listens.
            Err(source) => return Err(QueryError::Receive { server, source }),
        };
        // T4 from the monotonic clock, so a step by someone else meanwhile cannot skew it.
        let elapsed = clock.monotonic().saturating_sub(sent_at);
        let t4 = t1.saturating_add(i64::try_from(elapsed.as_nanos()).unwrap_or(i64::MAX));
        let packet = match Packet::parse(&buf[..len]) {
            Ok(packet) => packet,
            Err(e) => {
                last = Some(e.to_string());
                continue;
            }
        };
        match evaluate(server, cookie, t1, t4, &packet) {
            Ok(sample) => return Ok(sample),
            // Not an answer to this request: wait for the real one.
            Err(
                reason @ (Reject::OriginMismatch { .. } | Reject::Mode(_) | Reject::Version(_)),
            ) => {
                last = Some(reason.to_string());
            }
            Err(reason) => return Err(QueryError::Rejected { server, reason }),
        }
    }
}
