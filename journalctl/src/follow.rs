//! `-f`: after the first output, the entries that arrive later, filtered the same way.
//! Each round reads the journal again and prints what is newer than the newest entry seen
//! (by realtime, then sequence number); simple and bounded by the journal's size, which
//! the size budget bounds.

use crate::args::Options;
use crate::{filter_for, output, Source};

/// The newest entry seen so far.
pub struct Seen(Option<(u64, u64)>);

impl Seen {
    pub fn after(last: &Option<(u64, u64)>) -> Seen {
        Seen(*last)
    }
}

/// What arrived since `seen`, rendered; `seen` moves on.
pub fn new_entries(
    options: &Options,
    source: &mut dyn Source,
    seen: &mut Seen,
    this_boot: Option<&str>,
) -> Vec<u8> {
    let mut warnings = Vec::new();
    let Ok(entries) = source.entries(&mut warnings) else {
        return Vec::new();
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0);
    let Ok(filter) = filter_for(options, &crate::boots(&entries), now, this_boot) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for e in &entries {
        let key = (e.realtime, e.seqnum);
        if seen.0.is_some_and(|s| key <= s) {
            continue;
        }
        if filter.accepts(e) {
            out.extend(output::render(e, options.format));
        }
    }
    if let Some(max) = entries.iter().map(|e| (e.realtime, e.seqnum)).max() {
        seen.0 = Some(seen.0.map_or(max, |s| s.max(max)));
    }
    out
}
