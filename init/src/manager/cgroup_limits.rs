//! systemd.resource-control(5) settings to cgroup v2 interface files: what PID 1 writes
//! into a unit's cgroup before its first process joins it. A limit the kernel refuses (a
//! controller not enabled, a value out of range) is said and the unit still starts, as
//! systemd does.
//!
//! `StartupCPUWeight=` is the unit's `cpu.weight` while the machine starts up (until the
//! boot's target is reached), as systemd 252's `cgroup_context_cpu_weight` picks it; then
//! [`running_cpu_weight`] puts back `CPUWeight=` (or the kernel's default, 100). So a unit
//! on boot's critical path (the CRI runtime) gets the CPU first while every unit starts at
//! once, and no more than its share after.

use crate::unit::service::Resources;
use crate::unit::values::Limit;

/// The period `CPUQuota=` is a share of (systemd's default, 100 ms).
const CPU_PERIOD_US: u64 = 100_000;

/// The machine's totals that percentages are relative to.
#[derive(Debug, Clone, Copy, Default)]
pub struct Totals {
    /// `MemTotal` of /proc/meminfo, bytes.
    pub memory: u64,
    /// `kernel.pid_max`: the most tasks the machine may have.
    pub tasks: u64,
}

impl Totals {
    /// From `/proc/meminfo`'s text and `/proc/sys/kernel/pid_max`'s.
    pub fn parse(meminfo: &str, pid_max: &str) -> Totals {
        let memory = meminfo
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map_or(0, |kb| kb * 1024);
        Totals {
            memory,
            tasks: pid_max.trim().parse().unwrap_or(0),
        }
    }
}

fn value(limit: &Limit, total: u64) -> String {
    match limit {
        Limit::Infinity => "max".into(),
        Limit::Absolute(n) => n.to_string(),
        Limit::Permille(p) => (total / 1000 * u64::from(*p)).to_string(),
    }
}

/// The cgroup v2 default of `cpu.weight` (systemd's `CGROUP_WEIGHT_DEFAULT`).
pub const DEFAULT_CPU_WEIGHT: u64 = 100;

/// The files to write in the unit's cgroup folder, in order, with their contents;
/// `starting_up`: the machine has not reached its boot target yet.
pub fn files(r: &Resources, totals: Totals, starting_up: bool) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    let weight = match r.startup_cpu_weight {
        Some(w) if starting_up => Some(w),
        _ => r.cpu_weight,
    };
    if let Some(w) = weight {
        out.push(("cpu.weight", w.to_string()));
    }
    if let Some(p) = r.cpu_quota_percent {
        out.push((
            "cpu.max",
            format!("{} {CPU_PERIOD_US}", p * CPU_PERIOD_US / 100),
        ));
    }
    let memory = [
        ("memory.min", &r.memory_min),
        ("memory.low", &r.memory_low),
        ("memory.high", &r.memory_high),
        ("memory.max", &r.memory_max),
    ];
    for (file, limit) in memory {
        if let Some(l) = limit {
            out.push((file, value(l, totals.memory)));
        }
    }
    if let Some(l) = &r.tasks_max {
        out.push(("pids.max", value(l, totals.tasks)));
    }
    if let Some(w) = r.io_weight {
        out.push(("io.weight", format!("default {w}")));
    }
    out
}

/// What `cpu.weight` becomes once start-up is over, for a unit that had a
/// `StartupCPUWeight=`; `None` for one without (its weight never changed).
pub fn running_cpu_weight(r: &Resources) -> Option<String> {
    r.startup_cpu_weight?;
    Some(r.cpu_weight.unwrap_or(DEFAULT_CPU_WEIGHT).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_to_interface_files() {
        let r = Resources {
            cpu_weight: Some(200),
            cpu_quota_percent: Some(150),
            memory_max: Some(Limit::Permille(500)),
            memory_high: Some(Limit::Absolute(1 << 30)),
            tasks_max: Some(Limit::Infinity),
            io_weight: Some(50),
            ..Resources::default()
        };
        let totals = Totals::parse("MemTotal:        2048000 kB\nMemFree: 1 kB\n", "4194304\n");
        assert_eq!(totals.memory, 2_097_152_000);
        assert_eq!(
            files(&r, totals, false),
            vec![
                ("cpu.weight", "200".into()),
                ("cpu.max", "150000 100000".into()),
                ("memory.high", "1073741824".into()),
                ("memory.max", "1048576000".into()),
                ("pids.max", "max".into()),
                ("io.weight", "default 50".into()),
            ]
        );
        assert!(files(&Resources::default(), totals, true).is_empty());
    }

    #[test]
    fn the_startup_weight_holds_until_start_up_is_over() {
        let totals = Totals::default();
        let both = Resources {
            cpu_weight: Some(200),
            startup_cpu_weight: Some(1000),
            ..Resources::default()
        };
        assert_eq!(files(&both, totals, true), [("cpu.weight", "1000".into())]);
        assert_eq!(files(&both, totals, false), [("cpu.weight", "200".into())]);
        assert_eq!(running_cpu_weight(&both).as_deref(), Some("200"));
        let startup_only = Resources {
            startup_cpu_weight: Some(1000),
            ..Resources::default()
        };
        assert_eq!(
            files(&startup_only, totals, true),
            [("cpu.weight", "1000".into())]
        );
        assert!(files(&startup_only, totals, false).is_empty());
        assert_eq!(running_cpu_weight(&startup_only).as_deref(), Some("100"));
        assert_eq!(running_cpu_weight(&Resources::default()), None);
    }
}
