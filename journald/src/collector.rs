//! Between the readers and the queue: per-unit rate limiting, the bounded queue's drop
//! accounting, and the "Suppressed N messages from UNIT" reports for both, which are
//! written as soon as the queue has room again. Kept free of I/O so that tests drive it
//! with entries whose timestamps they choose.

use crate::build::{self, Stamp};
use crate::context::{Identity, Peer};
use crate::entry::Entry;
use crate::queue::Queue;
use crate::ratelimit::{RateLimiter, Verdict};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The transport of unit output streams. Every other source (a datagram, a kernel record)
/// brings one message at a time and may use the queue's reserve above its bound, which a
/// stream whose pause ran out never gets: a flooding unit cannot crowd out the messages of
/// `logger`, `sd_journal_send` or the kernel (a syslog line sent during a flood was lost
/// that way under CI's load).
const STREAM_SOURCE: &str = "stdout";

/// Counters for the exit summary and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub queued: u64,
    pub rate_limited: u64,
    pub queue_full: u64,
}

/// The readers' side of the queue.
pub struct Collector {
    identity: Identity,
    own: Peer,
    limiter: RateLimiter,
    queue: Arc<Queue>,
    /// Drops not yet reported, by unit or transport.
    unreported: BTreeMap<String, u64>,
    counts: Counts,
    /// A paused-when-high stream's chunk is being parsed: its entries may use the queue's
    /// paced limit, since the bytes have left the socket already.
    paced: bool,
    /// Shutting down: what was sent before the signal waits for room until this deadline
    /// instead of being dropped (the writer is still running; a stuck sink cannot hold
    /// the stop longer).
    draining: Option<std::time::Instant>,
}

impl Collector {
    pub fn new(
        identity: Identity,
        own: Peer,
        limiter: RateLimiter,
        queue: Arc<Queue>,
    ) -> Collector {
        Collector {
            identity,
            own,
            limiter,
            queue,
            unreported: BTreeMap::new(),
            counts: Counts::default(),
            paced: false,
            draining: None,
        }
    }

    /// From now on, submitted entries wait for room in the queue until `deadline` (the
    /// final pass at stop).
    pub fn start_draining(&mut self, deadline: std::time::Instant) {
        self.draining = Some(deadline);
    }

    /// While `on`, submitted entries may fill the queue up to its paced limit.
    pub fn set_paced(&mut self, on: bool) {
        self.paced = on;
    }

    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    pub fn counts(&self) -> Counts {
        self.counts
    }

    /// Whether the queue is above its high-water mark.
    pub fn queue_high(&self) -> bool {
        self.queue.is_high()
    }

    /// Whether drops wait to be reported (the loop then wakes up to retry).
    pub fn has_unreported(&self) -> bool {
        !self.unreported.is_empty()
    }

    /// Submits an entry of `unit` (rate-limited when known) or of the transport `source`.
    pub fn submit(&mut self, entry: Entry, unit: Option<&str>, source: &str) {
        let stamp = (entry.realtime_usec, entry.monotonic_usec);
        if let Some(unit) = unit {
            match self.limiter.check(unit, entry.monotonic_usec) {
                Verdict::Drop => {
                    self.counts.rate_limited += 1;
                    return;
                }
                Verdict::Pass { suppressed } if suppressed > 0 => {
                    *self.unreported.entry(unit.to_string()).or_default() += suppressed;
                }
                Verdict::Pass { .. } => {}
            }
        }
        self.report(stamp);
        let pushed = if let Some(deadline) = self.draining {
            self.queue.push_until(entry, deadline)
        } else if self.paced || source != STREAM_SOURCE {
            self.queue.push_within(entry, self.queue.paced_limit())
        } else {
            self.queue.try_push(entry)
        };
        match pushed {
            Ok(()) => self.counts.queued += 1,
            Err(_) => {
                self.counts.queue_full += 1;
                *self
                    .unreported
                    .entry(unit.unwrap_or(source).to_string())
                    .or_default() += 1;
            }
        }
    }

    /// Queues the pending reports that fit.
    pub fn report(&mut self, stamp: Stamp) {
        while let Some((source, count)) = self.unreported.pop_first() {
            let entry = build::suppressed(stamp, &self.identity, &self.own, &source, count);
            if let Err(_entry) = self.queue.try_push(entry) {
                self.unreported.insert(source, count);
                return;
            }
        }
    }

