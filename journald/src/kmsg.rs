//! Kernel messages from `/dev/kmsg`: one record per read, `PRI,SEQ,TS_USEC,FLAGS;MSG\n`
//! followed by continuation lines ` KEY=VALUE\n` (the device a driver logged about), with
//! non-printable bytes escaped as `\xNN`. Parsed as journald does (journald-kmsg.c):
//! continuation keys become `_KERNEL_KEY`, the timestamp `_SOURCE_MONOTONIC_TIMESTAMP`, and
//! a record from user space (facility not kern, e.g. PID 1's `berth:` lines) has its
//! `IDENT[PID]:` split off like a syslog line. [`RecordSplitter`] cuts a byte stream
//! (a FIFO or file in the same format, for tests) into records.

use crate::syslog::parse_identifier;

/// A parsed kmsg record.
#[derive(Debug, PartialEq, Eq)]
pub struct KmsgRecord {
    pub priority: u16,
    pub seqnum: u64,
    pub monotonic_usec: u64,
    pub identifier: Option<Vec<u8>>,
    pub pid: Option<Vec<u8>>,
    pub message: Vec<u8>,
    /// Continuation lines, `(KEY, VALUE)`, unescaped.
    pub properties: Vec<(String, Vec<u8>)>,
}

/// Parses one record; `None` when its prefix is malformed (journald skips those too).
pub fn parse(record: &[u8]) -> Option<KmsgRecord> {
    let semicolon = record.iter().position(|b| *b == b';')?;
    let prefix = std::str::from_utf8(&record[..semicolon]).ok()?;
    let mut parts = prefix.split(',');
    let priority: u16 = parts.next()?.parse().ok()?;
    let seqnum: u64 = parts.next()?.parse().ok()?;
    let monotonic_usec: u64 = parts.next()?.parse().ok()?;
    if priority > 999 {
        return None;
    }
    let body = &record[semicolon + 1..];
    let end = body.iter().position(|b| *b == b'\n').unwrap_or(body.len());
    let text = unescape(&body[..end]);
    let mut properties = Vec::new();
    for line in body[end..].split(|b| *b == b'\n') {
        let Some(line) = line.strip_prefix(b" ") else {
            continue;
        };
        let Some(eq) = line.iter().position(|b| *b == b'=') else {
            continue;
        };
        let key = &line[..eq];
        if key.is_empty()
            || key.len() > 48
            || !key
                .iter()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || *b == b'_')
        {
            continue;
        }
        if let Ok(key) = std::str::from_utf8(key) {
            properties.push((key.to_string(), unescape(&line[eq + 1..])));
        }
    }
    let (identifier, pid, message) = if priority >> 3 == 0 {
        (None, None, text)
    } else {
        let (ident, pid, rest) = parse_identifier(&text);
        (
            ident.map(<[u8]>::to_vec),
            pid.map(<[u8]>::to_vec),
            rest.to_vec(),
        )
    };
    Some(KmsgRecord {
        priority,
        seqnum,
        monotonic_usec,
        identifier,
        pid,
        message,
        properties,
    })
}

/// Undoes the kernel's `\xNN` escapes; other backslashes stay.
pub fn unescape(text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        if text[i] == b'\\' && text.get(i + 1) == Some(&b'x') {
            let hex = text.get(i + 2..i + 4).and_then(|h| {
                std::str::from_utf8(h)
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
            });
            if let Some(byte) = hex {
                out.push(byte);
                i += 4;
                continue;
            }
        }
        out.push(text[i]);
        i += 1;
    }
    out
}

/// Cuts a byte stream of kmsg records into records: a record is a line followed by the
/// lines that start with a space.
#[derive(Default, Debug)]
pub struct RecordSplitter {
    buf: Vec<u8>,
}

/// A record longer than this in a stream is cut (the kernel's own records are < 8 KiB).
pub const RECORD_MAX: usize = 64 * 1024;

impl RecordSplitter {
    /// Adds bytes; returns the records now known to be complete.
    pub fn feed(&mut self, data: &[u8]) -> Vec<Vec<u8>> {
        self.buf.extend_from_slice(data);
        let mut records = Vec::new();
        loop {
            // A record ends at a newline followed by a byte that is not a space.
            let end = self
                .buf
                .windows(2)
                .position(|w| w[0] == b'\n' && w[1] != b' ');
            match end {
                Some(at) => {
                    let rest = self.buf.split_off(at + 1);
                    records.push(std::mem::replace(&mut self.buf, rest));
                }
                None if self.buf.len() >= RECORD_MAX => {
                    records.push(std::mem::take(&mut self.buf));
                }
                None => return records,
            }
        }
    }

    /// End of stream: the last record, if any.
    pub fn finish(&mut self) -> Option<Vec<u8>> {
        let rest = std::mem::take(&mut self.buf);
        (!rest.iter().all(u8::is_ascii_whitespace)).then_some(rest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn kernel_record_with_device() {
        let r = parse(b"6,339,5140900,-;e1000: eth0 link up\\x0a!\n SUBSYSTEM=net\n DEVICE=n2\n")
            .unwrap();
        assert_eq!(
            (r.priority, r.seqnum, r.monotonic_usec),
            (6, 339, 5_140_900)
        );
        assert_eq!(r.message, b"e1000: eth0 link up\n!");
        assert_eq!(r.identifier, None);
        assert_eq!(
            r.properties,
            vec![
                ("SUBSYSTEM".to_string(), b"net".to_vec()),
                ("DEVICE".to_string(), b"n2".to_vec())
            ]
        );
    }

    #[test]
    fn user_space_record_has_identifier() {
        let r = parse(b"14,1000,99,-;berth: ready\n").unwrap();
        assert_eq!(r.priority, 14);
        assert_eq!(r.identifier.as_deref(), Some(&b"berth"[..]));
        assert_eq!(r.message, b"ready");
        assert!(parse(b"garbage").is_none());
        assert!(parse(b"x,1,2,-;m").is_none());
    }

    #[test]
    fn splitter_cuts_records() {
        let mut s = RecordSplitter::default();
        let got = s.feed(b"6,1,10,-;one\n SUBSYSTEM=x\n6,2,20,-;two\n6,3,");
        assert_eq!(
            got,
            vec![
                b"6,1,10,-;one\n SUBSYSTEM=x\n".to_vec(),
                b"6,2,20,-;two\n".to_vec()
            ]
        );
        assert!(s.feed(b"30,-;three\n").is_empty());
        assert_eq!(s.finish(), Some(b"6,3,30,-;three\n".to_vec()));
        assert_eq!(s.finish(), None);
    }

    proptest! {
        #[test]
        fn never_panics(data in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = parse(&data);
            let mut s = RecordSplitter::default();
            let records = s.feed(&data);
            prop_assert!(records.iter().map(Vec::len).sum::<usize>() <= data.len());
            let _ = s.finish();
        }

        #[test]
        fn structured(pri in 0u16..192, seq in any::<u64>(), ts in any::<u64>(), msg in "[a-z ]{0,40}") {
            let rec = format!("{pri},{seq},{ts},-;{msg}\n");
            let r = parse(rec.as_bytes()).unwrap();
            prop_assert_eq!((r.priority, r.seqnum, r.monotonic_usec), (pri, seq, ts));
        }
    }
}
