//! The real clock: `clock_settime` for a step, `adjtimex` (the kernel PLL, in nanosecond
//! mode) for a slew. The one `unsafe` of the crate is here.

use std::io;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::{Clock, MAX_SLEW};
use crate::ntp::sample::Seconds;

/// The system clock. Changing it needs `CAP_SYS_TIME`.
#[derive(Debug)]
pub struct Linux {
    start: Instant,
}

impl Default for Linux {
    fn default() -> Linux {
        Linux {
            start: Instant::now(),
        }
    }
}

impl Clock for Linux {
    fn realtime(&self) -> i64 {
        unix_nanos(SystemTime::now())
    }

    fn monotonic(&self) -> Duration {
        self.start.elapsed()
    }

    /// `clock_settime` to now + `by`, then a zero offset for the PLL.
    fn step(&self, by: Seconds) -> io::Result<()> {
        let target = self.realtime().checked_add(by.0).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{by} overflows the clock"),
            )
        })?;
        let spec = libc::timespec {
            tv_sec: target.div_euclid(1_000_000_000) as libc::time_t,
            tv_nsec: target.rem_euclid(1_000_000_000) as libc::c_long,
        };
        // SAFETY: `spec` is a valid, initialized timespec that outlives the call, which
        // only reads it.
        let rc = unsafe { libc::clock_settime(libc::CLOCK_REALTIME, &spec) };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        // What the PLL was still slewing belongs to the old time: drop it, and mark the
        // clock synchronized.
        self.slew(Seconds(0), 6, Seconds(0))
    }

    fn slew(&self, by: Seconds, poll_log2: u8, error: Seconds) -> io::Result<()> {
        let offset = by.0.clamp(-MAX_SLEW.0, MAX_SLEW.0);
        // SAFETY: `timex` is a plain C struct of integers (and padding) for which all
        // zeroes is a valid value.
        let mut tx: libc::timex = unsafe { std::mem::zeroed() };
        tx.modes = libc::ADJ_OFFSET
            | libc::ADJ_STATUS
            | libc::ADJ_NANO
            | libc::ADJ_TIMECONST
            | libc::ADJ_MAXERROR
            | libc::ADJ_ESTERROR;
        tx.offset = offset as libc::c_long;
        // PLL on, nanosecond offsets; STA_UNSYNC cleared: the kernel reports the clock
        // synchronized (and copies it to the RTC every 11 minutes where it can).
        tx.status = libc::STA_PLL | libc::STA_NANO;
        // As ntpd does with the kernel discipline: the time constant follows the poll
        // interval (64 s ↔ 2).
        tx.constant = libc::c_long::from(poll_log2.saturating_sub(4).min(10));
        let micros = |nanos: i64| (nanos / 1_000).clamp(0, 16_000_000) as libc::c_long;
        tx.esterror = micros(error.0);
        tx.maxerror = micros(error.0.saturating_mul(2).saturating_add(100_000_000));
        // SAFETY: `tx` is a valid, initialized timex owned by this frame; the kernel reads
        // the fields named by `modes` and writes the struct back.
        let rc = unsafe { libc::adjtimex(&mut tx) };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    fn sleep(&self, duration: Duration) {
        std::thread::sleep(duration);
    }
}

/// Nanoseconds since the Unix epoch (negative before it).
pub(super) fn unix_nanos(time: SystemTime) -> i64 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_nanos()).unwrap_or(i64::MAX),
        Err(before) => -i64::try_from(before.duration().as_nanos()).unwrap_or(i64::MAX),
    }
}
