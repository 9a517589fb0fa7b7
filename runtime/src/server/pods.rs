//! Pod sandbox RPCs. A pod is recorded NotReady before anything is made, so a daemon
//! killed half-way through `RunPodSandbox` finds the record at start and the kubelet's
//! `StopPodSandbox`/`RemovePodSandbox` clean up what exists. A failed run undoes its steps
//! in reverse and leaves no record.

use tonic::Status;

use super::records::{self, now_nanos, to_hash, PodRecord, PodState};
use super::{filters, status, validate, Daemon};
use crate::pod::{self, PodIdentity, PodPaths};
use crate::proto::v1::*;

impl PodRecord {
    fn identity(&self) -> PodIdentity {
        PodIdentity {
            name: self.name.clone(),
            namespace: self.namespace.clone(),
            uid: self.uid.clone(),
        }
    }

    fn metadata(&self) -> PodSandboxMetadata {
        PodSandboxMetadata {
            name: self.name.clone(),
            uid: self.uid.clone(),
            namespace: self.namespace.clone(),
            attempt: self.attempt,
        }
    }

    fn cri_state(&self) -> PodSandboxState {
        match self.state {
            PodState::Ready => PodSandboxState::SandboxReady,
            PodState::NotReady => PodSandboxState::SandboxNotready,
        }
    }
}

/// The namespace modes of a pod config (missing parts mean POD, the CRI default).
pub(super) fn namespace_options(config: &PodSandboxConfig) -> NamespaceOption {
    config
        .linux
        .as_ref()
        .and_then(|l| l.security_context.as_ref())
        .and_then(|s| s.namespace_options.clone())
        .unwrap_or_default()
}

/// Whether the pod asks for one PID namespace shared by its containers: only when the
/// namespace options are given and say POD (the kubelet's `shareProcessNamespace`); a
/// pod without options gets none, so it costs no init process.
fn shares_pid_namespace(config: &PodSandboxConfig) -> bool {
    config
        .linux
        .as_ref()
        .and_then(|l| l.security_context.as_ref())
        .and_then(|s| s.namespace_options.as_ref())
        .is_some_and(|o| o.pid == NamespaceMode::Pod as i32)
}

/// Removes a pod's (empty) cgroup in every hierarchy: the one cgroup v2 tree, or each
/// cgroup v1 controller's. The OCI runtime removed the containers' cgroups beneath it.
fn remove_cgroup(cgroup: &str) -> Result<(), Status> {
    let root = std::path::Path::new("/sys/fs/cgroup");
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
            Err(e) => {
                return Err(Status::internal(format!(
                    "cannot remove cgroup {}: {e}",
                    dir.display()
                )))
            }
        }
    }
    Ok(())
}

impl Daemon {
    /// The cgroup a pod gets when the kubelet names no parent.
    fn own_cgroup(&self, id: &str) -> String {
        format!("{}/pod-{id}", self.config.cgroup_parent)
    }

    /// Finds a pod by id or unique id prefix.
    pub(super) fn find_pod(&self, id: &str) -> Result<Option<PodRecord>, Status> {
        validate::non_empty(id, "pod_sandbox_id")?;
        if let Some(pod) = self.pods.get(id) {
            return Ok(Some(pod));
        }
        match self.pods.ids_with_prefix(id).as_slice() {
            [one] => Ok(self.pods.get(one)),
            [] => Ok(None),
            many => Err(validate::invalid(
                "pod_sandbox_id",
                &format!("{id:?} is ambiguous: {} pods match", many.len()),
            )),
        }
    }

