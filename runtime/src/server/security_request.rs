//! The seccomp profile a container's CRI security context asks for, decoded into its
//! domain form ([`SeccompChoice`]). Part of the gRPC layer's validation with
//! [`spec_request`](super::spec_request); a bad value is `InvalidArgument` naming its CRI
//! field. (The pod's user namespace is read with the rest of the pod config, in
//! [`crate::service::records::pod_config`].)

use std::path::PathBuf;

use crate::container::seccomp::SeccompChoice;
use crate::proto::v1::security_profile::ProfileType;
use crate::proto::v1::LinuxContainerSecurityContext;
use crate::service::ServiceError;

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

#[cfg(test)]
mod tests {
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
}
