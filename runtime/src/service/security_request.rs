//! The CRI security options the spec builder needs, decoded into their domain form: the
//! seccomp profile a container asks for ([`SeccompChoice`]) and the user namespace of a
//! pod ([`PodIdMappings`]). Part of the service edge with
//! [`spec_request`](super::spec_request); a bad value is `InvalidArgument` naming its CRI
//! field. NODE (or no options) keeps the host's user namespace; POD gives the pod's
//! containers one with the pod's one uid and one gid mapping (the kubelet sends exactly
//! one of each, and container ID 0 must be in it so the container's root maps to an
//! unprivileged host id). CONTAINER and TARGET are not modes the kubelet uses, and are
//! refused with the field named.

use std::path::PathBuf;

use super::ServiceError;
use crate::container::seccomp::SeccompChoice;
use crate::container::userns::{Mapping, PodIdMappings, FIELD};
use crate::proto::v1::security_profile::ProfileType;
use crate::proto::v1::{IdMapping, LinuxContainerSecurityContext, NamespaceMode, UserNamespace};

const SECCOMP: &str = "config.linux.security_context.seccomp";

/// Reads the choice from the security context: the `seccomp` message if set, else the
/// deprecated `seccomp_profile_path` string (empty means unconfined, as in CRI).
pub fn seccomp(sc: Option<&LinuxContainerSecurityContext>) -> Result<SeccompChoice, ServiceError> {
    let Some(sc) = sc else {
        return Ok(SeccompChoice::Unconfined);
    };
    if let Some(profile) = &sc.seccomp {
        return match ProfileType::try_from(profile.profile_type) {
            Ok(ProfileType::RuntimeDefault) => Ok(SeccompChoice::RuntimeDefault),
            Ok(ProfileType::Unconfined) => Ok(SeccompChoice::Unconfined),
            Ok(ProfileType::Localhost) => {
                localhost(&profile.localhost_ref, &format!("{SECCOMP}.localhost_ref"))
            }
            Err(_) => Err(ServiceError::invalid(
                format!("{SECCOMP}.profile_type"),
                format!("unknown profile type {}", profile.profile_type),
            )),
        };
    }
    #[allow(
        deprecated,
        reason = "older kubelets and crictl still send the string form"
    )]
    let path = sc.seccomp_profile_path.as_str();
    match path {
        "" | "unconfined" => Ok(SeccompChoice::Unconfined),
        "runtime/default" | "docker/default" => Ok(SeccompChoice::RuntimeDefault),
        other => match other.strip_prefix("localhost/") {
            Some(rest) => localhost(rest, "config.linux.security_context.seccomp_profile_path"),
            None => Err(ServiceError::invalid(
                "config.linux.security_context.seccomp_profile_path",
                format!("unknown seccomp profile {other:?}"),
            )),
        },
    }
}

fn localhost(path: &str, field: &str) -> Result<SeccompChoice, ServiceError> {
    let path = PathBuf::from(path);
    if !path.is_absolute() {
        return Err(ServiceError::invalid(
            field,
            format!("{} must be an absolute path", path.display()),
        ));
    }
    Ok(SeccompChoice::Localhost(path))
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

/// The mappings of a pod's user namespace; `None` for the host's.
pub fn pod_mappings(
    options: Option<&UserNamespace>,
) -> Result<Option<PodIdMappings>, ServiceError> {
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
    use crate::proto::v1::SecurityProfile;

    fn sc_with(profile: Option<SecurityProfile>, path: &str) -> LinuxContainerSecurityContext {
        #[allow(deprecated, reason = "testing the deprecated field")]
        LinuxContainerSecurityContext {
            seccomp: profile,
            seccomp_profile_path: path.into(),
            ..Default::default()
        }
    }

    #[test]
    fn choice_from_message_and_string() {
        let p = |t: ProfileType, r: &str| {
            Some(SecurityProfile {
                profile_type: t as i32,
                localhost_ref: r.into(),
            })
        };
        assert_eq!(seccomp(None).unwrap(), SeccompChoice::Unconfined);
        assert_eq!(
            seccomp(Some(&sc_with(None, ""))).unwrap(),
            SeccompChoice::Unconfined
        );
        assert_eq!(
            seccomp(Some(&sc_with(
                p(ProfileType::RuntimeDefault, ""),
                "unconfined"
            )))
            .unwrap(),
            SeccompChoice::RuntimeDefault
        );
        assert_eq!(
            seccomp(Some(&sc_with(p(ProfileType::Unconfined, ""), ""))).unwrap(),
            SeccompChoice::Unconfined
        );
        assert_eq!(
            seccomp(Some(&sc_with(p(ProfileType::Localhost, "/p.json"), ""))).unwrap(),
            SeccompChoice::Localhost("/p.json".into())
        );
        assert!(seccomp(Some(&sc_with(p(ProfileType::Localhost, "p.json"), ""))).is_err());
        assert_eq!(
            seccomp(Some(&sc_with(None, "runtime/default"))).unwrap(),
            SeccompChoice::RuntimeDefault
        );
        assert_eq!(
            seccomp(Some(&sc_with(None, "localhost//x.json"))).unwrap(),
            SeccompChoice::Localhost("/x.json".into())
        );
        assert!(seccomp(Some(&sc_with(None, "bogus"))).is_err());
        assert!(seccomp(Some(&sc_with(
            Some(SecurityProfile {
                profile_type: 9,
                localhost_ref: String::new()
            }),
            ""
        )))
        .is_err());
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
}
