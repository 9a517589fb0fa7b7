//! `journalctl` for Berth nodes: systemd's command shapes ([`args`]) over journal files,
//! with the filters ([`filter`]) and output formats ([`output`]) of systemd 252 and its
//! exit statuses (0, or 1 with a message). The files are read through [`Source`], which
//! the binary implements with `berth-journal`'s reader; everything here is tested
//! without files.

pub mod args;
pub mod entry;
pub mod files;
pub mod filter;
pub mod follow;
pub mod output;
pub mod time;

use args::{Action, BootArg, Options};
use entry::Entry;
use filter::{Filter, Matches};

/// Where the entries come from.
pub trait Source {
    /// Every readable entry, oldest first; damage is reported through `warnings`.
    fn entries(&mut self, warnings: &mut Vec<String>) -> Result<Vec<Entry>, String>;
    /// At least the entries that have one of the `(FIELD, value)` pairs of `any` (more is
    /// fine: the filter decides), oldest first. Files answer through their field index
    /// instead of reading every entry.
    fn entries_with_any(
        &mut self,
        any: &[(String, Vec<u8>)],
        warnings: &mut Vec<String>,
    ) -> Result<Vec<Entry>, String> {
        let _ = any;
        self.entries(warnings)
    }
    /// The boots of the whole journal, oldest first (for `-b` and `--list-boots`).
    fn boots(&mut self, warnings: &mut Vec<String>) -> Result<Vec<Boot>, String> {
        Ok(boots(&self.entries(warnings)?))
    }
    /// Bytes the journal files take on disk.
    fn disk_usage(&mut self) -> Result<u64, String>;
    /// Deletes archived files until the journal is at most `size` bytes and none older
    /// than `max_age` µs remains; returns a line per deleted file.
    fn vacuum(&mut self, size: Option<u64>, max_age: Option<u64>) -> Result<Vec<String>, String>;
}

/// What a run printed and its exit status.
#[derive(Debug, Default)]
pub struct Outcome {
    pub stdout: Vec<u8>,
    pub stderr: String,
    pub code: u8,
    /// The newest entry read (shown or not), as (realtime, seqnum), for `-f`.
    pub last_key: Option<(u64, u64)>,
}

fn fail(message: String) -> Outcome {
    Outcome {
        stderr: format!("{message}\n"),
        code: 1,
        ..Outcome::default()
    }
}

/// The help text.
pub const HELP: &str = "journalctl [OPTIONS...] [MATCHES...]

