//! The container lifecycle: create, start, stop, remove. The record is written only after
//! the container exists in the OCI runtime; a failed create unmounts and removes what it
//! made. Process state (running, exit code, times) is never stored in the record: it is
//! read through the [`Host`](super::Host) from the monitor's files and the OCI runtime, so
//! it is right after a daemon restart too.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::pods::check_id;
use super::records::{now_nanos, ContainerRecord, PodState};
use super::{ContainerEvent, ContainerSpec, Daemon, ServiceError};
use crate::container::request::{MountAccess, PidMode};
use crate::container::{
    self, ContainerPaths, ContainerRuntimeState, ImageDefaults, SandboxFiles,
    SandboxNamespacePaths, SpecInput,
};
use crate::pod::PodPaths;

/// `Some(path)` if `path` exists (a pod file the container bind-mounts).
fn existing(path: PathBuf) -> Option<PathBuf> {
    path.exists().then_some(path)
}

impl Daemon {
    /// The container's folders.
    pub(crate) fn paths(&self, id: &str) -> Result<ContainerPaths, ServiceError> {
        Ok(ContainerPaths::new(
            &self.config.root,
            &self.config.state,
            id,
        )?)
    }

    /// Finds a container by id or unique id prefix (`container_id`).
    pub(crate) fn find_container(&self, id: &str) -> Result<Option<ContainerRecord>, ServiceError> {
        check_id(id, "container_id")?;
        if let Some(container) = self.containers.get(id) {
            return Ok(Some(container));
        }
        match self.containers.ids_with_prefix(id).as_slice() {
            [one] => Ok(self.containers.get(one)),
            [] => Ok(None),
            many => Err(ServiceError::invalid(
                "container_id",
                format!("{id:?} is ambiguous: {} containers match", many.len()),
            )),
        }
    }

    /// The container `id` (or unique prefix), NotFound if there is none.
    pub(crate) fn container(&self, id: &str) -> Result<ContainerRecord, ServiceError> {
        self.find_container(id)?
            .ok_or_else(|| ServiceError::container_not_found(id))
    }

    /// The container's process state; Unknown (with the reason) when it cannot be read.
    pub(crate) fn runtime_state(&self, record: &ContainerRecord) -> ContainerRuntimeState {
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
        self.host
            .container_status(&paths, &runtime)
            .unwrap_or_else(|e| unknown(e.to_string()))
    }

