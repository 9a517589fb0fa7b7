//! The CRI log format, as the kubelet parses it: one record per line,
//! `2016-10-06T00:17:09.669794202Z stdout F text\n`. A line longer than
//! [`MAX_LINE`] is split into `P` (partial) records ending with an `F` record; output
//! that ends without a newline is written as a final `P` record (as containerd does),
//! so concatenating `P` contents and `F` contents plus `\n` gives back the exact bytes.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// containerd's limit on one record's content.
pub const MAX_LINE: usize = 16 * 1024;

/// Which of the container's output streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    fn name(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// A record's tag: the line goes on (`P`) or ends here (`F`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tag {
    Partial,
    Full,
}

/// Splits a stream into records, keeping the unfinished line between reads.
#[derive(Debug, Default)]
pub struct LineSplitter {
    pending: Vec<u8>,
    max: usize,
}

impl LineSplitter {
    /// A splitter with records of at most `max` bytes of content (at least 1).
    pub fn new(max: usize) -> Self {
        LineSplitter {
            pending: Vec::new(),
            max: max.max(1),
        }
    }

    /// Adds `data`; calls `emit` for every complete record.
    pub fn push(&mut self, data: &[u8], mut emit: impl FnMut(Tag, &[u8])) {
        self.pending.extend_from_slice(data);
        let mut start = 0;
        loop {
            let rest = &self.pending[start..];
            let window = &rest[..rest.len().min(self.max + 1)];
            if let Some(pos) = window.iter().position(|&b| b == b'\n') {
                emit(Tag::Full, &rest[..pos]);
                start += pos + 1;
            } else if rest.len() > self.max {
                emit(Tag::Partial, &rest[..self.max]);
                start += self.max;
            } else {
                break;
            }
        }
        self.pending.drain(..start);
    }

    /// The stream ended: an unfinished line becomes a final partial record.
    pub fn finish(&mut self, mut emit: impl FnMut(Tag, &[u8])) {
        if !self.pending.is_empty() {
            emit(Tag::Partial, &self.pending);
            self.pending.clear();
        }
    }
}

/// One CRI log record, newline included.
pub fn format_record(time: SystemTime, stream: Stream, tag: Tag, content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + 40);
    out.extend_from_slice(format_timestamp(time).as_bytes());
    out.push(b' ');
    out.extend_from_slice(stream.name().as_bytes());
    out.extend_from_slice(if tag == Tag::Full { b" F " } else { b" P " });
    out.extend_from_slice(content);
    out.push(b'\n');
    out
}

/// RFC 3339 in UTC with exactly nine fractional digits (Go's
/// `2006-01-02T15:04:05.000000000Z07:00`, as containerd writes it).
pub fn format_timestamp(time: SystemTime) -> String {
    let d = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    let (y, m, day) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{day:02}T{:02}:{:02}:{:02}.{:09}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60,
        d.subsec_nanos()
    )
}

/// Days since 1970-01-01 to (year, month, day), Howard Hinnant's algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// A parsed record: timestamp text, stream, tag, content.
pub type Record<'a> = (&'a str, Stream, Tag, &'a [u8]);

/// Parses one record (without its newline) the way the kubelet does.
pub fn parse_record(line: &[u8]) -> Option<Record<'_>> {
    let mut parts = line.splitn(4, |&b| b == b' ');
    let time = std::str::from_utf8(parts.next()?).ok()?;
    let stream = match parts.next()? {
        b"stdout" => Stream::Stdout,
        b"stderr" => Stream::Stderr,
        _ => return None,
    };
    let tag = match parts.next()? {
        b"P" => Tag::Partial,
        b"F" => Tag::Full,
        _ => return None,
    };
    Some((time, stream, tag, parts.next().unwrap_or_default()))
}

/// The log file: both streams interleaved by record, appended with one write per record.
pub struct CriLogWriter {
    path: Option<PathBuf>,
    file: Option<File>,
    splitters: [LineSplitter; 2],
}

