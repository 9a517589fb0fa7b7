//! User namespaces (`namespace_options.userns_options`). NODE (or no options) keeps the
//! host's; POD gives the pod's containers a user namespace with the pod's one uid and one
//! gid mapping (the kubelet sends exactly one of each, and container ID 0 must be in it so
//! the container's root maps to an unprivileged host id). CONTAINER and TARGET are not
//! modes the kubelet uses, and are refused with the field named.

use oci_spec::runtime::{LinuxIdMapping, LinuxIdMappingBuilder};

use super::ContainerError;
use crate::proto::v1::{IdMapping, NamespaceMode, UserNamespace};

/// The request field, from the pod config.
pub const FIELD: &str = "config.linux.security_context.namespace_options.userns_options";

/// The uid and gid mappings of a pod with its own user namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PodIdMappings {
    pub uid: Mapping,
    pub gid: Mapping,
}

/// One `container_id host_id length` range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mapping {
    pub container_id: u32,
    pub host_id: u32,
    pub length: u32,
}

impl Mapping {
    /// The OCI form.
    pub fn to_oci(self) -> Result<LinuxIdMapping, ContainerError> {
        LinuxIdMappingBuilder::default()
            .container_id(self.container_id)
            .host_id(self.host_id)
            .size(self.length)
            .build()
            .map_err(|e| ContainerError::invalid(FIELD, e.to_string()))
    }
}

fn one_mapping(list: &[IdMapping], field: &str) -> Result<Mapping, ContainerError> {
    let [m] = list else {
        return Err(ContainerError::invalid(
            field,
            format!("exactly one mapping is supported, {} given", list.len()),
        ));
    };
    if m.length == 0 {
        return Err(ContainerError::invalid(field, "the mapping's length is 0"));
    }
    if m.container_id != 0 {
        return Err(ContainerError::invalid(
            field,
            format!(
                "container ID 0 must be mapped; the mapping starts at {}",
                m.container_id
            ),
        ));
    }
    if m.host_id == 0 || m.host_id.checked_add(m.length).is_none() {
        return Err(ContainerError::invalid(
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

/// The mappings of a pod's user namespace; `None` for the host's.
pub fn pod_mappings(
    options: Option<&UserNamespace>,
) -> Result<Option<PodIdMappings>, ContainerError> {
    let Some(options) = options else {
        return Ok(None);
    };
    match NamespaceMode::try_from(options.mode) {
        Ok(NamespaceMode::Node) => {
            if !options.uids.is_empty() || !options.gids.is_empty() {
                return Err(ContainerError::invalid(
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
            Err(ContainerError::invalid(
                format!("{FIELD}.mode"),
                format!(
                    "{} is not supported (only NODE and POD)",
                    mode.as_str_name()
                ),
            ))
        }
        Err(_) => Err(ContainerError::invalid(
            format!("{FIELD}.mode"),
            format!("unknown mode {}", options.mode),
        )),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

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
}