    /// At shutdown: reports everything still counted, waiting for room in the queue until
    /// the deadline given to [`start_draining`](Self::start_draining) (not at all before it).
    pub fn report_all(&mut self, stamp: Stamp) {
        for (unit, count) in self.limiter.take_suppressed() {
            *self.unreported.entry(unit).or_default() += count;
        }
        while let Some((source, count)) = self.unreported.pop_first() {
            let entry = build::suppressed(stamp, &self.identity, &self.own, &source, count);
            let deadline = self.draining.unwrap_or_else(std::time::Instant::now);
            if self.queue.push_until(entry, deadline).is_err() {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::Id128;

    fn identity() -> Identity {
        Identity {
            boot_id: Id128([7; 16]),
            machine_id: None,
            hostname: None,
        }
    }

    fn line(t: u64, text: &str) -> Entry {
        let mut e = Entry::new(t, t, Id128([7; 16]));
        e.push("MESSAGE", text.to_string());
        e
    }

    fn collector(queue: &Arc<Queue>, limiter: RateLimiter) -> Collector {
        Collector::new(identity(), Peer::default(), limiter, queue.clone())
    }

    fn messages(queue: &Queue) -> Vec<String> {
        let mut out = Vec::new();
        queue.pop_batch(&mut out);
        out.iter()
            .map(|e| String::from_utf8_lossy(e.get("MESSAGE").unwrap_or_default()).into_owned())
            .collect()
    }

    #[test]
    fn rate_limit_reports_after_the_window_with_an_injected_clock() {
        let queue = Arc::new(Queue::new(1 << 20));
        let mut c = collector(&queue, RateLimiter::new(1_000, 2));
        for i in 0..5 {
            c.submit(line(10 + i, &format!("m{i}")), Some("a.service"), "stdout");
        }
        assert_eq!(messages(&queue), ["m0", "m1"]);
        c.submit(line(2_000, "later"), Some("a.service"), "stdout");
        assert_eq!(
            messages(&queue),
            ["Suppressed 3 messages from a.service", "later"]
        );
        assert_eq!(c.counts().rate_limited, 3);
    }

    #[test]
    fn full_queue_counts_and_reports_when_room_returns() {
        let big = "x".repeat(2000);
        let one = line(0, &big).weight();
        let queue = Arc::new(Queue::new(one * 3));
        let mut c = collector(&queue, RateLimiter::new(0, 0));
        for i in 0..10 {
            c.submit(line(i, &big), None, "stdout");
        }
        assert_eq!(c.counts().queue_full, 7);
        assert!(c.has_unreported());
        assert_eq!(messages(&queue).len(), 3);
        c.submit(line(20, "after"), None, "stdout");
        assert_eq!(
            messages(&queue),
            ["Suppressed 7 messages from stdout", "after"]
        );
        assert!(!c.has_unreported());
    }

    #[test]
    fn a_flooding_stream_leaves_room_for_single_messages() {
        let big = "x".repeat(2000);
        let one = line(0, &big).weight();
        let queue = Arc::new(Queue::new(one * 3));
        let mut c = collector(&queue, RateLimiter::new(0, 0));
        // A stream whose pause ran out: read, and dropped beyond the bound.
        for i in 0..5 {
            c.submit(line(i, &big), Some("flood.service"), "stdout");
        }
        assert_eq!(c.counts().queue_full, 2);
        for (i, source) in ["syslog", "journal", "kernel"].into_iter().enumerate() {
            c.submit(line(10 + i as u64, source), None, source);
        }
        assert_eq!(c.counts().queue_full, 2);
        // The reserve has a ceiling too: twice the bound.
        for i in 0..4 {
            c.submit(line(20 + i, &big), None, "syslog");
        }
        assert_eq!(c.counts().queue_full, 4);
        let got = messages(&queue);
        assert_eq!(got.len(), 8);
        assert_eq!(got[3..6], ["syslog", "journal", "kernel"]);
    }

    #[test]
    fn a_paced_streams_chunk_uses_the_headroom_and_loses_nothing() {
        let big = "x".repeat(2000);
        let one = line(0, &big).weight();
        let queue = Arc::new(Queue::new(one * 3));
        let mut c = collector(&queue, RateLimiter::new(0, 0));
        c.set_paced(true);
        for i in 0..6 {
            c.submit(line(i, &big), Some("a.service"), "stdout");
        }
        assert_eq!(c.counts().queue_full, 0);
        // Twice the bound is the ceiling, paced or not.
        c.submit(line(7, &big), Some("a.service"), "stdout");
        c.set_paced(false);
        c.submit(line(8, &big), Some("a.service"), "stdout");
        assert_eq!(c.counts().queue_full, 2);
        assert_eq!(messages(&queue).len(), 6);
    }

    #[test]
    fn shutdown_reports_open_windows() {
        let queue = Arc::new(Queue::new(1 << 20));
        let mut c = collector(&queue, RateLimiter::new(1_000_000, 1));
        for i in 0..4 {
            c.submit(line(i, "y"), Some("b.service"), "stdout");
        }
        c.report_all((5, 5));
        assert_eq!(
            messages(&queue),
            ["y", "Suppressed 3 messages from b.service"]
        );
    }
}
