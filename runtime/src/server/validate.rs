//! Request checks: a CRI request becomes the service layer's validated type
//! ([`PodSpec`], [`ContainerSpec`]), or `InvalidArgument` naming the field by its CRI path
//! (`config.metadata.name`), before anything is looked up or created.

use crate::pod::cni::{HostPort, PortProtocol};
use crate::pod::sysctls;
use crate::pod::PodDns;
use crate::proto::v1::{
    CreateContainerRequest, PodSandboxConfig, PortMapping, Protocol, RunPodSandboxRequest,
};
use crate::service::records::pod_config::{self, PodNamespaces};
use crate::service::{ContainerSpec, PodSpec, ServiceError};

/// `InvalidArgument` naming `field`.
pub fn invalid(field: &str, why: &str) -> ServiceError {
    ServiceError::invalid(field, why)
}

/// The message `field` must be present.
pub fn required<'a, T>(value: Option<&'a T>, field: &str) -> Result<&'a T, ServiceError> {
    value.ok_or_else(|| invalid(field, "is required"))
}

/// The string `field` must not be empty.
pub fn non_empty<'a>(value: &'a str, field: &str) -> Result<&'a str, ServiceError> {
    if value.is_empty() {
        return Err(invalid(field, "must not be empty"));
    }
    Ok(value)
}

/// A name that becomes part of paths and cgroup names: no `/`, no NUL, not `.` or `..`.
pub fn name(value: &str, field: &str) -> Result<(), ServiceError> {
    non_empty(value, field)?;
    if value.len() > 253 {
        return Err(invalid(field, "is longer than 253 bytes"));
    }
    if value.contains(['/', '\0']) || value == "." || value == ".." {
        return Err(invalid(
            field,
            &format!("{value:?} must not contain '/' or NUL or be . or .."),
        ));
    }
    Ok(())
}

/// RunPodSandbox's request as a [`PodSpec`].
pub fn pod_spec(request: RunPodSandboxRequest) -> Result<PodSpec, ServiceError> {
    let config: PodSandboxConfig = request
        .config
        .ok_or_else(|| invalid("config", "is required"))?;
    let metadata = required(config.metadata.as_ref(), "config.metadata")?;
    name(&metadata.name, "config.metadata.name")?;
    name(&metadata.namespace, "config.metadata.namespace")?;
    non_empty(&metadata.uid, "config.metadata.uid")?;
    let PodNamespaces {
        host_network,
        host_ipc,
        share_pid,
    } = pod_config::namespaces(&config);
    pod_config::user_namespace(&config)?;
    let sysctls = match &config.linux {
        Some(linux) => sysctls::check(&linux.sysctls, host_network, host_ipc)?,
        None => Vec::new(),
    };
    let cgroup_parent = config
        .linux
        .as_ref()
        .map(|l| l.cgroup_parent.clone())
        .filter(|p| !p.is_empty());
    Ok(PodSpec {
        name: metadata.name.clone(),
        namespace: metadata.namespace.clone(),
        uid: metadata.uid.clone(),
        attempt: metadata.attempt,
        runtime_handler: request.runtime_handler,
        hostname: Some(config.hostname.clone()).filter(|h| !h.is_empty()),
        host_network,
        host_ipc,
        share_pid,
        sysctls,
        cgroup_parent,
        port_mappings: port_mappings(&config.port_mappings)?,
        dns: config.dns_config.as_ref().map(|d| PodDns {
            servers: d.servers.clone(),
            searches: d.searches.clone(),
            options: d.options.clone(),
        }),
        labels: config.labels.clone().into_iter().collect(),
        annotations: config.annotations.clone().into_iter().collect(),
        config,
    })
}

