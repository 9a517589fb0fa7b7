//! What the daemon remembers about each pod and container, as stored by
//! [`crate::store`]. The CRI config a pod or container was made from is kept whole (as
//! protobuf bytes, base64, in the JSON file), so statuses can answer with exactly what the
//! kubelet sent, as containerd's store does. The config is decoded when the record is
//! read: a damaged one makes the whole record unreadable (an error naming the file, see
//! [`Table::open`](crate::store::Table::open)), never an empty config.
//!
//! So the records (with the requests of [`types`](super::types) that carry the config
//! to them) are, deliberately, where CRI types live below the gRPC layer. The service
//! does not decide from those messages itself: a pod's config is read through
//! [`pod_config`] (namespace modes, user namespace, log folder, the spec builder's view),
//! and checked limits are written back in their CRI form by
//! [`ContainerRecord::set_resources`].

pub mod pod_config;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::container::Resources;
use crate::pod::cni::HostPort;
use crate::proto::v1::{ContainerConfig, LinuxContainerResources, PodSandboxConfig};

/// A pod sandbox's lifecycle state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PodState {
    /// Namespaces held and network set up.
    Ready,
    /// Stopped (or its set-up failed half-way): no containers run, no network.
    NotReady,
}

/// A pod sandbox.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PodRecord {
    /// 64 hex digits.
    pub id: String,
    /// Metadata name.
    pub name: String,
    /// Metadata namespace.
    pub namespace: String,
    /// Metadata uid.
    pub uid: String,
    /// Metadata attempt.
    pub attempt: u32,
    /// Lifecycle state.
    pub state: PodState,
    /// Creation time, nanoseconds since the epoch.
    pub created_at: i64,
    /// RuntimeClass handler.
    pub runtime_handler: String,
    /// Labels from the config.
    pub labels: BTreeMap<String, String>,
    /// Annotations from the config.
    pub annotations: BTreeMap<String, String>,
    /// The pod's network namespace is the host's.
    pub host_network: bool,
    /// IP addresses CNI gave the pod, first is the primary one.
    pub ips: Vec<String>,
    /// The pod's cgroupfs parent.
    pub cgroup_parent: String,
    /// The ports it publishes on the node (for the network teardown when the CNI cache
    /// is gone).
    #[serde(default)]
    pub port_mappings: Vec<HostPort>,
    /// The config it was made from (`PodSandboxConfig`, protobuf-encoded, base64, on disk).
    #[serde(with = "proto_base64")]
    pub config: PodSandboxConfig,
}

/// A container's metadata (its process state lives in the container module's files).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContainerRecord {
    /// 64 hex digits.
    pub id: String,
    /// The pod it belongs to.
    pub pod_id: String,
    /// Metadata name.
    pub name: String,
    /// Metadata attempt.
    pub attempt: u32,
    /// The image as the request named it.
    pub image_ref: String,
    /// The image's id (`sha256:` config digest).
    pub image_id: String,
    /// The image layers (diff ids) its rootfs stacks; kept on disk while it exists.
    pub layers: Vec<String>,
    /// Creation time, nanoseconds since the epoch.
    pub created_at: i64,
    /// Labels from the config.
    pub labels: BTreeMap<String, String>,
    /// Annotations from the config.
    pub annotations: BTreeMap<String, String>,
    /// Absolute log path ("" = no log requested).
    pub log_path: String,
    /// RuntimeClass handler of its pod.
    pub runtime_handler: String,
    /// The config it was made from (`ContainerConfig`, protobuf-encoded, base64, on disk).
    #[serde(with = "proto_base64")]
    pub config: ContainerConfig,
}

/// A CRI message in a record: protobuf bytes, base64. Decoding fails (and with it the
/// whole record) on bytes that are not base64 or not the message.
mod proto_base64 {
    use base64::Engine;
    use prost::Message;
    use serde::{de::Error, Deserialize, Deserializer, Serializer};

    pub fn serialize<M: Message, S: Serializer>(message: &M, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(message.encode_to_vec()))
    }

    pub fn deserialize<'de, M: Message + Default, D: Deserializer<'de>>(
        d: D,
    ) -> Result<M, D::Error> {
        let text = String::deserialize(d)?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text.as_bytes())
            .map_err(|e| D::Error::custom(format!("config: not base64: {e}")))?;
        M::decode(bytes.as_slice())
            .map_err(|e| D::Error::custom(format!("config: not a CRI config message: {e}")))
    }
}

