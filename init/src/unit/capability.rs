//! Capability names (capabilities(7), linux/capability.h, as the `caps` crate knows them)
//! and the set that `CapabilityBoundingSet=` assignments make, with systemd.exec(5)'s
//! rules: a `~` list means every capability but those; assignments are merged; an empty
//! one resets the set to empty.

/// The number of a `CAP_*` name (linux/capability.h), from the `caps` crate's table.
pub fn number(name: &str) -> Option<u32> {
    name.parse::<caps::Capability>()
        .ok()
        .map(|c| u32::from(c.index()))
}

/// The `CAP_*` name of capability `n`, or `capability n` for one the table lacks.
pub fn name_of(n: u32) -> String {
    caps::all()
        .into_iter()
        .find(|c| u32::from(c.index()) == n)
        .map_or_else(|| format!("capability {n}"), |c| c.to_string())
}

/// One bit per capability, bit `n` for capability `n`.
pub type CapSet = u64;

/// The bounding set in a `/proc/PID/status` text (its `CapBnd:` line), as systemd 252's
/// `ConditionCapability=` reads it; `None` when the line is missing or not hex.
pub fn bounding_set_in_status(status: &str) -> Option<CapSet> {
    let hex = status.lines().find_map(|l| l.strip_prefix("CapBnd:"))?;
    CapSet::from_str_radix(hex.trim(), 16).ok()
}

/// Every capability (also those a newer kernel has beyond the ones named).
pub const ALL: CapSet = u64::MAX;

/// The set made by the entries of `CapabilityBoundingSet=` or `AmbientCapabilities=`, as
/// the parser keeps them
/// (`CAP_X`, or `~CAP_X` from a `~` list), in order: the first entry starts from nothing
/// or, inverted, from every capability; later ones add or, inverted, remove. No entries
/// (the list after an empty assignment) is the empty set.
pub fn set_of(entries: &[String]) -> CapSet {
    let mut set = match entries.first() {
        Some(e) if e.starts_with('~') => ALL,
        _ => 0,
    };
    for e in entries {
        let (invert, name) = match e.strip_prefix('~') {
            Some(n) => (true, n),
            None => (false, e.as_str()),
        };
        if let Some(n) = number(name) {
            if invert {
                set &= !(1 << n);
            } else {
                set |= 1 << n;
            }
        }
    }
    set
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(entries: &[&str]) -> CapSet {
        set_of(&entries.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn numbers_follow_the_kernel_header() {
        assert_eq!(number("CAP_CHOWN"), Some(0));
        assert_eq!(number("CAP_SYS_ADMIN"), Some(21));
        assert_eq!(number("CAP_NET_BIND_SERVICE"), Some(10));
        assert_eq!(number("CAP_CHECKPOINT_RESTORE"), Some(40));
        assert_eq!(number("CAP_NOPE"), None);
    }

    #[test]
    fn lists_add_inverted_lists_remove_and_empty_is_nothing() {
        assert_eq!(set(&["CAP_CHOWN", "CAP_KILL"]), 0x21);
        assert_eq!(set(&["~CAP_SYS_ADMIN"]), ALL & !(1 << 21));
        assert_eq!(
            set(&["~CAP_SYS_ADMIN", "CAP_SYS_ADMIN", "~CAP_CHOWN"]),
            ALL & !1
        );
        assert_eq!(set(&[]), 0);
    }

    #[test]
    fn the_bounding_set_is_the_capbnd_line_of_a_status_file() {
        let status = "Name:\tinit\nCapInh:\t0000000000000000\nCapBnd:\t000001fffeffffff\n";
        assert_eq!(bounding_set_in_status(status), Some(0x1fffeffffff));
        assert_eq!(bounding_set_in_status("Name:\tinit\n"), None);
        assert_eq!(bounding_set_in_status("CapBnd:\tzz\n"), None);
    }
}
