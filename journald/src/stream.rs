//! The stdout stream protocol (`/run/systemd/journal/stdout`, SOCK_STREAM): what PID 1
//! sends for a unit with `StandardOutput=journal`, and what `systemd-cat` speaks. Seven
//! header lines (identifier, unit id, priority, level prefix, forward to syslog, kmsg,
//! console), then the program's output. Lines end at `\n` or NUL, are cut at `LineMax`,
//! and the rest is flushed at EOF; the kind of break is kept as journald's `_LINE_BREAK`.
//! With the level prefix on, `<N>` (sd-daemon(3)) sets a line's priority. This module is
//! the pure state machine; the daemon feeds it bytes from the socket.

use crate::syslog::parse_priority_prefix;

/// Header lines are short: a line longer than this before the header ends is an error.
pub const HEADER_LINE_MAX: usize = 1024;

/// journald's default `LineMax=`.
pub const DEFAULT_LINE_MAX: usize = 48 * 1024;

/// Why a line ended (journald's `_LINE_BREAK=`; nothing for an ordinary newline).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LineBreak {
    Newline,
    Nul,
    LineMax,
    Eof,
    /// Another process wrote to the stream (a forked child sharing its stdout).
    PidChange,
}

impl LineBreak {
    /// The `_LINE_BREAK` value journald writes, if any.
    pub fn field(self) -> Option<&'static str> {
        match self {
            LineBreak::Newline => None,
            LineBreak::Nul => Some("nul"),
            LineBreak::LineMax => Some("line-max"),
            LineBreak::Eof => Some("eof"),
            LineBreak::PidChange => Some("pid-change"),
        }
    }
}

/// The stream's header, once complete.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StreamHeader {
    pub identifier: Option<String>,
    /// Only honoured from a root peer and when it is a valid unit name, as in journald.
    pub unit: Option<String>,
    /// Default priority of lines, facility included (`facility << 3 | level`).
    pub priority: u16,
    pub level_prefix: bool,
    pub forward_to_syslog: bool,
    pub forward_to_kmsg: bool,
    pub forward_to_console: bool,
}

/// One line of output, ready to become an entry.
#[derive(Debug, PartialEq, Eq)]
pub struct StreamLine<'a> {
    pub priority: u16,
    pub message: &'a [u8],
    pub line_break: LineBreak,
}

/// A header the collector refuses; the connection is closed.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum StreamError {
    #[error("stream header line {line}: {reason}")]
    Header { line: usize, reason: String },
}

/// The per-connection state machine.
#[derive(Debug)]
pub struct StreamParser {
    peer_is_root: bool,
    line_max: usize,
    /// Header lines read so far (0..=7); 7 means running.
    state: usize,
    header: StreamHeader,
    buf: Vec<u8>,
}

const HEADER_LINES: usize = 7;

impl StreamParser {
    /// A parser for a connection from a peer (`peer_is_root`: uid 0), cutting lines at
    /// `line_max` bytes (at least 1).
    pub fn new(peer_is_root: bool, line_max: usize) -> StreamParser {
        StreamParser {
            peer_is_root,
            line_max: line_max.max(1),
            state: 0,
            header: StreamHeader::default(),
            buf: Vec::new(),
        }
    }

    /// The header, once all seven lines have arrived.
    pub fn header(&self) -> Option<&StreamHeader> {
        (self.state == HEADER_LINES).then_some(&self.header)
    }

    /// Bytes held back waiting for the end of a line (never more than `line_max`).
    pub fn pending(&self) -> usize {
        self.buf.len()
    }

