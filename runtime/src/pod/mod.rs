//! Pod sandboxes without a pause container: the namespaces a pod's containers join, the
//! files they mount (`/etc/resolv.conf`, `/etc/hostname`, `/etc/hosts`) and the network
//! wired through the standard CNI plugins.
//!
//! A pod's network, IPC and UTS namespaces are held open by bind mounts of their
//! `/proc/.../ns/*` files under `state/pods/<id>/ns/`, the way `ip netns add` does, so no
//! process has to live for them ([`namespaces`]). Containers join them by path in their
//! OCI spec. [`files`] writes the per-pod files, [`cni`] runs the plugins, and [`filter`]
//! answers `ListPodSandbox` filters. Everything here is blocking: the gRPC server calls it
//! from `spawn_blocking`.

pub mod cni;
mod error;
pub mod files;
pub mod namespaces;
mod paths;
pub mod pidns;
mod sys;
pub mod sysctls;

pub use cni::{Cni, CniConfig, NetworkResult, PodIdentity};
pub use error::PodError;
pub use files::{add_pod_ip_to_hosts, remove_pod_files, write_pod_files, PodDns};
pub use namespaces::{create_namespaces, remove_namespaces, PodNamespaces};
pub use paths::PodPaths;
pub(crate) use sys::is_namespace_file;

/// Replaces a pod file atomically. Pod files and the CNI cache live in the state folder,
/// so without fsync (see [`crate::atomic_file::write_volatile`]).
pub(crate) fn write_file(path: &std::path::Path, data: &[u8]) -> Result<(), PodError> {
    crate::atomic_file::write_volatile(path, data).map_err(|e| PodError::io("write", path, e))
}
