//! SPDY/3 header blocks (draft section 2.6.10): a count and length-prefixed name/value
//! pairs, compressed with zlib primed with the SPDY/3 dictionary. Each direction of a
//! connection is one zlib stream, flushed (Z_SYNC_FLUSH) after every block, so the
//! [`HeaderCodec`] lives as long as the connection and sees the blocks in frame order.
//! Decompressed blocks are bounded: a small frame cannot inflate without end.

use std::sync::OnceLock;

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

/// The most header bytes one block may inflate to.
pub const MAX_HEADER_BLOCK: usize = 64 * 1024;

/// A header block that cannot be read or written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    #[error("SPDY header block: zlib: {0}")]
    Zlib(String),
    #[error("SPDY header block inflates past {MAX_HEADER_BLOCK} bytes")]
    TooLarge,
    #[error("SPDY header block is truncated")]
    Truncated,
    #[error("SPDY header block names a dictionary other than SPDY/3's")]
    Dictionary,
}

/// Header names SPDY/3 primes its dictionary with, each written as a 32-bit length and
/// the name, before [`DICTIONARY_TAIL`].
const DICTIONARY_WORDS: &[&str] = &[
    "options",
    "head",
    "post",
    "put",
    "delete",
    "trace",
    "accept",
    "accept-charset",
    "accept-encoding",
    "accept-language",
    "accept-ranges",
    "age",
    "allow",
    "authorization",
    "cache-control",
    "connection",
    "content-base",
    "content-encoding",
    "content-language",
    "content-length",
    "content-location",
    "content-md5",
    "content-range",
    "content-type",
    "date",
    "etag",
    "expect",
    "expires",
    "from",
    "host",
    "if-match",
    "if-modified-since",
    "if-none-match",
    "if-range",
    "if-unmodified-since",
    "last-modified",
    "location",
    "max-forwards",
    "pragma",
    "proxy-authenticate",
    "proxy-authorization",
    "range",
    "referer",
    "retry-after",
    "server",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "user-agent",
    "vary",
    "via",
    "warning",
    "www-authenticate",
    "method",
    "get",
    "status",
    "200 OK",
    "version",
    "HTTP/1.1",
    "url",
    "public",
    "set-cookie",
    "keep-alive",
    "origin",
];

/// The rest of the SPDY/3 dictionary, raw.
const DICTIONARY_TAIL: &str = "100101201202205206300302303304305306307402405406407408409410\
411412413414415416417502504505203 Non-Authoritative Information204 No Content301 Moved \
Permanently400 Bad Request401 Unauthorized403 Forbidden404 Not Found500 Internal Server \
Error501 Not Implemented503 Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct \
Nov Dec 00:00:00 Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMTchunked,text/html,image/png,\
image/jpg,image/gif,application/xml,application/xhtml+xml,text/plain,text/javascript,\
publicprivatemax-age=gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0.";

/// The SPDY/3 zlib dictionary (1423 bytes).
pub fn dictionary() -> &'static [u8] {
    static DICT: OnceLock<Vec<u8>> = OnceLock::new();
    DICT.get_or_init(|| {
        let mut d = Vec::with_capacity(1423);
        for word in DICTIONARY_WORDS {
            d.extend_from_slice(&(word.len() as u32).to_be_bytes());
            d.extend_from_slice(word.as_bytes());
        }
        d.extend_from_slice(DICTIONARY_TAIL.as_bytes());
        d
    })
}

/// One connection's header compression, both directions.
pub struct HeaderCodec {
    compress: Compress,
    decompress: Decompress,
}

impl HeaderCodec {
    pub fn new() -> Result<Self, HeaderError> {
        let mut compress = Compress::new(Compression::default(), true);
        compress
            .set_dictionary(dictionary())
            .map_err(|e| HeaderError::Zlib(e.to_string()))?;
        Ok(HeaderCodec {
            compress,
            decompress: Decompress::new(true),
        })
    }

    /// Encodes and compresses one header block.
    pub fn encode(&mut self, headers: &[(String, String)]) -> Result<Vec<u8>, HeaderError> {
        let plain = encode_block(headers);
        let mut out = Vec::with_capacity(plain.len() + 64);
        let mut consumed = 0usize;
        loop {
            out.reserve(256);
            let before = self.compress.total_in();
            self.compress
                .compress_vec(&plain[consumed..], &mut out, FlushCompress::Sync)
                .map_err(|e| HeaderError::Zlib(e.to_string()))?;
            consumed += (self.compress.total_in() - before) as usize;
            // A sync flush is complete when all input is taken and room was left over.
            if consumed == plain.len() && out.len() < out.capacity() {
                return Ok(out);
            }
        }
    }

