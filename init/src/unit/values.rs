//! Typed values of unit file keys, with systemd's spellings: booleans (`yes`, `on`,
//! `true`, `1`...), time spans (`5min 20s`, `1h`, `500ms`, `infinity`; a bare number is
//! seconds), byte sizes with 1024-based suffixes and percentages, signals by name or
//! number, octal modes, resource limits (`soft:hard`, `infinity`) and working directories
//! (`-/path`, `~`).

use std::time::Duration;

use thiserror::Error;

/// Why a value was refused; the caller adds the file, line and key.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{0}")]
pub struct ValueError(pub String);

fn err<T>(msg: impl Into<String>) -> Result<T, ValueError> {
    Err(ValueError(msg.into()))
}

pub fn boolean(v: &str) -> Result<bool, ValueError> {
    match v.to_ascii_lowercase().as_str() {
        "1" | "yes" | "y" | "true" | "t" | "on" => Ok(true),
        "0" | "no" | "n" | "false" | "f" | "off" => Ok(false),
        _ => err(format!("'{v}' is not a boolean")),
    }
}

/// A time span; `None` is infinity.
pub fn timespan(v: &str) -> Result<Option<Duration>, ValueError> {
    let v = v.trim();
    if v == "infinity" {
        return Ok(None);
    }
    if v.is_empty() {
        return err("empty time span");
    }
    let mut total: u128 = 0;
    let mut rest = v;
    while !rest.is_empty() {
        rest = rest.trim_start();
        let digits = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(rest.len());
        let number = &rest[..digits];
        if number.is_empty() {
            return err(format!("'{v}' is not a time span"));
        }
        rest = rest[digits..].trim_start();
        let unit_len = rest
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let nanos_per: u128 = match unit {
            "" | "s" | "sec" | "second" | "seconds" => 1_000_000_000,
            "us" | "usec" | "µs" => 1_000,
            "ms" | "msec" => 1_000_000,
            "ns" | "nsec" => 1,
            "m" | "min" | "minute" | "minutes" => 60_000_000_000,
            "h" | "hr" | "hour" | "hours" => 3_600_000_000_000,
            "d" | "day" | "days" => 86_400_000_000_000,
            "w" | "week" | "weeks" => 604_800_000_000_000,
            "M" | "month" | "months" => 2_629_800_000_000_000,
            "y" | "year" | "years" => 31_557_600_000_000_000,
            _ => return err(format!("'{unit}' in '{v}' is not a time unit")),
        };
        let (whole, frac) = number.split_once('.').unwrap_or((number, ""));
        let whole: u128 = if whole.is_empty() {
            0
        } else {
            whole
                .parse()
                .map_err(|_| ValueError(format!("'{v}' is not a time span")))?
        };
        let mut part = whole
            .checked_mul(nanos_per)
            .ok_or_else(|| ValueError(format!("'{v}' is too large")))?;
        let mut scale = nanos_per;
        for d in frac.bytes() {
            if !d.is_ascii_digit() {
                return err(format!("'{v}' is not a time span"));
            }
            scale /= 10;
            part += u128::from(d - b'0') * scale;
        }
        total = total
            .checked_add(part)
            .ok_or_else(|| ValueError(format!("'{v}' is too large")))?;
    }
    let secs = u64::try_from(total / 1_000_000_000)
        .map_err(|_| ValueError(format!("'{v}' is too large")))?;
    Ok(Some(Duration::new(secs, (total % 1_000_000_000) as u32)))
}

/// A size in bytes: `512`, `64K`, `1.5G` (1024-based); `None` is `infinity`.
pub fn bytes(v: &str) -> Result<Option<u64>, ValueError> {
    let v = v.trim();
    if v == "infinity" {
        return Ok(None);
    }
    let split = v
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(v.len());
    let (number, suffix) = v.split_at(split);
    let factor: u64 = match suffix {
        "" | "B" => 1,
        "K" => 1 << 10,
        "M" => 1 << 20,
        "G" => 1 << 30,
        "T" => 1 << 40,
        "P" => 1 << 50,
        "E" => 1 << 60,
        _ => return err(format!("'{v}' is not a size")),
    };
    let value: f64 = number
        .parse()
        .map_err(|_| ValueError(format!("'{v}' is not a size")))?;
    let total = value * factor as f64;
    if !total.is_finite() || total < 0.0 || total >= u64::MAX as f64 {
        return err(format!("'{v}' is out of range"));
    }
    Ok(Some(total as u64))
}

