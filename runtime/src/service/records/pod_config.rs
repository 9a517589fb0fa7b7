//! What a pod's CRI config means to the runtime: its namespace modes, the mappings of its
//! user namespace, its log folder and the spec builder's [`PodSpecContext`]. This is the one conversion
//! of a `PodSandboxConfig` into domain values, used twice: by the gRPC layer's
//! validation of RunPodSandbox (a bad value is refused there, InvalidArgument naming its
//! CRI field), and by the service on the config a [`PodRecord`] keeps, which passed that
//! validation when the pod was run. Deriving from the stored config, rather than storing
//! the derived values beside it, keeps one source of truth and needs no migration of the
//! records an older daemon wrote.

use super::PodRecord;
use crate::container::request::PodSpecContext;
use crate::container::userns::{Mapping, PodIdMappings, FIELD};
use crate::proto::v1::{
    IdMapping, NamespaceMode, NamespaceOption, PodSandboxConfig, UserNamespace,
};
use crate::service::ServiceError;

/// The pod's namespace modes, as the service decides with them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PodNamespaces {
    /// The pod uses the node's network (and UTS) namespace.
    pub host_network: bool,
    /// The pod uses the node's IPC namespace (and the node's `/dev/shm`).
    pub host_ipc: bool,
    /// The pod's containers may share one PID namespace.
    pub share_pid: bool,
}

/// The namespace modes of a pod config as the CRI message (missing parts mean POD, the
/// CRI default); the pod's status echoes it.
pub fn namespace_options(config: &PodSandboxConfig) -> NamespaceOption {
    config
        .linux
        .as_ref()
        .and_then(|l| l.security_context.as_ref())
        .and_then(|s| s.namespace_options.clone())
        .unwrap_or_default()
}

/// The namespace modes of a pod config.
pub fn namespaces(config: &PodSandboxConfig) -> PodNamespaces {
    let options = namespace_options(config);
    PodNamespaces {
        host_network: options.network == NamespaceMode::Node as i32,
        host_ipc: options.ipc == NamespaceMode::Node as i32,
        // Only when the options are given and say POD (the kubelet's
        // `shareProcessNamespace`); a pod without them gets no PID init.
        share_pid: config
            .linux
            .as_ref()
            .and_then(|l| l.security_context.as_ref())
            .and_then(|s| s.namespace_options.as_ref())
            .is_some_and(|o| o.pid == NamespaceMode::Pod as i32),
    }
}

/// The mappings of the pod's user namespace; `None` for the host's. NODE (or no options)
/// keeps the host's user namespace; POD gives the pod's containers one with the pod's one
/// uid and one gid mapping (the kubelet sends exactly one of each, and container ID 0 must
/// be in it so the container's root maps to an unprivileged host id). CONTAINER and
/// TARGET are not modes the kubelet uses, and are refused with the field named.
pub fn user_namespace(config: &PodSandboxConfig) -> Result<Option<PodIdMappings>, ServiceError> {
    let options = config
        .linux
        .as_ref()
        .and_then(|l| l.security_context.as_ref())
        .and_then(|s| s.namespace_options.as_ref())
        .and_then(|o| o.userns_options.as_ref());
    pod_mappings(options)
}

/// The spec builder's view of a pod's config.
pub fn spec_context(config: &PodSandboxConfig) -> Result<PodSpecContext, ServiceError> {
    let sc = config
        .linux
        .as_ref()
        .and_then(|l| l.security_context.as_ref());
    Ok(PodSpecContext {
        // A pod config without a security context may run privileged containers.
        privileged: sc.is_none_or(|sc| sc.privileged),
        hostname: (!config.hostname.is_empty()).then(|| config.hostname.clone()),
        user_namespace: user_namespace(config)?,
    })
}

impl PodRecord {
    /// The namespace modes the pod was run with.
    pub fn namespaces(&self) -> PodNamespaces {
        namespaces(&self.config)
    }

