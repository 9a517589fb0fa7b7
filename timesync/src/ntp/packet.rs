//! The 48-byte NTP packet header (RFC 5905 §7.3), parsed from and written to the wire.
//!
//! Replies come from the network, so [`Packet::parse`] takes any bytes: short input is an
//! error, extension fields and a MAC after the header are ignored, every 48-byte input
//! parses to a packet that writes back to the same bytes (proptested below). Whether a
//! reply makes sense is decided elsewhere ([`super::sample`]).

use std::fmt;

use thiserror::Error;

/// The size of the header without extension fields or MAC.
pub const HEADER_LEN: usize = 48;

/// Seconds from the NTP era 0 epoch (1900-01-01) to the Unix epoch (1970-01-01).
pub const UNIX_EPOCH_NTP_SECONDS: i64 = 2_208_988_800;

/// An NTP timestamp: seconds since 1900 (modulo 2^32, the era) in the upper 32 bits and
/// the fraction of a second in the lower 32.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct NtpTimestamp(pub u64);

impl NtpTimestamp {
    /// The timestamp of `unix_nanos` nanoseconds after the Unix epoch (any era: the
    /// seconds wrap at 2^32 as on the wire).
    pub fn from_unix_nanos(unix_nanos: i64) -> NtpTimestamp {
        let seconds = unix_nanos.div_euclid(1_000_000_000) + UNIX_EPOCH_NTP_SECONDS;
        let nanos = unix_nanos.rem_euclid(1_000_000_000) as u64;
        let fraction = (nanos << 32) / 1_000_000_000;
        NtpTimestamp(((seconds as u64) << 32).wrapping_add(fraction))
    }

    /// `self - earlier` in nanoseconds, in the two's complement arithmetic of RFC 5905
    /// §6 that is right across an era boundary as long as the two are within 68 years.
    pub fn nanos_since(self, earlier: NtpTimestamp) -> i64 {
        let diff = self.0.wrapping_sub(earlier.0) as i64;
        ((i128::from(diff) * 1_000_000_000) >> 32) as i64
    }

    pub fn is_zero(self) -> bool {
        self.0 == 0
    }
}

/// The leap indicator (2 bits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Leap {
    None,
    AddSecond,
    DeleteSecond,
    /// 3: the server's clock is not synchronized.
    Unsynchronized,
}

impl Leap {
    fn from_bits(bits: u8) -> Leap {
        match bits & 3 {
            0 => Leap::None,
            1 => Leap::AddSecond,
            2 => Leap::DeleteSecond,
            _ => Leap::Unsynchronized,
        }
    }

    fn bits(self) -> u8 {
        match self {
            Leap::None => 0,
            Leap::AddSecond => 1,
            Leap::DeleteSecond => 2,
            Leap::Unsynchronized => 3,
        }
    }
}

/// Association modes (3 bits) this client deals in.
pub const MODE_CLIENT: u8 = 3;
pub const MODE_SERVER: u8 = 4;

/// An NTP packet header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet {
    pub leap: Leap,
    /// 3 bits.
    pub version: u8,
    /// 3 bits.
    pub mode: u8,
    pub stratum: u8,
    pub poll: i8,
    pub precision: i8,
    /// NTP short format, 16.16 seconds.
    pub root_delay: u32,
    pub root_dispersion: u32,
    pub reference_id: [u8; 4],
    pub reference: NtpTimestamp,
    pub origin: NtpTimestamp,
    pub receive: NtpTimestamp,
    pub transmit: NtpTimestamp,
}

/// A datagram that is not an NTP packet.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("a reply of {len} bytes is shorter than the {HEADER_LEN}-byte NTP header")]
pub struct PacketError {
    pub len: usize,
}

