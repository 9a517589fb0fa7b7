//! What the daemon remembers about each pod and container, as stored by
//! [`crate::store`]. The CRI config a pod or container was made from is kept whole (as
//! protobuf bytes), so statuses can answer with exactly what the kubelet sent, and a
//! restarted daemon can tear down a pod's network with the same port mappings.

use std::collections::BTreeMap;

use base64::Engine;
use prost::Message;
use serde::{Deserialize, Serialize};

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
    /// `PodSandboxConfig`, protobuf-encoded, base64.
    pub config: String,
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
    /// `ContainerConfig`, protobuf-encoded, base64.
    pub config: String,
}

/// Encodes a CRI message for a record.
pub fn encode<M: Message>(message: &M) -> String {
    base64::engine::general_purpose::STANDARD.encode(message.encode_to_vec())
}

/// Decodes a CRI message from a record; a damaged record gives the default message.
pub fn decode<M: Message + Default>(text: &str) -> M {
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .ok()
        .and_then(|bytes| M::decode(bytes.as_slice()).ok())
        .unwrap_or_default()
}

pub use crate::container::exit::now_nanos;

/// A record's sorted map as the CRI's map type.
pub fn to_hash(map: &BTreeMap<String, String>) -> std::collections::HashMap<String, String> {
    map.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}
