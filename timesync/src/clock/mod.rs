//! The one boundary between the client and the system clock.
//!
//! [`Clock`] reads the clock and changes it: a step (`clock_settime`) for the one big
//! correction at boot, a slew through the kernel's PLL (`adjtimex`) afterwards. [`Linux`]
//! is the real clock; [`RecordingClock`] reads the real clock, shifted by a chosen skew,
//! and records what would have been done without doing it: the tests use it to fake a
//! clock a year behind, and `berth-timesync --dry-run` to measure without touching the
//! host's clock.

mod fake;
mod linux;

use std::io;
use std::time::Duration;

pub use fake::{ClockCall, RecordingClock};
pub use linux::Linux;

use crate::ntp::sample::Seconds;

/// Everything the client does with time.
pub trait Clock {
    /// `CLOCK_REALTIME`: nanoseconds since the Unix epoch.
    fn realtime(&self) -> i64;
    /// `CLOCK_MONOTONIC`: never jumps, to time an exchange and to sleep by.
    fn monotonic(&self) -> Duration;
    /// Moves the clock by `by` at once.
    fn step(&self, by: Seconds) -> io::Result<()>;
    /// Hands `by` (at most ±0.5 s, the kernel's limit) to the kernel's PLL, which slews
    /// the clock towards it and learns the frequency error; `poll_log2` is the current
    /// poll interval (log2 seconds) from which the PLL's time constant follows. Also
    /// marks the clock synchronized, with `error` as its estimated error.
    fn slew(&self, by: Seconds, poll_log2: u8, error: Seconds) -> io::Result<()>;
    fn sleep(&self, duration: Duration);
}

/// The kernel's limit on an offset handed to its PLL (`MAXPHASE`, 0.5 s).
pub const MAX_SLEW: Seconds = Seconds(500_000_000);
