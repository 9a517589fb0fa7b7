//! Containers: an OCI runtime spec written from the CRI config, an overlayfs rootfs, and
//! crun (or runc) driven through a small per-container monitor process.
//!
//! The split follows what each part touches: [`spec`] is pure (CRI config in, OCI spec
//! out, unit-tested without root), [`rootfs`] mounts, [`oci_runtime`] runs the runtime
//! CLI (from the daemon's [`sealed_binary`] copy of it on a writable host), [`cgroup`]
//! reads usage, and [`lifecycle`] puts them together for the CRI calls.
//! The monitor (`berth-monitor`, logic in [`crate::monitor`]) owns the container's stdio
//! and exit status, so containers outlive a restart of the daemon: everything the daemon
//! needs to find them again is in files under the container's state directory
//! ([`ContainerPaths`]).

pub mod caps;
pub mod cgroup;
pub mod devices;
mod error;
pub mod exit;
pub mod fsutil;
pub mod inroot;
pub mod lifecycle;
pub mod mounts;
pub mod oci_runtime;
pub mod ops;
pub mod paths;
pub mod procfs;
pub mod request;
pub mod resources;
pub mod rootfs;
pub mod sealed_binary;
pub mod seccomp;
mod seccomp_default;
pub mod spec;
pub mod stop;
pub mod user;
pub mod userns;

pub use error::ContainerError;
pub use exit::ExitStatus;
pub use lifecycle::{
    create, monitor_alive, remove, start, status, ContainerRuntimeState, ContainerState,
    CreatedContainer,
};
pub use oci_runtime::{ExecOutput, OciRuntime};
pub use ops::{exec_sync, process_user, reopen_log, stats, update_resources, ContainerStatsSample};
pub use paths::ContainerPaths;
pub use request::{ContainerSpecRequest, PodSpecContext, Resources};
pub use spec::{build_spec, ImageDefaults, SandboxFiles, SandboxNamespacePaths, SpecInput};
pub use stop::stop;
