//! What a plugin is given: `CNI_ARGS` (the Kubernetes pod identity, as containerd passes
//! it) and its stdin (its own config plus the injected `name`, `cniVersion`, `prevResult`
//! and, only where it declared the capability, `runtimeConfig.portMappings`).

use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::conf::{NetworkList, Plugin};
use crate::pod::PodError;

/// The Kubernetes identity of a pod, passed to plugins in `CNI_ARGS`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodIdentity {
    /// `metadata.name`.
    pub name: String,
    /// `metadata.namespace`.
    pub namespace: String,
    /// `metadata.uid`.
    pub uid: String,
}

/// `CNI_ARGS` for a pod: `IgnoreUnknown=1;K8S_POD_NAMESPACE=..;K8S_POD_NAME=..;
/// K8S_POD_INFRA_CONTAINER_ID=..;K8S_POD_UID=..`. libcni splits on `;` and `=`, so values
/// holding either are refused rather than passed on garbled.
pub fn cni_args(pod_id: &str, pod: &PodIdentity) -> Result<String, PodError> {
    let fields = [
        (
            "K8S_POD_NAMESPACE",
            "config.metadata.namespace",
            pod.namespace.as_str(),
        ),
        ("K8S_POD_NAME", "config.metadata.name", pod.name.as_str()),
        ("K8S_POD_INFRA_CONTAINER_ID", "pod_sandbox_id", pod_id),
        ("K8S_POD_UID", "config.metadata.uid", pod.uid.as_str()),
    ];
    let mut out = String::from("IgnoreUnknown=1");
    for (key, field, value) in fields {
        if let Some(c) = value
            .chars()
            .find(|c| matches!(c, ';' | '=') || c.is_control())
        {
            return Err(PodError::field(
                field,
                format!("{c:?} cannot be passed to CNI plugins"),
            ));
        }
        out.push_str(&format!(";{key}={value}"));
    }
    Ok(out)
}

/// The protocol of a published port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PortProtocol {
    Tcp,
    Udp,
    Sctp,
}

impl PortProtocol {
    /// The name the portmap plugin takes.
    pub fn as_str(self) -> &'static str {
        match self {
            PortProtocol::Tcp => "tcp",
            PortProtocol::Udp => "udp",
            PortProtocol::Sctp => "sctp",
        }
    }
}

/// A container port published on the node (the gRPC layer checks the CRI message and
/// leaves out mappings without a host port, which publish nothing, as containerd does).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostPort {
    pub protocol: PortProtocol,
    pub container_port: u16,
    pub host_port: u16,
    /// The node address to publish on; `None` for all of them.
    pub host_ip: Option<IpAddr>,
}

/// The published ports as the portmap plugin's `runtimeConfig.portMappings`.
pub fn port_mappings(mappings: &[HostPort]) -> Value {
    Value::Array(
        mappings
            .iter()
            .map(|m| {
                let mut entry = json!({
                    "hostPort": m.host_port,
                    "containerPort": m.container_port,
                    "protocol": m.protocol.as_str(),
                });
                if let Some(ip) = m.host_ip {
                    entry["hostIP"] = ip.to_string().into();
                }
                entry
            })
            .collect(),
    )
}

/// The stdin of one plugin call.
pub fn plugin_stdin(
    list: &NetworkList,
    plugin: &Plugin,
    prev_result: Option<&Value>,
    port_mappings: &Value,
) -> Value {
    let mut conf = plugin.conf.clone();
    conf.insert("name".into(), list.name.clone().into());
    conf.insert("cniVersion".into(), list.cni_version.clone().into());
    match prev_result {
        Some(prev) => conf.insert("prevResult".into(), prev.clone()),
        None => conf.remove("prevResult"),
    };
    if plugin.port_mappings {
        let rc = conf.entry("runtimeConfig").or_insert_with(|| json!({}));
        if !rc.is_object() {
            *rc = json!({});
        }
        rc["portMappings"] = port_mappings.clone();
    }
    Value::Object(conf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pod::cni::conf::parse_list;

    fn pod() -> PodIdentity {
        PodIdentity {
            name: "web-0".into(),
            namespace: "default".into(),
            uid: "u-1".into(),
        }
    }

    #[test]
    fn args() {
        assert_eq!(
            cni_args("abc", &pod()).unwrap(),
            "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-0;\
             K8S_POD_INFRA_CONTAINER_ID=abc;K8S_POD_UID=u-1"
        );
        let mut bad = pod();
        bad.name = "a;K8S_POD_NAMESPACE=kube-system".into();
        let e = cni_args("abc", &bad).unwrap_err();
        assert_eq!(
            e.to_string(),
            "config.metadata.name: ';' cannot be passed to CNI plugins"
        );
    }

    #[test]
    fn mappings() {
        let v = port_mappings(&[
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
        ]);
        assert_eq!(
            v,
            json!([
                {"hostPort": 8080, "containerPort": 80, "protocol": "tcp"},
                {"hostPort": 9009, "containerPort": 9, "protocol": "sctp", "hostIP": "10.0.0.1"},
            ])
        );
    }

    #[test]
    fn runtime_config_only_for_capable_plugins() {
        let list = parse_list(
            json!({
                "cniVersion": "1.0.0",
                "name": "net",
                "plugins": [
                    {"type": "bridge", "prevResult": {"stale": true}},
                    {"type": "portmap", "capabilities": {"portMappings": true}, "runtimeConfig": {"other": 1}},
                    {"type": "tuning", "capabilities": {"portMappings": false}},
                ]
            })
            .as_object()
            .unwrap()
            .clone(),
        )
        .unwrap();
        let maps = json!([{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}]);
        let prev = json!({"cniVersion": "1.0.0", "ips": []});

        let bridge = plugin_stdin(&list, &list.plugins[0], None, &maps);
        assert_eq!(
            bridge,
            json!({"type": "bridge", "name": "net", "cniVersion": "1.0.0"})
        );

        let portmap = plugin_stdin(&list, &list.plugins[1], Some(&prev), &maps);
        assert_eq!(
            portmap["runtimeConfig"],
            json!({"other": 1, "portMappings": maps})
        );
        assert_eq!(portmap["prevResult"], prev);
        assert_eq!(portmap["name"], "net");

        let tuning = plugin_stdin(&list, &list.plugins[2], Some(&prev), &maps);
        assert!(tuning.get("runtimeConfig").is_none());
    }
}
