//! berth-journald: the log collector of Berth nodes. PID 1 runs it as a unit of its own
//! (Type=notify), like systemd-journald, so that a slow or full disk never blocks PID 1:
//! it reads unit output streams, journald's native socket, `/dev/log` and `/dev/kmsg`,
//! rate-limits per unit, and hands entries through a bounded queue to an
//! [`entry::EntrySink`] (the journal file writer, or the export-format fallback). Its
//! sockets may be passed by PID 1 from socket units, as systemd passes journald's
//! ([`activation`]); those not passed it binds itself.

pub mod activation;
pub mod build;
pub mod collector;
pub mod config;
pub mod context;
pub mod daemon;
pub mod entry;
pub mod export;
pub mod journal_sink;
pub mod kmsg;
pub mod native;
pub mod open;
pub mod pacer;
pub mod queue;
pub mod ratelimit;
pub mod say;
pub mod sources;
pub mod stream;
pub mod sys;
pub mod syslog;
