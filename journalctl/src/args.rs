//! journalctl's command line, the options people type (journalctl(1) of systemd 252).

use crate::output::Format;

/// `-b` as given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BootArg {
    /// `-b`, `-b 0`, `-b -N`, `-b N` (N > 0 counts from the first boot).
    Offset(i64),
    /// `-b ID` or `-b ID±N`.
    Id(String, i64),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Show,
    ListBoots,
    DiskUsage,
    Vacuum {
        size: Option<u64>,
        time: Option<u64>,
    },
    Help,
    Version,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    pub action: Action,
    pub units: Vec<String>,
    pub identifiers: Vec<String>,
    pub kernel: bool,
    pub boot: Option<BootArg>,
    pub follow: bool,
    pub lines: Option<usize>,
    pub reverse: bool,
    pub since: Option<String>,
    pub until: Option<String>,
    pub priority: Option<String>,
    pub grep: Option<String>,
    pub format: Format,
    pub directory: Option<String>,
    pub files: Vec<String>,
    pub matches: Vec<String>,
    pub quiet: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            action: Action::Show,
            units: Vec::new(),
            identifiers: Vec::new(),
            kernel: false,
            boot: None,
            follow: false,
            lines: None,
            reverse: false,
            since: None,
            until: None,
            priority: None,
            grep: None,
            format: Format::Short,
            directory: None,
            files: Vec::new(),
            matches: Vec::new(),
            quiet: false,
        }
    }
}

/// A 32-hex-digit ID (dashes allowed, as `uuidgen` prints them), lower-cased.
pub fn boot_id(text: &str) -> Option<String> {
    let hex: String = text.chars().filter(|c| *c != '-').collect();
    (hex.len() == 32 && hex.chars().all(|c| c.is_ascii_hexdigit())).then(|| hex.to_lowercase())
}

fn parse_boot(text: &str) -> Option<BootArg> {
    if let Ok(n) = text.parse::<i64>() {
        return Some(BootArg::Offset(n));
    }
    let (id, offset) = match text.get(32..).filter(|r| r.starts_with(['+', '-'])) {
        Some(rest) => (&text[..32], rest.parse().ok()?),
        None => (text, 0),
    };
    Some(BootArg::Id(boot_id(id)?, offset))
}

/// `--vacuum-size=` values: `500M`, `1.5G`, `4096` (bytes), as systemd's `parse_size`
/// takes them (a decimal fraction allowed, no sign).
pub fn size(text: &str) -> Option<u64> {
    let t = text.trim();
    let (num, mult) = match t.char_indices().last()? {
        (i, 'K') => (&t[..i], 1u64 << 10),
        (i, 'M') => (&t[..i], 1 << 20),
        (i, 'G') => (&t[..i], 1 << 30),
        (i, 'T') => (&t[..i], 1 << 40),
        (i, 'B') => (&t[..i], 1),
        _ => (t, 1),
    };
    let (whole, fraction) = num.split_once('.').unwrap_or((num, ""));
    if whole.is_empty() || !(whole.bytes().chain(fraction.bytes())).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let bytes = whole.parse::<u64>().ok()?.checked_mul(mult)?;
    let tenths = fraction
        .bytes()
        .take(6)
        .rev()
        .fold(0f64, |acc, d| (acc + f64::from(d - b'0')) / 10.0);
    bytes.checked_add((tenths * mult as f64) as u64)
}

/// Why a command line was refused: getopt's own complaints (which systemd prefixes with
/// the program's name) or an option's value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArgError {
    #[error("{0}")]
    Getopt(String),
    #[error("{0}")]
    Value(String),
}

