//! Container RPCs. The record is written only after the container exists in the OCI
//! runtime; a failed create unmounts and removes what it made. Process state (running,
//! exit code, times) is never stored here: it is read from the container's monitor files
//! and the OCI runtime, so it is right after a daemon restart too.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tonic::Status;

use super::records::{self, now_nanos, to_hash, ContainerRecord, PodState};
use super::{filters, pods, status, validate, Daemon};
use crate::container::{
    self, ContainerPaths, ContainerRuntimeState, ImageDefaults, SandboxFiles,
    SandboxNamespacePaths, SpecInput,
};
use crate::pod::PodPaths;
use crate::proto::v1::*;

pub(super) fn cri_state(state: container::ContainerState) -> ContainerState {
    match state {
        container::ContainerState::Created => ContainerState::ContainerCreated,
        container::ContainerState::Running => ContainerState::ContainerRunning,
        container::ContainerState::Exited => ContainerState::ContainerExited,
        container::ContainerState::Unknown => ContainerState::ContainerUnknown,
    }
}

/// `Some(path)` if `path` exists (a pod file the container bind-mounts).
fn existing(path: PathBuf) -> Option<PathBuf> {
    path.exists().then_some(path)
}

impl ContainerRecord {
    pub(super) fn metadata(&self) -> ContainerMetadata {
        ContainerMetadata {
            name: self.name.clone(),
            attempt: self.attempt,
        }
    }
}

impl Daemon {
    pub(super) fn paths(&self, id: &str) -> Result<ContainerPaths, Status> {
        ContainerPaths::new(&self.config.root, &self.config.state, id).map_err(status)
    }

    /// Finds a container by id or unique id prefix.
    fn find_container(&self, id: &str) -> Result<Option<ContainerRecord>, Status> {
        validate::non_empty(id, "container_id")?;
        if let Some(container) = self.containers.get(id) {
            return Ok(Some(container));
        }
        match self.containers.ids_with_prefix(id).as_slice() {
            [one] => Ok(self.containers.get(one)),
            [] => Ok(None),
            many => Err(validate::invalid(
                "container_id",
                &format!("{id:?} is ambiguous: {} containers match", many.len()),
            )),
        }
    }

