//! SPDY/3 framing (draft-mbelshe-httpbis-spdy-00, section 2): the 8-byte frame header,
//! control frames with their fixed fields and data frames. Header blocks stay compressed
//! here; [`super::headers`] holds the zlib context that reads and writes them, because
//! it is one stream per direction across all frames of a connection.
//!
//! The parser takes bytes from the network as they come and never trusts a length: a
//! frame larger than [`MAX_FRAME`] or a control frame too short for its fixed fields is
//! an error that ends the connection.

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// The protocol version in every control frame.
pub const VERSION: u16 = 3;
/// Flag: the sender's half of the stream ends with this frame.
pub const FLAG_FIN: u8 = 0x01;
/// SYN_STREAM flag: the receiver must not send on this stream.
pub const FLAG_UNIDIRECTIONAL: u8 = 0x02;
/// The largest frame payload accepted: bigger than any client sends (client-go writes
/// 32 KiB data frames), small enough that a hostile length cannot exhaust memory.
pub const MAX_FRAME: usize = 1 << 20;

/// RST_STREAM status codes used here.
pub const RST_PROTOCOL_ERROR: u32 = 1;
pub const RST_REFUSED_STREAM: u32 = 3;
pub const RST_CANCEL: u32 = 5;

const TYPE_SYN_STREAM: u16 = 1;
const TYPE_SYN_REPLY: u16 = 2;
const TYPE_RST_STREAM: u16 = 3;
const TYPE_SETTINGS: u16 = 4;
const TYPE_PING: u16 = 6;
const TYPE_GOAWAY: u16 = 7;
const TYPE_HEADERS: u16 = 8;
const TYPE_WINDOW_UPDATE: u16 = 9;

/// One frame; header blocks still compressed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    SynStream {
        stream_id: u32,
        associated_to: u32,
        priority: u8,
        flags: u8,
        headers: Bytes,
    },
    SynReply {
        stream_id: u32,
        flags: u8,
        headers: Bytes,
    },
    RstStream {
        stream_id: u32,
        status: u32,
    },
    Settings {
        flags: u8,
        /// (flags, id, value)
        entries: Vec<(u8, u32, u32)>,
    },
    Ping {
        id: u32,
    },
    GoAway {
        last_good_stream_id: u32,
        status: u32,
    },
    Headers {
        stream_id: u32,
        flags: u8,
        headers: Bytes,
    },
    WindowUpdate {
        stream_id: u32,
        delta: u32,
    },
    Data {
        stream_id: u32,
        flags: u8,
        data: Bytes,
    },
    /// A control frame of a type SPDY/3 does not define: ignored, as the spec says.
    Unknown {
        frame_type: u16,
    },
}

/// A frame that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("SPDY frame of {0} bytes, more than the {MAX_FRAME} accepted")]
    TooLarge(usize),
    #[error("SPDY control frame of version {0}, not 3")]
    Version(u16),
    #[error("SPDY {what} frame of {len} bytes is too short")]
    Short { what: &'static str, len: usize },
    #[error("SPDY {0} frame for stream 0")]
    ZeroStream(&'static str),
}

fn id31(v: u32) -> u32 {
    v & 0x7fff_ffff
}

/// Reads one frame from the front of `buf` if it holds a whole one (consuming it);
/// `Ok(None)` means more bytes are needed.
pub fn decode(buf: &mut BytesMut) -> Result<Option<Frame>, FrameError> {
    if buf.len() < 8 {
        return Ok(None);
    }
    let len = (usize::from(buf[5]) << 16) | (usize::from(buf[6]) << 8) | usize::from(buf[7]);
    if len > MAX_FRAME {
        return Err(FrameError::TooLarge(len));
    }
    if buf.len() < 8 + len {
        return Ok(None);
    }
    let mut frame = buf.split_to(8 + len).freeze();
    let word = frame.get_u32();
    let flags = frame.get_u8();
    frame.advance(3);
    if word & 0x8000_0000 == 0 {
        let stream_id = id31(word);
        if stream_id == 0 {
            return Err(FrameError::ZeroStream("DATA"));
        }
        return Ok(Some(Frame::Data {
            stream_id,
            flags,
            data: frame,
        }));
    }
    let version = ((word >> 16) & 0x7fff) as u16;
    if version != VERSION {
        return Err(FrameError::Version(version));
    }
    let frame_type = (word & 0xffff) as u16;
    let need = |what: &'static str, n: usize| {
        if len < n {
            Err(FrameError::Short { what, len })
        } else {
            Ok(())
        }
    };
    let parsed = match frame_type {
        TYPE_SYN_STREAM => {
            need("SYN_STREAM", 10)?;
            let stream_id = id31(frame.get_u32());
            let associated_to = id31(frame.get_u32());
            let priority = frame.get_u8() >> 5;
            frame.advance(1); // slot
            if stream_id == 0 {
                return Err(FrameError::ZeroStream("SYN_STREAM"));
            }
            Frame::SynStream {
                stream_id,
                associated_to,
                priority,
                flags,
                headers: frame,
            }
        }
        TYPE_SYN_REPLY => {
            need("SYN_REPLY", 4)?;
            Frame::SynReply {
                stream_id: id31(frame.get_u32()),
                flags,
                headers: frame,
            }
        }
        TYPE_RST_STREAM => {
            need("RST_STREAM", 8)?;
            Frame::RstStream {
                stream_id: id31(frame.get_u32()),
                status: frame.get_u32(),
            }
        }
        TYPE_SETTINGS => {
            need("SETTINGS", 4)?;
            let count = frame.get_u32() as usize;
            if count.saturating_mul(8) != frame.remaining() {
                return Err(FrameError::Short {
                    what: "SETTINGS",
                    len,
                });
            }
            let entries = (0..count)
                .map(|_| {
                    let head = frame.get_u32();
                    ((head >> 24) as u8, head & 0x00ff_ffff, frame.get_u32())
                })
                .collect();
            Frame::Settings { flags, entries }
        }
        TYPE_PING => {
            need("PING", 4)?;
            Frame::Ping {
                id: frame.get_u32(),
            }
        }
        TYPE_GOAWAY => {
            need("GOAWAY", 8)?;
            Frame::GoAway {
                last_good_stream_id: id31(frame.get_u32()),
                status: frame.get_u32(),
            }
        }
        TYPE_HEADERS => {
            need("HEADERS", 4)?;
            Frame::Headers {
                stream_id: id31(frame.get_u32()),
                flags,
                headers: frame,
            }
        }
        TYPE_WINDOW_UPDATE => {
            need("WINDOW_UPDATE", 8)?;
            Frame::WindowUpdate {
                stream_id: id31(frame.get_u32()),
                delta: id31(frame.get_u32()),
            }
        }
        other => Frame::Unknown { frame_type: other },
    };
    Ok(Some(parsed))
}