    pub(super) fn run_pod(
        &self,
        request: RunPodSandboxRequest,
    ) -> Result<RunPodSandboxResponse, Status> {
        let config = validate::required(request.config.as_ref(), "config")?;
        let metadata = validate::required(config.metadata.as_ref(), "config.metadata")?;
        validate::name(&metadata.name, "config.metadata.name")?;
        validate::name(&metadata.namespace, "config.metadata.namespace")?;
        validate::non_empty(&metadata.uid, "config.metadata.uid")?;
        let (handler, _) = self
            .config
            .runtime_for(&request.runtime_handler)
            .ok_or_else(|| {
                validate::invalid(
                    "runtime_handler",
                    &format!("unknown handler {:?}", request.runtime_handler),
                )
            })?;
        let handler = handler.to_owned();
        let options = namespace_options(config);
        let host_network = options.network == NamespaceMode::Node as i32;
        let host_ipc = options.ipc == NamespaceMode::Node as i32;
        crate::container::userns::pod_mappings(options.userns_options.as_ref()).map_err(status)?;
        let sysctls = match &config.linux {
            Some(linux) => {
                pod::sysctls::check(&linux.sysctls, host_network, host_ipc).map_err(status)?
            }
            None => Vec::new(),
        };
        if let Some((id, _)) = self.pods.all().into_iter().find(|(_, p)| {
            p.name == metadata.name
                && p.namespace == metadata.namespace
                && p.uid == metadata.uid
                && p.attempt == metadata.attempt
        }) {
            return Err(Status::already_exists(format!(
                "pod name {}_{}_{}_{} is reserved by pod {id}",
                metadata.name, metadata.namespace, metadata.uid, metadata.attempt
            )));
        }
        let id = crate::store::new_id().map_err(status)?;
        let _guard = self.locks.lock(&id);
        let cgroup_parent = config
            .linux
            .as_ref()
            .map(|l| l.cgroup_parent.clone())
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| self.own_cgroup(&id));
        let mut record = PodRecord {
            id: id.clone(),
            name: metadata.name.clone(),
            namespace: metadata.namespace.clone(),
            uid: metadata.uid.clone(),
            attempt: metadata.attempt,
            state: PodState::NotReady,
            created_at: now_nanos(),
            runtime_handler: handler,
            labels: config.labels.clone().into_iter().collect(),
            annotations: config.annotations.clone().into_iter().collect(),
            host_network,
            ips: Vec::new(),
            cgroup_parent,
            config: records::encode(config),
        };
        self.pods.put(&id, &record).map_err(status)?;
        match self.set_up_pod(&record, config, host_network, host_ipc, &sysctls) {
            Ok(ips) => {
                record.ips = ips;
                record.state = PodState::Ready;
                self.pods.put(&id, &record).map_err(status)?;
                Ok(RunPodSandboxResponse { pod_sandbox_id: id })
            }
            Err(e) => {
                if let Err(cleanup) = self.tear_down_pod(&record) {
                    eprintln!("berth-runtime: pod {id}: clean-up after a failed run: {cleanup}");
                }
                let _ = self.pods.remove(&id);
                Err(e)
            }
        }
    }

    /// Namespaces, /etc files and network; returns the pod's IPs.
    fn set_up_pod(
        &self,
        record: &PodRecord,
        config: &PodSandboxConfig,
        host_network: bool,
        host_ipc: bool,
        sysctls: &[pod::sysctls::Sysctl],
    ) -> Result<Vec<String>, Status> {
        let paths = PodPaths::new(&self.config.state, &record.id);
        // An empty hostname takes the node's, as containerd does (the kubelet leaves it
        // empty for host-network pods, critest for every pod).
        let hostname = if host_network || config.hostname.is_empty() {
            nix::unistd::gethostname()
                .map(|h| h.to_string_lossy().into_owned())
                .unwrap_or_default()
        } else {
            config.hostname.clone()
        };
        let namespaces = pod::create_namespaces(&paths, &hostname, host_network, host_ipc, sysctls)
            .map_err(status)?;
        if shares_pid_namespace(config) {
            pod::pidns::start(&self.monitor, &paths).map_err(status)?;
        }
        pod::write_pod_files(&paths, &hostname, config.dns_config.as_ref(), host_network)
            .map_err(status)?;
        let Some(netns) = namespaces.net else {
            return Ok(Vec::new());
        };
        let result = self
            .cni
            .setup(
                &record.id,
                &netns,
                &record.identity(),
                &config.port_mappings,
            )
            .map_err(status)?;
        if let Some(ip) = result.ips.first() {
            pod::add_pod_ip_to_hosts(&paths, *ip, &hostname).map_err(status)?;
        }
        Ok(result.ips.iter().map(|ip| ip.to_string()).collect())
    }

    /// Network, namespaces, then files; each step is idempotent.
    fn tear_down_pod(&self, record: &PodRecord) -> Result<(), Status> {
        let paths = PodPaths::new(&self.config.state, &record.id);
        let config: PodSandboxConfig = records::decode(&record.config);
        if !record.host_network {
            let netns = paths.netns();
            let netns = netns.exists().then_some(netns.as_path());
            self.cni
                .teardown(&record.id, netns, &record.identity(), &config.port_mappings)
                .map_err(status)?;
        }
        pod::remove_namespaces(&paths).map_err(status)?;
        Ok(())
    }

    pub(super) fn stop_pod(
        &self,
        request: StopPodSandboxRequest,
    ) -> Result<StopPodSandboxResponse, Status> {
        let Some(pod) = self.find_pod(&request.pod_sandbox_id)? else {
            return Ok(StopPodSandboxResponse {});
        };
        let _guard = self.locks.lock(&pod.id);
        for (id, container) in self.containers.all() {
            if container.pod_id == pod.id {
                self.stop_container_now(&id, 0)?;
            }
        }
        self.tear_down_pod(&pod)?;
        self.pods
            .update(&pod.id, |p| p.state = PodState::NotReady)
            .map_err(status)?;
        Ok(StopPodSandboxResponse {})
    }

    pub(super) fn remove_pod(
        &self,
        request: RemovePodSandboxRequest,
    ) -> Result<RemovePodSandboxResponse, Status> {
        let Some(pod) = self.find_pod(&request.pod_sandbox_id)? else {
            return Ok(RemovePodSandboxResponse {});
        };
        let _guard = self.locks.lock(&pod.id);
        for (id, container) in self.containers.all() {
            if container.pod_id == pod.id {
                self.remove_container_now(&id)?;
            }
        }
        self.tear_down_pod(&pod)?;
        let paths = PodPaths::new(&self.config.state, &pod.id);
        pod::remove_pod_files(&paths).map_err(status)?;
        if pod.cgroup_parent == self.own_cgroup(&pod.id) {
            remove_cgroup(&pod.cgroup_parent)?;
        }
        self.pods.remove(&pod.id).map_err(status)?;
        Ok(RemovePodSandboxResponse {})
    }

    pub(super) fn pod_sandbox_status(&self, pod: &PodRecord) -> PodSandboxStatus {
        let config: PodSandboxConfig = records::decode(&pod.config);
        let mut ips = pod.ips.iter();
        let network = (!pod.host_network).then(|| PodSandboxNetworkStatus {
            ip: ips.next().cloned().unwrap_or_default(),
            additional_ips: ips.map(|ip| PodIp { ip: ip.clone() }).collect(),
        });
        PodSandboxStatus {
            id: pod.id.clone(),
            metadata: Some(pod.metadata()),
            state: pod.cri_state() as i32,
            created_at: pod.created_at,
            network,
            linux: Some(LinuxPodSandboxStatus {
                namespaces: Some(Namespace {
                    options: Some(namespace_options(&config)),
                }),
            }),
            labels: to_hash(&pod.labels),
            annotations: to_hash(&pod.annotations),
            runtime_handler: pod.runtime_handler.clone(),
        }
    }

    pub(super) fn pod_status(
        &self,
        request: PodSandboxStatusRequest,
    ) -> Result<PodSandboxStatusResponse, Status> {
        let pod = self.find_pod(&request.pod_sandbox_id)?.ok_or_else(|| {
            Status::not_found(format!("pod sandbox {} not found", request.pod_sandbox_id))
        })?;
        let mut info = std::collections::HashMap::new();
        if request.verbose {
            let paths = PodPaths::new(&self.config.state, &pod.id);
            let details = serde_json::json!({
                "cgroupParent": pod.cgroup_parent,
                "netns": (!pod.host_network).then(|| paths.netns()),
                "hostNetwork": pod.host_network,
            });
            info.insert("info".to_owned(), details.to_string());
        }
        Ok(PodSandboxStatusResponse {
            status: Some(self.pod_sandbox_status(&pod)),
            info,
            containers_statuses: Vec::new(),
            timestamp: now_nanos(),
        })
    }

    pub(super) fn list_pods(
        &self,
        request: ListPodSandboxRequest,
    ) -> Result<ListPodSandboxResponse, Status> {
        let filter = request.filter.unwrap_or_default();
        let items = self
            .pods
            .all()
            .into_iter()
            .map(|(_, pod)| pod)
            .filter(|pod| filters::id_matches(&filter.id, &pod.id))
            .filter(|pod| {
                filter
                    .state
                    .as_ref()
                    .is_none_or(|s| s.state == pod.cri_state() as i32)
            })
            .filter(|pod| filters::labels_match(&filter.label_selector, &pod.labels))
            .map(|pod| PodSandbox {
                id: pod.id.clone(),
                metadata: Some(pod.metadata()),
                state: pod.cri_state() as i32,
                created_at: pod.created_at,
                labels: to_hash(&pod.labels),
                annotations: to_hash(&pod.annotations),
                runtime_handler: pod.runtime_handler.clone(),
            })
            .collect();
        Ok(ListPodSandboxResponse { items })
    }
}
