//! The bounded queue between the readers (the poll loop) and the sink (its own thread).
//! Bounded in bytes, not entries, so that the collector's memory has a ceiling whatever
//! the line lengths; a full queue refuses the entry at once (the reader counts the drop
//! and goes on), so a slow or full disk never stalls the readers, the units or PID 1.
//! The lines of a stream chunk already read when the high-water mark was reached may take
//! the queue up to [`Queue::paced_limit`] (see [`crate::pacer`]): pausing a stream then
//! loses nothing that was read, and the ceiling stays fixed. Single messages (datagrams,
//! kernel records) may use the same reserve (see [`crate::collector`]).
//! The condition variable is signalled only when a thread waits on it: a wake-up is a
//! system call, and one per line cost the readers a fifth of their time at full speed.

use crate::entry::Entry;
use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, MutexGuard};

#[derive(Default)]
struct State {
    entries: VecDeque<Entry>,
    bytes: usize,
    closed: bool,
    /// Threads waiting on `changed` (the sink for entries, a final pass for room).
    waiters: usize,
}

impl State {
    /// Waits on `changed` (at most `timeout`), counted in `waiters` meanwhile.
    fn wait<'a>(
        mut state: MutexGuard<'a, State>,
        changed: &Condvar,
        timeout: Option<std::time::Duration>,
    ) -> MutexGuard<'a, State> {
        state.waiters += 1;
        let mut state = match timeout {
            None => changed
                .wait(state)
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
            Some(t) => changed
                .wait_timeout(state, t)
                .map(|(guard, _)| guard)
                .unwrap_or_else(|poisoned| poisoned.into_inner().0),
        };
        state.waiters -= 1;
        state
    }
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
        self.push_within(entry, self.max_bytes)
    }

    /// The ceiling for the rest of a paced stream's chunk: twice the bound.
    pub fn paced_limit(&self) -> usize {
        self.max_bytes.saturating_mul(2)
    }

    /// Adds `entry` if the queue stays within `limit` bytes (or is empty), else gives it
    /// back; also when closed.
    pub fn push_within(&self, entry: Entry, limit: usize) -> Result<(), Entry> {
        let weight = entry.weight();
        let state = self.lock();
        if state.closed || (!state.entries.is_empty() && state.bytes + weight > limit) {
            return Err(entry);
        }
        self.admit(state, entry, weight);
        Ok(())
    }

    fn admit(&self, mut state: MutexGuard<'_, State>, entry: Entry, weight: usize) {
        state.bytes += weight;
        state.entries.push_back(entry);
        let waiting = state.waiters > 0;
        drop(state);
        if waiting {
            self.changed.notify_all();
        }
    }

    /// Adds `entry`, waiting for room until `deadline` (the final pass at stop: what was
    /// sent before the signal, and the drop reports, are kept unless the sink is stuck);
    /// gives it back after.
    pub fn push_until(&self, entry: Entry, deadline: std::time::Instant) -> Result<(), Entry> {
        let weight = entry.weight();
        let mut state = self.lock();
        while !state.closed && !state.entries.is_empty() && state.bytes + weight > self.max_bytes {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return Err(entry);
            }
            state = State::wait(state, &self.changed, Some(left));
        }
        if state.closed {
            return Err(entry);
        }
        self.admit(state, entry, weight);
        Ok(())
    }

    /// Waits for entries and moves them all into `out`; false once the queue is closed
    /// and empty.
    pub fn pop_batch(&self, out: &mut Vec<Entry>) -> bool {
        let mut state = self.lock();
        while state.entries.is_empty() && !state.closed {
            state = State::wait(state, &self.changed, None);
        }
        if state.entries.is_empty() {
            return false;
        }
        out.extend(state.entries.drain(..));
        state.bytes = 0;
        let waiting = state.waiters > 0;
        drop(state);
        if waiting {
            self.changed.notify_all();
        }
        true
    }

    /// Whether no entry is waiting.
    pub fn is_empty(&self) -> bool {
        self.lock().entries.is_empty()
    }

    /// Entries waiting.
    pub fn len(&self) -> usize {
        self.lock().entries.len()
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

    #[test]
    fn a_push_waits_for_room_until_its_deadline() {
        use std::time::{Duration, Instant};
        let one = entry(100).weight();
        let q = std::sync::Arc::new(Queue::new(one));
        assert!(q.try_push(entry(100)).is_ok());
        // Nobody drains: refused once the deadline passes.
        let soon = Instant::now() + Duration::from_millis(20);
        assert!(q.push_until(entry(100), soon).is_err());
        // A consumer drains: the push gets its room.
        let consumer = {
            let q = q.clone();
            std::thread::spawn(move || {
                let mut out = Vec::new();
                q.pop_batch(&mut out);
                out.len()
            })
        };
        let later = Instant::now() + Duration::from_secs(60);
        assert!(q.push_until(entry(100), later).is_ok());
        assert_eq!(consumer.join().unwrap(), 1);
    }

    #[test]
    fn a_paced_chunk_may_go_up_to_twice_the_bound_and_no_further() {
        let one = entry(100).weight();
        let q = Queue::new(one * 2);
        for _ in 0..4 {
            assert!(q.push_within(entry(100), q.paced_limit()).is_ok());
        }
        assert!(q.push_within(entry(100), q.paced_limit()).is_err());
        assert!(q.try_push(entry(100)).is_err());
        assert!(q.is_high());
    }
}
