//! `journald.conf`: the `[Journal]` keys the collector honours, in systemd's syntax
//! (sections, `KEY=VALUE`, `#`/`;` comments, time spans like `30s` or `1min 30s`, sizes
//! like `48K`). Keys the collector does not use are accepted and ignored, as journald
//! ignores unknown keys, so one file serves both; bad values are errors with the line.

use crate::stream::DEFAULT_LINE_MAX;
use std::path::Path;

/// The collector's settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// `RateLimitIntervalSec=`, µs; 0 turns rate limiting off.
    pub rate_limit_interval_usec: u64,
    /// `RateLimitBurst=`; 0 turns rate limiting off.
    pub rate_limit_burst: u64,
    /// `LineMax=`, bytes (at least 79, as journald).
    pub line_max: usize,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            rate_limit_interval_usec: 30 * 1_000_000,
            rate_limit_burst: 10_000,
            line_max: DEFAULT_LINE_MAX,
        }
    }
}

/// A config file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading {path}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}: {key}={value:?}: {reason}")]
    Value {
        path: String,
        line: usize,
        key: String,
        value: String,
        reason: &'static str,
    },
}

impl Config {
    /// Reads `path`; a missing file means the defaults.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        match std::fs::read_to_string(path) {
            Ok(text) => Config::parse(&text, &path.display().to_string()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Config::default()),
            Err(source) => Err(ConfigError::Read {
                path: path.display().to_string(),
                source,
            }),
        }
    }

    /// Parses the text of a config file named `path` (for messages).
    pub fn parse(text: &str, path: &str) -> Result<Config, ConfigError> {
        let mut config = Config::default();
        let mut in_journal = false;
        for (index, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
                continue;
            }
            if line.starts_with('[') {
                in_journal = line == "[Journal]";
                continue;
            }
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            if !in_journal {
                continue;
            }
            let (key, value) = (key.trim(), value.trim());
            let bad = |reason| ConfigError::Value {
                path: path.to_string(),
                line: index + 1,
                key: key.to_string(),
                value: value.to_string(),
                reason,
            };
            match key {
                "RateLimitIntervalSec" | "RateLimitInterval" => {
                    config.rate_limit_interval_usec =
                        parse_timespan_usec(value).ok_or_else(|| bad("not a time span"))?;
                }
                "RateLimitBurst" => {
                    config.rate_limit_burst =
                        value.parse().map_err(|_| bad("not a whole number"))?;
                }
                "LineMax" => {
                    let bytes = parse_size(value).ok_or_else(|| bad("not a size"))?;
                    config.line_max = usize::try_from(bytes).unwrap_or(usize::MAX).max(79);
                }
                _ => {}
            }
        }
        Ok(config)
    }
}

/// systemd's time span: numbers with units (`us`, `ms`, `s`, `min`, `h`, `d`, `w`, and
/// their long forms), summed, spaces allowed; a bare number is seconds.
pub fn parse_timespan_usec(text: &str) -> Option<u64> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    if text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse::<u64>().ok()?.checked_mul(1_000_000);
    }
    let mut total: u64 = 0;
    let mut rest = text;
    while !rest.is_empty() {
        rest = rest.trim_start();
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let number: u64 = rest[..digits].parse().ok()?;
        rest = rest[digits..].trim_start();
        let unit_len = rest.bytes().take_while(|b| b.is_ascii_alphabetic()).count();
        let factor: u64 = match &rest[..unit_len] {
            "us" | "usec" => 1,
            "ms" | "msec" => 1_000,
            "" | "s" | "sec" | "second" | "seconds" => 1_000_000,
            "m" | "min" | "minute" | "minutes" => 60_000_000,
            "h" | "hr" | "hour" | "hours" => 3_600_000_000,
            "d" | "day" | "days" => 86_400_000_000,
            "w" | "week" | "weeks" => 604_800_000_000,
            _ => return None,
        };
        total = total.checked_add(number.checked_mul(factor)?)?;
        rest = &rest[unit_len..];
    }
    Some(total)
}

/// systemd's size: a number with an optional `K`, `M`, `G` (1024-based) suffix.
pub fn parse_size(text: &str) -> Option<u64> {
    let text = text.trim();
    let (number, factor) = match text.as_bytes().last()? {
        b'K' => (&text[..text.len() - 1], 1u64 << 10),
        b'M' => (&text[..text.len() - 1], 1 << 20),
        b'G' => (&text[..text.len() - 1], 1 << 30),
        _ => (text, 1),
    };
    number.trim().parse::<u64>().ok()?.checked_mul(factor)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn journal_section_keys() {
        let text = "# comment\n[Journal]\nStorage=auto\nRateLimitIntervalSec=1min 30s\n\
                    RateLimitBurst=50\nLineMax=4K\n[Other]\nRateLimitBurst=7\n";
        let c = Config::parse(text, "j.conf").unwrap();
        assert_eq!(c.rate_limit_interval_usec, 90_000_000);
        assert_eq!(c.rate_limit_burst, 50);
        assert_eq!(c.line_max, 4096);
    }

    #[test]
    fn bad_values_name_the_line() {
        let err = Config::parse("[Journal]\n\nRateLimitBurst=lots\n", "j.conf").unwrap_err();
        assert_eq!(
            err.to_string(),
            "j.conf:3: RateLimitBurst=\"lots\": not a whole number"
        );
        assert!(Config::parse("[Journal]\nRateLimitIntervalSec=5 parsecs\n", "j").is_err());
    }

    #[test]
    fn timespans() {
        assert_eq!(parse_timespan_usec("30"), Some(30_000_000));
        assert_eq!(parse_timespan_usec("30s"), Some(30_000_000));
        assert_eq!(parse_timespan_usec("0"), Some(0));
        assert_eq!(parse_timespan_usec("2h 1ms"), Some(7_200_001_000));
        assert_eq!(parse_timespan_usec("5 min"), Some(300_000_000));
        assert_eq!(parse_timespan_usec("x"), None);
        assert_eq!(parse_timespan_usec(""), None);
    }

    proptest! {
        #[test]
        fn never_panics(text in "\\PC{0,200}") {
            let _ = Config::parse(&text, "p");
            let _ = parse_timespan_usec(&text);
            let _ = parse_size(&text);
        }
    }
}
