//! A recording [`Clock`]: the real clock shifted by a skew, with every step and slew
//! recorded instead of made. A recorded step moves this clock (so a loop that stepped
//! once sees a small offset the next time, as on a real machine). In tests sleeping is
//! virtual (recorded, and added to the monotonic clock only, since the servers' real
//! time does not move with it) so a test runs a daemon's polls at once; for
//! `--dry-run` ([`RecordingClock::sleeping`]) it is real.

use std::cell::{Cell, RefCell};
use std::io;
use std::time::{Duration, Instant, SystemTime};

use super::linux::unix_nanos;
use super::Clock;
use crate::ntp::sample::Seconds;

/// One recorded effect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClockCall {
    Step(Seconds),
    Slew(Seconds),
    Sleep(Duration),
}

#[derive(Debug)]
pub struct RecordingClock {
    start: Instant,
    skew: Cell<i64>,
    slept: Cell<Duration>,
    calls: RefCell<Vec<ClockCall>>,
    /// When set, `step` fails with this errno (as without `CAP_SYS_TIME`).
    pub fail_step: Cell<Option<i32>>,
    real_sleep: bool,
}

impl RecordingClock {
    /// A clock `skew` off the real one (negative: behind).
    pub fn new(skew: Seconds) -> RecordingClock {
        RecordingClock {
            start: Instant::now(),
            skew: Cell::new(skew.0),
            slept: Cell::new(Duration::ZERO),
            calls: RefCell::default(),
            fail_step: Cell::new(None),
            real_sleep: false,
        }
    }

    /// A clock `skew` off the real one that really sleeps (for `--dry-run`, where a
    /// daemon must not spin).
    pub fn sleeping(skew: Seconds) -> RecordingClock {
        RecordingClock {
            real_sleep: true,
            ..RecordingClock::new(skew)
        }
    }

    pub fn calls(&self) -> Vec<ClockCall> {
        self.calls.borrow().clone()
    }

    /// The steps and slews, without the sleeps.
    pub fn adjustments(&self) -> Vec<ClockCall> {
        self.calls()
            .into_iter()
            .filter(|c| !matches!(c, ClockCall::Sleep(_)))
            .collect()
    }
}

impl Clock for RecordingClock {
    fn realtime(&self) -> i64 {
        unix_nanos(SystemTime::now()).saturating_add(self.skew.get())
    }

    fn monotonic(&self) -> Duration {
        self.start.elapsed() + self.slept.get()
    }

    fn step(&self, by: Seconds) -> io::Result<()> {
        if let Some(errno) = self.fail_step.get() {
            return Err(io::Error::from_raw_os_error(errno));
        }
        self.calls.borrow_mut().push(ClockCall::Step(by));
        self.skew.set(self.skew.get().saturating_add(by.0));
        Ok(())
    }

    fn slew(&self, by: Seconds, _poll_log2: u8, _error: Seconds) -> io::Result<()> {
        self.calls.borrow_mut().push(ClockCall::Slew(by));
        Ok(())
    }

    fn sleep(&self, duration: Duration) {
        self.calls.borrow_mut().push(ClockCall::Sleep(duration));
        if self.real_sleep {
            std::thread::sleep(duration);
        } else {
            self.slept.set(self.slept.get() + duration);
        }
    }
}