Query the journal of a Berth node (systemd 252's command shapes).

  -u --unit=UNIT           Show logs of the unit (globs; repeatable)
  -t --identifier=ID       Show entries with this SYSLOG_IDENTIFIER (globs)
  -k --dmesg               Show the kernel's messages of the current boot
  -b --boot[=ID|N|-N]      Show one boot (0 or empty: this one, -1: the one before)
     --list-boots          List the boots in the journal
  -f --follow              Show new entries as they arrive
  -n --lines[=N]           Show the last N entries (10 without N)
  -r --reverse             Newest first
  -S --since=TIME          From TIME (YYYY-MM-DD [HH:MM[:SS]], today, yesterday, -1h, ...)
  -U --until=TIME          Up to TIME
  -p --priority=RANGE      emerg..debug or 0..7, one level meaning 0 up to it
  -g --grep=PATTERN        MESSAGE matches the regular expression
  -o --output=FORMAT       short, short-iso, short-precise, short-monotonic, cat, json,
                           json-pretty, export, verbose
  -D --directory=DIR       Read the journal files under DIR
     --file=PATH           Read this journal file (repeatable)
     --disk-usage          Show the space the journal files take
     --vacuum-size=BYTES   Delete archived files until the journal takes at most BYTES
     --vacuum-time=TIME    Delete archived files older than TIME
  -q --quiet               Do not say when there are no entries
     --no-pager            Accepted (there is no pager)
  FIELD=VALUE              Matches; the same field ORs, different fields AND, + ORs groups
";

/// The `(FIELD, value)` pairs of which a shown entry must have one, when `-u` names
/// units without globs (a unit's own lines and PID 1's lines about it): the files' index
/// finds those entries without reading the others. `None`: every entry is read.
fn index_prefilter(options: &Options) -> Option<Vec<(String, Vec<u8>)>> {
    if options.units.is_empty() || options.units.iter().any(|u| u.contains(['*', '?', '['])) {
        return None;
    }
    let mut any = Vec::new();
    for unit in &options.units {
        let unit = filter::unit_name(unit);
        for field in [
            "_SYSTEMD_UNIT",
            "UNIT",
            "OBJECT_SYSTEMD_UNIT",
            "COREDUMP_UNIT",
        ] {
            any.push((field.to_owned(), unit.as_bytes().to_vec()));
        }
    }
    Some(any)
}

/// The filter `options` describe, with `-b` resolved against the journal's boots.
pub fn filter_for(
    options: &Options,
    boots: &[Boot],
    now: u64,
    this_boot: Option<&str>,
) -> Result<Filter, String> {
    let mut f = Filter {
        units: options.units.iter().map(|u| filter::unit_name(u)).collect(),
        identifiers: options.identifiers.clone(),
        kernel: options.kernel,
        ..Filter::default()
    };
    f.matches = Matches::parse(&options.matches).map_err(|e| e.to_string())?;
    if let Some(p) = &options.priority {
        f.priority = Some(filter::priority_range(p).map_err(|e| e.to_string())?);
    }
    if let Some(g) = &options.grep {
        f.set_grep(g).map_err(|e| e.to_string())?;
    }
    if let Some(s) = &options.since {
        f.since = Some(time::parse(s, now).map_err(|e| e.to_string())?);
    }
    if let Some(u) = &options.until {
        f.until = Some(time::parse(u, now).map_err(|e| e.to_string())?);
    }
    if let Some(b) = &options.boot {
        f.boot = Some(resolve_boot(boots, b, this_boot)?);
    }
    Ok(f)
}

/// One boot in the journal: its ID and first and last entry times.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Boot {
    pub id: String,
    pub first: u64,
    pub last: u64,
}

/// The boots of `entries`, oldest first (by their first entry).
pub fn boots(entries: &[Entry]) -> Vec<Boot> {
    let mut list: Vec<Boot> = Vec::new();
    for e in entries {
        match list.iter_mut().find(|b| b.id == e.boot_id) {
            Some(b) => {
                b.first = b.first.min(e.realtime);
                b.last = b.last.max(e.realtime);
            }
            None => list.push(Boot {
                id: e.boot_id.clone(),
                first: e.realtime,
                last: e.realtime,
            }),
        }
    }
    list.sort_by_key(|b| b.first);
    list
}

/// The boot `-b` names: offsets count back from the last boot (0, -1, ...) or forward
/// from the first (1, 2, ...); `0` is this machine's boot when the journal has it.
pub fn resolve_boot(
    list: &[Boot],
    arg: &BootArg,
    this_boot: Option<&str>,
) -> Result<String, String> {
    let not_found = |what: String| {
        format!(
            "Data from the specified boot ({what}) is not available: No such boot ID in journal"
        )
    };
    let at = |index: i64, what: String| -> Result<String, String> {
        usize::try_from(index)
            .ok()
            .and_then(|i| list.get(i))
            .map(|b| b.id.clone())
            .ok_or_else(|| not_found(what))
    };
    match arg {
        BootArg::Offset(0) => match this_boot.filter(|id| list.iter().any(|b| b.id == *id)) {
            Some(id) => Ok(id.to_owned()),
            None => at(list.len() as i64 - 1, "0".into()),
        },
        BootArg::Offset(n) if *n > 0 => at(n - 1, format!("{n}")),
        BootArg::Offset(n) => {
            let last = match this_boot.and_then(|id| list.iter().position(|b| b.id == id)) {
                Some(i) => i as i64,
                None => list.len() as i64 - 1,
            };
            at(last + n, format!("{n}"))
        }
        BootArg::Id(id, offset) => {
            let i = list
                .iter()
                .position(|b| &b.id == id)
                .ok_or_else(|| not_found(id.clone()))?;
            at(i as i64 + offset, format!("{id}{offset:+}"))
        }
    }
}

