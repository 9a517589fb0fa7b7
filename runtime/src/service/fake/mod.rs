//! A recording fake of [`Host`] for the service layer's tests: it records every call in
//! order, keeps the few facts the service reads back (which namespaces are live, which
//! containers were created, started and stopped), and fails a chosen step once with the
//! error the real host would give, so rollback paths are tested without root.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use oci_spec::runtime::Spec;

mod call;

use super::container_ops::ProcessUser;
use super::Host;
use crate::container::cgroup::CgroupStats;
use crate::container::{
    ContainerError, ContainerPaths, ContainerRuntimeState, ContainerState, ContainerStatsSample,
    ExecOutput, OciRuntime,
};
use crate::pod::{cni::HostPort, sysctls::Sysctl, PodError, PodIdentity, PodNamespaces, PodPaths};

pub use call::Call;

#[derive(Default)]
struct State {
    calls: Vec<Call>,
    fail: Option<&'static str>,
    /// Live namespace files.
    namespaces: Vec<PathBuf>,
    containers: BTreeMap<String, ContainerState>,
}

/// The fake host.
#[derive(Default)]
pub struct Fake {
    state: Mutex<State>,
}

/// The pod id in a pod's paths (its folder's name).
fn pod_id(paths: &PodPaths) -> String {
    paths
        .dir()
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

impl Fake {
    /// Every call so far.
    pub fn calls(&self) -> Vec<Call> {
        self.lock().calls.clone()
    }

    /// The kinds of the calls so far, in order.
    pub fn ops(&self) -> Vec<&'static str> {
        self.lock().calls.iter().map(Call::op).collect()
    }

    /// Makes the next call of kind `op` fail.
    pub fn fail_next(&self, op: &'static str) {
        self.lock().fail = Some(op);
    }

    /// Forgets the calls so far.
    pub fn clear(&self) {
        self.lock().calls.clear();
    }

    /// The state the fake OCI runtime has for container `id`.
    pub fn container_state(&self, id: &str) -> Option<ContainerState> {
        self.lock().containers.get(id).copied()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records `call`; `Err(())` if it is the step chosen to fail.
    fn record(&self, call: Call) -> Result<(), ()> {
        let mut state = self.lock();
        let op = call.op();
        state.calls.push(call);
        if state.fail == Some(op) {
            state.fail = None;
            return Err(());
        }
        Ok(())
    }

    fn pod_step(&self, call: Call, path: &Path) -> Result<(), PodError> {
        self.record(call).map_err(|()| PodError::Sys {
            op: "fake failure at",
            path: path.to_path_buf(),
            source: nix::errno::Errno::EPERM,
        })
    }

    fn container_step(&self, call: Call, path: &Path) -> Result<(), ContainerError> {
        self.record(call).map_err(|()| {
            ContainerError::io(
                "fake failure at",
                path,
                std::io::Error::from_raw_os_error(1),
            )
        })
    }
}

impl Host for Fake {
    fn node_hostname(&self) -> String {
        "node-1".to_owned()
    }

    fn create_namespaces(
        &self,
        paths: &PodPaths,
        hostname: &str,
        host_network: bool,
        host_ipc: bool,
        sysctls: &[Sysctl],
    ) -> Result<PodNamespaces, PodError> {
        let call = Call::CreateNamespaces {
            pod: pod_id(paths),
            hostname: hostname.to_owned(),
            host_network,
            sysctls: sysctls.len(),
        };
        self.pod_step(call, &paths.ns_dir())?;
        std::fs::create_dir_all(paths.ns_dir())
            .map_err(|e| PodError::io("create", paths.ns_dir(), e))?;
        let namespaces = PodNamespaces {
            net: (!host_network).then(|| paths.netns()),
            ipc: (!host_ipc).then(|| paths.ipcns()),
            uts: (!host_network).then(|| paths.utsns()),
        };
        let mut state = self.lock();
        for ns in [&namespaces.net, &namespaces.ipc, &namespaces.uts]
            .into_iter()
            .flatten()
        {
            state.namespaces.push(ns.clone());
        }
        Ok(namespaces)
    }

    fn start_pid_namespace(&self, _monitor: &Path, paths: &PodPaths) -> Result<(), PodError> {
        self.pod_step(
            Call::StartPidNamespace { pod: pod_id(paths) },
            &paths.pidns(),
        )?;
        self.lock().namespaces.push(paths.pidns());
        Ok(())
    }

    fn is_namespace(&self, path: &Path) -> bool {
        self.lock().namespaces.iter().any(|ns| ns == path)
    }

    fn network_setup(
        &self,
        pod_id: &str,
        netns: &Path,
        _pod: &PodIdentity,
        port_mappings: &[HostPort],
    ) -> Result<Vec<IpAddr>, PodError> {
        let call = Call::NetworkSetup {
            pod: pod_id.to_owned(),
            ports: port_mappings.len(),
        };
        self.pod_step(call, netns)?;
        Ok(vec![
            IpAddr::from([10, 88, 0, 2]),
            IpAddr::from([0xfd00, 0, 0, 0, 0, 0, 0, 2]),
        ])
    }

    fn network_teardown(
        &self,
        pod_id: &str,
        netns: Option<&Path>,
        _pod: &PodIdentity,
        _port_mappings: &[HostPort],
    ) -> Result<(), PodError> {
        let path = netns.map(Path::to_path_buf).unwrap_or_default();
        self.pod_step(
            Call::NetworkTeardown {
                pod: pod_id.to_owned(),
            },
            &path,
        )
    }

    fn network_status(&self) -> Result<(), String> {
        Ok(())
    }

    fn remove_namespaces(&self, paths: &PodPaths) -> Result<(), PodError> {
        self.pod_step(
            Call::RemoveNamespaces { pod: pod_id(paths) },
            &paths.ns_dir(),
        )?;
        let ns_dir = paths.ns_dir();
        self.lock().namespaces.retain(|ns| !ns.starts_with(&ns_dir));
        Ok(())
    }

    fn remove_pod_files(&self, paths: &PodPaths) -> Result<(), PodError> {
        self.pod_step(Call::RemovePodFiles { pod: pod_id(paths) }, paths.dir())?;
        match std::fs::remove_dir_all(paths.dir()) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(PodError::io("remove", paths.dir(), e))
            }
            _ => Ok(()),
        }
    }

    fn remove_cgroup(&self, cgroup: &str) -> Result<(), PodError> {
        self.pod_step(
            Call::RemoveCgroup {
                cgroup: cgroup.to_owned(),
            },
            Path::new(cgroup),
        )
    }

    fn mount_rootfs(
        &self,
        paths: &ContainerPaths,
        lowers: &[PathBuf],
    ) -> Result<(), ContainerError> {
        let call = Call::MountRootfs {
            container: paths.id.clone(),
            lowers: lowers.len(),
        };
        self.container_step(call, &paths.rootfs)?;
        std::fs::create_dir_all(&paths.rootfs)
            .map_err(|e| ContainerError::io("create", &paths.rootfs, e))
    }

    fn prepare_mount_targets(&self, rootfs: &Path, _spec: &Spec) -> Result<(), ContainerError> {
        let container = rootfs.parent().and_then(|p| p.file_name());
        let container = container
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        self.container_step(Call::PrepareMountTargets { container }, rootfs)
    }

    fn create_container(
        &self,
        paths: &ContainerPaths,
        _spec: &Spec,
        _runtime: &OciRuntime,
        _log_path: &Path,
        _monitor: &Path,
    ) -> Result<(), ContainerError> {
        self.container_step(
            Call::CreateContainer {
                container: paths.id.clone(),
            },
            &paths.bundle,
        )?;
        self.lock()
            .containers
            .insert(paths.id.clone(), ContainerState::Created);
        Ok(())
    }

    fn start_container(
        &self,
        paths: &ContainerPaths,
        _runtime: &OciRuntime,
    ) -> Result<(), ContainerError> {
        self.container_step(
            Call::StartContainer {
                container: paths.id.clone(),
            },
            &paths.bundle,
        )?;
        match self.lock().containers.get_mut(&paths.id) {
            Some(state @ ContainerState::Created) => {
                *state = ContainerState::Running;
                Ok(())
            }
            Some(_) => Err(ContainerError::FailedPrecondition {
                id: paths.id.clone(),
                reason: "is not created".into(),
            }),
            None => Err(ContainerError::NotFound {
                id: paths.id.clone(),
            }),
        }
    }

    fn stop_container(
        &self,
        paths: &ContainerPaths,
        _runtime: &OciRuntime,
        timeout: Duration,
        signal: &str,
    ) -> Result<(), ContainerError> {
        let call = Call::StopContainer {
            container: paths.id.clone(),
            timeout,
            signal: signal.to_owned(),
        };
        self.container_step(call, &paths.bundle)?;
        if let Some(state) = self.lock().containers.get_mut(&paths.id) {
            *state = ContainerState::Exited;
        }
        Ok(())
    }

    fn remove_container(
        &self,
        paths: &ContainerPaths,
        _runtime: &OciRuntime,
    ) -> Result<(), ContainerError> {
        self.container_step(
            Call::RemoveContainer {
                container: paths.id.clone(),
            },
            &paths.bundle,
        )?;
        self.lock().containers.remove(&paths.id);
        Ok(())
    }

    fn container_status(
        &self,
        paths: &ContainerPaths,
        _runtime: &OciRuntime,
    ) -> Result<ContainerRuntimeState, ContainerError> {
        let state = self
            .container_state(&paths.id)
            .ok_or_else(|| ContainerError::NotFound {
                id: paths.id.clone(),
            })?;
        Ok(ContainerRuntimeState {
            state,
            pid: (state == ContainerState::Running).then_some(4242),
            exit_code: 0,
            started_at: 0,
            finished_at: 0,
            reason: String::new(),
            message: String::new(),
        })
    }

    fn supports_recursive_read_only(&self, _binary: &Path) -> bool {
        true
    }

    fn runtime_exec(&self, _binary: &Path) -> Option<PathBuf> {
        None
    }

    fn exec_sync(
        &self,
        paths: &ContainerPaths,
        _runtime: &OciRuntime,
        cmd: &[String],
        timeout: Duration,
    ) -> Result<ExecOutput, ContainerError> {
        let call = Call::ExecSync {
            container: paths.id.clone(),
            cmd: cmd.to_vec(),
            timeout,
        };
        self.container_step(call, &paths.bundle)?;
        Ok(ExecOutput {
            stdout: cmd.join(" ").into_bytes(),
            stderr: Vec::new(),
            exit_code: 0,
        })
    }

    fn update_resources(
        &self,
        paths: &ContainerPaths,
        _runtime: &OciRuntime,
        resources: &crate::container::Resources,
    ) -> Result<(), ContainerError> {
        let call = Call::UpdateResources {
            container: paths.id.clone(),
            memory_limit: resources.memory_limit_in_bytes,
        };
        self.container_step(call, &paths.bundle)
    }

    fn reopen_log(&self, paths: &ContainerPaths) -> Result<(), ContainerError> {
        let call = Call::ReopenLog {
            container: paths.id.clone(),
        };
        self.container_step(call, &paths.bundle)
    }

    /// Stats of the fake are zero, taken at time 1; only a known container has any.
    fn container_stats(
        &self,
        paths: &ContainerPaths,
    ) -> Result<ContainerStatsSample, ContainerError> {
        self.container_state(&paths.id)
            .map(|_| ContainerStatsSample {
                timestamp_nanos: 1,
                ..Default::default()
            })
            .ok_or_else(|| ContainerError::NotFound {
                id: paths.id.clone(),
            })
    }

    /// Every container of the fake runs as uid 1000, gid 1000 with group 10.
    fn process_user(&self, paths: &ContainerPaths) -> Result<ProcessUser, ContainerError> {
        self.container_state(&paths.id)
            .map(|_| ProcessUser {
                uid: 1000,
                gid: 1000,
                groups: vec![1000, 10],
            })
            .ok_or_else(|| ContainerError::NotFound {
                id: paths.id.clone(),
            })
    }

    /// The fake has no cgroups.
    fn cgroup_stats(&self, _cgroup: &str) -> Option<CgroupStats> {
        None
    }
}
