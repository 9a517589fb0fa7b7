//! The one boundary between the service layer and the host: every step of a pod's or a
//! container's lifecycle that needs root, starts a process or changes the kernel's state
//! (namespaces, the pod's PID init, CNI plugins, cgroups, overlay mounts, the OCI runtime
//! and its monitor) goes through [`Host`]. [`System`] is the real thing and only calls
//! the [`pod`](crate::pod) and [`container`](crate::container) modules; the unit tests use
//! the recording fake of `fake/`, so that the order of steps, the rollback of a failed
//! one and the answers to the kubelet are checked without root, as `init/src/sys` does
//! for init. Plain file writes under the runtime's own folders (records, pod `/etc`
//! files) are not behind it: a temporary folder serves them in tests.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use oci_spec::runtime::Spec;

use super::container_ops::ProcessUser;
use crate::container::cgroup::CgroupStats;
use crate::container::sealed_binary::{seal, RealSealSys, SealedBinary};
use crate::container::{
    self, ContainerError, ContainerPaths, ContainerRuntimeState, ContainerStatsSample, ExecOutput,
    OciRuntime,
};
use crate::pod::{self, cni::HostPort, Cni, PodError, PodIdentity, PodNamespaces, PodPaths};

/// What the service layer asks of the host.
pub trait Host: Send + Sync {
    /// The node's hostname (an empty pod hostname takes it).
    fn node_hostname(&self) -> String;

    /// Creates the pod's namespaces (none for host network and IPC) with its hostname
    /// and sysctls.
    fn create_namespaces(
        &self,
        paths: &PodPaths,
        hostname: &str,
        host_network: bool,
        host_ipc: bool,
        sysctls: &[pod::sysctls::Sysctl],
    ) -> Result<PodNamespaces, PodError>;

    /// Starts the init of the pod-shared PID namespace.
    fn start_pid_namespace(&self, monitor: &Path, paths: &PodPaths) -> Result<(), PodError>;

    /// Whether `path` is a live namespace file.
    fn is_namespace(&self, path: &Path) -> bool;

    /// Wires the pod's network through CNI; returns its IPs, the primary first.
    fn network_setup(
        &self,
        pod_id: &str,
        netns: &Path,
        pod: &PodIdentity,
        port_mappings: &[HostPort],
    ) -> Result<Vec<IpAddr>, PodError>;

    /// Undoes [`Host::network_setup`]; idempotent, and fine without a netns.
    fn network_teardown(
        &self,
        pod_id: &str,
        netns: Option<&Path>,
        pod: &PodIdentity,
        port_mappings: &[HostPort],
    ) -> Result<(), PodError>;

    /// Whether CNI can set up pods now; the error is `reason: message`.
    fn network_status(&self) -> Result<(), String>;

    /// Unmounts and removes the pod's namespaces (and kills its PID init); idempotent.
    fn remove_namespaces(&self, paths: &PodPaths) -> Result<(), PodError>;

    /// Removes the pod's state folder after [`Host::remove_namespaces`]; idempotent.
    fn remove_pod_files(&self, paths: &PodPaths) -> Result<(), PodError>;

    /// Removes the pod's (empty) cgroup in every hierarchy; a missing one is fine.
    fn remove_cgroup(&self, cgroup: &str) -> Result<(), PodError>;

    /// Mounts the container's overlay rootfs on the image's layers (top first).
    fn mount_rootfs(
        &self,
        paths: &ContainerPaths,
        lowers: &[PathBuf],
    ) -> Result<(), ContainerError>;

    /// Creates the mount targets a user-namespaced container cannot create itself.
    fn prepare_mount_targets(&self, rootfs: &Path, spec: &Spec) -> Result<(), ContainerError>;

    /// Writes the bundle and has a new monitor run the OCI runtime's `create`.
    fn create_container(
        &self,
        paths: &ContainerPaths,
        spec: &Spec,
        runtime: &OciRuntime,
        log_path: &Path,
        monitor: &Path,
    ) -> Result<(), ContainerError>;

    /// Starts a created container.
    fn start_container(
        &self,
        paths: &ContainerPaths,
        runtime: &OciRuntime,
    ) -> Result<(), ContainerError>;

    /// Stops a container: `signal`, `timeout`, then SIGKILL; an exited one is fine.
    fn stop_container(
        &self,
        paths: &ContainerPaths,
        runtime: &OciRuntime,
        timeout: Duration,
        signal: &str,
    ) -> Result<(), ContainerError>;

