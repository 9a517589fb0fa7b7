//! The container's capability set, like containerd: a default set, every capability of
//! the host's bounding set for privileged containers, then the request's adds and drops
//! (`ALL` allowed in both; drops win).

use std::collections::BTreeSet;

use oci_spec::runtime::{Capabilities, Capability};

use super::ContainerError;

/// containerd's default set for unprivileged containers.
pub const DEFAULT_CAPABILITIES: [&str; 14] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// The capabilities in a bounding set given by capability numbers (unknown numbers,
/// from a newer kernel, are left out).
pub fn names_of(numbers: &[u32]) -> BTreeSet<String> {
    // The table once per call, not once per number (a container's spec asks for 41).
    let known = ::caps::all();
    numbers
        .iter()
        .filter_map(|n| known.iter().find(|c| u32::from(c.index()) == *n))
        .map(|c| c.to_string())
        .collect()
}

/// The canonical `CAP_X` name of a CRI capability (`X`, `cap_x` and `CAP_X` accepted).
fn canonical(name: &str, field: &str) -> Result<String, ContainerError> {
    let upper = name.to_ascii_uppercase();
    let full = if upper.starts_with("CAP_") {
        upper
    } else {
        format!("CAP_{upper}")
    };
    if full.parse::<::caps::Capability>().is_ok() {
        Ok(full)
    } else {
        Err(ContainerError::invalid(
            field,
            format!("unknown capability {name:?}"),
        ))
    }
}

/// The request's capabilities.
#[derive(Debug, Default)]
pub struct CapabilityRequest<'a> {
    pub privileged: bool,
    pub add: &'a [String],
    pub drop: &'a [String],
    pub ambient: &'a [String],
}

/// The bounding/effective/permitted set and the ambient set, as `CAP_X` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapabilitySets {
    pub main: BTreeSet<String>,
    pub ambient: BTreeSet<String>,
}

/// Computes the sets; `host` is the host's bounding set ("all capabilities").
pub fn compute(
    req: &CapabilityRequest,
    host: &BTreeSet<String>,
) -> Result<CapabilitySets, ContainerError> {
    const FIELD: &str = "config.linux.security_context.capabilities";
    let mut main: BTreeSet<String> = if req.privileged {
        host.clone()
    } else {
        DEFAULT_CAPABILITIES.iter().map(|s| s.to_string()).collect()
    };
    let is_all = |s: &String| s.eq_ignore_ascii_case("ALL");
    if !req.privileged {
        if req.add.iter().any(is_all) {
            main = host.clone();
        }
        if req.drop.iter().any(is_all) {
            main.clear();
        }
        for (i, name) in req.add.iter().enumerate().filter(|(_, n)| !is_all(n)) {
            main.insert(canonical(name, &format!("{FIELD}.add_capabilities[{i}]"))?);
        }
        for (i, name) in req.drop.iter().enumerate().filter(|(_, n)| !is_all(n)) {
            main.remove(&canonical(
                name,
                &format!("{FIELD}.drop_capabilities[{i}]"),
            )?);
        }
    }
    let mut ambient = BTreeSet::new();
    for (i, name) in req.ambient.iter().enumerate() {
        let cap = canonical(name, &format!("{FIELD}.add_ambient_capabilities[{i}]"))?;
        if main.contains(&cap) {
            ambient.insert(cap);
        }
    }
    Ok(CapabilitySets { main, ambient })
}

/// The oci-spec form of a set of `CAP_X` names.
pub fn to_oci(names: &BTreeSet<String>) -> Capabilities {
    names
        .iter()
        .filter_map(|n| {
            serde_json::from_value::<Capability>(serde_json::Value::String(n.clone())).ok()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn defaults_adds_and_drops() {
        let host = names_of(&(0..41).filter(|n| *n != 24).collect::<Vec<_>>());
        let add = s(&["NET_ADMIN", "cap_sys_time"]);
        let drop = s(&["CAP_KILL", "NET_ADMIN"]);
        let sets = compute(
            &CapabilityRequest {
                add: &add,
                drop: &drop,
                ..Default::default()
            },
            &host,
        )
        .unwrap();
        assert!(sets.main.contains("CAP_SYS_TIME"));
        assert!(sets.main.contains("CAP_CHOWN"));
        assert!(!sets.main.contains("CAP_KILL"));
        assert!(!sets.main.contains("CAP_NET_ADMIN"), "drop wins");
        assert_eq!(sets.main.len(), 14);

        let all = s(&["ALL"]);
        let sets = compute(
            &CapabilityRequest {
                add: &all,
                ..Default::default()
            },
            &host,
        )
        .unwrap();
        assert_eq!(sets.main, host);
        assert!(
            !sets.main.contains("CAP_SYS_RESOURCE"),
            "never more than the host has"
        );
        let chown = s(&["CHOWN"]);
        let sets = compute(
            &CapabilityRequest {
                add: &chown,
                drop: &all,
                ambient: &chown,
                ..Default::default()
            },
            &host,
        )
        .unwrap();
        assert_eq!(sets.main, names_of(&[0]));
        assert_eq!(sets.ambient, names_of(&[0]));
        assert_eq!(to_oci(&sets.main).len(), 1);
    }

    #[test]
    fn privileged_gets_the_host_set_and_unknown_names_fail() {
        let host = names_of(&[0, 21, 99]);
        let sets = compute(
            &CapabilityRequest {
                privileged: true,
                ..Default::default()
            },
            &host,
        )
        .unwrap();
        assert_eq!(sets.main, host);
        assert_eq!(to_oci(&host).len(), 2);
        let bad = s(&["CHOWN", "NOPE"]);
        let err = compute(
            &CapabilityRequest {
                add: &bad,
                ..Default::default()
            },
            &host,
        )
        .unwrap_err();
        assert_eq!(err.to_string(), "config.linux.security_context.capabilities.add_capabilities[1]: unknown capability \"NOPE\"");
    }
}