/// The CRI port mappings as the ports to publish; mappings without a host port publish
/// nothing and are left out, as containerd does.
pub fn port_mappings(mappings: &[PortMapping]) -> Result<Vec<HostPort>, ServiceError> {
    let mut out = Vec::new();
    for (i, m) in mappings.iter().enumerate() {
        let field = |name: &str| format!("config.port_mappings[{i}].{name}");
        let port = |value: i32, name: &str| {
            u16::try_from(value)
                .map_err(|_| invalid(&field(name), &format!("{value} is not a port")))
        };
        let protocol = match Protocol::try_from(m.protocol) {
            Ok(Protocol::Tcp) => PortProtocol::Tcp,
            Ok(Protocol::Udp) => PortProtocol::Udp,
            Ok(Protocol::Sctp) => PortProtocol::Sctp,
            Err(_) => {
                return Err(invalid(
                    &field("protocol"),
                    &format!("unknown protocol {}", m.protocol),
                ))
            }
        };
        let host_port = port(m.host_port, "host_port")?;
        if host_port == 0 {
            continue;
        }
        let container_port = port(m.container_port, "container_port")?;
        if container_port == 0 {
            return Err(invalid(&field("container_port"), "0 is not a port"));
        }
        let host_ip = match m.host_ip.as_str() {
            "" => None,
            ip => Some(ip.parse().map_err(|_| {
                invalid(&field("host_ip"), &format!("{ip:?} is not an IP address"))
            })?),
        };
        out.push(HostPort {
            protocol,
            container_port,
            host_port,
            host_ip,
        });
    }
    Ok(out)
}

