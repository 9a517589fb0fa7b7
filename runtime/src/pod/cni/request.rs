//! What a plugin is given: `CNI_ARGS` (the Kubernetes pod identity, as containerd passes
//! it) and its stdin (its own config plus the injected `name`, `cniVersion`, `prevResult`
//! and, only where it declared the capability, `runtimeConfig.portMappings`).

use std::net::IpAddr;

use serde_json::{json, Value};

use super::conf::{NetworkList, Plugin};
use crate::pod::PodError;
use crate::proto::v1::{PortMapping, Protocol};

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

/// The CRI port mappings as the portmap plugin's `runtimeConfig.portMappings`. Mappings
/// without a host port publish nothing and are left out, as containerd does.
pub fn port_mappings(mappings: &[PortMapping]) -> Result<Value, PodError> {
    let mut out = Vec::new();
    for (i, m) in mappings.iter().enumerate() {
        let field = |name: &str| format!("config.port_mappings[{i}].{name}");
        let protocol = match Protocol::try_from(m.protocol) {
            Ok(Protocol::Tcp) => "tcp",
            Ok(Protocol::Udp) => "udp",
            Ok(Protocol::Sctp) => "sctp",
            Err(_) => {
                return Err(PodError::field(
                    field("protocol"),
                    format!("unknown protocol {}", m.protocol),
                ))
            }
        };
        if !(0..=65535).contains(&m.host_port) {
            return Err(PodError::field(
                field("host_port"),
                format!("{} is not a port", m.host_port),
            ));
        }
        if m.host_port == 0 {
            continue;
        }
        if !(1..=65535).contains(&m.container_port) {
            return Err(PodError::field(
                field("container_port"),
                format!("{} is not a port", m.container_port),
            ));
        }
        let mut entry = json!({
            "hostPort": m.host_port,
            "containerPort": m.container_port,
            "protocol": protocol,
        });
        if !m.host_ip.is_empty() {
            let ip: IpAddr = m.host_ip.parse().map_err(|_| {
                PodError::field(
                    field("host_ip"),
                    format!("{:?} is not an IP address", m.host_ip),
                )
            })?;
            entry["hostIP"] = ip.to_string().into();
        }
        out.push(entry);
    }
    Ok(Value::Array(out))
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

    fn pm(protocol: Protocol, container_port: i32, host_port: i32, host_ip: &str) -> PortMapping {
        PortMapping {
            protocol: protocol as i32,
            container_port,
            host_port,
            host_ip: host_ip.into(),
        }
    }

    #[test]
    fn mappings() {
        let v = port_mappings(&[
            pm(Protocol::Tcp, 80, 8080, ""),
            pm(Protocol::Udp, 53, 0, ""),
            pm(Protocol::Sctp, 9, 9009, "10.0.0.1"),
        ])
        .unwrap();
        assert_eq!(
            v,
            json!([
                {"hostPort": 8080, "containerPort": 80, "protocol": "tcp"},
                {"hostPort": 9009, "containerPort": 9, "protocol": "sctp", "hostIP": "10.0.0.1"},
            ])
        );
        let e = port_mappings(&[pm(Protocol::Tcp, 80, 1, ""), pm(Protocol::Tcp, 0, 8080, "")])
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "config.port_mappings[1].container_port: 0 is not a port"
        );
        let e = port_mappings(&[pm(Protocol::Tcp, 80, 8080, "localhost")]).unwrap_err();
        assert!(e
            .to_string()
            .starts_with("config.port_mappings[0].host_ip:"));
        let mut weird = pm(Protocol::Tcp, 80, 8080, "");
        weird.protocol = 7;
        assert!(port_mappings(&[weird])
            .unwrap_err()
            .to_string()
            .contains("protocol"));
        assert!(port_mappings(&[pm(Protocol::Tcp, 80, 70000, "")]).is_err());
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
