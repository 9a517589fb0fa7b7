//! Showing entries as they are read: each entry of the [`Source`]'s stream is filtered and
//! written at once. What stays in memory is what the command shape needs and no more:
//!
//! - plain: nothing but the entry at hand;
//! - `-r`: the stream runs newest first, nothing kept;
//! - `-n N`: the stream runs newest first and stops after N shown entries, which are kept
//!   (at most N) and written oldest first; with `-r` they are written as they come.
//!
//! So `-n 10` reads ten entries (plus those the filter rejects), not the whole journal.

use std::io::Write;

use crate::args::Options;
use crate::entry::Entry;
use crate::filter::Filter;
use crate::{index_prefilter, output, Direction, Source};

/// What a show read and wrote.
#[derive(Debug, Default)]
pub struct Shown {
    /// Entries written.
    pub count: usize,
    /// The newest entry read, as (realtime, seqnum), for `-f`.
    pub last_key: Option<(u64, u64)>,
}

/// Why a show stopped.
#[derive(Debug)]
pub enum ShowError {
    /// The journal could not be read (the message says why).
    Source(String),
    /// The output could not be written.
    Write(std::io::Error),
}

impl From<std::io::Error> for ShowError {
    fn from(e: std::io::Error) -> Self {
        ShowError::Write(e)
    }
}

/// Writes entries in `options`' format, with `-- Boot ID --` between boots where
/// journalctl prints it.
struct Printer<'a> {
    out: &'a mut dyn Write,
    format: output::Format,
    separated: bool,
    previous_boot: Option<String>,
    count: usize,
}

impl Printer<'_> {
    fn print(&mut self, e: &Entry) -> std::io::Result<()> {
        if self.separated
            && self
                .previous_boot
                .as_deref()
                .is_some_and(|b| b != e.boot_id)
        {
            writeln!(self.out, "-- Boot {} --", e.boot_id)?;
        }
        if self.previous_boot.as_deref() != Some(&e.boot_id) {
            self.previous_boot = Some(e.boot_id.clone());
        }
        self.count += 1;
        self.out.write_all(&output::render(e, self.format))
    }
}

/// Shows the entries `filter` accepts, as `options` say, writing to `out`.
pub fn show(
    options: &Options,
    filter: &Filter,
    source: &mut dyn Source,
    out: &mut dyn Write,
) -> Result<Shown, ShowError> {
    let direction = if options.reverse || options.lines.is_some() {
        Direction::Backward
    } else {
        Direction::Forward
    };
    let stream = match index_prefilter(options) {
        Some(any) => source.entries_with_any(&any, direction),
        None => source.entries(direction),
    }
    .map_err(ShowError::Source)?;
    let mut printer = Printer {
        out,
        format: options.format,
        separated: output::separates_boots(options.format) && !options.quiet,
        previous_boot: None,
        count: 0,
    };
    let mut shown = Shown::default();
    // `-n N` without `-r`: the last N, gathered newest first, written oldest first.
    let mut kept: Vec<Entry> = Vec::new();
    for e in stream {
        let key = (e.realtime, e.seqnum);
        shown.last_key = Some(shown.last_key.map_or(key, |k| k.max(key)));
        if options
            .lines
            .is_some_and(|n| printer.count + kept.len() >= n)
        {
            break;
        }
        if !filter.accepts(&e) {
            continue;
        }
        if options.lines.is_some() && !options.reverse {
            kept.push(e);
        } else {
            printer.print(&e)?;
        }
    }
    for e in kept.iter().rev() {
        printer.print(e)?;
    }
    if printer.count == 0
        && !options.quiet
        && matches!(
            options.format,
            output::Format::Short
                | output::Format::ShortIso
                | output::Format::ShortPrecise
                | output::Format::ShortMonotonic
        )
    {
        printer.out.write_all(b"-- No entries --\n")?;
    }
    shown.count = printer.count;
    Ok(shown)
}
