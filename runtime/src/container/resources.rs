//! A container's resource limits as OCI cgroup limits. Used when the spec is written and
//! again for UpdateContainerResources, so both apply the same rules (the request was
//! checked where it was converted, `server::spec_request`).

use oci_spec::runtime::{LinuxCpu, LinuxHugepageLimit, LinuxMemory, LinuxResources};

use super::request::Resources;

/// The OCI resources for a request.
pub fn to_oci(res: &Resources) -> LinuxResources {
    // The values came from CRI's int64 fields, so they fit; saturate rather than wrap.
    let signed = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    let mut out = LinuxResources::default();

    let mut cpu = LinuxCpu::default();
    cpu.set_shares(res.cpu_shares);
    cpu.set_quota(res.cpu_quota.map(signed));
    cpu.set_period(res.cpu_period);
    cpu.set_cpus(res.cpuset_cpus.clone());
    cpu.set_mems(res.cpuset_mems.clone());
    if cpu != LinuxCpu::default() {
        out.set_cpu(Some(cpu));
    }

    let mut memory = LinuxMemory::default();
    memory.set_limit(res.memory_limit_in_bytes.map(signed));
    memory.set_swap(res.memory_swap_limit_in_bytes.map(signed));
    if memory != LinuxMemory::default() {
        out.set_memory(Some(memory));
    }

    if !res.hugepage_limits.is_empty() {
        let limits = res
            .hugepage_limits
            .iter()
            .map(|h| {
                let mut l = LinuxHugepageLimit::default();
                l.set_page_size(h.page_size.clone());
                l.set_limit(signed(h.limit));
                l
            })
            .collect();
        out.set_hugepage_limits(Some(limits));
    }
    if !res.unified.is_empty() {
        out.set_unified(Some(res.unified.clone()));
    }
    out
}

/// The `oom_score_adj` to put in the spec. On a host that refuses lowering it (no
/// CAP_SYS_RESOURCE), a request below `current` is raised to `current` with a warning
/// instead of failing every pod.
pub fn oom_score_adj(requested: i64, allowed: bool, current: i32) -> (i32, Option<String>) {
    let clamped = requested.clamp(-1000, 1000) as i32;
    if !allowed && clamped < current {
        let warning = format!(
            "oom_score_adj {requested} needs CAP_SYS_RESOURCE, which this host lacks; using {current}"
        );
        return (current, Some(warning));
    }
    (clamped, None)
}

#[cfg(test)]
mod tests {
    use super::super::request::HugepageLimit;
    use super::*;

    #[test]
    fn unset_stays_unset_and_values_map() {
        assert_eq!(to_oci(&Resources::default()), LinuxResources::default());
        let res = Resources {
            cpu_period: Some(100_000),
            cpu_quota: Some(50_000),
            cpu_shares: Some(512),
            memory_limit_in_bytes: Some(64 << 20),
            cpuset_cpus: Some("0-1".into()),
            hugepage_limits: vec![HugepageLimit {
                page_size: "2MB".into(),
                limit: 4 << 20,
            }],
            unified: [("memory.high".to_string(), "1000000".to_string())].into(),
            ..Default::default()
        };
        let json = serde_json::to_value(to_oci(&res)).unwrap();
        assert_eq!(json["cpu"]["shares"], 512);
        assert_eq!(json["cpu"]["quota"], 50_000);
        assert_eq!(json["cpu"]["period"], 100_000);
        assert_eq!(json["cpu"]["cpus"], "0-1");
        assert_eq!(json["memory"]["limit"], 64 << 20);
        assert!(json["memory"].get("swap").is_none());
        assert_eq!(json["hugepageLimits"][0]["pageSize"], "2MB");
        assert_eq!(json["unified"]["memory.high"], "1000000");
    }

    #[test]
    fn oom_score_adj_degrades_without_the_capability() {
        assert_eq!(oom_score_adj(-997, true, 0), (-997, None));
        let (value, warning) = oom_score_adj(-997, false, 0);
        assert_eq!(value, 0);
        assert!(warning.unwrap().contains("CAP_SYS_RESOURCE"));
        assert_eq!(oom_score_adj(1000, false, 0), (1000, None));
        assert_eq!(oom_score_adj(5000, true, 0), (1000, None));
    }
}