/// CreateContainer's request as a [`ContainerSpec`].
pub fn container_spec(request: CreateContainerRequest) -> Result<ContainerSpec, ServiceError> {
    let config = request
        .config
        .ok_or_else(|| invalid("config", "is required"))?;
    let metadata = required(config.metadata.as_ref(), "config.metadata")?;
    name(&metadata.name, "config.metadata.name")?;
    let image = required(config.image.as_ref(), "config.image")?;
    let image = non_empty(&image.image, "config.image.image")?.to_owned();
    non_empty(&request.pod_sandbox_id, "pod_sandbox_id")?;
    Ok(ContainerSpec {
        pod_id: request.pod_sandbox_id,
        name: metadata.name.clone(),
        attempt: metadata.attempt,
        image,
        request: super::spec_request::container_request(&config)?,
        log_path: config.log_path.clone(),
        labels: config.labels.clone().into_iter().collect(),
        annotations: config.annotations.clone().into_iter().collect(),
        config,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::v1::{
        ContainerConfig, ContainerMetadata, DnsConfig, ImageSpec, PodSandboxMetadata,
    };

    fn field_of(e: ServiceError) -> String {
        match e {
            ServiceError::InvalidArgument { field, .. } => field,
            other => panic!("not InvalidArgument: {other}"),
        }
    }

    #[test]
    fn names_are_checked_and_named() {
        assert!(name("nginx-1", "config.metadata.name").is_ok());
        for bad in ["", ".", "..", "a/b", "a\0b"] {
            let e = name(bad, "config.metadata.name").unwrap_err();
            assert!(e.to_string().starts_with("config.metadata.name: "), "{e}");
        }
        let missing = required::<u8>(None, "config.metadata").unwrap_err();
        assert_eq!(missing.to_string(), "config.metadata: is required");
    }

    #[test]
    fn a_pod_request_names_its_first_bad_field() {
        let mut request = RunPodSandboxRequest::default();
        assert_eq!(field_of(pod_spec(request.clone()).unwrap_err()), "config");
        request.config = Some(PodSandboxConfig::default());
        assert_eq!(
            field_of(pod_spec(request.clone()).unwrap_err()),
            "config.metadata"
        );
        let metadata = |name: &str, namespace: &str, uid: &str| PodSandboxMetadata {
            name: name.into(),
            namespace: namespace.into(),
            uid: uid.into(),
            attempt: 0,
        };
        for (m, field) in [
            (metadata("", "ns", "u"), "config.metadata.name"),
            (metadata("../x", "ns", "u"), "config.metadata.name"),
            (metadata("p", "a/b", "u"), "config.metadata.namespace"),
            (metadata("p", "ns", ""), "config.metadata.uid"),
        ] {
            request.config = Some(PodSandboxConfig {
                metadata: Some(m),
                ..Default::default()
            });
            assert_eq!(field_of(pod_spec(request.clone()).unwrap_err()), field);
        }
        request.config = Some(PodSandboxConfig {
            metadata: Some(metadata("p", "ns", "u")),
            hostname: String::new(),
            ..Default::default()
        });
        let spec = pod_spec(request).unwrap();
        assert_eq!(spec.hostname, None, "an empty hostname takes the node's");
        assert!(!spec.host_network && !spec.share_pid);
        assert_eq!(spec.dns, None, "no DNS config: the node's resolv.conf");
    }

    #[test]
    fn a_pod_request_carries_its_dns_settings() {
        let request = RunPodSandboxRequest {
            config: Some(PodSandboxConfig {
                metadata: Some(PodSandboxMetadata {
                    name: "p".into(),
                    namespace: "ns".into(),
                    uid: "u".into(),
                    attempt: 0,
                }),
                dns_config: Some(DnsConfig {
                    servers: vec!["10.96.0.10".into()],
                    searches: vec!["ns.svc.cluster.local".into()],
                    options: vec!["ndots:5".into()],
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(
            pod_spec(request).unwrap().dns,
            Some(PodDns {
                servers: vec!["10.96.0.10".into()],
                searches: vec!["ns.svc.cluster.local".into()],
                options: vec!["ndots:5".into()],
            })
        );
    }

    #[test]
    fn a_container_request_names_its_first_bad_field() {
        let mut request = CreateContainerRequest::default();
        assert_eq!(
            field_of(container_spec(request.clone()).unwrap_err()),
            "config"
        );
        let mut config = ContainerConfig {
            metadata: Some(ContainerMetadata {
                name: "c".into(),
                attempt: 1,
            }),
            ..Default::default()
        };
        request.config = Some(config.clone());
        assert_eq!(
            field_of(container_spec(request.clone()).unwrap_err()),
            "config.image"
        );
        config.image = Some(ImageSpec::default());
        request.config = Some(config.clone());
        assert_eq!(
            field_of(container_spec(request.clone()).unwrap_err()),
            "config.image.image"
        );
        config.image = Some(ImageSpec {
            image: "busybox".into(),
            ..Default::default()
        });
        config.log_path = "c/1.log".into();
        config.labels = [("app".to_owned(), "web".to_owned())].into();
        request.config = Some(config);
        assert_eq!(
            field_of(container_spec(request.clone()).unwrap_err()),
            "pod_sandbox_id"
        );
        request.pod_sandbox_id = "p".into();
        let spec = container_spec(request).unwrap();
        assert_eq!((spec.name.as_str(), spec.attempt), ("c", 1));
        assert_eq!(spec.log_path, "c/1.log");
        assert_eq!(spec.labels["app"], "web");
    }

    fn pm(protocol: Protocol, container_port: i32, host_port: i32, host_ip: &str) -> PortMapping {
        PortMapping {
            protocol: protocol as i32,
            container_port,
            host_port,
            host_ip: host_ip.into(),
        }
    }

    #[test]
    fn port_mappings_become_host_ports_or_name_the_bad_field() {
        let ports = port_mappings(&[
            pm(Protocol::Tcp, 80, 8080, ""),
            pm(Protocol::Udp, 53, 0, ""),
            pm(Protocol::Sctp, 9, 9009, "10.0.0.1"),
        ])
        .unwrap();
        assert_eq!(
            ports,
            [
                HostPort {
                    protocol: PortProtocol::Tcp,
                    container_port: 80,
                    host_port: 8080,
                    host_ip: None,
                },
                HostPort {
                    protocol: PortProtocol::Sctp,
                    container_port: 9,
                    host_port: 9009,
                    host_ip: Some("10.0.0.1".parse().unwrap()),
                },
            ]
        );
        let mut weird = pm(Protocol::Tcp, 80, 8080, "");
        weird.protocol = 7;
        for (bad, field) in [
            (
                vec![pm(Protocol::Tcp, 80, 1, ""), pm(Protocol::Tcp, 0, 8080, "")],
                "config.port_mappings[1].container_port",
            ),
            (
                vec![pm(Protocol::Tcp, 70000, 8080, "")],
                "config.port_mappings[0].container_port",
            ),
            (
                vec![pm(Protocol::Tcp, 80, 8080, "localhost")],
                "config.port_mappings[0].host_ip",
            ),
            (vec![weird], "config.port_mappings[0].protocol"),
            (
                vec![pm(Protocol::Tcp, 80, 70000, "")],
                "config.port_mappings[0].host_port",
            ),
            (
                vec![pm(Protocol::Tcp, 80, -1, "")],
                "config.port_mappings[0].host_port",
            ),
        ] {
            assert_eq!(field_of(port_mappings(&bad).unwrap_err()), field);
        }
    }
}
