//! journald's native protocol (`/run/systemd/journal/socket`, SOCK_DGRAM), what
//! sd_journal_send(3) and `logger --journald` speak: a datagram (or, for big ones, a
//! sealed memfd passed with SCM_RIGHTS) of fields, each `KEY=VALUE\n` or, for values with
//! newlines or binary data, `KEY\n<le64 length><bytes>\n`; an empty line separates
//! entries. Field names are checked as journald does; names starting with `_` are the
//! collector's own (trusted) fields and are dropped from clients.

/// Largest value accepted from a client (journald's DATA_SIZE_MAX is larger; a node's
/// collector has no use for more and must bound its memory).
pub const VALUE_MAX: u64 = 64 * 1024 * 1024;

/// A field of a native entry, borrowed from the datagram.
pub type NativeField<'a> = (&'a str, &'a [u8]);

/// A datagram the collector cannot parse; what came before in it is still used.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum NativeError {
    #[error("native datagram at byte {offset}: binary field {name:?} {reason}")]
    Binary {
        offset: usize,
        name: String,
        reason: &'static str,
    },
}

/// Whether `name` may be a field name from a client: 1..=64 bytes of `[A-Z0-9_]`, not
/// starting with a digit, and (unless `allow_trusted`) not with `_`.
pub fn field_name_valid(name: &[u8], allow_trusted: bool) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && !name[0].is_ascii_digit()
        && (allow_trusted || name[0] != b'_')
        && name
            .iter()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || *b == b'_')
}

/// Parses a datagram into entries (each a list of fields, invalid names skipped, empty
/// entries left out). On a malformed binary field, returns the entries complete so far
/// and the error.
pub fn parse(data: &[u8]) -> (Vec<Vec<NativeField<'_>>>, Option<NativeError>) {
    let mut entries = Vec::new();
    let mut fields: Vec<NativeField<'_>> = Vec::new();
    let mut pos = 0;
    let mut error = None;
    while pos < data.len() {
        let rest = &data[pos..];
        let Some(end) = rest.iter().position(|b| *b == b'\n') else {
            break; // trailing noise, as journald
        };
        let line = &rest[..end];
        if line.is_empty() {
            if !fields.is_empty() {
                entries.push(std::mem::take(&mut fields));
            }
            pos += 1;
            continue;
        }
        if let Some(eq) = line.iter().position(|b| *b == b'=') {
            let (name, value) = (&line[..eq], &line[eq + 1..]);
            if field_name_valid(name, false) {
                if let Ok(name) = std::str::from_utf8(name) {
                    fields.push((name, value));
                }
            }
            pos += end + 1;
            continue;
        }
        // Binary form: NAME\n<le64 size><data>\n
        let fail = |reason| NativeError::Binary {
            offset: pos,
            name: String::from_utf8_lossy(line).into_owned(),
            reason,
        };
        let after = &rest[end + 1..];
        let Some(size_bytes) = after.get(..8) else {
            error = Some(fail("has no length"));
            break;
        };
        let mut le = [0u8; 8];
        le.copy_from_slice(size_bytes);
        let size = u64::from_le_bytes(le);
        if size > VALUE_MAX {
            error = Some(fail("is larger than the limit"));
            break;
        }
        let size = size as usize;
        let value_end = 8 + size;
        match after.get(value_end) {
            Some(b'\n') => {}
            Some(_) => {
                error = Some(fail("does not end in a newline"));
                break;
            }
            None => {
                error = Some(fail("is cut short"));
                break;
            }
        }
        if field_name_valid(line, false) {
            if let Ok(name) = std::str::from_utf8(line) {
                fields.push((name, &after[8..value_end]));
            }
        }
        pos += end + 1 + value_end + 1;
    }
    if !fields.is_empty() && error.is_none() {
        entries.push(fields);
    }
    (entries, error)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn binary(name: &str, value: &[u8]) -> Vec<u8> {
        let mut out = format!("{name}\n").into_bytes();
        out.extend_from_slice(&(value.len() as u64).to_le_bytes());
        out.extend_from_slice(value);
        out.push(b'\n');
        out
    }

    #[test]
    fn text_and_binary_fields_and_entries() {
        let mut data = b"MESSAGE=hi\nPRIORITY=5\n_PID=1\nlower=x\n".to_vec();
        data.extend(binary("MULTI", b"a\nb"));
        data.extend_from_slice(b"\nMESSAGE=second\n");
        let (entries, error) = parse(&data);
        assert_eq!(error, None);
        assert_eq!(
            entries,
            vec![
                vec![
                    ("MESSAGE", &b"hi"[..]),
                    ("PRIORITY", b"5"),
                    ("MULTI", b"a\nb")
                ],
                vec![("MESSAGE", &b"second"[..])],
            ]
        );
    }

    #[test]
    fn truncated_binary_is_an_error() {
        let mut data = b"MESSAGE=ok\n\nA=1\n".to_vec();
        let mut bad = binary("X", b"12345");
        bad.truncate(bad.len() - 3);
        data.extend(bad);
        let (entries, error) = parse(&data);
        assert_eq!(entries, vec![vec![("MESSAGE", &b"ok"[..])]]);
        assert!(matches!(error, Some(NativeError::Binary { .. })));
    }

    #[test]
    fn names() {
        assert!(field_name_valid(b"MESSAGE", false));
        assert!(!field_name_valid(b"_PID", false));
        assert!(field_name_valid(b"_PID", true));
        assert!(!field_name_valid(b"1ABC", false));
        assert!(!field_name_valid(&[b'A'; 65], false));
    }

    proptest! {
        #[test]
        fn never_panics(data in proptest::collection::vec(any::<u8>(), 0..500)) {
            let (entries, _) = parse(&data);
            for entry in entries {
                for (name, _) in entry {
                    prop_assert!(field_name_valid(name.as_bytes(), false));
                }
            }
        }

        #[test]
        fn roundtrip(fields in proptest::collection::vec(("[A-Z][A-Z0-9_]{0,20}", proptest::collection::vec(any::<u8>(), 0..40)), 1..8)) {
            let mut data = Vec::new();
            for (name, value) in &fields {
                if value.contains(&b'\n') {
                    data.extend(binary(name, value));
                } else {
                    data.extend_from_slice(name.as_bytes());
                    data.push(b'=');
                    data.extend_from_slice(value);
                    data.push(b'\n');
                }
            }
            let (entries, error) = parse(&data);
            prop_assert_eq!(error, None);
            prop_assert_eq!(entries.len(), 1);
            let got: Vec<(String, Vec<u8>)> = entries[0].iter().map(|(n, v)| (n.to_string(), v.to_vec())).collect();
            prop_assert_eq!(got, fields);
        }
    }
}
