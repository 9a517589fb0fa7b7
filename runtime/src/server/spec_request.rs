//! The gRPC layer's validation of the CRI messages the spec builder and the resource
//! update need: a CreateContainer config becomes a [`ContainerSpecRequest`], the limits of
//! CreateContainer and UpdateContainerResources become [`Resources`], before the service
//! is called. A bad value is `InvalidArgument` naming its CRI field path
//! (`config.mounts[2].container_path`), as `validate.rs` does. The pod's
//! side ([`PodSpecContext`](crate::container::request::PodSpecContext)) is read from the
//! pod config in [`crate::service::records::pod_config`], because the service reads it
//! again from the config a pod record keeps; the inverse of [`resources`], the form a
//! record keeps, is [`crate::service::records::stored_resources`].

use std::path::{Path, PathBuf};

use super::security_request;
use crate::container::request::{
    ContainerSpecRequest, DeviceRequest, HugepageLimit, MountAccess, MountRequest, PidMode,
    Propagation, Resources, SecurityRequest,
};
use crate::container::seccomp::SeccompChoice;
use crate::proto::v1::{
    self as cri, ContainerConfig, LinuxContainerResources, MountPropagation, NamespaceMode,
    SupplementalGroupsPolicy,
};
use crate::service::ServiceError;

/// The spec builder's view of a CreateContainer config.
pub fn container_request(config: &ContainerConfig) -> Result<ContainerSpecRequest, ServiceError> {
    let linux = config.linux.clone().unwrap_or_default();
    let working_dir = match config.working_dir.as_str() {
        "" => None,
        dir if Path::new(dir).is_absolute() => Some(PathBuf::from(dir)),
        dir => {
            return Err(ServiceError::invalid(
                "config.working_dir",
                format!("{dir:?} must be absolute"),
            ))
        }
    };
    let mut envs = Vec::with_capacity(config.envs.len());
    for (i, kv) in config.envs.iter().enumerate() {
        if kv.key.is_empty() || kv.key.contains('=') {
            return Err(ServiceError::invalid(
                format!("config.envs[{i}].key"),
                format!("{:?} is not a valid variable name", kv.key),
            ));
        }
        envs.push((kv.key.clone(), kv.value.clone()));
    }
    Ok(ContainerSpecRequest {
        command: config.command.clone(),
        args: config.args.clone(),
        working_dir,
        envs,
        mounts: mounts(&config.mounts)?,
        devices: devices(&config.devices)?,
        tty: config.tty,
        stdin: config.stdin,
        stdin_once: config.stdin_once,
        resources: linux
            .resources
            .as_ref()
            .map(|r| resources(r, "config.linux.resources"))
            .transpose()?,
        security: security(&linux.security_context.unwrap_or_default())?,
    })
}

fn security(sc: &cri::LinuxContainerSecurityContext) -> Result<SecurityRequest, ServiceError> {
    const PID: &str = "config.linux.security_context.namespace_options.pid";
    let pid = match &sc.namespace_options {
        None => PidMode::Container,
        Some(options) => match NamespaceMode::try_from(options.pid) {
            Ok(NamespaceMode::Container) => PidMode::Container,
            Ok(NamespaceMode::Pod) => PidMode::Pod,
            Ok(NamespaceMode::Target) => PidMode::Target {
                target_id: options.target_id.clone(),
            },
            Ok(NamespaceMode::Node) => PidMode::Node,
            Err(_) => {
                return Err(ServiceError::invalid(
                    PID,
                    format!("mode {} is not supported", options.pid),
                ))
            }
        },
    };
    let caps = sc.capabilities.clone().unwrap_or_default();
    Ok(SecurityRequest {
        privileged: sc.privileged,
        readonly_rootfs: sc.readonly_rootfs,
        no_new_privs: sc.no_new_privs,
        run_as_user: sc.run_as_user.map(|v| v.value),
        run_as_username: sc.run_as_username.clone(),
        run_as_group: sc.run_as_group.map(|v| v.value),
        supplemental_groups: sc.supplemental_groups.clone(),
        strict_groups: sc.supplemental_groups_policy == SupplementalGroupsPolicy::Strict as i32,
        add_capabilities: caps.add_capabilities,
        drop_capabilities: caps.drop_capabilities,
        add_ambient_capabilities: caps.add_ambient_capabilities,
        masked_paths: sc.masked_paths.clone(),
        readonly_paths: sc.readonly_paths.clone(),
        // A privileged container gets no filter, whatever it asks for (and what it asks
        // for is not checked, as before).
        seccomp: if sc.privileged {
            SeccompChoice::Unconfined
        } else {
            security_request::seccomp(Some(sc))?
        },
        pid,
    })
}

