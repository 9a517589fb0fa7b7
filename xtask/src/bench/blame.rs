//! Per-unit activation times, as `systemd-analyze blame` prints them: Berth's own
//! `systemd-analyze` and Debian's systemd 252 answer the same command in the same shape
//! (`  896ms berth-networkd.service`, `1min 2.345s foo.service`), so both systems are read
//! by one parser and their slowest units shown side by side.

use std::collections::BTreeMap;

use anyhow::{bail, Context, Result};
use berth_init::unit::values::timespan;

use super::{median, probe};

/// The command, run once start-up has finished on either system.
pub const BLAME: &str = "systemd-analyze blame --no-pager";

/// `(unit, seconds)` per line of `systemd-analyze blame`, as printed (slowest first).
pub fn parse(text: &str) -> Result<Vec<(String, f64)>> {
    let mut units = Vec::new();
    for line in probe::output_lines(text) {
        let words: Vec<&str> = line.split_whitespace().collect();
        let Some((unit, time)) = words.split_last() else {
            continue;
        };
        // The unit files' parser of systemd time spans (`1min 2.345s`, `830us`).
        let seconds = timespan(&time.join(" "))
            .ok()
            .flatten()
            .with_context(|| format!("blame line {line:?} has no time span"))?
            .as_secs_f64();
        units.push(((*unit).to_owned(), seconds));
    }
    if units.is_empty() {
        bail!("systemd-analyze blame printed no unit: {text:?}");
    }
    Ok(units)
}

/// The median time of each unit over `boots` (a unit missing from a boot counts only in
/// the others), slowest first, at most `top` of them.
pub fn medians(boots: &[Vec<(String, f64)>], top: usize) -> Vec<(String, f64)> {
    let mut by_unit: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    for boot in boots {
        for (unit, seconds) in boot {
            by_unit.entry(unit).or_default().push(*seconds);
        }
    }
    let mut units: Vec<(String, f64)> = by_unit
        .into_iter()
        .map(|(unit, times)| (unit.to_owned(), median(times)))
        .collect();
    units.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    units.truncate(top);
    units
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_systems_lines_are_read() {
        let berth = "  896ms berth-networkd.service\n  361ms berth-runtime.service\n   1ms berth-tmpfs-mounts.service\n";
        assert_eq!(
            parse(berth).unwrap(),
            [
                ("berth-networkd.service".to_owned(), 0.896),
                ("berth-runtime.service".to_owned(), 0.361),
                ("berth-tmpfs-mounts.service".to_owned(), 0.001)
            ]
        );
        let debian = "1min 2.345s apt-daily.service\n[   41.5] kvm: noise\n 4.012s containerd.service\n  830us sys-kernel-tracing.mount\n";
        let d = parse(debian).unwrap();
        assert_eq!(d.len(), 3);
        assert!((d[0].1 - 62.345).abs() < 1e-9, "{d:?}");
        assert!((d[1].1 - 4.012).abs() < 1e-9, "{d:?}");
        assert!((d[2].1 - 0.00083).abs() < 1e-9, "{d:?}");
    }

    #[test]
    fn what_is_not_blame_is_an_error() {
        assert!(parse("").is_err());
        assert!(parse("Bootup is not yet finished.\n").is_err());
        assert!(parse("12 furlongs foo.service\n").is_err());
    }

    #[test]
    fn medians_over_boots_slowest_first() {
        let boot = |a: f64, b: f64| vec![("a.service".to_owned(), a), ("b.service".to_owned(), b)];
        let m = medians(&[boot(0.1, 0.5), boot(0.3, 0.4), boot(0.2, 0.6)], 5);
        assert_eq!(
            m,
            [("b.service".to_owned(), 0.5), ("a.service".to_owned(), 0.2)]
        );
        assert_eq!(medians(&[boot(0.1, 0.5)], 1).len(), 1);
    }
}