    /// The folder its containers' logs go under ("" = no logs).
    pub fn log_directory(&self) -> &str {
        &self.config.log_directory
    }

    /// The spec builder's view of the pod (an error only for a config this daemon did
    /// not validate).
    pub fn spec_context(&self) -> Result<PodSpecContext, ServiceError> {
        spec_context(&self.config)
    }
}

fn one_mapping(list: &[IdMapping], field: &str) -> Result<Mapping, ServiceError> {
    let [m] = list else {
        return Err(ServiceError::invalid(
            field,
            format!("exactly one mapping is supported, {} given", list.len()),
        ));
    };
    if m.length == 0 {
        return Err(ServiceError::invalid(field, "the mapping's length is 0"));
    }
    if m.container_id != 0 {
        return Err(ServiceError::invalid(
            field,
            format!(
                "container ID 0 must be mapped; the mapping starts at {}",
                m.container_id
            ),
        ));
    }
    if m.host_id == 0 || m.host_id.checked_add(m.length).is_none() {
        return Err(ServiceError::invalid(
            field,
            format!(
                "host IDs {}+{} must be above 0 and fit in 32 bits (root on the host is \
                 never mapped)",
                m.host_id, m.length
            ),
        ));
    }
    Ok(Mapping {
        container_id: m.container_id,
        host_id: m.host_id,
        length: m.length,
    })
}

