//! One measurement: a reply checked against the request it answers, and the clock offset
//! and round-trip delay from the four timestamps (RFC 5905 §8):
//!
//! ```text
//! offset = ((T2 - T1) + (T3 - T4)) / 2      delay = (T4 - T1) - (T3 - T2)
//! ```
//!
//! T1 and T4 are the local clock when the request left and the reply came back, T2 and
//! T3 the server's when it received the request and sent the reply. A reply that cannot
//! be used is a [`Reject`] that says why, as RFC 4330 §5 lists: wrong mode, not our
//! request, kiss-o'-death, unsynchronized server, zero timestamps.

use std::fmt;
use std::net::SocketAddr;

use thiserror::Error;

use super::packet::{short_to_nanos, Leap, NtpTimestamp, Packet, MODE_SERVER};

/// A server farther than this from a reference clock (half its root delay plus its root
/// dispersion) is not believed: chrony's default `maxdistance`.
pub const MAX_ROOT_DISTANCE_NANOS: i64 = 3_000_000_000;

/// Why a reply was not used.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Reject {
    #[error("mode {0} is not a server reply (mode 4)")]
    Mode(u8),
    #[error("version {0} is not NTP version 1 to 4")]
    Version(u8),
    #[error("its origin timestamp {got} is not our request's {sent} (a stale or spoofed reply)")]
    OriginMismatch {
        sent: NtpTimestamp,
        got: NtpTimestamp,
    },
    #[error("kiss-o'-death {0:?} (stratum 0): the server refuses to serve us")]
    KissOfDeath(String),
    #[error("the server's clock is not synchronized (leap indicator 3)")]
    Unsynchronized,
    #[error("stratum {0} is not a synchronized server (1 to 15)")]
    Stratum(u8),
    #[error("its transmit timestamp is zero")]
    ZeroTransmit,
    #[error("its receive timestamp is zero")]
    ZeroReceive,
    #[error("its root distance {0} is more than {max} s", max = MAX_ROOT_DISTANCE_NANOS / 1_000_000_000)]
    RootDistance(Seconds),
}

/// A signed duration in nanoseconds that prints as seconds (`+0.000123 s`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Seconds(pub i64);

impl Seconds {
    pub fn from_secs_f64(secs: f64) -> Seconds {
        Seconds((secs * 1e9) as i64)
    }

    pub fn abs(self) -> Seconds {
        Seconds(self.0.saturating_abs())
    }

    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / 1e9
    }
}

impl fmt::Display for Seconds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:+.6} s", self.as_secs_f64())
    }
}

/// A usable measurement against one server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    pub server: SocketAddr,
    /// How far the local clock is behind the server: add it to the local clock.
    pub offset: Seconds,
    /// The round trip, never negative.
    pub delay: Seconds,
    pub stratum: u8,
    /// Half the server's root delay plus its root dispersion: its own error bound.
    pub root_distance: Seconds,
}

impl Sample {
    /// The bound on this sample's error: half the round trip plus the server's root
    /// distance (the half-width of RFC 5905's correctness interval).
    pub fn error_bound(&self) -> Seconds {
        Seconds(self.delay.0 / 2 + self.root_distance.0)
    }
}

impl fmt::Display for Sample {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} offset {} delay {:.6} s stratum {}",
            self.server,
            self.offset,
            self.delay.as_secs_f64(),
            self.stratum
        )
    }
}

