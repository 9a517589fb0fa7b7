//! The requests the service layer takes, already validated by the gRPC layer: the fields
//! a call acts on are checked and pulled out of the CRI message (names safe in paths,
//! namespace modes, sysctls, DNS settings, the container spec builder's
//! [`ContainerSpecRequest`]). The message itself is also kept whole, but only to be
//! stored: the records keep what the kubelet sent (statuses answer with it), and the
//! service reads none of its fields.

use std::collections::BTreeMap;

use crate::container::ContainerSpecRequest;
use crate::pod::cni::HostPort;
use crate::pod::sysctls::Sysctl;
use crate::pod::PodDns;
use crate::proto::v1::{ContainerConfig, PodSandboxConfig};

/// A pod sandbox to run.
#[derive(Debug, Clone)]
pub struct PodSpec {
    /// Metadata name, namespace and uid: non-empty, no `/`, NUL, `.` or `..`.
    pub name: String,
    pub namespace: String,
    pub uid: String,
    pub attempt: u32,
    /// The RuntimeClass handler asked for ("" = the default one).
    pub runtime_handler: String,
    /// The hostname asked for; `None` takes the node's (as containerd does: the kubelet
    /// leaves it empty for host-network pods, critest for every pod).
    pub hostname: Option<String>,
    /// The pod uses the node's network (and UTS) namespace.
    pub host_network: bool,
    /// The pod uses the node's IPC namespace.
    pub host_ipc: bool,
    /// The pod's containers may share one PID namespace (NamespaceMode POD for pid).
    pub share_pid: bool,
    /// Namespaced sysctls to write in the pod's namespaces, checked against the modes.
    pub sysctls: Vec<Sysctl>,
    /// The cgroupfs parent the kubelet named; `None` gives the pod one of its own.
    pub cgroup_parent: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    /// The container ports to publish on the node (those with a host port).
    pub port_mappings: Vec<HostPort>,
    /// The DNS settings asked for (checked when `resolv.conf` is written); `None` takes
    /// the node's.
    pub dns: Option<PodDns>,
    /// The config as sent (the record keeps it).
    pub config: PodSandboxConfig,
}

/// A container to create in a pod.
#[derive(Debug, Clone)]
pub struct ContainerSpec {
    /// The pod's id or a unique prefix of it (non-empty).
    pub pod_id: String,
    /// Metadata name: non-empty, no `/`, NUL, `.` or `..`.
    pub name: String,
    pub attempt: u32,
    /// The image as named (non-empty).
    pub image: String,
    /// What the spec builder reads of the config, checked
    /// ([`spec_request::container_request`](crate::server::spec_request::container_request)).
    pub request: ContainerSpecRequest,
    /// The log file, relative to the pod's log folder ("" = no log).
    pub log_path: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    /// The config as sent (the record keeps it).
    pub config: ContainerConfig,
}
