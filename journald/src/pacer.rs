//! Back-pressure on unit output streams, bounded in time. When the queue to the sink is
//! nearly full, the daemon stops reading stdout streams for a while: their lines wait in
//! the kernel's socket buffers (the unit blocks only once its own buffer is full) instead
//! of being dropped because the writer thread was briefly descheduled. The lines of a
//! chunk read just before the mark go into the queue's headroom (its paced limit). A sink stuck for
//! longer than `max_pause` no longer holds the streams: they are read again and what does
//! not fit is dropped and counted, so a slow or full disk blocks a unit for at most that
//! long. Datagram sources and the kernel log are never paused (their senders must not
//! wait). Time is an argument, so tests drive it.

/// The pausing rule.
#[derive(Debug)]
pub struct StreamPacer {
    max_pause_usec: u64,
    paused_since: Option<u64>,
    /// The pause ran out while the queue stayed full: read (and drop) until it drains.
    overflowing: bool,
    /// How many pauses ran out (for the exit line).
    gave_up: u64,
}

impl StreamPacer {
    /// `max_pause_usec` 0 never pauses (drop at once when the queue is full).
    pub fn new(max_pause_usec: u64) -> StreamPacer {
        StreamPacer {
            max_pause_usec,
            paused_since: None,
            overflowing: false,
            gave_up: 0,
        }
    }

    /// How many pauses ran out with the queue still full.
    pub fn gave_up(&self) -> u64 {
        self.gave_up
    }

    /// Whether a stream being read should stop as soon as the queue is high (false once
    /// a pause ran out: then reading goes on, and what does not fit is dropped).
    pub fn stops_when_high(&self) -> bool {
        self.max_pause_usec > 0 && !self.overflowing
    }

    /// Whether streams may be read at `now_usec`, given whether the queue is above its
    /// high-water mark.
    pub fn may_read(&mut self, queue_high: bool, now_usec: u64) -> bool {
        if !queue_high {
            self.paused_since = None;
            self.overflowing = false;
            return true;
        }
        if self.overflowing || self.max_pause_usec == 0 {
            return true;
        }
        match self.paused_since {
            None => {
                self.paused_since = Some(now_usec);
                false
            }
            Some(since) if now_usec.saturating_sub(since) >= self.max_pause_usec => {
                self.paused_since = None;
                self.overflowing = true;
                self.gave_up += 1;
                true
            }
            Some(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_while_high_then_gives_up_until_drained() {
        let mut p = StreamPacer::new(1_000);
        assert!(p.may_read(false, 0));
        assert!(!p.may_read(true, 10));
        assert!(!p.may_read(true, 500));
        // The writer caught up: read again, and a new pause starts afresh.
        assert!(p.may_read(false, 600));
        assert!(!p.may_read(true, 700));
        assert!(!p.may_read(true, 1_699));
        // Stuck for max_pause: streams are read (and dropped) until the queue drains.
        assert!(p.stops_when_high());
        assert!(p.may_read(true, 1_700));
        assert!(!p.stops_when_high());
        assert!(p.may_read(true, 50_000));
        assert!(p.may_read(false, 50_001));
        assert!(!p.may_read(true, 50_002));
    }

    #[test]
    fn zero_never_pauses() {
        let mut p = StreamPacer::new(0);
        assert!(!p.stops_when_high());
        assert!(p.may_read(true, 0));
        assert!(p.may_read(true, 1));
    }
}