/// A limit on memory or tasks: absolute, a percentage of the whole, or none.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Limit {
    Infinity,
    Absolute(u64),
    /// Per mille of the machine's total (`50%` is 500).
    Permille(u32),
}

pub fn limit(v: &str) -> Result<Limit, ValueError> {
    if let Some(p) = v.strip_suffix('%') {
        let value: f64 = p
            .parse()
            .map_err(|_| ValueError(format!("'{v}' is not a percentage")))?;
        if !(0.0..=100.0).contains(&value) {
            return err(format!("'{v}' is not between 0% and 100%"));
        }
        return Ok(Limit::Permille((value * 10.0).round() as u32));
    }
    Ok(bytes(v)?.map_or(Limit::Infinity, Limit::Absolute))
}

/// A plain count such as TasksMax= (`infinity`, a number, or a percentage).
pub fn count_limit(v: &str) -> Result<Limit, ValueError> {
    if v.ends_with('%') || v == "infinity" {
        return limit(v);
    }
    v.parse::<u64>()
        .map(Limit::Absolute)
        .map_err(|_| ValueError(format!("'{v}' is not a number")))
}

/// Signal names systemd accepts (with or without `SIG`), or numbers 1..=64.
pub fn signal(v: &str) -> Result<i32, ValueError> {
    if let Ok(n) = v.parse::<i32>() {
        return if (1..=64).contains(&n) {
            Ok(n)
        } else {
            err(format!("'{v}' is not a signal"))
        };
    }
    let name = v.strip_prefix("SIG").unwrap_or(v);
    let n = match name {
        "HUP" => 1,
        "INT" => 2,
        "QUIT" => 3,
        "ILL" => 4,
        "TRAP" => 5,
        "ABRT" => 6,
        "BUS" => 7,
        "FPE" => 8,
        "KILL" => 9,
        "USR1" => 10,
        "SEGV" => 11,
        "USR2" => 12,
        "PIPE" => 13,
        "ALRM" => 14,
        "TERM" => 15,
        "STKFLT" => 16,
        "CHLD" => 17,
        "CONT" => 18,
        "STOP" => 19,
        "TSTP" => 20,
        "TTIN" => 21,
        "TTOU" => 22,
        "URG" => 23,
        "XCPU" => 24,
        "XFSZ" => 25,
        "VTALRM" => 26,
        "PROF" => 27,
        "WINCH" => 28,
        "IO" | "POLL" => 29,
        "PWR" => 30,
        "SYS" => 31,
        _ => {
            let rt = name
                .strip_prefix("RTMIN")
                .map(|r| (34, r))
                .or_else(|| name.strip_prefix("RTMAX").map(|r| (64, r)));
            match rt {
                Some((base, "")) => base,
                Some((base, off)) => {
                    let off: i32 = off
                        .parse()
                        .map_err(|_| ValueError(format!("'{v}' is not a signal")))?;
                    let n = base + off;
                    if !(34..=64).contains(&n) {
                        return err(format!("'{v}' is not a signal"));
                    }
                    n
                }
                None => return err(format!("'{v}' is not a signal")),
            }
        }
    };
    Ok(n)
}

/// An octal file mode (`0755`, `022`).
pub fn mode(v: &str) -> Result<u32, ValueError> {
    match u32::from_str_radix(v, 8) {
        Ok(m) if m <= 0o7777 && !v.is_empty() => Ok(m),
        _ => err(format!("'{v}' is not an octal mode")),
    }
}

/// A resource limit (`LimitNOFILE=`): `soft:hard`, one value for both, `infinity`.
/// `None` stands for infinity (RLIM_INFINITY).
pub fn rlimit(v: &str, time: bool) -> Result<(Option<u64>, Option<u64>), ValueError> {
    let one = |s: &str| -> Result<Option<u64>, ValueError> {
        if s == "infinity" {
            return Ok(None);
        }
        if time {
            return Ok(timespan(s)?.map(|d| d.as_secs()));
        }
        bytes(s)
    };
    match v.split_once(':') {
        Some((soft, hard)) => {
            let (soft, hard) = (one(soft)?, one(hard)?);
            let bigger = match (soft, hard) {
                (None, Some(_)) => true,
                (Some(s), Some(h)) => s > h,
                _ => false,
            };
            if bigger {
                return err(format!("soft limit above hard limit in '{v}'"));
            }
            Ok((soft, hard))
        }
        None => {
            let both = one(v)?;
            Ok((both, both))
        }
    }
}