/// Parses `argv` (without the program name).
pub fn parse(argv: &[String]) -> Result<Options, ArgError> {
    let mut o = Options::default();
    let mut i = 0;
    // Options whose argument is optional take the next word only when it fits.
    let optional_next = |i: usize, fits: &dyn Fn(&str) -> bool| -> Option<String> {
        argv.get(i + 1).filter(|w| fits(w)).cloned()
    };
    while i < argv.len() {
        let arg = &argv[i];
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_owned(), Some(v.to_owned())),
            _ => (arg.clone(), None),
        };
        // Short options with an attached value: -n5, -uUNIT, -pERR, -oFORMAT.
        let (flag, inline) = match (flag.as_str(), &inline) {
            (f, None) if f.len() > 2 && f.starts_with('-') && !f.starts_with("--") => {
                (f[..2].to_owned(), Some(f[2..].to_owned()))
            }
            _ => (flag, inline),
        };
        let mut value = |name: &str| -> Result<String, ArgError> {
            if let Some(v) = &inline {
                return Ok(v.clone());
            }
            i += 1;
            argv.get(i)
                .cloned()
                .ok_or_else(|| ArgError::Getopt(format!("option '{name}' requires an argument")))
        };
        match flag.as_str() {
            "-u" | "--unit" => o.units.push(value(&flag)?),
            "-t" | "--identifier" => o.identifiers.push(value(&flag)?),
            "-k" | "--dmesg" => o.kernel = true,
            "-b" | "--boot" => {
                let text = match &inline {
                    Some(v) => Some(v.clone()),
                    None => {
                        let next = optional_next(i, &|w: &str| parse_boot(w).is_some());
                        if next.is_some() {
                            i += 1;
                        }
                        next
                    }
                };
                o.boot = Some(match text {
                    Some(t) => parse_boot(&t).ok_or_else(|| {
                        ArgError::Value(format!("Failed to parse boot descriptor '{t}'"))
                    })?,
                    None => BootArg::Offset(0),
                });
            }
            "--list-boots" => o.action = Action::ListBoots,
            "-f" | "--follow" => o.follow = true,
            "-n" | "--lines" => {
                let text = match &inline {
                    Some(v) => Some(v.clone()),
                    None => {
                        let next =
                            optional_next(i, &|w: &str| w.parse::<usize>().is_ok() || w == "all");
                        if next.is_some() {
                            i += 1;
                        }
                        next
                    }
                };
                o.lines =
                    match text.as_deref() {
                        None => Some(10),
                        Some("all") => None,
                        Some(t) => Some(t.trim_start_matches('+').parse().map_err(|_| {
                            ArgError::Value(format!("Failed to parse lines '{t}'"))
                        })?),
                    };
            }
            "-e" | "--pager-end" => o.lines = o.lines.or(Some(1000)),
            "-r" | "--reverse" => o.reverse = true,
            "-S" | "--since" => o.since = Some(value(&flag)?),
            "-U" | "--until" => o.until = Some(value(&flag)?),
            "-p" | "--priority" => o.priority = Some(value(&flag)?),
            "-g" | "--grep" => o.grep = Some(value(&flag)?),
            "-o" | "--output" => {
                let v = value(&flag)?;
                o.format = Format::parse(&v)
                    .ok_or_else(|| ArgError::Value(format!("Unknown output format '{v}'.")))?;
            }
            "-D" | "--directory" => o.directory = Some(value(&flag)?),
            "--file" => o.files.push(value(&flag)?),
            "--disk-usage" => o.action = Action::DiskUsage,
            "--vacuum-size" => {
                let v = value(&flag)?;
                let bytes = size(&v)
                    .ok_or_else(|| ArgError::Value(format!("Failed to parse vacuum size: {v}")))?;
                o.action = match o.action {
                    Action::Vacuum { time, .. } => Action::Vacuum {
                        size: Some(bytes),
                        time,
                    },
                    _ => Action::Vacuum {
                        size: Some(bytes),
                        time: None,
                    },
                };
            }
            "--vacuum-time" => {
                let v = value(&flag)?;
                let span = crate::time::span_micros(&v)
                    .ok_or_else(|| ArgError::Value(format!("Failed to parse vacuum time: {v}")))?;
                o.action = match o.action {
                    Action::Vacuum { size, .. } => Action::Vacuum {
                        size,
                        time: Some(span),
                    },
                    _ => Action::Vacuum {
                        size: None,
                        time: Some(span),
                    },
                };
            }
            "-q" | "--quiet" => o.quiet = true,
            "-h" | "--help" => o.action = Action::Help,
            "--version" => o.action = Action::Version,
            // No pager, full width, no colour: accepted for the habits people have.
            "--no-pager" | "-a" | "--all" | "-l" | "--full" | "-x" | "--catalog" | "--no-full"
            | "--no-hostname" | "--utc" | "-m" | "--merge" | "--system" => {}
            f if f.starts_with('-') && f != "-" => {
                return Err(ArgError::Getopt(format!("unrecognized option '{f}'")))
            }
            _ => o.matches.push(arg.clone()),
        }
        i += 1;
    }
    if o.directory.is_some() && !o.files.is_empty() {
        return Err(ArgError::Value(
            "Please specify at most one of -D/--directory=, --file=, -M/--machine=, --root=, --image=."
                .into(),
        ));
    }
    if o.kernel && o.boot.is_none() {
        o.boot = Some(BootArg::Offset(0));
    }
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<Options, ArgError> {
        parse(&s.split_whitespace().map(str::to_owned).collect::<Vec<_>>())
    }

    #[test]
    fn shapes_people_type() {
        let o = p("-u kubelet -u berth-* -b -1 -n 20 -o json --no-pager").expect("parse");
        assert_eq!(o.units, vec!["kubelet", "berth-*"]);
        assert_eq!(o.boot, Some(BootArg::Offset(-1)));
        assert_eq!(o.lines, Some(20));
        assert_eq!(o.format, Format::Json);
        let o = p("-b -n").expect("parse");
        assert_eq!((o.boot, o.lines), (Some(BootArg::Offset(0)), Some(10)));
        let o = p("-k").expect("parse");
        assert_eq!(o.boot, Some(BootArg::Offset(0)));
        let o = p("-n5 -pwarning..err _PID=1 + SYSLOG_IDENTIFIER=x").expect("parse");
        assert_eq!(o.lines, Some(5));
        assert_eq!(o.priority.as_deref(), Some("warning..err"));
        assert_eq!(o.matches, vec!["_PID=1", "+", "SYSLOG_IDENTIFIER=x"]);
        let o = p("-b 0123456789abcdef0123456789ABCDEF-1").expect("parse");
        assert_eq!(
            o.boot,
            Some(BootArg::Id("0123456789abcdef0123456789abcdef".into(), -1))
        );
        let o = p("--vacuum-size=500M --vacuum-time 2d").expect("parse");
        assert_eq!(
            o.action,
            Action::Vacuum {
                size: Some(500 << 20),
                time: Some(2 * 86_400_000_000)
            }
        );
        assert!(p("-o yaml").is_err());
        assert!(p("--frob").is_err());
        assert!(p("-u").is_err());
        assert_eq!(size("1.5M"), Some(3 << 19));
        assert_eq!(size("0"), Some(0));
        assert_eq!(size("-1"), None);
        assert_eq!(size("lots"), None);
    }

    proptest::proptest! {
        #[test]
        fn never_panics(words in proptest::collection::vec("[-a-z0-9=.+]{0,8}", 0..6)) {
            let _ = parse(&words);
        }
    }
}
