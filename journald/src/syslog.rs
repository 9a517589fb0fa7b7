//! The syslog socket (`/dev/log`): RFC 3164-style local datagrams as syslog(3) and
//! `logger` send them, `<PRI>Mmm dd hh:mm:ss TAG[PID]: MSG`, with every part but the
//! message optional. Parsed the way journald does (journald-syslog.c): the `<PRI>`
//! prefix, a timestamp kept as `SYSLOG_TIMESTAMP`, the identifier and PID from the first
//! word if it ends in `:`. The `<N>` prefix parser is shared with the stdout streams.

/// syslog(3)'s default when a datagram has no `<PRI>`: LOG_USER | LOG_INFO.
pub const DEFAULT_PRIORITY: u16 = (1 << 3) | 6;

/// A parsed syslog datagram; the strings borrow from it.
#[derive(Debug, PartialEq, Eq)]
pub struct SyslogMessage<'a> {
    /// Facility and level, `facility << 3 | level`.
    pub priority: u16,
    pub timestamp: Option<&'a [u8]>,
    pub identifier: Option<&'a [u8]>,
    pub pid: Option<&'a [u8]>,
    pub message: &'a [u8],
}

/// Parses a leading `<N>`, `<NN>` or `<NNN>`. With `with_facility` the number is the
/// whole priority (at most 999); without, it must be a level 0..=7 and replaces only the
/// level bits of `priority`. Returns the rest and the new priority, or `None` (and the
/// caller keeps the text whole) when there is no valid prefix.
pub fn parse_priority_prefix(
    text: &[u8],
    priority: u16,
    with_facility: bool,
) -> Option<(&[u8], u16)> {
    let rest = text.strip_prefix(b"<")?;
    let end = rest.iter().take(4).position(|b| *b == b'>')?;
    let digits = &rest[..end];
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let value = digits
        .iter()
        .fold(0u16, |acc, d| acc * 10 + u16::from(d - b'0'));
    let priority = if with_facility {
        value
    } else if value <= 7 {
        (priority & !7) | value
    } else {
        return None;
    };
    Some((&rest[end + 1..], priority))
}

/// Length of an RFC 3164 timestamp `Mmm dd hh:mm:ss ` (day space-padded or not) at the
/// start of `text`, trailing space included; 0 when there is none.
pub fn timestamp_len(text: &[u8]) -> usize {
    // Template: letters, space, day (digit or space, digit), time, one space.
    const SHAPE: &[u8] = b"aaa dd dd:dd:dd ";
    if text.len() < SHAPE.len() {
        return 0;
    }
    let fits = SHAPE
        .iter()
        .zip(text)
        .enumerate()
        .all(|(i, (shape, b))| match shape {
            b'a' => b.is_ascii_alphabetic(),
            b'd' if i == 4 => b.is_ascii_digit() || *b == b' ',
            b'd' => b.is_ascii_digit(),
            other => b == other,
        });
    if fits {
        SHAPE.len()
    } else {
        0
    }
}

/// Splits `IDENT[PID]: ` off the start of `text` (after leading whitespace), as
/// journald's syslog_parse_identifier: the first word must end in `:`.
pub fn parse_identifier(text: &[u8]) -> (Option<&[u8]>, Option<&[u8]>, &[u8]) {
    let start = text
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(text.len());
    let word = &text[start..];
    let len = word
        .iter()
        .position(|b| b.is_ascii_whitespace())
        .unwrap_or(word.len());
    if len == 0 || word[len - 1] != b':' {
        return (None, None, text);
    }
    let mut ident = &word[..len - 1];
    let mut pid = None;
    if let Some(inner) = ident.strip_suffix(b"]") {
        if let Some(open) = inner.iter().rposition(|b| *b == b'[') {
            pid = Some(&inner[open + 1..]);
            ident = &inner[..open];
        }
    }
    let mut rest = &word[len..];
    if rest.first().is_some_and(u8::is_ascii_whitespace) {
        rest = &rest[1..];
    }
    (Some(ident).filter(|i| !i.is_empty()), pid, rest)
}

/// Parses one datagram. Trailing newlines and NULs are dropped.
pub fn parse(datagram: &[u8]) -> SyslogMessage<'_> {
    let mut text = datagram;
    while let Some((last, head)) = text.split_last() {
        if *last == b'\n' || *last == 0 {
            text = head;
        } else {
            break;
        }
    }
    let (text, priority) =
        parse_priority_prefix(text, DEFAULT_PRIORITY, true).unwrap_or((text, DEFAULT_PRIORITY));
    let ts_len = timestamp_len(text);
    let timestamp = (ts_len > 0).then(|| &text[..ts_len - 1]);
    let (identifier, pid, message) = parse_identifier(&text[ts_len..]);
    SyslogMessage {
        priority,
        timestamp,
        identifier,
        pid,
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn logger_local_format() {
        let m = parse(b"<13>Dec  5 04:30:01 alice[1234]: hello world\n");
        assert_eq!(m.priority, 13);
        assert_eq!(m.timestamp, Some(&b"Dec  5 04:30:01"[..]));
        assert_eq!(m.identifier, Some(&b"alice"[..]));
        assert_eq!(m.pid, Some(&b"1234"[..]));
        assert_eq!(m.message, b"hello world");
    }

    #[test]
    fn bare_message_gets_user_info() {
        let m = parse(b"just text: not an ident");
        assert_eq!(m.priority, DEFAULT_PRIORITY);
        assert_eq!(m.timestamp, None);
        assert_eq!(m.identifier, None);
        assert_eq!(m.message, b"just text: not an ident");
        let m = parse(b"<34>su: auth failure");
        assert_eq!((m.priority >> 3, m.priority & 7), (4, 2));
        assert_eq!(m.identifier, Some(&b"su"[..]));
        assert_eq!(m.pid, None);
    }

    #[test]
    fn priority_prefix_levels() {
        assert_eq!(
            parse_priority_prefix(b"<3>x", 6, false),
            Some((&b"x"[..], 3))
        );
        assert_eq!(
            parse_priority_prefix(b"<3>x", 8 | 6, false),
            Some((&b"x"[..], 8 | 3))
        );
        assert_eq!(parse_priority_prefix(b"<13>x", 6, false), None);
        assert_eq!(
            parse_priority_prefix(b"<13>x", 6, true),
            Some((&b"x"[..], 13))
        );
        assert_eq!(parse_priority_prefix(b"<1234>x", 6, true), None);
        assert_eq!(parse_priority_prefix(b"<>x", 6, true), None);
        assert_eq!(parse_priority_prefix(b"<a>x", 6, true), None);
    }

    proptest! {
        #[test]
        fn never_panics_and_message_is_a_suffix(data in proptest::collection::vec(any::<u8>(), 0..300)) {
            let m = parse(&data);
            prop_assert!(m.message.is_empty() || data.windows(m.message.len()).any(|w| w == m.message));
            prop_assert!(m.priority <= 999);
        }

        #[test]
        fn structured_roundtrip(pri in 0u16..192, ident in "[a-z][a-z0-9_-]{0,10}", pid in 1u32..100000, msg in "[ -~]{0,60}") {
            let line = format!("<{pri}>Jan 15 10:00:00 {ident}[{pid}]: {msg}");
            let m = parse(line.as_bytes());
            prop_assert_eq!(m.priority, pri);
            prop_assert_eq!(m.identifier, Some(ident.as_bytes()));
            let pid_text = pid.to_string();
            prop_assert_eq!(m.pid, Some(pid_text.as_bytes()));
            prop_assert_eq!(m.message, msg.as_bytes());
        }
    }
}
