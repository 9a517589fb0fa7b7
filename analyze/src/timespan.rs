//! systemd's `format_timespan()` (src/basic/time-util.c) at millisecond accuracy, the
//! way `systemd-analyze` prints every duration: `1min 2.345s`, `2.345s`, `123ms`.

const USEC_PER_MSEC: u64 = 1_000;
const USEC_PER_SEC: u64 = 1_000_000;
const USEC_PER_MINUTE: u64 = 60 * USEC_PER_SEC;

/// The units systemd uses, largest first (a month is 30.44 days, a year 365.25).
const TABLE: [(&str, u64); 9] = [
    ("y", 31_557_600 * USEC_PER_SEC),
    ("month", 2_629_800 * USEC_PER_SEC),
    ("w", 7 * 24 * 3600 * USEC_PER_SEC),
    ("d", 24 * 3600 * USEC_PER_SEC),
    ("h", 3600 * USEC_PER_SEC),
    ("min", USEC_PER_MINUTE),
    ("s", USEC_PER_SEC),
    ("ms", USEC_PER_MSEC),
    ("us", 1),
];

/// `t` µs at millisecond accuracy.
pub fn format(mut t: u64) -> String {
    const ACCURACY: u64 = USEC_PER_MSEC;
    if t == 0 {
        return "0".into();
    }
    let mut out = String::new();
    for (suffix, unit) in TABLE {
        if t == 0 || (t < ACCURACY && !out.is_empty()) {
            break;
        }
        if t < unit {
            continue;
        }
        let sep = if out.is_empty() { "" } else { " " };
        let (a, mut b) = (t / unit, t % unit);
        // Below a minute a remainder is shown after a dot, to the accuracy.
        let mut digits: i32 = 0;
        if t < USEC_PER_MINUTE && b > 0 {
            let mut cc = unit;
            while cc > 1 {
                digits += 1;
                cc /= 10;
            }
            let mut cc = ACCURACY;
            while cc > 1 {
                b /= 10;
                digits -= 1;
                cc /= 10;
            }
        }
        if digits > 0 {
            let width = digits as usize;
            out.push_str(&format!("{sep}{a}.{b:0width$}{suffix}"));
            t = 0;
        } else {
            out.push_str(&format!("{sep}{a}{suffix}"));
            t %= unit;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values as systemd-analyze prints them.
    #[test]
    fn like_systemd() {
        assert_eq!(format(0), "0");
        assert_eq!(format(500), "500us");
        assert_eq!(format(123_456), "123ms");
        assert_eq!(format(1_200_000), "1.200s");
        assert_eq!(format(2_345_678), "2.345s");
        assert_eq!(format(65_947_000), "1min 5.947s");
        assert_eq!(format(67_439_123), "1min 7.439s");
        assert_eq!(format(60_000_000), "1min");
        assert_eq!(format(3_600_000_000 + 1_500), "1h 1ms");
    }
}
