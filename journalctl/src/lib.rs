//! `journalctl` for Berth nodes: systemd's command shapes ([`args`]) over journal files,
//! with the filters ([`filter`]) and output formats ([`output`]) of systemd 252 and its
//! exit statuses. The files are read through [`Source`], which the binary implements with
//! `berth-journal`'s reader ([`files`], [`merge`]); everything here is tested without
//! files.
//!
//! Entries stream: a [`Source`] yields them one at a time, oldest or newest first, and
//! [`show`] filters and writes each as it comes, keeping only what a command shape needs
//! (`-n N`: N entries; `--list-boots`: a record per boot), so memory does not grow with
//! the journal.

pub mod args;
pub mod entry;
pub mod files;
pub mod filter;
pub mod follow;
pub mod merge;
pub mod output;
pub mod show;
pub mod time;

use std::io::Write;

pub use berth_journal::reader::Direction;

use args::{Action, BootArg, Options};
use entry::Entry;
use filter::{Filter, Matches};

/// Entries one at a time.
pub type Stream<'a> = Box<dyn Iterator<Item = Entry> + 'a>;

/// Where the entries come from.
pub trait Source {
    /// Every readable entry, oldest first ([`Direction::Forward`]) or newest first, read
    /// as the stream is drawn. Damage ends a file's part silently, as systemd's journalctl
    /// does.
    fn entries(&mut self, direction: Direction) -> Result<Stream<'_>, String>;
    /// At least the entries that have one of the `(FIELD, value)` pairs of `any` (more is
    /// fine: the filter decides), in `direction`. Files answer through their field index
    /// instead of reading every entry.
    fn entries_with_any(
        &mut self,
        any: &[(String, Vec<u8>)],
        direction: Direction,
    ) -> Result<Stream<'_>, String> {
        let _ = any;
        self.entries(direction)
    }
    /// The boots of the whole journal, oldest first (for `-b` and `--list-boots`).
    fn boots(&mut self) -> Result<Vec<Boot>, String> {
        Ok(boots(self.entries(Direction::Forward)?))
    }
    /// Bytes the journal files take on disk.
    fn disk_usage(&mut self) -> Result<u64, String>;
    /// Deletes archived files until the journal is at most `size` bytes and none older
    /// than `max_age` µs remains; returns a line per deleted file.
    fn vacuum(&mut self, size: Option<u64>, max_age: Option<u64>) -> Result<Vec<String>, String>;
}

/// A run's exit status and what it says on stderr (stdout goes to the writer given).
#[derive(Debug, Default)]
pub struct Outcome {
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

/// A failed write of the output: a closed pipe (`journalctl | head`) ends the run quietly.
fn write_failed(e: &std::io::Error) -> Outcome {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        Outcome::default()
    } else {
        fail(format!("Failed to write output: {e}"))
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
pub(crate) fn index_prefilter(options: &Options) -> Option<Vec<(String, Vec<u8>)>> {
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

/// The boots of `entries`, oldest first (by their first entry): one record per boot is
/// kept, not the entries.
pub fn boots(entries: impl IntoIterator<Item = Entry>) -> Vec<Boot> {
    let mut list: Vec<Boot> = Vec::new();
    for e in entries {
        match list.iter_mut().find(|b| b.id == e.boot_id) {
            Some(b) => {
                b.first = b.first.min(e.realtime);
                b.last = b.last.max(e.realtime);
            }
            None => list.push(Boot {
                id: e.boot_id,
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

/// Runs `options` against `source`, writing what is shown to `out` as it is read; `now`
/// is the wall clock in µs and `this_boot` the running machine's boot ID (`None` off the
/// machine).
pub fn run(
    options: &Options,
    source: &mut dyn Source,
    now: u64,
    this_boot: Option<&str>,
    out: &mut dyn Write,
) -> Outcome {
    match &options.action {
        Action::Help | Action::Version => return Outcome::default(),
        Action::DiskUsage => {
            return match source.disk_usage() {
                Ok(n) => match writeln!(
                    out,
                    "Archived and active journals take up {} in the file system.",
                    human(n)
                ) {
                    Ok(()) => Outcome::default(),
                    Err(e) => write_failed(&e),
                },
                Err(e) => fail(e),
            }
        }
        Action::Vacuum { size, time } => {
            let empty = !options.quiet && source.boots().is_ok_and(|b| b.is_empty());
            return match source.vacuum(*size, *time) {
                Ok(lines) => Outcome {
                    stderr: if empty {
                        "No journal files were found.\n".into()
                    } else {
                        lines.iter().map(|l| format!("{l}\n")).collect()
                    },
                    ..Outcome::default()
                },
                Err(e) => fail(e),
            };
        }
        Action::Show | Action::ListBoots => {}
    }
    let list = match source.boots() {
        Ok(l) => l,
        Err(e) => return fail(e),
    };
    if options.action == Action::ListBoots {
        return match list_boots(&list, out) {
            Ok(()) if list.is_empty() && !options.quiet => Outcome {
                stderr: "No journal files were found.\n".into(),
                ..Outcome::default()
            },
            Ok(()) => Outcome::default(),
            Err(e) => write_failed(&e),
        };
    }
    let f = match filter_for(options, &list, now, this_boot) {
        Ok(f) => f,
        Err(e) => return fail(e),
    };
    let shown = match show::show(options, &f, source, out) {
        Ok(s) => s,
        Err(show::ShowError::Source(e)) => return fail(e),
        Err(show::ShowError::Write(e)) => return write_failed(&e),
    };
    let mut stderr = String::new();
    if !options.quiet && list.is_empty() {
        stderr.push_str("No journal files were found.\n");
    }
    Outcome {
        stderr,
        // systemd 252: a --grep that matched nothing fails.
        code: u8::from(options.grep.is_some() && shown.count == 0),
        last_key: shown.last_key,
    }
}

/// `--list-boots`: a line per boot, offsets counting back from the last.
fn list_boots(list: &[Boot], out: &mut dyn Write) -> std::io::Result<()> {
    if list.is_empty() {
        return Ok(());
    }
    let last = list.len() as i64 - 1;
    writeln!(out, "IDX {:32} {:27} LAST ENTRY", "BOOT ID", "FIRST ENTRY")?;
    for (i, b) in list.iter().enumerate() {
        writeln!(
            out,
            "{:>3} {} {} {}",
            i as i64 - last,
            b.id,
            time::long(b.first, false),
            time::long(b.last, false)
        )?;
    }
    Ok(())
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