impl Packet {
    /// A version 4 client request whose transmit timestamp is `cookie`; the server echoes
    /// it as the origin of its reply.
    pub fn request(cookie: NtpTimestamp) -> Packet {
        Packet {
            leap: Leap::None,
            version: 4,
            mode: MODE_CLIENT,
            stratum: 0,
            poll: 0,
            precision: 0,
            root_delay: 0,
            root_dispersion: 0,
            reference_id: [0; 4],
            reference: NtpTimestamp(0),
            origin: NtpTimestamp(0),
            receive: NtpTimestamp(0),
            transmit: cookie,
        }
    }

    pub fn parse(bytes: &[u8]) -> Result<Packet, PacketError> {
        let header: &[u8; HEADER_LEN] = bytes
            .get(..HEADER_LEN)
            .and_then(|h| h.try_into().ok())
            .ok_or(PacketError { len: bytes.len() })?;
        let u32_at =
            |i: usize| u32::from_be_bytes([header[i], header[i + 1], header[i + 2], header[i + 3]]);
        let ts_at =
            |i: usize| NtpTimestamp((u64::from(u32_at(i)) << 32) | u64::from(u32_at(i + 4)));
        Ok(Packet {
            leap: Leap::from_bits(header[0] >> 6),
            version: (header[0] >> 3) & 7,
            mode: header[0] & 7,
            stratum: header[1],
            poll: header[2] as i8,
            precision: header[3] as i8,
            root_delay: u32_at(4),
            root_dispersion: u32_at(8),
            reference_id: [header[12], header[13], header[14], header[15]],
            reference: ts_at(16),
            origin: ts_at(24),
            receive: ts_at(32),
            transmit: ts_at(40),
        })
    }

    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        out[0] = (self.leap.bits() << 6) | ((self.version & 7) << 3) | (self.mode & 7);
        out[1] = self.stratum;
        out[2] = self.poll as u8;
        out[3] = self.precision as u8;
        out[4..8].copy_from_slice(&self.root_delay.to_be_bytes());
        out[8..12].copy_from_slice(&self.root_dispersion.to_be_bytes());
        out[12..16].copy_from_slice(&self.reference_id);
        for (at, ts) in [
            (16, self.reference),
            (24, self.origin),
            (32, self.receive),
            (40, self.transmit),
        ] {
            out[at..at + 8].copy_from_slice(&ts.0.to_be_bytes());
        }
        out
    }

    /// The reference ID as text: a kiss code or a stratum-1 source name (`RATE`, `GPS`).
    pub fn reference_text(&self) -> String {
        self.reference_id
            .iter()
            .take_while(|b| **b != 0)
            .map(|b| {
                if b.is_ascii_graphic() {
                    *b as char
                } else {
                    '?'
                }
            })
            .collect()
    }
}

/// Converts the NTP short format (16.16 seconds) to nanoseconds.
pub fn short_to_nanos(short: u32) -> i64 {
    ((u64::from(short) * 1_000_000_000) >> 16) as i64
}