fn mounts(list: &[cri::Mount]) -> Result<Vec<MountRequest>, ServiceError> {
    let mut out = Vec::with_capacity(list.len());
    for (i, m) in list.iter().enumerate() {
        let field = format!("config.mounts[{i}]");
        let absolute = |path: &str, name: &str| {
            if Path::new(path).is_absolute() {
                Ok(PathBuf::from(path))
            } else {
                Err(ServiceError::invalid(
                    format!("{field}.{name}"),
                    "must be absolute",
                ))
            }
        };
        let container_path = absolute(&m.container_path, "container_path")?;
        if m.image
            .as_ref()
            .is_some_and(|image| !image.image.is_empty())
        {
            return Err(ServiceError::invalid(
                format!("{field}.image"),
                "image volume mounts are not supported",
            ));
        }
        if !m.uid_mappings.is_empty() || !m.gid_mappings.is_empty() {
            return Err(ServiceError::invalid(
                format!("{field}.uid_mappings"),
                "id-mapped mounts are not supported",
            ));
        }
        let host_path = absolute(&m.host_path, "host_path")?;
        let propagation = match MountPropagation::try_from(m.propagation) {
            Ok(MountPropagation::PropagationPrivate) => Propagation::Private,
            Ok(MountPropagation::PropagationHostToContainer) => Propagation::HostToContainer,
            Ok(MountPropagation::PropagationBidirectional) => Propagation::Bidirectional,
            Err(_) => {
                return Err(ServiceError::invalid(
                    format!("{field}.propagation"),
                    format!("unknown value {}", m.propagation),
                ))
            }
        };
        let access = match (m.readonly, m.recursive_read_only) {
            (false, false) => MountAccess::ReadWrite,
            (true, false) => MountAccess::ReadOnly,
            (true, true) if propagation == Propagation::Private => MountAccess::RecursiveReadOnly,
            (_, true) => {
                return Err(ServiceError::invalid(
                    format!("{field}.recursive_read_only"),
                    "needs readonly and private propagation",
                ))
            }
        };
        out.push(MountRequest {
            container_path,
            host_path,
            access,
            propagation,
        });
    }
    Ok(out)
}

fn devices(list: &[cri::Device]) -> Result<Vec<DeviceRequest>, ServiceError> {
    let mut out = Vec::with_capacity(list.len());
    for (i, d) in list.iter().enumerate() {
        let field = format!("config.devices[{i}]");
        let permissions = if d.permissions.is_empty() {
            "rwm"
        } else {
            d.permissions.as_str()
        };
        if !permissions.chars().all(|c| "rwm".contains(c)) {
            return Err(ServiceError::invalid(
                format!("{field}.permissions"),
                format!("{permissions:?} is not a subset of \"rwm\""),
            ));
        }
        if !Path::new(&d.container_path).is_absolute() {
            return Err(ServiceError::invalid(
                format!("{field}.container_path"),
                "must be absolute",
            ));
        }
        out.push(DeviceRequest {
            container_path: PathBuf::from(&d.container_path),
            host_path: PathBuf::from(&d.host_path),
            permissions: permissions.to_string(),
        });
    }
    Ok(out)
}

/// The limits of a request; `field` is the CRI path of `res` (`config.linux.resources`
/// at CreateContainer, `linux` at UpdateContainerResources).
pub fn resources(res: &LinuxContainerResources, field: &str) -> Result<Resources, ServiceError> {
    let non_negative = |value: i64, name: &str| -> Result<Option<u64>, ServiceError> {
        match u64::try_from(value) {
            Ok(0) => Ok(None),
            Ok(v) => Ok(Some(v)),
            Err(_) => Err(ServiceError::invalid(
                format!("{field}.{name}"),
                format!("{value} is negative"),
            )),
        }
    };
    let mut hugepage_limits = Vec::with_capacity(res.hugepage_limits.len());
    for (i, h) in res.hugepage_limits.iter().enumerate() {
        let name = format!("{field}.hugepage_limits[{i}]");
        if h.page_size.is_empty() {
            return Err(ServiceError::invalid(format!("{name}.page_size"), "empty"));
        }
        if i64::try_from(h.limit).is_err() {
            return Err(ServiceError::invalid(format!("{name}.limit"), "too large"));
        }
        hugepage_limits.push(HugepageLimit {
            page_size: h.page_size.clone(),
            limit: h.limit,
        });
    }
    if let Some(key) = res
        .unified
        .keys()
        .find(|k| k.is_empty() || k.contains('/') || k.starts_with('.'))
    {
        return Err(ServiceError::invalid(
            format!("{field}.unified"),
            format!("bad cgroup file name {key:?}"),
        ));
    }
    let text = |s: &String| (!s.is_empty()).then(|| s.clone());
    Ok(Resources {
        cpu_shares: non_negative(res.cpu_shares, "cpu_shares")?,
        cpu_quota: non_negative(res.cpu_quota, "cpu_quota")?,
        cpu_period: non_negative(res.cpu_period, "cpu_period")?,
        memory_limit_in_bytes: non_negative(res.memory_limit_in_bytes, "memory_limit_in_bytes")?,
        memory_swap_limit_in_bytes: non_negative(
            res.memory_swap_limit_in_bytes,
            "memory_swap_limit_in_bytes",
        )?,
        cpuset_cpus: text(&res.cpuset_cpus),
        cpuset_mems: text(&res.cpuset_mems),
        hugepage_limits,
        unified: res.unified.clone(),
        oom_score_adj: res.oom_score_adj,
    })
}

#[cfg(test)]
#[path = "spec_request_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "spec_build_tests.rs"]
mod spec_build_tests;

#[cfg(test)]
#[path = "spec_build_props.rs"]
mod spec_build_props;