    /// The containers a list filter selects (by id prefix, pod id prefix and labels).
    pub(super) fn containers_matching<'a>(
        &self,
        id: &'a str,
        pod_id: &'a str,
        labels: &'a HashMap<String, String>,
    ) -> impl Iterator<Item = ContainerRecord> + 'a {
        self.containers
            .all()
            .into_iter()
            .map(|(_, c)| c)
            .filter(move |c| filters::id_matches(id, &c.id))
            .filter(move |c| filters::id_matches(pod_id, &c.pod_id))
            .filter(move |c| filters::labels_match(labels, &c.labels))
    }

    pub(super) fn container_or_not_found(&self, id: &str) -> Result<ContainerRecord, Status> {
        self.find_container(id)?
            .ok_or_else(|| Status::not_found(format!("container {id} not found")))
    }

    pub(super) fn runtime_state(&self, record: &ContainerRecord) -> ContainerRuntimeState {
        let unknown = |message: String| ContainerRuntimeState {
            state: container::ContainerState::Unknown,
            pid: None,
            exit_code: 0,
            started_at: 0,
            finished_at: 0,
            reason: "Unknown".to_owned(),
            message,
        };
        let (Ok(paths), Ok(runtime)) = (
            self.paths(&record.id),
            self.oci_runtime(&record.runtime_handler),
        ) else {
            return unknown("its paths or runtime handler are invalid".to_owned());
        };
        container::status(&paths, &runtime).unwrap_or_else(|e| unknown(e.to_string()))
    }

    pub(super) fn create_container(
        &self,
        request: CreateContainerRequest,
    ) -> Result<CreateContainerResponse, Status> {
        let config = validate::required(request.config.as_ref(), "config")?;
        let metadata = validate::required(config.metadata.as_ref(), "config.metadata")?;
        validate::name(&metadata.name, "config.metadata.name")?;
        let image_spec = validate::required(config.image.as_ref(), "config.image")?;
        let image_name = validate::non_empty(&image_spec.image, "config.image.image")?;
        let pod = self.find_pod(&request.pod_sandbox_id)?.ok_or_else(|| {
            Status::not_found(format!("pod sandbox {} not found", request.pod_sandbox_id))
        })?;
        let _pod_guard = self.locks.lock(&pod.id);
        if pod.state != PodState::Ready {
            return Err(Status::failed_precondition(format!(
                "pod sandbox {} is not ready",
                pod.id
            )));
        }
        if let Some((id, _)) = self.containers.all().into_iter().find(|(_, c)| {
            c.pod_id == pod.id && c.name == metadata.name && c.attempt == metadata.attempt
        }) {
            return Err(Status::already_exists(format!(
                "container name {} attempt {} is reserved by container {id}",
                metadata.name, metadata.attempt
            )));
        }
        let image = self
            .images
            .get(image_name)
            .map_err(status)?
            .ok_or_else(|| {
                Status::not_found(format!("image {image_name} not found: pull it first"))
            })?;
        // The pod config as the pod was made; the request's copy is only a convenience.
        let sandbox: PodSandboxConfig = records::decode(&pod.config);
        let runtime = self.oci_runtime(&pod.runtime_handler)?;
        if let Some(i) = config.mounts.iter().position(|m| m.recursive_read_only) {
            let (handler, _) = self.config.runtime_for(&pod.runtime_handler).unzip();
            if !handler.is_some_and(|h| self.rro_handlers().contains(h)) {
                return Err(validate::invalid(
                    &format!("config.mounts[{i}].recursive_read_only"),
                    &format!(
                        "the OCI runtime of handler {:?} does not support recursive \
                         read-only mounts",
                        pod.runtime_handler
                    ),
                ));
            }
        }
        let id = crate::store::new_id().map_err(status)?;
        let _guard = self.locks.lock(&id);
        let paths = self.paths(&id)?;
        let mut lowers = self.images.layer_dirs(&image).map_err(status)?;
        lowers.reverse();
        let log_path = match (sandbox.log_directory.as_str(), config.log_path.as_str()) {
            (_, "") | ("", _) => PathBuf::new(),
            (dir, file) => Path::new(dir).join(file),
        };
        let pod_paths = PodPaths::new(&self.config.state, &pod.id);
        let options = pods::namespace_options(&sandbox);
        let namespaces = SandboxNamespacePaths {
            net: (!pod.host_network).then(|| pod_paths.netns()),
            ipc: (options.ipc != NamespaceMode::Node as i32).then(|| pod_paths.ipcns()),
            uts: (!pod.host_network).then(|| pod_paths.utsns()),
            pid: self.pid_namespace_to_join(config, &pod_paths)?,
        };
        let files = SandboxFiles {
            resolv_conf: existing(pod_paths.resolv_conf()),
            hostname: existing(pod_paths.hostname_file()),
            hosts: existing(pod_paths.hosts_file()),
            shm: (options.ipc != NamespaceMode::Node as i32)
                .then(|| existing(pod_paths.shm()))
                .flatten(),
        };
        let defaults = ImageDefaults {
            entrypoint: image.config.entrypoint.clone(),
            cmd: image.config.cmd.clone(),
            env: image.config.env.clone(),
            working_dir: image.config.working_dir.clone(),
            user: image.config.user.clone(),
        };
        let made = (|| {
            container::rootfs::mount_rootfs(&paths, &lowers).map_err(status)?;
            let spec = container::build_spec(&SpecInput {
                id: &id,
                config,
                sandbox: &sandbox,
                image: &defaults,
                rootfs: &paths.rootfs,
                namespaces: &namespaces,
                sandbox_files: &files,
                cgroup_parent: &pod.cgroup_parent,
                oom_score_adj_allowed: self.oom_score_adj_allowed,
            })
            .map_err(status)?;
            let user_namespace = spec.linux().as_ref().is_some_and(|l| {
                l.namespaces()
                    .iter()
                    .flatten()
                    .any(|n| n.typ() == oci_spec::runtime::LinuxNamespaceType::User)
            });
            if user_namespace {
                container::rootfs::prepare_mount_targets(&paths.rootfs, &spec).map_err(status)?;
            }
            container::create(&paths, &spec, &runtime, &log_path, &self.monitor).map_err(status)
        })();
        if let Err(e) = made {
            if let Err(cleanup) = container::remove(&paths, &runtime) {
                eprintln!(
                    "berth-runtime: container {id}: clean-up after a failed create: {cleanup}"
                );
            }
            return Err(e);
        }
        let record = ContainerRecord {
            id: id.clone(),
            pod_id: pod.id.clone(),
            name: metadata.name.clone(),
            attempt: metadata.attempt,
            image_ref: image_name.to_owned(),
            image_id: image.id.clone(),
            layers: image.layers.clone(),
            created_at: now_nanos(),
            labels: config.labels.clone().into_iter().collect(),
            annotations: config.annotations.clone().into_iter().collect(),
            log_path: log_path.display().to_string(),
            runtime_handler: pod.runtime_handler.clone(),
            config: records::encode(config),
        };
        if let Err(e) = self.containers.put(&id, &record) {
            let _ = container::remove(&paths, &runtime);
            return Err(status(e));
        }
        self.emit(&record, ContainerEventType::ContainerCreatedEvent);
        Ok(CreateContainerResponse { container_id: id })
    }

    /// The PID namespace a container joins: the pod's for POD (if the pod made one),
    /// the running target container's for TARGET; `None` otherwise.
    fn pid_namespace_to_join(
        &self,
        config: &ContainerConfig,
        pod_paths: &PodPaths,
    ) -> Result<Option<PathBuf>, Status> {
        const FIELD: &str = "config.linux.security_context.namespace_options";
        let Some(options) = config
            .linux
            .as_ref()
            .and_then(|l| l.security_context.as_ref())
            .and_then(|s| s.namespace_options.as_ref())
        else {
            return Ok(None);
        };
        match NamespaceMode::try_from(options.pid) {
            Ok(NamespaceMode::Pod) => {
                let ns = pod_paths.pidns();
                if !crate::pod::is_namespace_file(&ns) {
                    return Err(validate::invalid(
                        &format!("{FIELD}.pid"),
                        "POD, but the pod sandbox has no shared PID namespace (its \
                         config did not ask for namespace_options.pid POD)",
                    ));
                }
                Ok(Some(ns))
            }
            Ok(NamespaceMode::Target) => {
                let field = format!("{FIELD}.target_id");
                let target = self
                    .find_container(&options.target_id)
                    .map_err(|_| validate::invalid(&field, "is not a valid container id"))?
                    .ok_or_else(|| {
                        validate::invalid(&field, &format!("{:?} not found", options.target_id))
                    })?;
                let state = self.runtime_state(&target);
                let pid = state
                    .pid
                    .filter(|_| state.state == container::ContainerState::Running)
                    .ok_or_else(|| {
                        Status::failed_precondition(format!(
                            "{field}: container {} is not running",
                            target.id
                        ))
                    })?;
                Ok(Some(PathBuf::from(format!("/proc/{pid}/ns/pid"))))
            }
            _ => Ok(None),
        }
    }

    pub(super) fn start_container(
        &self,
        request: StartContainerRequest,
    ) -> Result<StartContainerResponse, Status> {
        let record = self.container_or_not_found(&request.container_id)?;
        let _guard = self.locks.lock(&record.id);
        let runtime = self.oci_runtime(&record.runtime_handler)?;
        container::start(&self.paths(&record.id)?, &runtime).map_err(status)?;
        self.emit(&record, ContainerEventType::ContainerStartedEvent);
        Ok(StartContainerResponse {})
    }

    /// Stops `id` (SIGTERM or the image's stop signal, SIGKILL after `timeout` seconds);
    /// an unknown or exited container is fine.
    pub(super) fn stop_container_now(&self, id: &str, timeout: i64) -> Result<(), Status> {
        let Some(record) = self.containers.get(id) else {
            return Ok(());
        };
        let _guard = self.locks.lock(&record.id);
        let runtime = self.oci_runtime(&record.runtime_handler)?;
        let stop_signal = self
            .images
            .get(&record.image_id)
            .ok()
            .flatten()
            .map(|image| image.config.stop_signal)
            .unwrap_or_default();
        let timeout = Duration::from_secs(u64::try_from(timeout).unwrap_or(0));
        container::stop(&self.paths(&record.id)?, &runtime, timeout, &stop_signal)
            .map_err(status)?;
        self.emit(&record, ContainerEventType::ContainerStoppedEvent);
        Ok(())
    }

    pub(super) fn stop_container(
        &self,
        request: StopContainerRequest,
    ) -> Result<StopContainerResponse, Status> {
        if let Some(record) = self.find_container(&request.container_id)? {
            self.stop_container_now(&record.id, request.timeout)?;
        }
        Ok(StopContainerResponse {})
    }

    /// Removes `id` (killing it if it runs); an unknown container is fine.
    pub(super) fn remove_container_now(&self, id: &str) -> Result<(), Status> {
        let Some(record) = self.containers.get(id) else {
            return Ok(());
        };
        let _guard = self.locks.lock(&record.id);
        let runtime = self.oci_runtime(&record.runtime_handler)?;
        container::remove(&self.paths(&record.id)?, &runtime).map_err(status)?;
        self.containers.remove(&record.id).map_err(status)?;
        self.emit(&record, ContainerEventType::ContainerDeletedEvent);
        // Layers of images removed while this container used them can go now.
        let in_use = self.layers_in_use();
        self.images
            .gc(&|layer| in_use.contains(layer))
            .map_err(status)?;
        Ok(())
    }

    pub(super) fn remove_container(
        &self,
        request: RemoveContainerRequest,
    ) -> Result<RemoveContainerResponse, Status> {
        if let Some(record) = self.find_container(&request.container_id)? {
            self.remove_container_now(&record.id)?;
        }
        Ok(RemoveContainerResponse {})
    }

    pub(super) fn exec_sync(&self, request: ExecSyncRequest) -> Result<ExecSyncResponse, Status> {
        if request.cmd.is_empty() {
            return Err(validate::invalid("cmd", "must not be empty"));
        }
        let record = self.container_or_not_found(&request.container_id)?;
        let runtime = self.oci_runtime(&record.runtime_handler)?;
        let timeout = Duration::from_secs(u64::try_from(request.timeout).unwrap_or(0));
        let output =
            container::exec_sync(&self.paths(&record.id)?, &runtime, &request.cmd, timeout)
                .map_err(status)?;
        Ok(ExecSyncResponse {
            stdout: output.stdout,
            stderr: output.stderr,
            exit_code: output.exit_code,
        })
    }

    pub(super) fn update_container_resources(
        &self,
        request: UpdateContainerResourcesRequest,
    ) -> Result<UpdateContainerResourcesResponse, Status> {
        let record = self.container_or_not_found(&request.container_id)?;
        let _guard = self.locks.lock(&record.id);
        let resources = validate::required(request.linux.as_ref(), "linux")?;
        let runtime = self.oci_runtime(&record.runtime_handler)?;
        container::update_resources(&self.paths(&record.id)?, &runtime, resources)
            .map_err(status)?;
        // Keep the new limits in the record, so ContainerStatus reports them.
        let mut config: ContainerConfig = records::decode(&record.config);
        config.linux.get_or_insert_with(Default::default).resources = Some(resources.clone());
        self.containers
            .update(&record.id, |c| c.config = records::encode(&config))
            .map_err(status)?;
        Ok(UpdateContainerResourcesResponse {})
    }

    pub(super) fn reopen_container_log(
        &self,
        request: ReopenContainerLogRequest,
    ) -> Result<ReopenContainerLogResponse, Status> {
        let record = self.container_or_not_found(&request.container_id)?;
        container::reopen_log(&self.paths(&record.id)?).map_err(status)?;
        Ok(ReopenContainerLogResponse {})
    }

    pub(super) fn stats_of(&self, record: &ContainerRecord) -> Result<ContainerStats, Status> {
        let sample = container::stats(&self.paths(&record.id)?).map_err(status)?;
        let value = |value| Some(UInt64Value { value });
        // Only the mountpoint: fs_info would walk the whole store on every stats call.
        let mountpoint = self
            .images
            .mountpoint()
            .map(|m| m.display().to_string())
            .unwrap_or_default();
        Ok(ContainerStats {
            attributes: Some(ContainerAttributes {
                id: record.id.clone(),
                metadata: Some(record.metadata()),
                labels: to_hash(&record.labels),
                annotations: to_hash(&record.annotations),
            }),
            cpu: Some(CpuUsage {
                timestamp: sample.timestamp_nanos,
                usage_core_nano_seconds: value(sample.cgroup.cpu_usage_nanos),
                usage_nano_cores: None,
            }),
            memory: Some(MemoryUsage {
                timestamp: sample.timestamp_nanos,
                working_set_bytes: value(sample.cgroup.memory_working_set_bytes),
                usage_bytes: value(sample.cgroup.memory_usage_bytes),
                rss_bytes: value(sample.cgroup.memory_rss_bytes),
                ..Default::default()
            }),
            writable_layer: Some(FilesystemUsage {
                timestamp: sample.timestamp_nanos,
                fs_id: Some(FilesystemIdentifier { mountpoint }),
                used_bytes: value(sample.writable_layer_bytes),
                inodes_used: value(sample.writable_layer_inodes),
            }),
            swap: None,
        })
    }

    pub(super) fn container_stats(
        &self,
        request: ContainerStatsRequest,
    ) -> Result<ContainerStatsResponse, Status> {
        let record = self.container_or_not_found(&request.container_id)?;
        Ok(ContainerStatsResponse {
            stats: Some(self.stats_of(&record)?),
        })
    }

    pub(super) fn list_container_stats(
        &self,
        request: ListContainerStatsRequest,
    ) -> Result<ListContainerStatsResponse, Status> {
        let filter = request.filter.unwrap_or_default();
        let stats = self
            .containers_matching(&filter.id, &filter.pod_sandbox_id, &filter.label_selector)
            .filter(|c| self.runtime_state(c).state == container::ContainerState::Running)
            // A container that exits between the listing and the read is skipped.
            .filter_map(|c| self.stats_of(&c).ok())
            .collect();
        Ok(ListContainerStatsResponse { stats })
    }
}
