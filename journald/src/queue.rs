//! The bounded queue between the readers (the poll loop) and the sink (its own thread).
//! Bounded in bytes, not entries, so that the collector's memory has a ceiling whatever
//! the line lengths; a full queue refuses the entry at once (the reader counts the drop
//! and goes on), so a slow or full disk never stalls the readers, the units or PID 1.

use crate::entry::Entry;
use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, MutexGuard};

#[derive(Default)]
struct State {
    entries: VecDeque<Entry>,
    bytes: usize,
    closed: bool,
}

/// A multi-producer, single-consumer queue of entries with a byte bound.
pub struct Queue {
    max_bytes: usize,
    state: Mutex<State>,
    changed: Condvar,
}

impl Queue {
    /// A queue holding at most `max_bytes` of entries (by [`Entry::weight`]); one entry
    /// is always accepted into an empty queue.
    pub fn new(max_bytes: usize) -> Queue {
        Queue {
            max_bytes,
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves only a queue of entries: keep going.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Adds `entry`, or gives it back when the queue is full or closed.
    pub fn try_push(&self, entry: Entry) -> Result<(), Entry> {
        let weight = entry.weight();
        let mut state = self.lock();
        if state.closed || (!state.entries.is_empty() && state.bytes + weight > self.max_bytes) {
            return Err(entry);
        }
        state.bytes += weight;
        state.entries.push_back(entry);
        drop(state);
        self.changed.notify_all();
        Ok(())
    }

    /// Adds `entry`, waiting for room (used only at shutdown, for the final reports).
    pub fn push_wait(&self, entry: Entry) {
        let weight = entry.weight();
        let mut state = self.lock();
        while !state.entries.is_empty() && state.bytes + weight > self.max_bytes {
            state = self
                .changed
                .wait(state)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
        }
        state.bytes += weight;
        state.entries.push_back(entry);
        drop(state);
        self.changed.notify_all();
    }

    /// Waits for entries and moves them all into `out`; false once the queue is closed
    /// and empty.
    pub fn pop_batch(&self, out: &mut Vec<Entry>) -> bool {
        let mut state = self.lock();
        while state.entries.is_empty() && !state.closed {
            state = self
                .changed
                .wait(state)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
        }
        if state.entries.is_empty() {
            return false;
        }
        out.extend(state.entries.drain(..));
        state.bytes = 0;
        drop(state);
        self.changed.notify_all();
        true
    }

    /// Whether no entry is waiting.
    pub fn is_empty(&self) -> bool {
        self.lock().entries.is_empty()
    }

    /// No more entries will come; the consumer drains what is left and stops.
    pub fn close(&self) {
        self.lock().closed = true;
        self.changed.notify_all();
    }

    /// Whether the queue is three quarters full (the streams' high-water mark).
    pub fn is_high(&self) -> bool {
        self.lock().bytes >= self.max_bytes / 4 * 3
    }

    /// Bytes queued now.
    pub fn bytes(&self) -> usize {
        self.lock().bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::Id128;

    fn entry(len: usize) -> Entry {
        let mut e = Entry::new(0, 0, Id128::default());
        e.push("MESSAGE", vec![b'x'; len]);
        e
    }

    #[test]
    fn bound_refuses_then_drains() {
        let one = entry(100).weight();
        let q = Queue::new(one * 2);
        assert!(q.try_push(entry(100)).is_ok());
        assert!(q.try_push(entry(100)).is_ok());
        assert!(q.try_push(entry(100)).is_err());
        let mut out = Vec::new();
        assert!(q.pop_batch(&mut out));
        assert_eq!(out.len(), 2);
        assert_eq!(q.bytes(), 0);
        // An entry larger than the bound still passes through an empty queue.
        assert!(q.try_push(entry(10_000)).is_ok());
        q.close();
        assert!(q.try_push(entry(1)).is_err());
        out.clear();
        assert!(q.pop_batch(&mut out));
        assert!(!q.pop_batch(&mut out));
    }
}