impl fmt::Display for NtpTimestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#018x}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_request_is_the_bytes_of_rfc_5905() {
        let bytes = Packet::request(NtpTimestamp(0x0102_0304_0506_0708)).to_bytes();
        // LI 0, VN 4, mode 3.
        assert_eq!(bytes[0], 0x23);
        assert_eq!(&bytes[1..40], &[0u8; 39][..]);
        assert_eq!(&bytes[40..], &[1, 2, 3, 4, 5, 6, 7, 8]);
    }

    #[test]
    fn a_chrony_reply_parses() {
        // LI 0, VN 4, mode 4, stratum 9, poll 6, precision -25, root delay 0x0000_0100,
        // root dispersion 0x0000_0200, reference ID 127.127.1.1.
        let mut bytes = [0u8; HEADER_LEN];
        bytes[..16].copy_from_slice(&[0x24, 9, 6, 0xe7, 0, 0, 1, 0, 0, 0, 2, 0, 127, 127, 1, 1]);
        bytes[24..32].copy_from_slice(&0xaaaa_bbbb_cccc_ddddu64.to_be_bytes());
        let packet = Packet::parse(&bytes).unwrap();
        assert_eq!(packet.leap, Leap::None);
        assert_eq!(
            (packet.version, packet.mode, packet.stratum),
            (4, MODE_SERVER, 9)
        );
        assert_eq!((packet.poll, packet.precision), (6, -25));
        assert_eq!(short_to_nanos(packet.root_delay), 3_906_250);
        assert_eq!(packet.origin, NtpTimestamp(0xaaaa_bbbb_cccc_dddd));
    }

    #[test]
    fn short_input_is_an_error() {
        assert_eq!(Packet::parse(&[0x24; 47]), Err(PacketError { len: 47 }));
        assert!(Packet::parse(&[]).is_err());
    }

    #[test]
    fn unix_time_converts_to_ntp_and_back() {
        // 2026-01-01T00:00:00.5Z
        let unix = 1_767_225_600_500_000_000;
        let ts = NtpTimestamp::from_unix_nanos(unix);
        assert_eq!(ts.0 >> 32, 1_767_225_600 + 2_208_988_800);
        assert_eq!(ts.0 & 0xffff_ffff, 0x8000_0000);
        // 2036-02-07T06:28:16Z is era 1 second 0.
        assert_eq!(
            NtpTimestamp::from_unix_nanos(2_085_978_496_000_000_000).0,
            0
        );
        // The difference across the era boundary is still one second.
        let before = NtpTimestamp::from_unix_nanos(2_085_978_495_000_000_000);
        let after = NtpTimestamp::from_unix_nanos(2_085_978_496_000_000_000);
        assert_eq!(after.nanos_since(before), 1_000_000_000);
        assert_eq!(before.nanos_since(after), -1_000_000_000);
    }

    fn any_packet() -> impl Strategy<Value = Packet> {
        (
            any::<[u8; 4]>(),
            any::<[u32; 3]>(),
            any::<[u64; 4]>(),
            0u8..4,
        )
            .prop_map(|(head, shorts, stamps, leap)| Packet {
                leap: Leap::from_bits(leap),
                version: head[0] & 7,
                mode: head[0] >> 5,
                stratum: head[1],
                poll: head[2] as i8,
                precision: head[3] as i8,
                root_delay: shorts[0],
                root_dispersion: shorts[1],
                reference_id: shorts[2].to_be_bytes(),
                reference: NtpTimestamp(stamps[0]),
                origin: NtpTimestamp(stamps[1]),
                receive: NtpTimestamp(stamps[2]),
                transmit: NtpTimestamp(stamps[3]),
            })
    }

    proptest! {
        #[test]
        fn packets_round_trip(packet in any_packet()) {
            prop_assert_eq!(Packet::parse(&packet.to_bytes()), Ok(packet));
        }

        #[test]
        fn any_header_writes_back_to_its_bytes(bytes in proptest::collection::vec(any::<u8>(), 48..200)) {
            let packet = Packet::parse(&bytes).unwrap();
            prop_assert_eq!(&packet.to_bytes()[..], &bytes[..HEADER_LEN]);
            let _ = packet.reference_text();
        }

        #[test]
        fn short_datagrams_never_parse(bytes in proptest::collection::vec(any::<u8>(), 0..48)) {
            prop_assert!(Packet::parse(&bytes).is_err());
        }

        #[test]
        fn timestamps_keep_nanoseconds(unix in -2_000_000_000_000_000_000i64..4_000_000_000_000_000_000) {
            let a = NtpTimestamp::from_unix_nanos(unix);
            let b = NtpTimestamp::from_unix_nanos(unix + 1_000_000_007);
            // 2^-32 s is 0.23 ns: a difference is right within a nanosecond or two.
            prop_assert!((b.nanos_since(a) - 1_000_000_007).abs() <= 2);
        }
    }
}