    /// Creates a container in a Ready pod from an image already pulled; returns its id.
    pub fn create_container(&self, spec: ContainerSpec) -> Result<String, ServiceError> {
        let request = &spec.request;
        let pod = self.pod(&spec.pod_id)?;
        let _pod_guard = self.locks.lock(&pod.id);
        if pod.state != PodState::Ready {
            return Err(ServiceError::FailedPrecondition(format!(
                "pod sandbox {} is not ready",
                pod.id
            )));
        }
        if let Some((id, _)) =
            self.containers.all().into_iter().find(|(_, c)| {
                c.pod_id == pod.id && c.name == spec.name && c.attempt == spec.attempt
            })
        {
            return Err(ServiceError::AlreadyExists(format!(
                "container name {} attempt {} is reserved by container {id}",
                spec.name, spec.attempt
            )));
        }
        let image = self
            .images
            .get(&spec.image)?
            .ok_or_else(|| ServiceError::NotFound {
                what: "image",
                id: spec.image.clone(),
                hint: ": pull it first",
            })?;
        // The pod as it was run (its record's config); the request's copy of the pod
        // config is only a convenience.
        let pod_context = pod.spec_context()?;
        let runtime = self.oci_runtime(&pod.runtime_handler)?;
        if let Some(i) = request
            .mounts
            .iter()
            .position(|m| m.access == MountAccess::RecursiveReadOnly)
        {
            let (handler, _) = self.config.runtime_for(&pod.runtime_handler).unzip();
            if !handler.is_some_and(|h| self.rro_handlers().contains(h)) {
                return Err(ServiceError::invalid(
                    format!("config.mounts[{i}].recursive_read_only"),
                    format!(
                        "the OCI runtime of handler {:?} does not support recursive \
                         read-only mounts",
                        pod.runtime_handler
                    ),
                ));
            }
        }
        let id = crate::store::new_id()?;
        let _guard = self.locks.lock(&id);
        let paths = self.paths(&id)?;
        let mut lowers = self.images.layer_dirs(&image)?;
        lowers.reverse();
        let log_path = match (pod.log_directory(), spec.log_path.as_str()) {
            (_, "") | ("", _) => PathBuf::new(),
            (dir, file) => Path::new(dir).join(file),
        };
        let pod_paths = self.pod_paths(&pod.id);
        let host_ipc = pod.namespaces().host_ipc;
        let namespaces = SandboxNamespacePaths {
            net: (!pod.host_network).then(|| pod_paths.netns()),
            ipc: (!host_ipc).then(|| pod_paths.ipcns()),
            uts: (!pod.host_network).then(|| pod_paths.utsns()),
            pid: self.pid_namespace_to_join(&request.security.pid, &pod_paths)?,
        };
        let files = SandboxFiles {
            resolv_conf: existing(pod_paths.resolv_conf()),
            hostname: existing(pod_paths.hostname_file()),
            hosts: existing(pod_paths.hosts_file()),
            shm: (!host_ipc).then(|| existing(pod_paths.shm())).flatten(),
        };
        let defaults = ImageDefaults {
            entrypoint: image.config.entrypoint.clone(),
            cmd: image.config.cmd.clone(),
            env: image.config.env.clone(),
            working_dir: image.config.working_dir.clone(),
            user: image.config.user.clone(),
        };
        let record = ContainerRecord {
            id: id.clone(),
            pod_id: pod.id.clone(),
            name: spec.name.clone(),
            attempt: spec.attempt,
            image_ref: spec.image.clone(),
            image_id: image.id.clone(),
            layers: image.layers.clone(),
            created_at: now_nanos(),
            labels: spec.labels.clone(),
            annotations: spec.annotations.clone(),
            log_path: log_path.display().to_string(),
            runtime_handler: pod.runtime_handler.clone(),
            config: spec.config.clone(),
        };
        let make = || -> Result<(), ServiceError> {
            self.host.mount_rootfs(&paths, &lowers)?;
            let oci = container::build_spec(&SpecInput {
                id: &id,
                request,
                pod: &pod_context,
                image: &defaults,
                rootfs: &paths.rootfs,
                namespaces: &namespaces,
                sandbox_files: &files,
                cgroup_parent: &pod.cgroup_parent,
                oom_score_adj_allowed: self.oom_score_adj_allowed,
            })?;
            let user_namespace = oci.linux().as_ref().is_some_and(|l| {
                l.namespaces()
                    .iter()
                    .flatten()
                    .any(|n| n.typ() == oci_spec::runtime::LinuxNamespaceType::User)
            });
            if user_namespace {
                self.host.prepare_mount_targets(&paths.rootfs, &oci)?;
            }
            self.host
                .create_container(&paths, &oci, &runtime, &log_path, &self.monitor)?;
            Ok(())
        };
        // The durable record is written while the monitor creates the container, so its
        // two fsyncs are off the CreateContainer path; it is listed only once the
        // container exists, and dropped if making it failed.
        let (made, persisted) = std::thread::scope(|scope| {
            let persisted = scope.spawn(|| self.containers.persist(&id, &record));
            let made = make();
            // A panic there is passed on as if it had happened here.
            let persisted = persisted
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            (made, persisted)
        });
        if let Err(e) = made.and(persisted.map_err(ServiceError::from)) {
            if let Err(cleanup) = self.host.remove_container(&paths, &runtime) {
                eprintln!(
                    "berth-runtime: container {id}: clean-up after a failed create: {cleanup}"
                );
            }
            if let Err(cleanup) = self.containers.remove(&id) {
                eprintln!("berth-runtime: container {id}: removing its record: {cleanup}");
            }
            return Err(e);
        }
        self.containers.publish(&id, &record);
        self.emit(&record, ContainerEvent::Created);
        Ok(id)
    }

