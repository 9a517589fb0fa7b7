//! `-f`: after the first output, the entries that arrive later, filtered the same way.
//! Each round reads the journal newest first down to the newest entry seen (by realtime,
//! then sequence number) and writes what is newer, oldest first: a round holds only what
//! arrived since the last one.

use std::io::Write;

use crate::args::Options;
use crate::entry::Entry;
use crate::{filter_for, output, Direction, Source};

/// The newest entry seen so far.
pub struct Seen(Option<(u64, u64)>);

impl Seen {
    pub fn after(last: &Option<(u64, u64)>) -> Seen {
        Seen(*last)
    }
}

/// Writes what arrived since `seen` to `out`; `seen` moves on. A journal that cannot be
/// read this round is tried again the next.
pub fn new_entries(
    options: &Options,
    source: &mut dyn Source,
    seen: &mut Seen,
    this_boot: Option<&str>,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0);
    let Ok(list) = source.boots() else {
        return Ok(());
    };
    let Ok(filter) = filter_for(options, &list, now, this_boot) else {
        return Ok(());
    };
    let Ok(stream) = source.entries(Direction::Backward) else {
        return Ok(());
    };
    let mut arrived: Vec<Entry> = Vec::new();
    let mut newest = seen.0;
    for e in stream {
        let key = (e.realtime, e.seqnum);
        if seen.0.is_some_and(|s| key <= s) {
            break;
        }
        newest = Some(newest.map_or(key, |n| n.max(key)));
        if filter.accepts(&e) {
            arrived.push(e);
        }
    }
    seen.0 = newest;
    for e in arrived.iter().rev() {
        out.write_all(&output::render(e, options.format))?;
    }
    Ok(())
}
