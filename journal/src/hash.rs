//! The two hash functions of the journal format.
//!
//! Files with `HEADER_INCOMPATIBLE_KEYED_HASH` (every file systemd >= 246 writes, and this
//! crate's) hash data and field payloads with SipHash-2-4 keyed by the file id, so that
//! hash-flooding one file does not work; the entry's `xor_hash` is still the XOR of the
//! Jenkins lookup3 hashes of its data, so that cursors are the same in every file. Older
//! files use Jenkins for both. lookup3 is a few lines with no crate of the field, so it is
//! written here from Bob Jenkins' public-domain `hashlittle2` and checked against his
//! published vectors.

use std::hash::Hasher;

use siphasher::sip::SipHasher24;

use crate::id128::Id128;

/// SipHash-2-4 of `data`, keyed by the file id (`journal_file_hash_data` of keyed files).
pub fn siphash24(data: &[u8], key: &Id128) -> u64 {
    let mut h = SipHasher24::new_with_key(&key.0);
    h.write(data);
    h.finish()
}

/// The data/field hash of a file: keyed SipHash or Jenkins, as its header says.
pub fn data_hash(data: &[u8], keyed_by: Option<&Id128>) -> u64 {
    match keyed_by {
        Some(key) => siphash24(data, key),
        None => jenkins_hash64(data),
    }
}

/// systemd's `jenkins_hash64`: lookup3 `hashlittle2` with both seeds zero, the primary
/// result in the high half.
pub fn jenkins_hash64(data: &[u8]) -> u64 {
    let (c, b) = hashlittle2(data, 0, 0);
    (u64::from(c) << 32) | u64::from(b)
}

fn mix(a: &mut u32, b: &mut u32, c: &mut u32) {
    *a = a.wrapping_sub(*c);
    *a ^= c.rotate_left(4);
    *c = c.wrapping_add(*b);
    *b = b.wrapping_sub(*a);
    *b ^= a.rotate_left(6);
    *a = a.wrapping_add(*c);
    *c = c.wrapping_sub(*b);
    *c ^= b.rotate_left(8);
    *b = b.wrapping_add(*a);
    *a = a.wrapping_sub(*c);
    *a ^= c.rotate_left(16);
    *c = c.wrapping_add(*b);
    *b = b.wrapping_sub(*a);
    *b ^= a.rotate_left(19);
    *a = a.wrapping_add(*c);
    *c = c.wrapping_sub(*b);
    *c ^= b.rotate_left(4);
    *b = b.wrapping_add(*a);
}

fn final_mix(a: &mut u32, b: &mut u32, c: &mut u32) {
    *c ^= *b;
    *c = c.wrapping_sub(b.rotate_left(14));
    *a ^= *c;
    *a = a.wrapping_sub(c.rotate_left(11));
    *b ^= *a;
    *b = b.wrapping_sub(a.rotate_left(25));
    *c ^= *b;
    *c = c.wrapping_sub(b.rotate_left(16));
    *a ^= *c;
    *a = a.wrapping_sub(c.rotate_left(4));
    *b ^= *a;
    *b = b.wrapping_sub(a.rotate_left(14));
    *c ^= *b;
    *c = c.wrapping_sub(b.rotate_left(24));
}

/// Little-endian word of up to four bytes, zero-padded (lookup3's byte-wise tail).
fn word(bytes: &[u8]) -> u32 {
    bytes
        .iter()
        .enumerate()
        .fold(0u32, |w, (i, &x)| w | (u32::from(x) << (8 * i)))
}

/// lookup3 `hashlittle2(key, length, &pc, &pb)`: returns `(c, b)`.
fn hashlittle2(key: &[u8], pc: u32, pb: u32) -> (u32, u32) {
    // The length is folded in modulo 2^32, as the C code's uint32_t cast does.
    let init = 0xdead_beef_u32
        .wrapping_add(key.len() as u32)
        .wrapping_add(pc);
    let (mut a, mut b, mut c) = (init, init, init.wrapping_add(pb));
    let mut k = key;
    while k.len() > 12 {
        a = a.wrapping_add(word(&k[0..4]));
        b = b.wrapping_add(word(&k[4..8]));
        c = c.wrapping_add(word(&k[8..12]));
        mix(&mut a, &mut b, &mut c);
        k = &k[12..];
    }
    if k.is_empty() {
        return (c, b);
    }
    a = a.wrapping_add(word(&k[..k.len().min(4)]));
    if k.len() > 4 {
        b = b.wrapping_add(word(&k[4..k.len().min(8)]));
    }
    if k.len() > 8 {
        c = c.wrapping_add(word(&k[8..]));
    }
    final_mix(&mut a, &mut b, &mut c);
    (c, b)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The vectors printed by lookup3.c's own `driver5`.
    #[test]
    fn hashlittle2_matches_lookup3_driver() {
        assert_eq!(hashlittle2(b"", 0, 0), (0xdeadbeef, 0xdeadbeef));
        assert_eq!(hashlittle2(b"", 0, 0xdeadbeef), (0xbd5b7dde, 0xdeadbeef));
        assert_eq!(
            hashlittle2(b"", 0xdeadbeef, 0xdeadbeef),
            (0x9c093ccd, 0xbd5b7dde)
        );
        let s = b"Four score and seven years ago";
        assert_eq!(hashlittle2(s, 0, 0), (0x17770551, 0xce7226e6));
        assert_eq!(hashlittle2(s, 0, 1), (0xe3607cae, 0xbd371de4));
        assert_eq!(hashlittle2(s, 1, 0), (0xcd628161, 0x6cbea4b3));
        assert_eq!(jenkins_hash64(s), 0x17770551_ce7226e6);
    }

    /// The SipHash-2-4 paper's test vector (key 00..0f, message 00..0e).
    #[test]
    fn siphash_matches_reference_vector() {
        let key = Id128(core::array::from_fn(|i| i as u8));
        let msg: Vec<u8> = (0u8..15).collect();
        assert_eq!(siphash24(&msg, &key), 0xa129ca6149be45e5);
    }
}
