//! 128-bit ids (file, machine, boot and seqnum ids) as the journal stores them: 16 raw
//! bytes, printed as 32 lowercase hex digits (`sd_id128_to_string`).

use std::fmt;
use std::io::Read;

use crate::error::JournalError;

/// A 128-bit id in its on-disk byte order.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Id128(pub [u8; 16]);

impl Id128 {
    /// Parses 32 hex digits, with or without the dashes of the UUID form
    /// (`/proc/sys/kernel/random/boot_id` has them, `/etc/machine-id` has not).
    pub fn parse(s: &str) -> Result<Id128, JournalError> {
        let bad = || JournalError::BadId128 {
            text: s.to_string(),
        };
        let digits: Vec<u8> = s.trim().bytes().filter(|&c| c != b'-').collect();
        if digits.len() != 32 {
            return Err(bad());
        }
        let mut out = [0u8; 16];
        for (i, pair) in digits.chunks(2).enumerate() {
            let hi = (pair[0] as char).to_digit(16).ok_or_else(bad)?;
            let lo = (pair[1] as char).to_digit(16).ok_or_else(bad)?;
            out[i] = (hi * 16 + lo) as u8;
        }
        Ok(Id128(out))
    }

    /// A random (version 4) id from the kernel's random pool.
    pub fn random() -> Result<Id128, JournalError> {
        let mut out = [0u8; 16];
        std::fs::File::open("/dev/urandom")
            .and_then(|mut f| f.read_exact(&mut out))
            .map_err(|source| JournalError::Random { source })?;
        // As sd_id128_randomize: mark it a version 4, variant 1 UUID.
        out[6] = (out[6] & 0x0f) | 0x40;
        out[8] = (out[8] & 0x3f) | 0x80;
        Ok(Id128(out))
    }

    /// This boot's id (`/proc/sys/kernel/random/boot_id`).
    pub fn boot_id() -> Result<Id128, JournalError> {
        let path = "/proc/sys/kernel/random/boot_id";
        let text = std::fs::read_to_string(path).map_err(|source| JournalError::Open {
            path: path.into(),
            source,
        })?;
        Id128::parse(&text)
    }

    pub fn is_null(&self) -> bool {
        self.0 == [0; 16]
    }
}

impl fmt::Display for Id128 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // One write of 32 hex digits: every entry's `_BOOT_ID=` goes through here, and a
        // `write!` per byte cost more than the rest of appending the entry.
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut out = [0u8; 32];
        for (i, b) in self.0.iter().enumerate() {
            out[2 * i] = HEX[usize::from(b >> 4)];
            out[2 * i + 1] = HEX[usize::from(b & 0xf)];
        }
        // Only ASCII hex digits were written.
        f.write_str(std::str::from_utf8(&out).map_err(|_| fmt::Error)?)
    }
}

impl fmt::Debug for Id128 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Id128({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_forms_and_prints_plain_hex() {
        let a = Id128::parse("0123456789abcdef0123456789ABCDEF").unwrap();
        let b = Id128::parse("01234567-89ab-cdef-0123-456789abcdef\n").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.0[0], 0x01);
        assert_eq!(a.to_string(), "0123456789abcdef0123456789abcdef");
        assert!(Id128::parse("0123").is_err());
        assert!(Id128::parse("g123456789abcdef0123456789abcdef").is_err());
    }

    #[test]
    fn boot_id_and_clocks_are_read() {
        let boot = Id128::boot_id().unwrap();
        assert!(!boot.is_null());
        let t = crate::EntryTime::now(boot);
        assert!(t.realtime > 1_600_000_000_000_000 && t.monotonic > 0);
    }

    #[test]
    fn random_ids_differ_and_are_v4() {
        let a = Id128::random().unwrap();
        assert_ne!(a, Id128::random().unwrap());
        assert_eq!(a.0[6] >> 4, 4);
    }
}
