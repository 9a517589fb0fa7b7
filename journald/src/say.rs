//! The collector's own messages on standard error, one `write` per line: its unit sends
//! standard error to `/dev/kmsg`, where every write is a record, and `eprintln!` writes a
//! line in pieces.

/// Writes one line to standard error in a single `write`.
pub fn line(text: &str) {
    use std::io::Write;
    let mut bytes = Vec::with_capacity(text.len() + 1);
    bytes.extend_from_slice(text.as_bytes());
    bytes.push(b'\n');
    let _ = std::io::stderr().write_all(&bytes);
}

/// `eprintln!` as one record: `say!("berth-journald: {x}")`.
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::say::line(&format!($($arg)*))
    };
}

/// `e` and its sources on one line, `a: b: c`, as the collector's lines give errors.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