    /// Kills and deletes the container, unmounts and removes its folders; idempotent.
    fn remove_container(
        &self,
        paths: &ContainerPaths,
        runtime: &OciRuntime,
    ) -> Result<(), ContainerError>;

    /// The container's process state.
    fn container_status(
        &self,
        paths: &ContainerPaths,
        runtime: &OciRuntime,
    ) -> Result<ContainerRuntimeState, ContainerError>;

    /// Whether the OCI runtime `binary` supports recursive read-only mounts.
    fn supports_recursive_read_only(&self, binary: &Path) -> bool;

    /// What to execute for the OCI runtime `binary`: its sealed copy, made at the first
    /// call, when the binary is writable; `None` runs the binary itself.
    fn runtime_exec(&self, binary: &Path) -> Option<PathBuf>;

    /// Runs `cmd` in the container as its main process runs; zero `timeout` is none.
    fn exec_sync(
        &self,
        paths: &ContainerPaths,
        runtime: &OciRuntime,
        cmd: &[String],
        timeout: Duration,
    ) -> Result<ExecOutput, ContainerError>;

    /// Applies new limits to the container and records them in its bundle.
    fn update_resources(
        &self,
        paths: &ContainerPaths,
        runtime: &OciRuntime,
        resources: &crate::container::Resources,
    ) -> Result<(), ContainerError>;

    /// Has the container's monitor reopen its log file.
    fn reopen_log(&self, paths: &ContainerPaths) -> Result<(), ContainerError>;

    /// CPU, memory and writable-layer usage of the container now.
    fn container_stats(
        &self,
        paths: &ContainerPaths,
    ) -> Result<ContainerStatsSample, ContainerError>;

    /// The identity the container's first process runs as, from its spec.
    fn process_user(&self, paths: &ContainerPaths) -> Result<ProcessUser, ContainerError>;

    /// CPU and memory of a cgroup (a pod's, or a container's below it); `None` if it
    /// has no such cgroup.
    fn cgroup_stats(&self, cgroup: &str) -> Option<CgroupStats>;
}

/// The real host: the pod and container modules, with the CNI plugins of `cni`.
pub struct System {
    /// The CNI configuration and plugins.
    pub cni: Cni,
    /// The sealed copies of the OCI runtime binaries, by binary (`None`: run it as is).
    sealed: Mutex<BTreeMap<PathBuf, Option<SealedBinary>>>,
}

impl System {
    /// The real host with the CNI plugins of `cni`.
    pub fn new(cni: Cni) -> Self {
        System {
            cni,
            sealed: Mutex::default(),
        }
    }
}