/// The CRI form of checked limits, as the container's record keeps (and its status
/// reports) them after UpdateContainerResources: the inverse of the gRPC layer's
/// [`spec_request::resources`](crate::server::spec_request::resources).
pub fn stored_resources(res: &Resources) -> LinuxContainerResources {
    let signed = |v: Option<u64>| v.map_or(0, |v| i64::try_from(v).unwrap_or(i64::MAX));
    LinuxContainerResources {
        cpu_period: signed(res.cpu_period),
        cpu_quota: signed(res.cpu_quota),
        cpu_shares: signed(res.cpu_shares),
        memory_limit_in_bytes: signed(res.memory_limit_in_bytes),
        oom_score_adj: res.oom_score_adj,
        cpuset_cpus: res.cpuset_cpus.clone().unwrap_or_default(),
        cpuset_mems: res.cpuset_mems.clone().unwrap_or_default(),
        hugepage_limits: res
            .hugepage_limits
            .iter()
            .map(|h| crate::proto::v1::HugepageLimit {
                page_size: h.page_size.clone(),
                limit: h.limit,
            })
            .collect(),
        unified: res.unified.clone(),
        memory_swap_limit_in_bytes: signed(res.memory_swap_limit_in_bytes),
    }
}

impl ContainerRecord {
    /// Keeps new limits in the stored config, so the container's status reports them.
    pub fn set_resources(&mut self, res: &Resources) {
        self.config
            .linux
            .get_or_insert_with(Default::default)
            .resources = Some(stored_resources(res));
    }
}

pub use crate::container::exit::now_nanos;

/// A record's sorted map as the CRI's map type.
pub fn to_hash(map: &BTreeMap<String, String>) -> std::collections::HashMap<String, String> {
    map.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Table;

    fn pod(id: &str) -> PodRecord {
        PodRecord {
            id: id.to_owned(),
            name: "web".to_owned(),
            namespace: "default".to_owned(),
            uid: "u1".to_owned(),
            attempt: 0,
            state: PodState::Ready,
            created_at: 1,
            runtime_handler: "crun".to_owned(),
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
            host_network: false,
            ips: vec!["10.88.0.2".to_owned()],
            cgroup_parent: "/berth/pod".to_owned(),
            port_mappings: Vec::new(),
            config: PodSandboxConfig {
                hostname: "web-0".to_owned(),
                ..Default::default()
            },
        }
    }

    #[test]
    fn the_config_round_trips_through_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let table = Table::open(dir.path()).unwrap();
        table.put("p1", &pod("p1")).unwrap();
        let (table, damaged) = Table::<PodRecord>::load(dir.path()).unwrap();
        assert!(damaged.is_empty());
        assert_eq!(table.get("p1").unwrap().config.hostname, "web-0");
    }

    #[test]
    fn a_damaged_config_is_an_error_naming_the_file_not_an_empty_config() {
        let dir = tempfile::tempdir().unwrap();
        let table = Table::open(dir.path()).unwrap();
        table.put("good", &pod("good")).unwrap();
        for (file, config) in [("notbase64", "%%%"), ("notproto", "/////w==")] {
            let mut json: serde_json::Value = serde_json::to_value(pod(file)).unwrap();
            json["config"] = config.into();
            std::fs::write(dir.path().join(format!("{file}.json")), json.to_string()).unwrap();
        }
        let (table, damaged) = Table::<PodRecord>::load(dir.path()).unwrap();
        let mut messages: Vec<String> = damaged.iter().map(|e| crate::error::chain(e)).collect();
        messages.sort();
        assert_eq!(messages.len(), 2, "{messages:?}");
        assert!(messages[0].contains("notbase64.json"), "{}", messages[0]);
        assert!(
            messages[0].contains("config: not base64"),
            "{}",
            messages[0]
        );
        assert!(messages[1].contains("notproto.json"), "{}", messages[1]);
        assert!(
            messages[1].contains("config: not a CRI config"),
            "{}",
            messages[1]
        );
        assert_eq!(table.all().len(), 1, "the good record stays");
    }

    #[test]
    fn a_damaged_container_record_is_left_out_too() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("c1.json"), br#"{"id":"c1""#).unwrap();
        let (table, damaged) = Table::<ContainerRecord>::load(dir.path()).unwrap();
        assert!(table.get("c1").is_none());
        assert!(damaged[0].to_string().contains("c1.json"));
    }
}