impl CriLogWriter {
    /// Opens (creating) the log at `path`; `None` discards the output.
    pub fn open(path: Option<&Path>) -> std::io::Result<Self> {
        let mut writer = CriLogWriter {
            path: path.map(Path::to_path_buf),
            file: None,
            splitters: [LineSplitter::new(MAX_LINE), LineSplitter::new(MAX_LINE)],
        };
        writer.reopen()?;
        Ok(writer)
    }

    /// Opens the path again (after the kubelet rotated the file away).
    pub fn reopen(&mut self) -> std::io::Result<()> {
        if let Some(path) = &self.path {
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .mode(0o640)
                .open(path)?;
            self.file = Some(file);
        }
        Ok(())
    }

    /// Writes what the container wrote on `stream`.
    pub fn write(&mut self, stream: Stream, data: &[u8]) -> std::io::Result<()> {
        let now = SystemTime::now();
        let (splitters, file) = (&mut self.splitters, &mut self.file);
        let mut result = Ok(());
        splitters[stream.index()].push(data, |tag, content| {
            if let (Some(f), Ok(())) = (file.as_mut(), &result) {
                result = f.write_all(&format_record(now, stream, tag, content));
            }
        });
        result
    }

    /// The stream closed: writes its unfinished line.
    pub fn finish(&mut self, stream: Stream) -> std::io::Result<()> {
        let now = SystemTime::now();
        let (splitters, file) = (&mut self.splitters, &mut self.file);
        let mut result = Ok(());
        splitters[stream.index()].finish(|tag, content| {
            if let Some(f) = file.as_mut() {
                result = f.write_all(&format_record(now, stream, tag, content));
            }
        });
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::time::Duration;

    fn split(chunks: &[&[u8]], max: usize) -> Vec<(Tag, Vec<u8>)> {
        let mut s = LineSplitter::new(max);
        let mut out = Vec::new();
        for c in chunks {
            s.push(c, |t, b| out.push((t, b.to_vec())));
        }
        s.finish(|t, b| out.push((t, b.to_vec())));
        out
    }

    fn reassemble(records: &[(Tag, Vec<u8>)]) -> Vec<u8> {
        let mut out = Vec::new();
        for (tag, content) in records {
            out.extend_from_slice(content);
            if *tag == Tag::Full {
                out.push(b'\n');
            }
        }
        out
    }

    #[test]
    fn timestamps_are_rfc3339_with_nine_digits() {
        assert_eq!(
            format_timestamp(UNIX_EPOCH),
            "1970-01-01T00:00:00.000000000Z"
        );
        let t = UNIX_EPOCH + Duration::new(1_475_713_029, 669_794_202);
        assert_eq!(format_timestamp(t), "2016-10-06T00:17:09.669794202Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(format_timestamp(leap), "2000-02-29T00:00:00.000000000Z");
        assert_eq!(
            format_timestamp(UNIX_EPOCH + Duration::from_secs(4_102_444_799)),
            "2099-12-31T23:59:59.000000000Z"
        );
    }

    #[test]
    fn records_have_the_kubelet_format() {
        let t = UNIX_EPOCH + Duration::new(1_475_713_029, 669_794_202);
        assert_eq!(
            format_record(t, Stream::Stdout, Tag::Full, b"log line"),
            b"2016-10-06T00:17:09.669794202Z stdout F log line\n"
        );
        assert_eq!(
            format_record(t, Stream::Stderr, Tag::Partial, b""),
            b"2016-10-06T00:17:09.669794202Z stderr P \n"
        );
        let line = b"2016-10-06T00:17:09.669794202Z stderr P a b c";
        assert_eq!(
            parse_record(line),
            Some((
                "2016-10-06T00:17:09.669794202Z",
                Stream::Stderr,
                Tag::Partial,
                &b"a b c"[..]
            ))
        );
        assert_eq!(parse_record(b"x stdin F y"), None);
    }

    #[test]
    fn lines_split_at_newlines_and_at_the_limit() {
        assert_eq!(
            split(&[b"a\nb", b"c\n\n"], 4),
            vec![
                (Tag::Full, b"a".to_vec()),
                (Tag::Full, b"bc".to_vec()),
                (Tag::Full, vec![])
            ]
        );
        // Exactly the limit plus newline stays one full record; one more byte splits.
        assert_eq!(split(&[b"abcd\n"], 4), vec![(Tag::Full, b"abcd".to_vec())]);
        assert_eq!(
            split(&[b"abcde\n"], 4),
            vec![(Tag::Partial, b"abcd".to_vec()), (Tag::Full, b"e".to_vec())]
        );
        assert_eq!(
            split(&[b"abcdefghij"], 4),
            vec![
                (Tag::Partial, b"abcd".to_vec()),
                (Tag::Partial, b"efgh".to_vec()),
                (Tag::Partial, b"ij".to_vec())
            ]
        );
        let long = vec![b'x'; MAX_LINE * 2 + 5];
        let records = split(&[&long, b"\n"], MAX_LINE);
        assert_eq!(
            records.iter().map(|r| (r.0, r.1.len())).collect::<Vec<_>>(),
            vec![
                (Tag::Partial, MAX_LINE),
                (Tag::Partial, MAX_LINE),
                (Tag::Full, 5)
            ]
        );
        assert_eq!(split(&[b"a\r\n"], 4), vec![(Tag::Full, b"a\r".to_vec())]);
    }

    #[test]
    fn writer_interleaves_streams_and_reopens() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.log");
        let mut w = CriLogWriter::open(Some(&path)).unwrap();
        w.write(Stream::Stdout, b"out1\nout").unwrap();
        w.write(Stream::Stderr, b"err1\n").unwrap();
        w.finish(Stream::Stdout).unwrap();
        std::fs::rename(&path, dir.path().join("c.log.1")).unwrap();
        w.reopen().unwrap();
        w.write(Stream::Stderr, b"after\n").unwrap();
        let old = std::fs::read(dir.path().join("c.log.1")).unwrap();
        let lines: Vec<_> = old
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| parse_record(l).unwrap())
            .collect();
        assert_eq!(
            lines.iter().map(|r| (r.1, r.2, r.3)).collect::<Vec<_>>(),
            vec![
                (Stream::Stdout, Tag::Full, &b"out1"[..]),
                (Stream::Stderr, Tag::Full, &b"err1"[..]),
                (Stream::Stdout, Tag::Partial, &b"out"[..]),
            ]
        );
        assert!(
            lines.windows(2).all(|w| w[0].0 <= w[1].0),
            "timestamps sort as strings"
        );
        let new = std::fs::read_to_string(&path).unwrap();
        assert!(new.ends_with(" stderr F after\n"), "{new}");
        CriLogWriter::open(None)
            .unwrap()
            .write(Stream::Stdout, b"dropped\n")
            .unwrap();
    }

    proptest! {
        #[test]
        fn splitting_then_reassembling_gives_back_the_input(
            data in proptest::collection::vec(prop_oneof![Just(b'\n'), any::<u8>()], 0..2000),
            cuts in proptest::collection::vec(0usize..2000, 0..10),
            max in 1usize..64,
        ) {
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(data.len())).collect();
            cuts.sort();
            let mut chunks = Vec::new();
            let mut prev = 0;
            for c in cuts.into_iter().chain([data.len()]) {
                chunks.push(&data[prev..c]);
                prev = c;
            }
            let records = split(&chunks, max);
            prop_assert_eq!(reassemble(&records), data);
            for (tag, content) in &records {
                prop_assert!(content.len() <= max);
                prop_assert!(!content.contains(&b'\n'));
                let line = format_record(SystemTime::now(), Stream::Stdout, *tag, content);
                let parsed = parse_record(&line[..line.len() - 1]).unwrap();
                prop_assert_eq!(parsed.2, *tag);
                prop_assert_eq!(parsed.3, &content[..]);
            }
        }
    }
}