    /// The PID namespace a container joins: the pod's for POD (if the pod made one),
    /// the running target container's for TARGET; `None` otherwise.
    fn pid_namespace_to_join(
        &self,
        mode: &PidMode,
        pod_paths: &PodPaths,
    ) -> Result<Option<PathBuf>, ServiceError> {
        const FIELD: &str = "config.linux.security_context.namespace_options";
        match mode {
            PidMode::Pod => {
                let ns = pod_paths.pidns();
                if !self.host.is_namespace(&ns) {
                    return Err(ServiceError::invalid(
                        format!("{FIELD}.pid"),
                        "POD, but the pod sandbox has no shared PID namespace (its \
                         config did not ask for namespace_options.pid POD)",
                    ));
                }
                Ok(Some(ns))
            }
            PidMode::Target { target_id } => {
                let field = format!("{FIELD}.target_id");
                let target = self
                    .find_container(target_id)
                    .map_err(|_| ServiceError::invalid(&field, "is not a valid container id"))?
                    .ok_or_else(|| {
                        ServiceError::invalid(&field, format!("{target_id:?} not found"))
                    })?;
                let state = self.runtime_state(&target);
                let pid = state
                    .pid
                    .filter(|_| state.state == container::ContainerState::Running)
                    .ok_or_else(|| {
                        ServiceError::FailedPrecondition(format!(
                            "{field}: container {} is not running",
                            target.id
                        ))
                    })?;
                Ok(Some(PathBuf::from(format!("/proc/{pid}/ns/pid"))))
            }
            PidMode::Container | PidMode::Node => Ok(None),
        }
    }

    /// Starts a created container.
    pub fn start_container(&self, id: &str) -> Result<(), ServiceError> {
        let record = self.container(id)?;
        let _guard = self.locks.lock(&record.id);
        let runtime = self.oci_runtime(&record.runtime_handler)?;
        self.host
            .start_container(&self.paths(&record.id)?, &runtime)?;
        self.emit(&record, ContainerEvent::Started);
        Ok(())
    }

    /// Stops a container (by id or unique prefix); an unknown one is fine.
    pub fn stop_container(&self, id: &str, timeout_seconds: i64) -> Result<(), ServiceError> {
        if let Some(record) = self.find_container(id)? {
            self.stop_container_now(&record.id, timeout_seconds)?;
        }
        Ok(())
    }

    /// Stops `id` (SIGTERM or the image's stop signal, SIGKILL after `timeout` seconds);
    /// an unknown or exited container is fine.
    pub(crate) fn stop_container_now(&self, id: &str, timeout: i64) -> Result<(), ServiceError> {
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
        self.host
            .stop_container(&self.paths(&record.id)?, &runtime, timeout, &stop_signal)?;
        self.emit(&record, ContainerEvent::Stopped);
        Ok(())
    }

    /// Removes a container (by id or unique prefix), killing it if it runs; an unknown
    /// one is fine.
    pub fn remove_container(&self, id: &str) -> Result<(), ServiceError> {
        if let Some(record) = self.find_container(id)? {
            self.remove_container_now(&record.id)?;
        }
        Ok(())
    }

    /// Removes `id`; an unknown container is fine.
    pub(crate) fn remove_container_now(&self, id: &str) -> Result<(), ServiceError> {
        let Some(record) = self.containers.get(id) else {
            return Ok(());
        };
        let _guard = self.locks.lock(&record.id);
        let runtime = self.oci_runtime(&record.runtime_handler)?;
        self.host
            .remove_container(&self.paths(&record.id)?, &runtime)?;
        self.containers.remove(&record.id)?;
        self.emit(&record, ContainerEvent::Deleted);
        // Layers of images removed while this container used them can go now.
        let in_use = self.layers_in_use();
        self.images.gc(&|layer| in_use.contains(layer))?;
        Ok(())
    }
}
