//! CRI resource requests as OCI cgroup limits. Used when the spec is written and again
//! for UpdateContainerResources, so both apply the same rules: zero means "not set".

use oci_spec::runtime::{LinuxCpu, LinuxHugepageLimit, LinuxMemory, LinuxResources};

use super::ContainerError;
use crate::proto::v1::LinuxContainerResources;

/// The OCI resources for a CRI request; `field` prefixes error messages (e.g.
/// `config.linux.resources`).
pub fn to_oci(
    res: &LinuxContainerResources,
    field: &str,
) -> Result<LinuxResources, ContainerError> {
    let non_negative = |value: i64, name: &str| -> Result<Option<i64>, ContainerError> {
        match value {
            0 => Ok(None),
            v if v < 0 => Err(ContainerError::invalid(
                format!("{field}.{name}"),
                format!("{v} is negative"),
            )),
            v => Ok(Some(v)),
        }
    };
    let mut out = LinuxResources::default();

    let mut cpu = LinuxCpu::default();
    cpu.set_shares(non_negative(res.cpu_shares, "cpu_shares")?.map(|v| v as u64));
    cpu.set_quota(non_negative(res.cpu_quota, "cpu_quota")?);
    cpu.set_period(non_negative(res.cpu_period, "cpu_period")?.map(|v| v as u64));
    if !res.cpuset_cpus.is_empty() {
        cpu.set_cpus(Some(res.cpuset_cpus.clone()));
    }
    if !res.cpuset_mems.is_empty() {
        cpu.set_mems(Some(res.cpuset_mems.clone()));
    }
    if cpu != LinuxCpu::default() {
        out.set_cpu(Some(cpu));
    }

    let mut memory = LinuxMemory::default();
    memory.set_limit(non_negative(
        res.memory_limit_in_bytes,
        "memory_limit_in_bytes",
    )?);
    memory.set_swap(non_negative(
        res.memory_swap_limit_in_bytes,
        "memory_swap_limit_in_bytes",
    )?);
    if memory != LinuxMemory::default() {
        out.set_memory(Some(memory));
    }

    if !res.hugepage_limits.is_empty() {
        let mut limits = Vec::new();
        for (i, h) in res.hugepage_limits.iter().enumerate() {
            let name = format!("{field}.hugepage_limits[{i}]");
            if h.page_size.is_empty() {
                return Err(ContainerError::invalid(
                    format!("{name}.page_size"),
                    "empty",
                ));
            }
            let limit = i64::try_from(h.limit)
                .map_err(|_| ContainerError::invalid(format!("{name}.limit"), "too large"))?;
            let mut l = LinuxHugepageLimit::default();
            l.set_page_size(h.page_size.clone());
            l.set_limit(limit);
            limits.push(l);
        }
        out.set_hugepage_limits(Some(limits));
    }
    if !res.unified.is_empty() {
        if let Some(key) = res
            .unified
            .keys()
            .find(|k| k.is_empty() || k.contains('/') || k.starts_with('.'))
        {
            return Err(ContainerError::invalid(
                format!("{field}.unified"),
                format!("bad cgroup file name {key:?}"),
            ));
        }
        out.set_unified(Some(res.unified.clone()));
    }
    Ok(out)
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
    use super::*;
    use crate::proto::v1::HugepageLimit;

    #[test]
    fn zero_means_unset_and_values_map() {
        let empty = to_oci(&LinuxContainerResources::default(), "r").unwrap();
        assert_eq!(empty, LinuxResources::default());
        let res = LinuxContainerResources {
            cpu_period: 100_000,
            cpu_quota: 50_000,
            cpu_shares: 512,
            memory_limit_in_bytes: 64 << 20,
            cpuset_cpus: "0-1".into(),
            hugepage_limits: vec![HugepageLimit {
                page_size: "2MB".into(),
                limit: 4 << 20,
            }],
            unified: [("memory.high".to_string(), "1000000".to_string())].into(),
            ..Default::default()
        };
        let json = serde_json::to_value(to_oci(&res, "r").unwrap()).unwrap();
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
    fn bad_values_name_the_field() {
        let res = LinuxContainerResources {
            memory_limit_in_bytes: -5,
            ..Default::default()
        };
        assert_eq!(
            to_oci(&res, "config.linux.resources")
                .unwrap_err()
                .to_string(),
            "config.linux.resources.memory_limit_in_bytes: -5 is negative"
        );
        let res = LinuxContainerResources {
            unified: [("../x".to_string(), "1".to_string())].into(),
            ..Default::default()
        };
        assert!(to_oci(&res, "r").is_err());
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
