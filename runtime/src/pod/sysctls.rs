//! Pod sysctls (`config.linux.sysctls`). Only sysctls that belong to one of the pod's own
//! namespaces may be set: IPC (`kernel.shm*`, `kernel.msg*`, `kernel.sem`, `fs.mqueue.*`),
//! network (`net.*`) and UTS (`kernel.hostname`, `kernel.domainname`), as the kubelet and
//! runc define them. Anything else would change the whole node and is refused with
//! `InvalidArgument` naming the sysctl; so is a namespaced sysctl whose namespace the pod
//! shares with the host (`net.*` in a host-network pod).
//!
//! They are written once, when the pod is made, by the thread that creates the pod's
//! namespaces (see [`namespaces`](super::namespaces)): `/proc/sys` shows the namespaces of
//! the task that opens it, so the values land in the pod's namespaces and every container
//! of the pod sees them.

use std::path::PathBuf;

use super::PodError;

/// The request field the sysctls come from.
pub const FIELD: &str = "config.linux.sysctls";

/// The namespace a sysctl belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SysctlNamespace {
    Ipc,
    Net,
    Uts,
}

/// IPC sysctls outside `fs.mqueue.` (runc's `namespacedSysctls`).
const IPC_KERNEL: &[&str] = &[
    "kernel.msgmax",
    "kernel.msgmnb",
    "kernel.msgmni",
    "kernel.sem",
    "kernel.shmall",
    "kernel.shmmax",
    "kernel.shmmni",
    "kernel.shm_rmid_forced",
];

/// One checked sysctl: its `/proc/sys` file and value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sysctl {
    /// The name in dotted form (`kernel.shm_rmid_forced`).
    pub name: String,
    pub namespace: SysctlNamespace,
    /// `/proc/sys/kernel/shm_rmid_forced`.
    pub file: PathBuf,
    pub value: String,
}

/// The dotted form of a sysctl name; the kubelet also accepts the slash form
/// (`net/ipv4/conf/eth0.100/rp_filter`), in which dots belong to a component.
fn dotted(name: &str) -> String {
    if name.contains('/') {
        name.chars()
            .map(|c| match c {
                '/' => '.',
                '.' => '/',
                c => c,
            })
            .collect()
    } else {
        name.to_owned()
    }
}

/// Which namespace `name` (dotted) belongs to, if any.
pub fn namespace_of(name: &str) -> Option<SysctlNamespace> {
    if IPC_KERNEL.contains(&name) || name.starts_with("fs.mqueue.") {
        Some(SysctlNamespace::Ipc)
    } else if name.starts_with("net.") {
        Some(SysctlNamespace::Net)
    } else if name == "kernel.hostname" || name == "kernel.domainname" {
        Some(SysctlNamespace::Uts)
    } else {
        None
    }
}