fn control(out: &mut BytesMut, frame_type: u16, flags: u8, len: usize) {
    out.put_u32(0x8000_0000 | (u32::from(VERSION) << 16) | u32::from(frame_type));
    out.put_u32((u32::from(flags) << 24) | (len as u32 & 0x00ff_ffff));
}

/// Appends `frame` to `out`. Payloads must fit in 24 bits (callers split data).
pub fn encode(frame: &Frame, out: &mut BytesMut) {
    match frame {
        Frame::SynStream {
            stream_id,
            associated_to,
            priority,
            flags,
            headers,
        } => {
            control(out, TYPE_SYN_STREAM, *flags, 10 + headers.len());
            out.put_u32(id31(*stream_id));
            out.put_u32(id31(*associated_to));
            out.put_u8((priority & 0x7) << 5);
            out.put_u8(0);
            out.put_slice(headers);
        }
        Frame::SynReply {
            stream_id,
            flags,
            headers,
        } => {
            control(out, TYPE_SYN_REPLY, *flags, 4 + headers.len());
            out.put_u32(id31(*stream_id));
            out.put_slice(headers);
        }
        Frame::RstStream { stream_id, status } => {
            control(out, TYPE_RST_STREAM, 0, 8);
            out.put_u32(id31(*stream_id));
            out.put_u32(*status);
        }
        Frame::Settings { flags, entries } => {
            control(out, TYPE_SETTINGS, *flags, 4 + 8 * entries.len());
            out.put_u32(entries.len() as u32);
            for (f, id, value) in entries {
                out.put_u32((u32::from(*f) << 24) | (id & 0x00ff_ffff));
                out.put_u32(*value);
            }
        }
        Frame::Ping { id } => {
            control(out, TYPE_PING, 0, 4);
            out.put_u32(*id);
        }
        Frame::GoAway {
            last_good_stream_id,
            status,
        } => {
            control(out, TYPE_GOAWAY, 0, 8);
            out.put_u32(id31(*last_good_stream_id));
            out.put_u32(*status);
        }
        Frame::Headers {
            stream_id,
            flags,
            headers,
        } => {
            control(out, TYPE_HEADERS, *flags, 4 + headers.len());
            out.put_u32(id31(*stream_id));
            out.put_slice(headers);
        }
        Frame::WindowUpdate { stream_id, delta } => {
            control(out, TYPE_WINDOW_UPDATE, 0, 8);
            out.put_u32(id31(*stream_id));
            out.put_u32(id31(*delta));
        }
        Frame::Data {
            stream_id,
            flags,
            data,
        } => {
            out.put_u32(id31(*stream_id));
            out.put_u32((u32::from(*flags) << 24) | (data.len() as u32 & 0x00ff_ffff));
            out.put_slice(data);
        }
        Frame::Unknown { frame_type } => control(out, *frame_type, 0, 0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn round_trip(frame: Frame) {
        let mut buf = BytesMut::new();
        encode(&frame, &mut buf);
        let whole = buf.clone();
        // Every strict prefix asks for more bytes and consumes nothing.
        for cut in 0..whole.len() {
            let mut part = BytesMut::from(&whole[..cut]);
            assert_eq!(decode(&mut part), Ok(None), "prefix {cut}");
            assert_eq!(part.len(), cut);
        }
        assert_eq!(decode(&mut buf), Ok(Some(frame)));
        assert!(buf.is_empty());
    }

    #[test]
    fn known_bytes() {
        // A PING with id 1, as spdystream writes it.
        let mut buf = BytesMut::from(&[0x80, 0x03, 0x00, 0x06, 0, 0, 0, 4, 0, 0, 0, 1][..]);
        assert_eq!(decode(&mut buf), Ok(Some(Frame::Ping { id: 1 })));
        // DATA on stream 3 with FIN and "hi".
        let mut buf = BytesMut::from(&[0, 0, 0, 3, 1, 0, 0, 2, b'h', b'i'][..]);
        assert_eq!(
            decode(&mut buf),
            Ok(Some(Frame::Data {
                stream_id: 3,
                flags: FLAG_FIN,
                data: Bytes::from_static(b"hi")
            }))
        );
    }

    #[test]
    fn bad_frames() {
        let mut big = BytesMut::from(&[0, 0, 0, 1, 0, 0x10, 0, 1][..]);
        assert_eq!(decode(&mut big), Err(FrameError::TooLarge(0x100001)));
        let mut v2 = BytesMut::from(&[0x80, 0x02, 0x00, 0x06, 0, 0, 0, 4, 0, 0, 0, 1][..]);
        assert_eq!(decode(&mut v2), Err(FrameError::Version(2)));
        let mut short = BytesMut::from(&[0x80, 0x03, 0x00, 0x03, 0, 0, 0, 4, 0, 0, 0, 1][..]);
        assert!(matches!(decode(&mut short), Err(FrameError::Short { .. })));
        let mut zero = BytesMut::from(&[0, 0, 0, 0, 0, 0, 0, 0][..]);
        assert_eq!(decode(&mut zero), Err(FrameError::ZeroStream("DATA")));
        let mut settings =
            BytesMut::from(&[0x80, 0x03, 0x00, 0x04, 0, 0, 0, 4, 0xff, 0xff, 0xff, 0xff][..]);
        assert!(matches!(
            decode(&mut settings),
            Err(FrameError::Short { .. })
        ));
    }

    fn frame_strategy() -> impl Strategy<Value = Frame> {
        let id = 1u32..0x7fff_ffff;
        let bytes = proptest::collection::vec(any::<u8>(), 0..64).prop_map(Bytes::from);
        prop_oneof![
            (id.clone(), 0u32..0x7fff_ffff, 0u8..8, 0u8..4, bytes.clone()).prop_map(
                |(stream_id, associated_to, priority, flags, headers)| Frame::SynStream {
                    stream_id,
                    associated_to,
                    priority,
                    flags,
                    headers
                }
            ),
            (id.clone(), 0u8..4, bytes.clone()).prop_map(|(stream_id, flags, headers)| {
                Frame::SynReply {
                    stream_id,
                    flags,
                    headers,
                }
            }),
            (id.clone(), any::<u32>())
                .prop_map(|(stream_id, status)| Frame::RstStream { stream_id, status }),
            any::<u32>().prop_map(|id| Frame::Ping { id }),
            (id.clone(), any::<u32>()).prop_map(|(last_good_stream_id, status)| {
                Frame::GoAway {
                    last_good_stream_id,
                    status,
                }
            }),
            (id.clone(), 0u32..0x7fff_ffff)
                .prop_map(|(stream_id, delta)| Frame::WindowUpdate { stream_id, delta }),
            (
                any::<u8>(),
                proptest::collection::vec((any::<u8>(), 0u32..0x00ff_ffff, any::<u32>()), 0..4)
            )
                .prop_map(|(flags, entries)| Frame::Settings { flags, entries }),
            (id, any::<u8>(), bytes).prop_map(|(stream_id, flags, data)| Frame::Data {
                stream_id,
                flags,
                data
            }),
        ]
    }

    proptest! {
        #[test]
        fn frames_round_trip(frame in frame_strategy()) {
            round_trip(frame);
        }

        /// Arbitrary bytes never panic the parser, and it never consumes a partial frame.
        #[test]
        fn arbitrary_bytes(data in proptest::collection::vec(any::<u8>(), 0..256)) {
            let mut buf = BytesMut::from(&data[..]);
            loop {
                let before = buf.len();
                match decode(&mut buf) {
                    Ok(Some(_)) => prop_assert!(buf.len() < before),
                    Ok(None) => { prop_assert_eq!(buf.len(), before); break }
                    Err(_) => break,
                }
            }
        }
    }
}