/// `WorkingDirectory=` (systemd.exec(5)): a folder, or `~` for the home of `User=`; a
/// leading `-` makes a folder that cannot be entered no error (the command then runs in
/// PID 1's `/`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkingDirectory {
    /// `None`: the user's home (`~`).
    pub path: Option<String>,
    pub missing_ok: bool,
}

impl WorkingDirectory {
    /// The value (specifiers expanded); empty resets it (`None`).
    pub fn parse(value: &str) -> Result<Option<WorkingDirectory>, &'static str> {
        if value.is_empty() {
            return Ok(None);
        }
        let (rest, missing_ok) = match value.strip_prefix('-') {
            Some(r) => (r, true),
            None => (value, false),
        };
        let path = match rest {
            "~" => None,
            p if p.starts_with('/') => Some(p.to_owned()),
            _ => return Err("not an absolute path or ~"),
        };
        Ok(Some(WorkingDirectory { path, missing_ok }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn timespans() {
        let s = |v| timespan(v).expect("valid");
        assert_eq!(s("90"), Some(Duration::from_secs(90)));
        assert_eq!(s("5min 20s"), Some(Duration::from_secs(320)));
        assert_eq!(s("1h30min"), Some(Duration::from_secs(5400)));
        assert_eq!(s("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(s("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(s("infinity"), None);
        assert!(timespan("5 parsecs").is_err());
        assert!(timespan("").is_err());
        assert!(timespan("ms").is_err());
    }

    #[test]
    fn sizes_limits_signals_modes() {
        assert_eq!(bytes("64K"), Ok(Some(65536)));
        assert_eq!(bytes("1.5G"), Ok(Some(1610612736)));
        assert_eq!(limit("50%"), Ok(Limit::Permille(500)));
        assert_eq!(limit("infinity"), Ok(Limit::Infinity));
        assert!(limit("150%").is_err());
        assert_eq!(count_limit("4915"), Ok(Limit::Absolute(4915)));
        assert_eq!(signal("SIGTERM"), Ok(15));
        assert_eq!(signal("KILL"), Ok(9));
        assert_eq!(signal("SIGRTMIN+2"), Ok(36));
        assert!(signal("SIGNOPE").is_err());
        assert_eq!(mode("0755"), Ok(0o755));
        assert!(mode("0855").is_err());
        assert_eq!(rlimit("infinity", false), Ok((None, None)));
        assert_eq!(rlimit("1024:4096", false), Ok((Some(1024), Some(4096))));
        assert!(rlimit("4096:1024", false).is_err());
        assert_eq!(boolean("On"), Ok(true));
        assert!(boolean("maybe").is_err());
    }

    #[test]
    fn working_directories() {
        let w = |v| WorkingDirectory::parse(v).expect("valid");
        let dir = |path: Option<&str>, missing_ok| {
            Some(WorkingDirectory {
                path: path.map(str::to_owned),
                missing_ok,
            })
        };
        assert_eq!(w("/srv/a"), dir(Some("/srv/a"), false));
        assert_eq!(w("-/srv/a"), dir(Some("/srv/a"), true));
        assert_eq!(w("~"), dir(None, false));
        assert_eq!(w("-~"), dir(None, true));
        assert_eq!(w(""), None, "empty resets");
        assert!(WorkingDirectory::parse("srv").is_err());
        assert!(WorkingDirectory::parse("~/x").is_err());
        assert!(WorkingDirectory::parse("-").is_err());
    }

    proptest! {
        #[test]
        fn never_panics(s in "(?s).{0,40}") {
            let _ = (timespan(&s), bytes(&s), limit(&s), signal(&s), mode(&s), rlimit(&s, true), boolean(&s));
        }

        #[test]
        fn a_working_directory_is_absolute_or_home(s in "-?[~/a-z]{0,12}") {
            if let Ok(Some(w)) = WorkingDirectory::parse(&s) {
                prop_assert!(w.path.as_deref().is_none_or(|p| p.starts_with('/')));
                prop_assert_eq!(w.missing_ok, s.starts_with('-'));
            }
        }
    }
}
