//! What the spec builder and the resource update take: the domain form of a container's
//! request and its pod's settings, with only the fields they read, already checked (paths
//! absolute, enums decoded, limits non-negative, "0 = unset" as `None`). The CRI messages
//! become these at the gRPC edge, a container's in `server::spec_request` and a pod's in
//! `service::records::pod_config` (also read again from a pod's record), each naming the
//! CRI field of a bad value; this module and the builder do not know the generated CRI
//! types (their tests from CRI configs live beside the conversion, in `server/`).

use std::collections::HashMap;
use std::path::PathBuf;

use super::seccomp::SeccompChoice;
use super::userns::PodIdMappings;

/// A container's request, as the spec builder reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerSpecRequest {
    /// Replaces the image's entrypoint (and drops its cmd) when not empty.
    pub command: Vec<String>,
    /// Replaces the image's cmd when not empty.
    pub args: Vec<String>,
    /// An absolute path; `None` takes the image's.
    pub working_dir: Option<PathBuf>,
    /// `(key, value)`, the key non-empty and without `=`.
    pub envs: Vec<(String, String)>,
    pub mounts: Vec<MountRequest>,
    pub devices: Vec<DeviceRequest>,
    pub tty: bool,
    pub stdin: bool,
    pub stdin_once: bool,
    /// `None`: the request gave no `linux.resources` (then no `oom_score_adj` is set).
    pub resources: Option<Resources>,
    pub security: SecurityRequest,
}

/// The container's security context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecurityRequest {
    pub privileged: bool,
    pub readonly_rootfs: bool,
    pub no_new_privs: bool,
    pub run_as_user: Option<i64>,
    pub run_as_username: String,
    pub run_as_group: Option<i64>,
    pub supplemental_groups: Vec<i64>,
    /// SupplementalGroupsPolicy Strict.
    pub strict_groups: bool,
    pub add_capabilities: Vec<String>,
    pub drop_capabilities: Vec<String>,
    pub add_ambient_capabilities: Vec<String>,
    /// Empty: the defaults.
    pub masked_paths: Vec<String>,
    /// Empty: the defaults.
    pub readonly_paths: Vec<String>,
    /// Unconfined for a privileged container (which gets no filter whatever it asks).
    pub seccomp: SeccompChoice,
    pub pid: PidMode,
}

/// The PID namespace a container asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PidMode {
    /// Its own (the default).
    Container,
    /// The pod's shared one.
    Pod,
    /// That of the (running) container `target_id`.
    Target { target_id: String },
    /// The host's.
    Node,
}

impl PidMode {
    /// The CRI name of the mode, for messages.
    pub fn name(&self) -> &'static str {
        match self {
            PidMode::Container => "CONTAINER",
            PidMode::Pod => "POD",
            PidMode::Target { .. } => "TARGET",
            PidMode::Node => "NODE",
        }
    }
}

/// A bind mount the request asks for; both paths absolute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountRequest {
    pub container_path: PathBuf,
    /// Followed if a symlink when the spec is built.
    pub host_path: PathBuf,
    pub access: MountAccess,
    pub propagation: Propagation,
}

/// Whether a mount is writable; recursive read-only implies private propagation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MountAccess {
    ReadWrite,
    ReadOnly,
    RecursiveReadOnly,
}

/// Mount propagation, in CRI's order (the strongest one asked for sets the rootfs's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Propagation {
    Private,
    HostToContainer,
    Bidirectional,
}

/// A host device the request exposes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRequest {
    /// Absolute.
    pub container_path: PathBuf,
    pub host_path: PathBuf,
    /// A non-empty subset of `rwm` (`rwm` when the request left it empty).
    pub permissions: String,
}

/// The cgroup limits of a container, at creation or UpdateContainerResources. `None` is
/// "not set" (CRI's 0).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resources {
    pub cpu_period: Option<u64>,
    pub cpu_quota: Option<u64>,
    pub cpu_shares: Option<u64>,
    pub memory_limit_in_bytes: Option<u64>,
    pub memory_swap_limit_in_bytes: Option<u64>,
    pub cpuset_cpus: Option<String>,
    pub cpuset_mems: Option<String>,
    pub hugepage_limits: Vec<HugepageLimit>,
    /// cgroup v2 file name (no `/`, not hidden) to value.
    pub unified: HashMap<String, String>,
    /// As asked; clamped to -1000..=1000 when the spec is written.
    pub oom_score_adj: i64,
}

/// A hugepage limit: page size (non-empty, e.g. `2MB`) and bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HugepageLimit {
    pub page_size: String,
    pub limit: u64,
}

/// What the spec builder reads of the container's pod.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodSpecContext {
    /// The pod may run privileged containers (a pod config without a security context
    /// may, as in containerd).
    pub privileged: bool,
    /// `None` takes the node's.
    pub hostname: Option<String>,
    /// The pod's user namespace mappings; `None` for the host's.
    pub user_namespace: Option<PodIdMappings>,
}