    /// Feeds bytes read from the socket; calls `emit` for each complete line.
    pub fn feed(
        &mut self,
        data: &[u8],
        emit: &mut dyn FnMut(&StreamHeader, StreamLine<'_>),
    ) -> Result<(), StreamError> {
        if self.buf.is_empty() {
            let consumed = self.scan(data, emit)?;
            self.buf.extend_from_slice(&data[consumed..]);
        } else {
            let mut buf = std::mem::take(&mut self.buf);
            buf.extend_from_slice(data);
            let consumed = self.scan(&buf, emit)?;
            buf.drain(..consumed);
            self.buf = buf;
        }
        Ok(())
    }

    /// The peer closed: what is left is one last line (`_LINE_BREAK=eof`).
    pub fn finish(
        &mut self,
        emit: &mut dyn FnMut(&StreamHeader, StreamLine<'_>),
    ) -> Result<(), StreamError> {
        let rest = std::mem::take(&mut self.buf);
        if rest.is_empty() {
            return Ok(());
        }
        self.line(&rest, LineBreak::Eof, emit)
    }

    /// Another process is writing now: what is left of the last one's line is a line of
    /// its own (`_LINE_BREAK=pid-change`). Nothing happens before the header is complete.
    pub fn pid_changed(&mut self, emit: &mut dyn FnMut(&StreamHeader, StreamLine<'_>)) {
        if self.state < HEADER_LINES || self.buf.is_empty() {
            return;
        }
        let rest = std::mem::take(&mut self.buf);
        // Running: `line` cannot fail.
        let _ = self.line(&rest, LineBreak::PidChange, emit);
    }

    /// Handles every complete line in `data`; returns the bytes consumed.
    fn scan(
        &mut self,
        data: &[u8],
        emit: &mut dyn FnMut(&StreamHeader, StreamLine<'_>),
    ) -> Result<usize, StreamError> {
        let mut consumed = 0;
        loop {
            let rest = &data[consumed..];
            let max = if self.state < HEADER_LINES {
                HEADER_LINE_MAX
            } else {
                self.line_max
            };
            let window = &rest[..rest.len().min(max)];
            let (found, skip, line_break) = match window.iter().position(|b| *b == b'\n' || *b == 0)
            {
                Some(at) if window[at] == 0 => (at, at + 1, LineBreak::Nul),
                Some(at) => (at, at + 1, LineBreak::Newline),
                None if rest.len() >= max => (max, max, LineBreak::LineMax),
                None => return Ok(consumed),
            };
            self.line(&rest[..found], line_break, emit)?;
            consumed += skip;
        }
    }

    fn line(
        &mut self,
        line: &[u8],
        line_break: LineBreak,
        emit: &mut dyn FnMut(&StreamHeader, StreamLine<'_>),
    ) -> Result<(), StreamError> {
        if self.state == HEADER_LINES {
            let mut priority = self.header.priority;
            let mut message = line;
            if self.header.level_prefix {
                if let Some((rest, p)) = parse_priority_prefix(line, priority, false) {
                    message = rest;
                    priority = p;
                }
            }
            if !message.is_empty() {
                emit(
                    &self.header,
                    StreamLine {
                        priority,
                        message,
                        line_break,
                    },
                );
            }
            return Ok(());
        }
        let index = self.state;
        let fail = |reason: &str| StreamError::Header {
            line: index + 1,
            reason: reason.to_string(),
        };
        if line_break != LineBreak::Newline {
            return Err(fail("not terminated by a newline"));
        }
        let text = std::str::from_utf8(line)
            .map_err(|_| fail("not UTF-8"))?
            .trim();
        match index {
            0 => self.header.identifier = (!text.is_empty()).then(|| text.to_string()),
            1 => {
                if self.peer_is_root && is_unit_name(text) {
                    self.header.unit = Some(text.to_string());
                }
            }
            2 => {
                self.header.priority = text
                    .parse::<u16>()
                    .ok()
                    .filter(|p| *p <= 999)
                    .ok_or_else(|| fail(&format!("priority {text:?} is not 0..=999")))?;
            }
            _ => {
                let value = parse_boolean(text)
                    .ok_or_else(|| fail(&format!("{text:?} is not a boolean")))?;
                match index {
                    3 => self.header.level_prefix = value,
                    4 => self.header.forward_to_syslog = value,
                    5 => self.header.forward_to_kmsg = value,
                    _ => self.header.forward_to_console = value,
                }
            }
        }
        self.state += 1;
        Ok(())
    }
}

/// systemd's parse_boolean.
pub fn parse_boolean(text: &str) -> Option<bool> {
    match text.to_ascii_lowercase().as_str() {
        "1" | "yes" | "y" | "true" | "t" | "on" => Some(true),
        "0" | "no" | "n" | "false" | "f" | "off" => Some(false),
        _ => None,
    }
}

/// A plain or instance unit name: `name.type` or `name@instance.type`, at most 255
/// bytes, of the characters systemd allows.
pub fn is_unit_name(text: &str) -> bool {
    const TYPES: &[&str] = &[
        "service",
        "socket",
        "target",
        "device",
        "mount",
        "automount",
        "swap",
        "timer",
        "path",
        "slice",
        "scope",
    ];
    let Some((name, kind)) = text.rsplit_once('.') else {
        return false;
    };
    text.len() <= 255
        && TYPES.contains(&kind)
        && !name.is_empty()
        && !name.starts_with('@')
        && name.matches('@').count() <= 1
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b":-_.\\@".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn collect(
        parser: &mut StreamParser,
        chunks: &[&[u8]],
        eof: bool,
    ) -> Vec<(u16, Vec<u8>, LineBreak)> {
        let mut out = Vec::new();
        let mut emit = |_: &StreamHeader, l: StreamLine<'_>| {
            out.push((l.priority, l.message.to_vec(), l.line_break))
        };
        for chunk in chunks {
            parser.feed(chunk, &mut emit).unwrap();
        }
        if eof {
            parser.finish(&mut emit).unwrap();
        }
        out
    }

    #[test]
    fn pid1_header_then_prefixed_lines() {
        let mut p = StreamParser::new(true, DEFAULT_LINE_MAX);
        let lines = collect(
            &mut p,
            &[
                b"kubelet\nkubelet.service\n6\n1\n0\n0\n0\n<3>bad\nplain\n",
                b"\n<9>x\0tail",
            ],
            true,
        );
        let h = p.header().unwrap();
        assert_eq!(h.identifier.as_deref(), Some("kubelet"));
        assert_eq!(h.unit.as_deref(), Some("kubelet.service"));
        assert_eq!(
            lines,
            vec![
                (3, b"bad".to_vec(), LineBreak::Newline),
                (6, b"plain".to_vec(), LineBreak::Newline),
                (6, b"<9>x".to_vec(), LineBreak::Nul),
                (6, b"tail".to_vec(), LineBreak::Eof),
            ]
        );
    }

    #[test]
    fn unit_ignored_from_non_root_and_facility_kept() {
        let mut p = StreamParser::new(false, DEFAULT_LINE_MAX);
        let lines = collect(
            &mut p,
            &[b"\nevil.service\n30\nyes\nno\nno\nno\n<2>x\n"],
            false,
        );
        assert_eq!(p.header().unwrap().unit, None);
        assert_eq!(p.header().unwrap().identifier, None);
        assert_eq!(
            lines,
            vec![((3 << 3) | 2, b"x".to_vec(), LineBreak::Newline)]
        );
    }

    #[test]
    fn long_lines_are_cut_at_line_max() {
        let mut p = StreamParser::new(true, 4);
        let lines = collect(&mut p, &[b"a\n\n6\n0\n0\n0\n0\n", b"abcdefghij\n"], true);
        let texts: Vec<_> = lines.iter().map(|l| (l.1.clone(), l.2)).collect();
        assert_eq!(
            texts,
            vec![
                (b"abcd".to_vec(), LineBreak::LineMax),
                (b"efgh".to_vec(), LineBreak::LineMax),
                (b"ij".to_vec(), LineBreak::Newline),
            ]
        );
        assert_eq!(p.pending(), 0);
    }

    #[test]
    fn bad_headers_are_refused() {
        let mut emit = |_: &StreamHeader, _: StreamLine<'_>| {};
        let mut p = StreamParser::new(true, 100);
        assert!(p.feed(b"a\nb\nhigh\n", &mut emit).is_err());
        let mut p = StreamParser::new(true, 100);
        assert!(p.feed(b"a\nb\n6\nmaybe\n", &mut emit).is_err());
        let mut p = StreamParser::new(true, 100);
        assert!(p.feed(b"a\0", &mut emit).is_err());
        let mut p = StreamParser::new(true, 100);
        assert!(p.feed(&[b'x'; 2000], &mut emit).is_err());
    }

    #[test]
    fn a_pid_change_cuts_the_pending_line() {
        let mut p = StreamParser::new(true, 100);
        let mut out = Vec::new();
        let mut emit =
            |_: &StreamHeader, l: StreamLine<'_>| out.push((l.message.to_vec(), l.line_break));
        p.pid_changed(&mut emit);
        p.feed(b"a\n\n6\n0\n0\n0\n0\nhalf", &mut emit).unwrap();
        p.pid_changed(&mut emit);
        p.pid_changed(&mut emit);
        p.feed(b"other\n", &mut emit).unwrap();
        assert_eq!(
            out,
            vec![
                (b"half".to_vec(), LineBreak::PidChange),
                (b"other".to_vec(), LineBreak::Newline)
            ]
        );
    }

    #[test]
    fn unit_names() {
        assert!(is_unit_name("getty@tty1.service"));
        assert!(is_unit_name("kubelet.service"));
        assert!(!is_unit_name("kubelet"));
        assert!(!is_unit_name("a b.service"));
        assert!(!is_unit_name(".service"));
    }

    proptest! {
        #[test]
        fn never_panics_and_bounds_memory(data in proptest::collection::vec(any::<u8>(), 0..400), cut in 0usize..400, max in 1usize..64) {
            let mut p = StreamParser::new(true, max);
            let mut emit = |_: &StreamHeader, l: StreamLine<'_>| assert!(l.message.len() <= max);
            let cut = cut.min(data.len());
            if p.feed(&data[..cut], &mut emit).is_ok() && p.feed(&data[cut..], &mut emit).is_ok() {
                prop_assert!(p.pending() <= max.max(HEADER_LINE_MAX));
                let _ = p.finish(&mut emit);
            }
        }

        #[test]
        fn chunking_does_not_change_lines(body in proptest::collection::vec(prop_oneof![Just(b'\n'), Just(0u8), Just(b'<'), Just(b'5'), Just(b'>'), any::<u8>()], 0..300), cut in 0usize..300) {
            let mut data = b"id\nx.service\n6\n1\n0\n0\n0\n".to_vec();
            data.extend_from_slice(&body);
            let whole = collect(&mut StreamParser::new(true, 16), &[&data], true);
            let cut = cut.min(data.len());
            let split = collect(&mut StreamParser::new(true, 16), &[&data[..cut], &data[cut..]], true);
            prop_assert_eq!(whole, split);
        }
    }
}
