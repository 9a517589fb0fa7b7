//! The one thing the collector produces: a journal entry (two timestamps, the boot it
//! belongs to and ordered fields), and the [`EntrySink`] trait it hands entries to. The
//! journal file writer implements the trait; [`crate::export::ExportSink`] is the
//! fallback and test sink. Keeping the sink behind a trait lets the collector run and be
//! tested before, and independently of, the file format.

use std::borrow::Cow;
use std::fmt;

/// A 128-bit id (boot id, machine id), kept as bytes, shown as 32 lowercase hex digits
/// as journald writes `_BOOT_ID=` and `_MACHINE_ID=`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub struct Id128(pub [u8; 16]);

impl Id128 {
    /// Parses 32 hex digits, with or without the four dashes of the UUID form
    /// (`/proc/sys/kernel/random/boot_id` has them, `/etc/machine-id` has not).
    pub fn parse(text: &str) -> Option<Id128> {
        let digits: Vec<u8> = text.trim().bytes().filter(|b| *b != b'-').collect();
        if digits.len() != 32 {
            return None;
        }
        let mut id = [0u8; 16];
        for (i, pair) in digits.chunks(2).enumerate() {
            let hi = (pair[0] as char).to_digit(16)?;
            let lo = (pair[1] as char).to_digit(16)?;
            id[i] = (hi * 16 + lo) as u8;
        }
        Some(Id128(id))
    }
}

impl fmt::Display for Id128 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for byte in self.0 {
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

/// One field: a name (`MESSAGE`, `_PID`, ...; `[A-Z0-9_]`, at most 64 bytes, checked
/// where untrusted names enter) and a value of arbitrary bytes.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Field {
    pub name: Cow<'static, str>,
    pub value: Vec<u8>,
}

/// One journal entry, as the collector made it.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct Entry {
    /// `__REALTIME_TIMESTAMP`: wall-clock µs since the epoch when the collector received it.
    pub realtime_usec: u64,
    /// `__MONOTONIC_TIMESTAMP`: CLOCK_MONOTONIC µs when the collector received it.
    pub monotonic_usec: u64,
    /// The boot the monotonic timestamp belongs to (also in the `_BOOT_ID` field).
    pub boot_id: Id128,
    /// The fields in the order they were added; a name may repeat (as in journald).
    pub fields: Vec<Field>,
}

impl Entry {
    /// An entry with no fields yet.
    pub fn new(realtime_usec: u64, monotonic_usec: u64, boot_id: Id128) -> Entry {
        Entry {
            realtime_usec,
            monotonic_usec,
            boot_id,
            fields: Vec::with_capacity(16),
        }
    }

    /// Appends a field.
    pub fn push(&mut self, name: impl Into<Cow<'static, str>>, value: impl Into<Vec<u8>>) {
        self.fields.push(Field {
            name: name.into(),
            value: value.into(),
        });
    }

    /// The value of the first field called `name`.
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.fields
            .iter()
            .find(|f| f.name == name)
            .map(|f| f.value.as_slice())
    }

    /// Roughly the bytes the entry holds in memory, for the queue's bound.
    pub fn weight(&self) -> usize {
        const PER_FIELD: usize = 64;
        std::mem::size_of::<Entry>()
            + self
                .fields
                .iter()
                .map(|f| PER_FIELD + f.name.len() + f.value.len())
                .sum::<usize>()
    }
}

/// Where entries go: the journal file writer, or [`crate::export::ExportSink`].
pub trait EntrySink: Send {
    /// Adds one entry. It need not be durable before [`EntrySink::sync`].
    fn append(&mut self, entry: &Entry) -> Result<(), SinkError>;
    /// Makes every appended entry durable (the collector calls it after each batch).
    fn sync(&mut self) -> Result<(), SinkError>;
}

/// A sink's failure, with the file it concerns.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("opening {path}")]
    Open {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("writing journal entry to {path}")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("syncing {path}")]
    Sync {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("journal sink {path}: {reason}")]
    Other { path: String, reason: String },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id128_parses_both_forms_and_prints_hex() {
        let boot = Id128::parse("0f8f2b6c-54a4-4ef1-9d7d-2b8e5ad1c0a3\n").unwrap();
        assert_eq!(boot.to_string(), "0f8f2b6c54a44ef19d7d2b8e5ad1c0a3");
        assert_eq!(Id128::parse("0f8f2b6c54a44ef19d7d2b8e5ad1c0a3"), Some(boot));
        assert_eq!(Id128::parse("0f8f"), None);
        assert_eq!(Id128::parse("zz8f2b6c54a44ef19d7d2b8e5ad1c0a3"), None);
    }
}