/// The mappings of a pod's user namespace options; `None` for the host's.
fn pod_mappings(options: Option<&UserNamespace>) -> Result<Option<PodIdMappings>, ServiceError> {
    let Some(options) = options else {
        return Ok(None);
    };
    match NamespaceMode::try_from(options.mode) {
        Ok(NamespaceMode::Node) => {
            if !options.uids.is_empty() || !options.gids.is_empty() {
                return Err(ServiceError::invalid(
                    FIELD,
                    "NODE takes no uid or gid mappings",
                ));
            }
            Ok(None)
        }
        Ok(NamespaceMode::Pod) => Ok(Some(PodIdMappings {
            uid: one_mapping(&options.uids, &format!("{FIELD}.uids"))?,
            gid: one_mapping(&options.gids, &format!("{FIELD}.gids"))?,
        })),
        Ok(mode @ (NamespaceMode::Container | NamespaceMode::Target)) => {
            Err(ServiceError::invalid(
                format!("{FIELD}.mode"),
                format!(
                    "{} is not supported (only NODE and POD)",
                    mode.as_str_name()
                ),
            ))
        }
        Err(_) => Err(ServiceError::invalid(
            format!("{FIELD}.mode"),
            format!("unknown mode {}", options.mode),
        )),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::proto::v1::{LinuxPodSandboxConfig, LinuxSandboxSecurityContext};

    fn field_of(e: ServiceError) -> String {
        match e {
            ServiceError::InvalidArgument { field, .. } => field,
            other => panic!("not InvalidArgument: {other}"),
        }
    }

    fn map(container_id: u32, host_id: u32, length: u32) -> IdMapping {
        IdMapping {
            host_id,
            container_id,
            length,
        }
    }

    fn pod(uids: Vec<IdMapping>) -> UserNamespace {
        UserNamespace {
            mode: NamespaceMode::Pod as i32,
            gids: uids.clone(),
            uids,
        }
    }

    #[test]
    fn node_and_pod() {
        assert_eq!(pod_mappings(None).unwrap(), None);
        let node = UserNamespace {
            mode: NamespaceMode::Node as i32,
            ..Default::default()
        };
        assert_eq!(pod_mappings(Some(&node)).unwrap(), None);
        let got = pod_mappings(Some(&pod(vec![map(0, 1000, 100000)])))
            .unwrap()
            .unwrap();
        assert_eq!(
            got.uid,
            Mapping {
                container_id: 0,
                host_id: 1000,
                length: 100000
            }
        );
    }

    #[test]
    fn what_critest_refuses_is_refused_by_field() {
        let two = pod(vec![map(0, 1000, 100000), map(0, 2000, 100000)]);
        let e = pod_mappings(Some(&two)).unwrap_err().to_string();
        assert!(e.starts_with(&format!("{FIELD}.uids: exactly one")), "{e}");
        let unmapped_root = pod(vec![map(1, 1000, 100000)]);
        let e = pod_mappings(Some(&unmapped_root)).unwrap_err().to_string();
        assert!(e.contains("container ID 0 must be mapped"), "{e}");
        for mode in [NamespaceMode::Container, NamespaceMode::Target] {
            let options = UserNamespace {
                mode: mode as i32,
                ..Default::default()
            };
            let e = pod_mappings(Some(&options)).unwrap_err().to_string();
            assert!(e.starts_with(&format!("{FIELD}.mode")), "{e}");
        }
        assert!(pod_mappings(Some(&pod(vec![map(0, 0, 10)]))).is_err());
        assert!(pod_mappings(Some(&pod(vec![map(0, u32::MAX, 10)]))).is_err());
        assert!(pod_mappings(Some(&pod(vec![]))).is_err());
    }

    proptest! {
        /// Any options give mappings that map container root to a host id above 0 and
        /// stay within 32 bits, or an InvalidArgument naming the field; never a panic.
        #[test]
        fn any_options_are_checked(mode in -2i32..6, c in any::<u32>(), h in any::<u32>(),
                                   l in any::<u32>(), n in 0usize..3) {
            let options = UserNamespace { mode, uids: vec![map(c, h, l); n], gids: vec![map(c, h, l); n] };
            match pod_mappings(Some(&options)) {
                Ok(Some(m)) => {
                    prop_assert_eq!(m.uid.container_id, 0);
                    prop_assert!(m.uid.host_id > 0);
                    prop_assert!(m.uid.host_id.checked_add(m.uid.length).is_some());
                }
                Ok(None) => prop_assert_eq!(mode, NamespaceMode::Node as i32),
                Err(e) => prop_assert!(e.to_string().starts_with(FIELD)),
            }
        }
    }

    #[test]
    fn namespace_modes_and_a_shared_pid_namespace_only_when_asked() {
        let with = |options: NamespaceOption| PodSandboxConfig {
            linux: Some(LinuxPodSandboxConfig {
                security_context: Some(LinuxSandboxSecurityContext {
                    namespace_options: Some(options),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let node = NamespaceMode::Node as i32;
        assert_eq!(
            namespaces(&PodSandboxConfig::default()),
            PodNamespaces {
                host_network: false,
                host_ipc: false,
                share_pid: false
            },
            "no options: the CRI's POD defaults, but no PID init"
        );
        assert_eq!(
            namespaces(&with(NamespaceOption {
                network: node,
                ipc: node,
                pid: NamespaceMode::Container as i32,
                ..Default::default()
            })),
            PodNamespaces {
                host_network: true,
                host_ipc: true,
                share_pid: false
            }
        );
        assert!(namespaces(&with(NamespaceOption::default())).share_pid);
    }

    #[test]
    fn spec_context_reads_privilege_hostname_and_user_namespace() {
        let open = spec_context(&PodSandboxConfig::default()).unwrap();
        assert!(open.privileged, "no security context: privileged allowed");
        assert_eq!(open.hostname, None);
        let config = PodSandboxConfig {
            hostname: "pod-a".into(),
            linux: Some(LinuxPodSandboxConfig {
                security_context: Some(LinuxSandboxSecurityContext {
                    namespace_options: Some(NamespaceOption {
                        userns_options: Some(UserNamespace {
                            mode: NamespaceMode::Pod as i32,
                            uids: vec![IdMapping {
                                host_id: 1000,
                                container_id: 0,
                                length: 65536,
                            }],
                            gids: vec![],
                        }),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(
            field_of(spec_context(&config).unwrap_err()),
            format!("{}.gids", crate::container::userns::FIELD)
        );
    }
}
