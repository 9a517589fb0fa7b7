//! Per-unit rate limiting, journald's rule: within a window of `interval` starting at a
//! unit's first message, at most `burst` messages pass; the rest are counted, and the
//! first message after the window reports how many were suppressed. Time is an argument
//! (µs of CLOCK_MONOTONIC), so tests drive the clock.

use std::collections::HashMap;

/// What to do with one message.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Let it through; `suppressed` messages of this unit were dropped in the window
    /// that just ended (report them first).
    Pass { suppressed: u64 },
    /// Drop it (counted).
    Drop,
}

#[derive(Debug)]
struct Window {
    begin: u64,
    passed: u64,
    suppressed: u64,
}

/// The limiter: one window per unit.
#[derive(Debug)]
pub struct RateLimiter {
    interval_usec: u64,
    burst: u64,
    windows: HashMap<String, Window>,
}

/// Units idle for this many intervals are forgotten, to bound the map.
const FORGET_AFTER_INTERVALS: u64 = 4;

impl RateLimiter {
    /// `interval_usec` or `burst` 0 turns limiting off.
    pub fn new(interval_usec: u64, burst: u64) -> RateLimiter {
        RateLimiter {
            interval_usec,
            burst,
            windows: HashMap::new(),
        }
    }

    /// Judges one message of `unit` at time `now_usec`.
    pub fn check(&mut self, unit: &str, now_usec: u64) -> Verdict {
        if self.interval_usec == 0 || self.burst == 0 {
            return Verdict::Pass { suppressed: 0 };
        }
        if self.windows.len() > 1024 {
            let horizon = self.interval_usec.saturating_mul(FORGET_AFTER_INTERVALS);
            self.windows
                .retain(|_, w| w.suppressed > 0 || now_usec.saturating_sub(w.begin) < horizon);
        }
        let window = match self.windows.get_mut(unit) {
            Some(window) => window,
            None => self.windows.entry(unit.to_string()).or_insert(Window {
                begin: now_usec,
                passed: 0,
                suppressed: 0,
            }),
        };
        let mut suppressed = 0;
        if now_usec.saturating_sub(window.begin) >= self.interval_usec {
            suppressed = window.suppressed;
            *window = Window {
                begin: now_usec,
                passed: 0,
                suppressed: 0,
            };
        }
        if window.passed < self.burst {
            window.passed += 1;
            Verdict::Pass { suppressed }
        } else {
            window.suppressed += 1;
            Verdict::Drop
        }
    }

    /// Takes the counts of messages suppressed in open windows (at shutdown, so that
    /// they are reported rather than lost), as `(unit, count)`.
    pub fn take_suppressed(&mut self) -> Vec<(String, u64)> {
        let mut out: Vec<(String, u64)> = self
            .windows
            .iter_mut()
            .filter(|(_, w)| w.suppressed > 0)
            .map(|(unit, w)| (unit.clone(), std::mem::take(&mut w.suppressed)))
            .collect();
        out.sort();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn burst_then_drop_then_report_after_the_window() {
        let mut rl = RateLimiter::new(1_000, 3);
        for _ in 0..3 {
            assert_eq!(rl.check("a.service", 10), Verdict::Pass { suppressed: 0 });
        }
        for t in 11..16 {
            assert_eq!(rl.check("a.service", t), Verdict::Drop);
        }
        // Another unit has its own window.
        assert_eq!(rl.check("b.service", 500), Verdict::Pass { suppressed: 0 });
        assert_eq!(rl.check("a.service", 1_009), Verdict::Drop);
        assert_eq!(
            rl.check("a.service", 1_010),
            Verdict::Pass { suppressed: 6 }
        );
        assert_eq!(
            rl.check("a.service", 1_011),
            Verdict::Pass { suppressed: 0 }
        );
    }

    #[test]
    fn zero_turns_it_off_and_shutdown_takes_counts() {
        let mut off = RateLimiter::new(0, 3);
        for _ in 0..10 {
            assert_eq!(off.check("a", 1), Verdict::Pass { suppressed: 0 });
        }
        let mut rl = RateLimiter::new(1_000, 1);
        rl.check("a", 1);
        rl.check("a", 2);
        rl.check("a", 3);
        assert_eq!(rl.take_suppressed(), vec![("a".to_string(), 2)]);
        assert!(rl.take_suppressed().is_empty());
    }

    proptest! {
        #[test]
        fn passes_never_exceed_burst_per_window(burst in 1u64..20, times in proptest::collection::vec(0u64..50, 1..200)) {
            let mut rl = RateLimiter::new(100, burst);
            let mut now = 0;
            let (mut passed, mut dropped, mut reported) = (0u64, 0u64, 0u64);
            for step in times {
                now += step;
                match rl.check("u", now) {
                    Verdict::Pass { suppressed } => { passed += 1; reported += suppressed; }
                    Verdict::Drop => dropped += 1,
                }
            }
            let pending: u64 = rl.take_suppressed().iter().map(|(_, n)| n).sum();
            prop_assert_eq!(reported + pending, dropped);
            prop_assert!(passed >= burst.min(passed + dropped));
        }
    }
}