/// Checks every sysctl of a pod against the namespaces the pod has of its own; returns
/// them sorted by name, ready to write.
pub fn check<'a>(
    sysctls: impl IntoIterator<Item = (&'a String, &'a String)>,
    host_network: bool,
    host_ipc: bool,
) -> Result<Vec<Sysctl>, PodError> {
    let mut out = Vec::new();
    for (given, value) in sysctls {
        let name = dotted(given);
        let components: Vec<&str> = name.split('.').collect();
        let well_formed = components.iter().all(|c| {
            c.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'/')
                && !matches!(c.replace('/', ".").as_str(), "" | "." | "..")
        });
        if !well_formed {
            return Err(PodError::field(
                FIELD,
                format!("{given:?} is not a sysctl name"),
            ));
        }
        let Some(namespace) = namespace_of(&name) else {
            return Err(PodError::field(
                FIELD,
                format!("{given} is not a namespaced sysctl: it would change the whole node"),
            ));
        };
        let shared = match namespace {
            SysctlNamespace::Ipc => host_ipc.then_some("IPC"),
            SysctlNamespace::Net | SysctlNamespace::Uts => host_network.then_some("network"),
        };
        if let Some(kind) = shared {
            return Err(PodError::field(
                FIELD,
                format!("{given} cannot be set in a pod that shares the host's {kind} namespace"),
            ));
        }
        if value.contains(['\n', '\0']) {
            return Err(PodError::field(
                FIELD,
                format!("{given}: the value {value:?} holds a newline or NUL"),
            ));
        }
        // Each dotted component is one path component; a slash inside one (from the
        // slash form) is a dot in the file name (`eth0.100`).
        let mut file = PathBuf::from("/proc/sys");
        for component in &components {
            file.push(component.replace('/', "."));
        }
        out.push(Sysctl {
            name,
            namespace,
            file,
            value: value.clone(),
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// Writes the sysctls through the calling thread's `/proc/sys` (so in its namespaces).
pub fn apply(sysctls: &[Sysctl]) -> Result<(), PodError> {
    for sysctl in sysctls {
        std::fs::write(&sysctl.file, sysctl.value.as_bytes()).map_err(|source| {
            PodError::Sysctl {
                name: sysctl.name.clone(),
                value: sysctl.value.clone(),
                source,
            }
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::path::Path;

    use proptest::prelude::*;

    use super::*;

    fn one(name: &str, value: &str) -> HashMap<String, String> {
        HashMap::from([(name.to_owned(), value.to_owned())])
    }

    #[test]
    fn namespaced_sysctls_map_to_proc_files() {
        let ok = check(&one("kernel.shm_rmid_forced", "1"), false, false).unwrap();
        assert_eq!(ok[0].namespace, SysctlNamespace::Ipc);
        assert_eq!(ok[0].file, Path::new("/proc/sys/kernel/shm_rmid_forced"));
        let ok = check(&one("fs.mqueue.msg_max", "100"), false, false).unwrap();
        assert_eq!(ok[0].file, Path::new("/proc/sys/fs/mqueue/msg_max"));
        let ok = check(&one("net/ipv4/conf/eth0.100/rp_filter", "1"), false, false).unwrap();
        assert_eq!(ok[0].namespace, SysctlNamespace::Net);
        assert_eq!(
            ok[0].file,
            Path::new("/proc/sys/net/ipv4/conf/eth0.100/rp_filter")
        );
    }

    #[test]
    fn node_wide_and_host_shared_sysctls_are_refused_by_name() {
        let e = check(&one("kernel.pid_max", "100"), false, false).unwrap_err();
        assert_eq!(
            e.to_string(),
            "config.linux.sysctls: kernel.pid_max is not a namespaced sysctl: it would \
             change the whole node"
        );
        let e = check(&one("net.ipv4.ip_forward", "1"), true, false).unwrap_err();
        assert!(e.to_string().contains("net.ipv4.ip_forward"), "{e}");
        let e = check(&one("kernel.sem", "1 2 3 4"), false, true).unwrap_err();
        assert!(e.to_string().contains("host's IPC"), "{e}");
        for bad in [
            "net..x",
            "net/../x",
            "net/./x",
            "net.ipv4.../x",
            "net.a b",
            "",
            "net.x\0",
        ] {
            assert!(check(&one(bad, "1"), false, false).is_err(), "{bad:?}");
        }
        assert!(check(&one("net.core.somaxconn", "1\n2"), false, false).is_err());
    }

    proptest! {
        /// Whatever the name, a checked sysctl's file stays below /proc/sys and has no
        /// `..` component; anything else is an InvalidField error.
        #[test]
        fn checked_files_stay_in_proc_sys(name in "[a-z./_ -]{0,40}", value in ".{0,10}") {
            match check(&one(&name, &value), false, false) {
                Ok(v) => {
                    let file = &v[0].file;
                    prop_assert!(file.starts_with("/proc/sys"));
                    prop_assert!(file.components().all(|c| c.as_os_str() != ".."));
                    prop_assert!(namespace_of(&v[0].name).is_some());
                }
                Err(e) => {
                    let named = matches!(e, PodError::InvalidField { .. });
                    prop_assert!(named, "{}", e);
                }
            }
        }
    }
}