/// Runs `options` against `source`; `now` is the wall clock in µs and `this_boot` the
/// running machine's boot ID (`None` off the machine).
pub fn run(
    options: &Options,
    source: &mut dyn Source,
    now: u64,
    this_boot: Option<&str>,
) -> Outcome {
    match &options.action {
        Action::Help | Action::Version => return Outcome::default(),
        Action::DiskUsage => {
            return match source.disk_usage() {
                Ok(n) => Outcome {
                    stdout: format!(
                        "Archived and active journals take up {} in the file system.\n",
                        human(n)
                    )
                    .into_bytes(),
                    ..Outcome::default()
                },
                Err(e) => fail(e),
            }
        }
        Action::Vacuum { size, time } => {
            return match source.vacuum(*size, *time) {
                Ok(lines) => Outcome {
                    stderr: lines.iter().map(|l| format!("{l}\n")).collect(),
                    ..Outcome::default()
                },
                Err(e) => fail(e),
            }
        }
        Action::Show | Action::ListBoots => {}
    }
    let mut warnings = Vec::new();
    let list = match source.boots(&mut warnings) {
        Ok(l) => l,
        Err(e) => return fail(e),
    };
    let prefilter = index_prefilter(options);
    let entries = match &prefilter {
        Some(any) => source.entries_with_any(any, &mut warnings),
        None => source.entries(&mut warnings),
    };
    let entries = match entries {
        Ok(e) => e,
        Err(e) => return fail(e),
    };
    // Damage (the tail of a file a power loss cut) ends that file's part silently, as
    // systemd's journalctl does; the entries before it are shown.
    drop(warnings);
    let mut stderr = String::new();
    if options.action == Action::ListBoots {
        let last = list.len() as i64 - 1;
        let mut out = format!(
            "IDX {:32} {:27} {}\n",
            "BOOT ID", "FIRST ENTRY", "LAST ENTRY"
        );
        for (i, b) in list.iter().enumerate() {
            out.push_str(&format!(
                "{:>3} {} {} {}\n",
                i as i64 - last,
                b.id,
                time::long(b.first, false),
                time::long(b.last, false)
            ));
        }
        return Outcome {
            stdout: out.into_bytes(),
            stderr,
            ..Outcome::default()
        };
    }
    let f = match filter_for(options, &list, now, this_boot) {
        Ok(f) => f,
        Err(e) => return fail(e),
    };
    let mut shown: Vec<&Entry> = entries.iter().filter(|e| f.accepts(e)).collect();
    if let Some(n) = options.lines {
        let skip = shown.len().saturating_sub(n);
        shown.drain(..skip);
    }
    if options.reverse {
        shown.reverse();
    }
    let mut stdout = Vec::new();
    if shown.is_empty()
        && !options.quiet
        && matches!(
            options.format,
            output::Format::Short
                | output::Format::ShortIso
                | output::Format::ShortPrecise
                | output::Format::ShortMonotonic
        )
    {
        stdout.extend_from_slice(b"-- No entries --\n");
    }
    let separated = output::separates_boots(options.format) && !options.quiet;
    let mut previous_boot: Option<&str> = None;
    for e in shown {
        // journalctl marks where one boot's entries end and the next one's begin.
        if separated && previous_boot.is_some_and(|b| b != e.boot_id) {
            stdout.extend_from_slice(format!("-- Boot {} --\n", e.boot_id).as_bytes());
        }
        previous_boot = Some(&e.boot_id);
        stdout.extend(output::render(e, options.format));
    }
    if !options.quiet && entries.is_empty() && !stderr.contains("No journal files") {
        stderr.push_str("No journal files were found.\n");
    }
    Outcome {
        stdout,
        stderr,
        code: 0,
        last_key: entries.iter().map(|e| (e.realtime, e.seqnum)).max(),
    }
}

/// `--disk-usage`'s sizes: `8.0M`, `1.2G`.
fn human(n: u64) -> String {
    for (suffix, factor) in [("G", 1u64 << 30), ("M", 1 << 20), ("K", 1 << 10)] {
        if n >= factor {
            let tenths = n * 10 / factor;
            return format!("{}.{}{suffix}", tenths / 10, tenths % 10);
        }
    }
    format!("{n}B")
}

#[cfg(test)]
mod tests;