impl Host for System {
    fn node_hostname(&self) -> String {
        nix::unistd::gethostname()
            .map(|h| h.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    fn create_namespaces(
        &self,
        paths: &PodPaths,
        hostname: &str,
        host_network: bool,
        host_ipc: bool,
        sysctls: &[pod::sysctls::Sysctl],
    ) -> Result<PodNamespaces, PodError> {
        pod::create_namespaces(paths, hostname, host_network, host_ipc, sysctls)
    }

    fn start_pid_namespace(&self, monitor: &Path, paths: &PodPaths) -> Result<(), PodError> {
        pod::pidns::start(monitor, paths).map(drop)
    }

    fn is_namespace(&self, path: &Path) -> bool {
        pod::is_namespace_file(path)
    }

    fn network_setup(
        &self,
        pod_id: &str,
        netns: &Path,
        pod: &PodIdentity,
        port_mappings: &[HostPort],
    ) -> Result<Vec<IpAddr>, PodError> {
        Ok(self.cni.setup(pod_id, netns, pod, port_mappings)?.ips)
    }

    fn network_teardown(
        &self,
        pod_id: &str,
        netns: Option<&Path>,
        pod: &PodIdentity,
        port_mappings: &[HostPort],
    ) -> Result<(), PodError> {
        self.cni.teardown(pod_id, netns, pod, port_mappings)
    }

    fn network_status(&self) -> Result<(), String> {
        self.cni.status()
    }

    fn remove_namespaces(&self, paths: &PodPaths) -> Result<(), PodError> {
        pod::remove_namespaces(paths)
    }

    fn remove_pod_files(&self, paths: &PodPaths) -> Result<(), PodError> {
        pod::remove_pod_files(paths)
    }

    fn remove_cgroup(&self, cgroup: &str) -> Result<(), PodError> {
        remove_cgroup(cgroup)
    }

    fn mount_rootfs(
        &self,
        paths: &ContainerPaths,
        lowers: &[PathBuf],
    ) -> Result<(), ContainerError> {
        container::rootfs::mount_rootfs(paths, lowers)
    }

    fn prepare_mount_targets(&self, rootfs: &Path, spec: &Spec) -> Result<(), ContainerError> {
        container::rootfs::prepare_mount_targets(rootfs, spec)
    }

    fn create_container(
        &self,
        paths: &ContainerPaths,
        spec: &Spec,
        runtime: &OciRuntime,
        log_path: &Path,
        monitor: &Path,
    ) -> Result<(), ContainerError> {
        container::create(paths, spec, runtime, log_path, monitor).map(drop)
    }

    fn start_container(
        &self,
        paths: &ContainerPaths,
        runtime: &OciRuntime,
    ) -> Result<(), ContainerError> {
        container::start(paths, runtime)
    }

    fn stop_container(
        &self,
        paths: &ContainerPaths,
        runtime: &OciRuntime,
        timeout: Duration,
        signal: &str,
    ) -> Result<(), ContainerError> {
        container::stop(paths, runtime, timeout, signal)
    }

    fn remove_container(
        &self,
        paths: &ContainerPaths,
        runtime: &OciRuntime,
    ) -> Result<(), ContainerError> {
        container::remove(paths, runtime)
    }

    fn container_status(
        &self,
        paths: &ContainerPaths,
        runtime: &OciRuntime,
    ) -> Result<ContainerRuntimeState, ContainerError> {
        container::status(paths, runtime)
    }

    fn supports_recursive_read_only(&self, binary: &Path) -> bool {
        container::oci_runtime::supports_recursive_read_only(binary)
    }

    fn runtime_exec(&self, binary: &Path) -> Option<PathBuf> {
        let mut sealed = self
            .sealed
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        sealed
            .entry(binary.to_owned())
            .or_insert_with(|| match seal(binary, &RealSealSys) {
                Ok(copy) => copy,
                Err(e) => {
                    // The runtime then protects itself by copying itself at each call.
                    eprintln!(
                        "berth-runtime: warning: cannot make a sealed copy of {}: {e}; \
                         running it as is",
                        binary.display()
                    );
                    None
                }
            })
            .as_ref()
            .map(|copy| copy.path().to_owned())
    }

    fn exec_sync(
        &self,
        paths: &ContainerPaths,
        runtime: &OciRuntime,
        cmd: &[String],
        timeout: Duration,
    ) -> Result<ExecOutput, ContainerError> {
        container::exec_sync(paths, runtime, cmd, timeout)
    }

    fn update_resources(
        &self,
        paths: &ContainerPaths,
        runtime: &OciRuntime,
        resources: &crate::container::Resources,
    ) -> Result<(), ContainerError> {
        container::update_resources(paths, runtime, resources)
    }

    fn reopen_log(&self, paths: &ContainerPaths) -> Result<(), ContainerError> {
        container::reopen_log(paths)
    }

    fn container_stats(
        &self,
        paths: &ContainerPaths,
    ) -> Result<ContainerStatsSample, ContainerError> {
        container::stats(paths)
    }

    fn process_user(&self, paths: &ContainerPaths) -> Result<ProcessUser, ContainerError> {
        let (uid, gid, groups) = container::process_user(paths)?;
        Ok(ProcessUser { uid, gid, groups })
    }

    fn cgroup_stats(&self, cgroup: &str) -> Option<CgroupStats> {
        container::cgroup::CgroupFs::detect().stats(cgroup)
    }
}

/// Removes a pod's (empty) cgroup in every hierarchy: the one cgroup v2 tree, or each
/// cgroup v1 controller's. The OCI runtime removed the containers' cgroups beneath it.
fn remove_cgroup(cgroup: &str) -> Result<(), PodError> {
    let root = Path::new("/sys/fs/cgroup");
    let relative = cgroup.trim_start_matches('/');
    let mut hierarchies = vec![root.to_owned()];
    if !root.join("cgroup.controllers").exists() {
        if let Ok(entries) = std::fs::read_dir(root) {
            hierarchies.extend(entries.flatten().map(|e| e.path()));
        }
    }
    for hierarchy in hierarchies {
        let dir = hierarchy.join(relative);
        match std::fs::remove_dir(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) if e.raw_os_error() == Some(nix::libc::ENOTDIR) => {}
            Err(e) => return Err(PodError::io("remove cgroup", &dir, e)),
        }
    }
    Ok(())
}