/// Checks `reply` against the request sent with `cookie` at local time `t1` and received
/// at `t4` (Unix nanoseconds), and computes the sample.
pub fn evaluate(
    server: SocketAddr,
    cookie: NtpTimestamp,
    t1_unix_nanos: i64,
    t4_unix_nanos: i64,
    reply: &Packet,
) -> Result<Sample, Reject> {
    if reply.mode != MODE_SERVER {
        return Err(Reject::Mode(reply.mode));
    }
    if !(1..=4).contains(&reply.version) {
        return Err(Reject::Version(reply.version));
    }
    if reply.origin != cookie {
        return Err(Reject::OriginMismatch {
            sent: cookie,
            got: reply.origin,
        });
    }
    if reply.stratum == 0 {
        return Err(Reject::KissOfDeath(reply.reference_text()));
    }
    if reply.leap == Leap::Unsynchronized {
        return Err(Reject::Unsynchronized);
    }
    if reply.stratum > 15 {
        return Err(Reject::Stratum(reply.stratum));
    }
    if reply.transmit.is_zero() {
        return Err(Reject::ZeroTransmit);
    }
    if reply.receive.is_zero() {
        return Err(Reject::ZeroReceive);
    }
    let root_distance =
        Seconds(short_to_nanos(reply.root_delay) / 2 + short_to_nanos(reply.root_dispersion));
    if root_distance.0 > MAX_ROOT_DISTANCE_NANOS {
        return Err(Reject::RootDistance(root_distance));
    }
    let t1 = NtpTimestamp::from_unix_nanos(t1_unix_nanos);
    let t4 = NtpTimestamp::from_unix_nanos(t4_unix_nanos);
    let (t2, t3) = (reply.receive, reply.transmit);
    let offset = (i128::from(t2.nanos_since(t1)) + i128::from(t3.nanos_since(t4))) / 2;
    // A server whose clock runs fast between T2 and T3 can make this negative.
    let delay = (t4.nanos_since(t1) - t3.nanos_since(t2)).max(0);
    Ok(Sample {
        server,
        offset: Seconds(offset as i64),
        delay: Seconds(delay),
        stratum: reply.stratum,
        root_distance,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ntp::packet::MODE_CLIENT;
    use proptest::prelude::*;

    const SERVER: &str = "127.0.0.1:123";
    const SEC: i64 = 1_000_000_000;
    /// 2026-12-05T00:00:00Z.
    const NOW: i64 = 1_796_428_800 * SEC;

    fn reply(cookie: NtpTimestamp, t2: i64, t3: i64) -> Packet {
        Packet {
            mode: MODE_SERVER,
            stratum: 2,
            reference_id: *b"GOOG",
            origin: cookie,
            receive: NtpTimestamp::from_unix_nanos(t2),
            transmit: NtpTimestamp::from_unix_nanos(t3),
            root_delay: 0x0000_0100,
            root_dispersion: 0x0000_0100,
            ..Packet::request(NtpTimestamp(0))
        }
    }

    fn eval(packet: &Packet, cookie: NtpTimestamp, t1: i64, t4: i64) -> Result<Sample, Reject> {
        evaluate(SERVER.parse().unwrap(), cookie, t1, t4, packet)
    }

    #[test]
    fn offset_and_delay_from_the_four_timestamps() {
        let cookie = NtpTimestamp(0x1234);
        // The server is 10 s ahead; 20 ms each way; it holds the request 1 ms.
        let t1 = NOW;
        let t2 = NOW + 10 * SEC + 20_000_000;
        let t3 = t2 + 1_000_000;
        let t4 = NOW + 41_000_000;
        let sample = eval(&reply(cookie, t2, t3), cookie, t1, t4).unwrap();
        assert!((sample.offset.0 - 10 * SEC).abs() <= 2, "{sample}");
        assert!((sample.delay.0 - 40_000_000).abs() <= 2, "{sample}");
        assert_eq!(sample.stratum, 2);
        // 0x100/65536 s = 3.90625 ms: half of it plus all of it.
        assert_eq!(sample.root_distance, Seconds(1_953_125 + 3_906_250));
    }

    #[test]
    fn a_clock_a_year_behind_is_a_year_of_offset() {
        let cookie = NtpTimestamp(7);
        let year = 365 * 86_400 * SEC;
        let sample = eval(&reply(cookie, NOW, NOW), cookie, NOW - year, NOW - year).unwrap();
        assert!((sample.offset.0 - year).abs() <= 2);
        assert_eq!(sample.delay, Seconds(0));
    }

    #[test]
    fn bad_replies_are_rejected_with_the_reason() {
        let cookie = NtpTimestamp(99);
        let good = reply(cookie, NOW, NOW);
        let cases: Vec<(Packet, Reject)> = vec![
            (
                Packet {
                    mode: MODE_CLIENT,
                    ..good
                },
                Reject::Mode(3),
            ),
            (Packet { version: 0, ..good }, Reject::Version(0)),
            (
                Packet {
                    origin: NtpTimestamp(98),
                    ..good
                },
                Reject::OriginMismatch {
                    sent: cookie,
                    got: NtpTimestamp(98),
                },
            ),
            (
                Packet {
                    stratum: 0,
                    reference_id: *b"RATE",
                    ..good
                },
                Reject::KissOfDeath("RATE".into()),
            ),
            (
                Packet {
                    leap: Leap::Unsynchronized,
                    ..good
                },
                Reject::Unsynchronized,
            ),
            (
                Packet {
                    stratum: 16,
                    ..good
                },
                Reject::Stratum(16),
            ),
            (
                Packet {
                    transmit: NtpTimestamp(0),
                    ..good
                },
                Reject::ZeroTransmit,
            ),
            (
                Packet {
                    receive: NtpTimestamp(0),
                    ..good
                },
                Reject::ZeroReceive,
            ),
            (
                Packet {
                    root_dispersion: 4 << 16,
                    ..good
                },
                Reject::RootDistance(Seconds(1_953_125 + 4 * SEC)),
            ),
        ];
        for (packet, why) in cases {
            assert_eq!(eval(&packet, cookie, NOW, NOW), Err(why));
        }
        assert!(eval(&good, cookie, NOW, NOW).is_ok());
    }

    proptest! {
        #[test]
        fn any_reply_is_judged_without_panicking(
            bytes in proptest::collection::vec(any::<u8>(), 48),
            t1 in any::<i64>(),
            rtt in 0i64..10_000_000_000,
        ) {
            let packet = Packet::parse(&bytes).unwrap();
            let t4 = t1.saturating_add(rtt);
            if let Ok(sample) = eval(&packet, packet.origin, t1, t4) {
                prop_assert!(sample.delay.0 >= 0);
            }
        }

        #[test]
        fn the_offset_is_the_servers_lead(lead in -(60 * 365 * 86_400 * SEC)..(60 * 365 * 86_400 * SEC), rtt in 0i64..2_000_000_000) {
            let cookie = NtpTimestamp(1);
            let t2 = NOW + lead + rtt / 2;
            let sample = eval(&reply(cookie, t2, t2), cookie, NOW, NOW + rtt).unwrap();
            prop_assert!((sample.offset.0 - lead).abs() <= 2);
            prop_assert!((sample.delay.0 - rtt).abs() <= 2);
        }
    }
}
