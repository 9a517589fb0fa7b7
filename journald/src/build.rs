//! Parsed messages into entries, with the fields journald gives each transport
//! (`_TRANSPORT=stdout|journal|syslog|kernel|driver`), so that journalctl's filters
//! (`-u`, `-k`, `-t`, `-p`) find them as they find journald's.

use crate::context::{Identity, Peer};
use crate::entry::{Entry, Field, Id128};
use crate::kmsg::KmsgRecord;
use crate::native::NativeField;
use crate::stream::{StreamHeader, StreamLine};
use crate::syslog::SyslogMessage;

/// journald's SD_MESSAGE_JOURNAL_DROPPED: "messages were suppressed".
pub const MESSAGE_ID_DROPPED: &str = "a596d6fe7bfa4994828e72309e95d61e";

/// Timestamps of receipt, (realtime, monotonic) µs.
pub type Stamp = (u64, u64);

fn priority_fields(entry: &mut Entry, priority: u16, facility_always: bool) {
    entry.push("PRIORITY", (priority & 7).to_string());
    if facility_always || priority >> 3 != 0 {
        entry.push("SYSLOG_FACILITY", (priority >> 3).to_string());
    }
}

/// The fields every line of one stream shares (the process's and the machine's),
/// computed once per /proc read instead of once per line.
pub fn trusted_fields(identity: &Identity, peer: &Peer, unit: Option<&str>) -> Vec<Field> {
    let mut e = Entry::default();
    peer.stamp(&mut e, unit);
    identity.stamp(&mut e);
    e.fields
}

/// A line of a unit's stdout/stderr; `trusted` from [`trusted_fields`].
pub fn stream_line(
    stamp: Stamp,
    boot_id: Id128,
    stream_id: &str,
    header: &StreamHeader,
    line: &StreamLine<'_>,
    trusted: &[Field],
) -> Entry {
    let mut e = Entry::new(stamp.0, stamp.1, boot_id);
    e.fields.reserve(trusted.len() + 7);
    e.push("_TRANSPORT", "stdout");
    e.push("_STREAM_ID", stream_id.to_string());
    priority_fields(&mut e, line.priority, false);
    if let Some(ident) = &header.identifier {
        e.push("SYSLOG_IDENTIFIER", ident.clone());
    }
    if let Some(kind) = line.line_break.field() {
        e.push("_LINE_BREAK", kind);
    }
    e.push("MESSAGE", line.message.to_vec());
    e.fields.extend_from_slice(trusted);
    e
}

/// An entry of the native protocol.
pub fn native(stamp: Stamp, identity: &Identity, peer: &Peer, fields: &[NativeField<'_>]) -> Entry {
    let mut e = Entry::new(stamp.0, stamp.1, identity.boot_id);
    e.push("_TRANSPORT", "journal");
    for (name, value) in fields {
        e.push(name.to_string(), value.to_vec());
    }
    peer.stamp(&mut e, None);
    identity.stamp(&mut e);
    e
}

/// A syslog datagram; `source_realtime` is the kernel's receive time (SO_TIMESTAMP).
pub fn syslog(
    stamp: Stamp,
    identity: &Identity,
    peer: &Peer,
    message: &SyslogMessage<'_>,
    source_realtime: Option<u64>,
) -> Entry {
    let mut e = Entry::new(stamp.0, stamp.1, identity.boot_id);
    e.push("_TRANSPORT", "syslog");
    priority_fields(&mut e, message.priority, false);
    if let Some(ident) = message.identifier {
        e.push("SYSLOG_IDENTIFIER", ident.to_vec());
    }
    if let Some(pid) = message.pid {
        e.push("SYSLOG_PID", pid.to_vec());
    }
    if let Some(ts) = message.timestamp {
        e.push("SYSLOG_TIMESTAMP", ts.to_vec());
    }
    e.push("MESSAGE", message.message.to_vec());
    if let Some(t) = source_realtime {
        e.push("_SOURCE_REALTIME_TIMESTAMP", t.to_string());
    }
    peer.stamp(&mut e, None);
    identity.stamp(&mut e);
    e
}

/// A kernel log record.
pub fn kernel(stamp: Stamp, identity: &Identity, record: &KmsgRecord) -> Entry {
    let mut e = Entry::new(stamp.0, stamp.1, identity.boot_id);
    e.push("_TRANSPORT", "kernel");
    e.push(
        "_SOURCE_MONOTONIC_TIMESTAMP",
        record.monotonic_usec.to_string(),
    );
    priority_fields(&mut e, record.priority, true);
    for (key, value) in &record.properties {
        e.push(format!("_KERNEL_{key}"), value.clone());
    }
    match &record.identifier {
        None if record.priority >> 3 == 0 => e.push("SYSLOG_IDENTIFIER", "kernel"),
        None => {}
        Some(ident) => e.push("SYSLOG_IDENTIFIER", ident.clone()),
    }
    if let Some(pid) = &record.pid {
        e.push("SYSLOG_PID", pid.clone());
    }
    e.push("MESSAGE", record.message.clone());
    identity.stamp(&mut e);
    e
}

/// The collector's own report of `count` messages of `source` (a unit, or a transport
/// for messages without one) that were not written, as journald words it.
pub fn suppressed(
    stamp: Stamp,
    identity: &Identity,
    own: &Peer,
    source: &str,
    count: u64,
) -> Entry {
    let mut e = Entry::new(stamp.0, stamp.1, identity.boot_id);
    e.push("_TRANSPORT", "driver");
    e.push("MESSAGE_ID", MESSAGE_ID_DROPPED);
    e.push("PRIORITY", "4");
    e.push("SYSLOG_IDENTIFIER", "berth-journald");
    e.push(
        "MESSAGE",
        format!("Suppressed {count} messages from {source}"),
    );
    e.push("N_DROPPED", count.to_string());
    if source.contains('.') {
        // `journalctl -u UNIT` shows it with the unit's own lines.
        e.push("OBJECT_SYSTEMD_UNIT", source.to_string());
    }
    own.stamp(&mut e, None);
    identity.stamp(&mut e);
    e
}