    /// Inflates and parses one header block; names are lowercase in SPDY/3.
    pub fn decode(&mut self, block: &[u8]) -> Result<Vec<(String, String)>, HeaderError> {
        let mut out = Vec::with_capacity(1024);
        let mut consumed = 0usize;
        while consumed < block.len() || out.len() == out.capacity() {
            if out.len() >= MAX_HEADER_BLOCK {
                return Err(HeaderError::TooLarge);
            }
            out.reserve(1024.min(MAX_HEADER_BLOCK + 1 - out.len()));
            let before_in = self.decompress.total_in();
            let before_out = out.len();
            let result =
                self.decompress
                    .decompress_vec(&block[consumed..], &mut out, FlushDecompress::Sync);
            consumed += (self.decompress.total_in() - before_in) as usize;
            match result {
                Ok(Status::Ok) | Ok(Status::BufError) => {}
                Ok(Status::StreamEnd) => break,
                Err(e) => match e.needs_dictionary() {
                    Some(adler) => {
                        // zlib refuses a dictionary whose Adler-32 is not the one asked for.
                        let got = self
                            .decompress
                            .set_dictionary(dictionary())
                            .map_err(|_| HeaderError::Dictionary)?;
                        if got != adler {
                            return Err(HeaderError::Dictionary);
                        }
                        continue;
                    }
                    None => return Err(HeaderError::Zlib(e.to_string())),
                },
            }
            if self.decompress.total_in() == before_in && out.len() == before_out {
                break;
            }
        }
        decode_block(&out)
    }
}

/// The uncompressed block: count, then length-prefixed names and values.
pub fn encode_block(headers: &[(String, String)]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&(headers.len() as u32).to_be_bytes());
    for (name, value) in headers {
        for s in [name.to_ascii_lowercase(), value.clone()] {
            out.extend_from_slice(&(s.len() as u32).to_be_bytes());
            out.extend_from_slice(s.as_bytes());
        }
    }
    out
}

/// Parses an uncompressed block. A value holding several NUL-separated values gives one
/// pair per value.
pub fn decode_block(mut data: &[u8]) -> Result<Vec<(String, String)>, HeaderError> {
    fn take<'a>(data: &mut &'a [u8], n: usize) -> Result<&'a [u8], HeaderError> {
        if data.len() < n {
            return Err(HeaderError::Truncated);
        }
        let (head, rest) = data.split_at(n);
        *data = rest;
        Ok(head)
    }
    fn int(data: &mut &[u8]) -> Result<usize, HeaderError> {
        let b = take(data, 4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
    }
    let count = int(&mut data)?;
    let mut headers = Vec::new();
    for _ in 0..count {
        let n = int(&mut data)?;
        let name = String::from_utf8_lossy(take(&mut data, n)?).to_ascii_lowercase();
        let n = int(&mut data)?;
        let value = take(&mut data, n)?;
        for v in value.split(|b| *b == 0) {
            headers.push((name.clone(), String::from_utf8_lossy(v).into_owned()));
        }
    }
    Ok(headers)
}

/// The first value of `name` (lowercase).
pub fn get<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_dictionary_is_spdy3s() {
        let d = dictionary();
        assert_eq!(d.len(), 1423);
        assert_eq!(&d[..11], b"\0\0\0\x07options");
        assert!(d.ends_with(b",*,enq=0."));
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn blocks_round_trip_through_one_zlib_stream_per_direction() {
        let mut client = HeaderCodec::new().unwrap();
        let mut server = HeaderCodec::new().unwrap();
        for block in [
            pairs(&[("streamtype", "error")]),
            pairs(&[("streamtype", "stdout"), ("port", "80")]),
            pairs(&[]),
            pairs(&[("x", &"y".repeat(5000))]),
        ] {
            let wire = client.encode(&block).unwrap();
            assert_eq!(server.decode(&wire).unwrap(), block);
        }
    }

    #[test]
    fn zlib_of_another_dictionary_or_garbage_is_refused() {
        let mut other = Compress::new(Compression::default(), true);
        other.set_dictionary(b"not the spdy dictionary").unwrap();
        let mut wire = Vec::with_capacity(256);
        other
            .compress_vec(&encode_block(&[]), &mut wire, FlushCompress::Sync)
            .unwrap();
        let mut server = HeaderCodec::new().unwrap();
        assert_eq!(server.decode(&wire), Err(HeaderError::Dictionary));
        let mut server = HeaderCodec::new().unwrap();
        assert!(server.decode(b"\x78\x9c\xff\xff\xff").is_err());
    }

    #[test]
    fn a_bomb_is_bounded() {
        let mut client = HeaderCodec::new().unwrap();
        let big = pairs(&[("a", &"z".repeat(MAX_HEADER_BLOCK))]);
        let wire = client.encode(&big).unwrap();
        assert!(wire.len() < 2048);
        let mut server = HeaderCodec::new().unwrap();
        assert_eq!(server.decode(&wire), Err(HeaderError::TooLarge));
    }

    #[test]
    fn multi_values_split_on_nul() {
        let block = encode_block(&pairs(&[("Upgrade", "a\0b")]));
        assert_eq!(
            decode_block(&block).unwrap(),
            pairs(&[("upgrade", "a"), ("upgrade", "b")])
        );
        assert_eq!(
            decode_block(&block[..block.len() - 1]),
            Err(HeaderError::Truncated)
        );
    }

    proptest! {
        #[test]
        fn arbitrary_blocks_never_panic(data in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode_block(&data);
            let mut server = HeaderCodec::new().unwrap();
            let _ = server.decode(&data);
        }
    }
}
