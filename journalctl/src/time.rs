//! Timestamps as journalctl takes and prints them (systemd.time(7)): `--since`/`--until`
//! values (`2026-12-05 04:00[:00]`, `today`, `yesterday`, `now`, `-1h`, `+30min`,
//! `2 hours ago`, `@1764892800`), and the UTC renderings of the output formats. A Berth
//! node keeps UTC, so every time here is UTC.

/// µs since the epoch.
pub type Micros = u64;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Failed to parse timestamp: {0}")]
pub struct BadTime(pub String);

const DAY: u64 = 86_400_000_000;

/// Parses a `--since`/`--until` value relative to `now`.
pub fn parse(text: &str, now: Micros) -> Result<Micros, BadTime> {
    let bad = || BadTime(text.to_owned());
    let t = text.trim();
    let midnight = now - now % DAY;
    match t {
        "now" => return Ok(now),
        "today" => return Ok(midnight),
        "yesterday" => return Ok(midnight.saturating_sub(DAY)),
        "tomorrow" => return Ok(midnight + DAY),
        _ => {}
    }
    if let Some(secs) = t.strip_prefix('@') {
        let secs: f64 = secs.parse().map_err(|_| bad())?;
        return Ok((secs * 1e6) as u64);
    }
    if let Some(span) = t.strip_prefix('-') {
        return Ok(now.saturating_sub(span_micros(span).ok_or_else(bad)?));
    }
    if let Some(span) = t.strip_prefix('+') {
        return Ok(now + span_micros(span).ok_or_else(bad)?);
    }
    if let Some(span) = t.strip_suffix(" ago") {
        return Ok(now.saturating_sub(span_micros(span).ok_or_else(bad)?));
    }
    absolute(t).ok_or_else(bad)
}

/// A time span: `1h`, `30min`, `2 hours`, `1h 30min`, `5` (seconds).
pub fn span_micros(text: &str) -> Option<u64> {
    let mut total = 0u64;
    let mut rest = text.trim();
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(rest.len());
        let number: f64 = rest[..digits].parse().ok()?;
        rest = rest[digits..].trim_start();
        let unit_len = rest
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = rest[unit_len..].trim_start();
        let scale: f64 = match unit {
            "us" | "usec" | "µs" => 1.0,
            "ms" | "msec" => 1e3,
            "" | "s" | "sec" | "second" | "seconds" => 1e6,
            "m" | "min" | "minute" | "minutes" => 60e6,
            "h" | "hr" | "hour" | "hours" => 3600e6,
            "d" | "day" | "days" => 86_400e6,
            "w" | "week" | "weeks" => 604_800e6,
            "M" | "month" | "months" => 2_629_800e6,
            "y" | "year" | "years" => 31_557_600e6,
            _ => return None,
        };
        total = total.checked_add((number * scale) as u64)?;
    }
    Some(total)
}

/// `YYYY-MM-DD`, `YYYY-MM-DD HH:MM`, `YYYY-MM-DD HH:MM:SS`, also with `T`, in UTC.
fn absolute(t: &str) -> Option<Micros> {
    let (date, clock) = match t.split_once([' ', 'T']) {
        Some((d, c)) => (d, Some(c.trim_end_matches(" UTC").trim_end_matches('Z'))),
        None => (t, None),
    };
    let mut d = date.split('-');
    let y: i64 = d.next()?.parse().ok()?;
    let m: u32 = d.next()?.parse().ok()?;
    let day: u32 = d.next()?.parse().ok()?;
    if d.next().is_some() || !(1..=12).contains(&m) || !(1..=31).contains(&day) {
        return None;
    }
    let mut secs = 0u64;
    if let Some(c) = clock {
        let parts: Vec<&str> = c.split(':').collect();
        if !(2..=3).contains(&parts.len()) {
            return None;
        }
        let h: u64 = parts[0].parse().ok().filter(|h| *h < 24)?;
        let min: u64 = parts[1].parse().ok().filter(|m| *m < 60)?;
        let s: f64 = parts.get(2).map_or(Some(0.0), |s| s.parse().ok())?;
        if !(0.0..61.0).contains(&s) {
            return None;
        }
        secs = h * 3600 + min * 60;
        let days = u64::try_from(days_from_civil(y, m, day)).ok()?;
        return Some((days * 86_400 + secs) * 1_000_000 + (s * 1e6) as u64);
    }
    let days = u64::try_from(days_from_civil(y, m, day)).ok()?;
    secs += days * 86_400;
    Some(secs * 1_000_000)
}

/// Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date and clock of `micros`: (year, month, day, hour, minute, second, µs,
/// weekday 0 = Sunday).
pub fn civil(micros: Micros) -> (i64, u32, u32, u32, u32, u32, u32, u32) {
    let secs = micros / 1_000_000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    let weekday = (days + 4).rem_euclid(7) as u32;
    (
        y,
        m,
        d,
        (rem / 3600) as u32,
        (rem / 60 % 60) as u32,
        (rem % 60) as u32,
        (micros % 1_000_000) as u32,
        weekday,
    )
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];
const WEEKDAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];

/// `Dec 05 04:19:18` (short), with `.123456` when `precise`.
pub fn short(micros: Micros, precise: bool) -> String {
    let (_, m, d, h, min, s, us, _) = civil(micros);
    let month = MONTHS[(m as usize).saturating_sub(1) % 12];
    if precise {
        format!("{month} {d:02} {h:02}:{min:02}:{s:02}.{us:06}")
    } else {
        format!("{month} {d:02} {h:02}:{min:02}:{s:02}")
    }
}

/// `2026-12-05T04:19:18+0000` (short-iso).
pub fn iso(micros: Micros) -> String {
    let (y, m, d, h, min, s, _, _) = civil(micros);
    format!("{y:04}-{m:02}-{d:02}T{h:02}:{min:02}:{s:02}+0000")
}

/// `Sat 2026-12-05 04:19:18 UTC`, with `.123456` before the zone when `precise`.
pub fn long(micros: Micros, precise: bool) -> String {
    let (y, m, d, h, min, s, us, wd) = civil(micros);
    let day = WEEKDAYS[wd as usize % 7];
    if precise {
        format!("{day} {y:04}-{m:02}-{d:02} {h:02}:{min:02}:{s:02}.{us:06} UTC")
    } else {
        format!("{day} {y:04}-{m:02}-{d:02} {h:02}:{min:02}:{s:02} UTC")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Micros = 1_796_444_358_000_000; // 2026-12-05 04:19:18 UTC

    #[test]
    fn renderings() {
        assert_eq!(long(NOW, false), "Sat 2026-12-05 04:19:18 UTC");
        assert_eq!(short(NOW + 5, true), "Dec 05 04:19:18.000005");
        assert_eq!(iso(NOW), "2026-12-05T04:19:18+0000");
        assert_eq!(long(0, false), "Thu 1970-01-01 00:00:00 UTC");
    }

    #[test]
    fn since_values() {
        assert_eq!(parse("now", NOW), Ok(NOW));
        assert_eq!(parse("-1h", NOW), Ok(NOW - 3_600_000_000));
        assert_eq!(parse("2 hours ago", NOW), Ok(NOW - 7_200_000_000));
        assert_eq!(parse("+1h 30min", NOW), Ok(NOW + 5_400_000_000));
        assert_eq!(
            long(parse("today", NOW).expect("today"), false),
            "Sat 2026-12-05 00:00:00 UTC"
        );
        assert_eq!(
            long(parse("yesterday", NOW).expect("y"), false),
            "Fri 2026-12-04 00:00:00 UTC"
        );
        assert_eq!(parse("2026-12-05 04:19:18", NOW), Ok(NOW));
        assert_eq!(parse("2026-12-05 04:19", NOW), Ok(NOW - 18_000_000));
        assert_eq!(
            long(parse("2000-02-29", NOW).expect("leap"), false),
            "Tue 2000-02-29 00:00:00 UTC"
        );
        assert_eq!(parse("@1796444358", NOW), Ok(NOW));
        for bad in [
            "",
            "soon",
            "2026-13-01",
            "2026-12-05 25:00",
            "-1 fortnight",
            "-",
        ] {
            assert!(parse(bad, NOW).is_err(), "{bad}");
        }
    }

    proptest::proptest! {
        #[test]
        fn parsing_never_panics(s in ".{0,40}") {
            let _ = parse(&s, NOW);
        }

        #[test]
        fn absolute_round_trips(secs in 0u64..4_000_000_000) {
            let micros = secs * 1_000_000;
            let (y, m, d, h, min, s, _, _) = civil(micros);
            let text = format!("{y:04}-{m:02}-{d:02} {h:02}:{min:02}:{s:02}");
            proptest::prop_assert_eq!(parse(&text, 0), Ok(micros));
        }
    }
}
