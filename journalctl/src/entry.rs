//! One journal entry as journalctl sees it: its addresses (realtime, monotonic, boot,
//! sequence number, cursor) and its fields in file order. The file reader fills it;
//! filters and output formats only read it.

/// A journal entry.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Entry {
    /// µs since the epoch (`__REALTIME_TIMESTAMP`).
    pub realtime: u64,
    /// µs since boot (`__MONOTONIC_TIMESTAMP`).
    pub monotonic: u64,
    /// `_BOOT_ID`, 32 lowercase hex digits.
    pub boot_id: String,
    /// `__CURSOR`, systemd's `s=…;i=…;b=…;m=…;t=…;x=…`.
    pub cursor: String,
    /// `__SEQNUM`.
    pub seqnum: u64,
    /// The fields, names upper-case, values raw bytes (binary allowed).
    pub fields: Vec<(String, Vec<u8>)>,
}

impl Entry {
    /// The first value of `name`, as bytes.
    pub fn field(&self, name: &str) -> Option<&[u8]> {
        self.fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
    }

    /// The first value of `name` as text (invalid UTF-8 replaced).
    pub fn text(&self, name: &str) -> Option<String> {
        self.field(name)
            .map(|v| String::from_utf8_lossy(v).into_owned())
    }

    /// `PRIORITY=` as a number; lines without one count as info (6), as journalctl does
    /// for filtering.
    pub fn priority(&self) -> u8 {
        self.text("PRIORITY")
            .and_then(|p| p.trim().parse().ok())
            .filter(|p: &u8| *p < 8)
            .unwrap_or(6)
    }
}
