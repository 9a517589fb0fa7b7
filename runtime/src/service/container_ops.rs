//! The container calls besides the lifecycle: status and listing, ExecSync,
//! UpdateContainerResources, ReopenContainerLog, stats, and the checks the streaming
//! calls (Exec, Attach, PortForward) make before the streaming server takes over. Like
//! the lifecycle, every step on the host goes through [`Host`](super::Host); the gRPC
//! layer only decodes, validates and encodes.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use super::records::{ContainerRecord, PodState};
use super::{filters, Daemon, ServiceError};
use crate::container::Resources;
use crate::container::{ContainerRuntimeState, ContainerState, ContainerStatsSample, ExecOutput};
use crate::stream::{AttachTarget, ExecTarget, PortForwardTarget};

/// The identity a container's first process runs as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessUser {
    pub uid: u32,
    pub gid: u32,
    /// The gid first, then the supplementary groups.
    pub groups: Vec<u32>,
}

/// A container as ContainerStatus reports it: the record, its process state and user.
#[derive(Debug, Clone)]
pub struct ContainerView {
    pub record: ContainerRecord,
    pub state: ContainerRuntimeState,
    /// `None` when the bundle's spec cannot be read (the container is being removed).
    pub user: Option<ProcessUser>,
    /// The OCI bundle folder.
    pub bundle: PathBuf,
}

/// Which containers a listing wants; empty fields match everything.
#[derive(Debug, Clone, Default)]
pub struct ContainerFilter {
    /// Container id or id prefix.
    pub id: String,
    /// Pod id or id prefix.
    pub pod_id: String,
    /// Labels that must all be present with these values.
    pub labels: HashMap<String, String>,
    /// Only containers in this state.
    pub state: Option<ContainerState>,
}

impl Daemon {
    /// The status view of `record`.
    pub fn view_of(&self, record: ContainerRecord) -> ContainerView {
        let state = self.runtime_state(&record);
        let paths = self.paths(&record.id).ok();
        let user = paths
            .as_ref()
            .and_then(|paths| self.host.process_user(paths).ok());
        ContainerView {
            bundle: paths.map(|p| p.bundle).unwrap_or_default(),
            record,
            state,
            user,
        }
    }

    /// The container `id` (or unique prefix) with its state; NotFound if there is none.
    pub fn container_view(&self, id: &str) -> Result<ContainerView, ServiceError> {
        Ok(self.view_of(self.container(id)?))
    }

    /// The containers the filter selects (by id prefix, pod id prefix and labels), each
    /// with its state, which the filter's state then narrows.
    pub fn list_containers(
        &self,
        filter: &ContainerFilter,
    ) -> Vec<(ContainerRecord, ContainerState)> {
        self.containers
            .all()
            .into_iter()
            .map(|(_, c)| c)
            .filter(|c| filters::id_matches(&filter.id, &c.id))
            .filter(|c| filters::id_matches(&filter.pod_id, &c.pod_id))
            .filter(|c| filters::labels_match(&filter.labels, &c.labels))
            .map(|c| {
                let state = self.runtime_state(&c).state;
                (c, state)
            })
            .filter(|(_, state)| filter.state.is_none_or(|s| s == *state))
            .collect()
    }

    /// The running containers of pod `pod_id`.
    pub fn running_containers_of(&self, pod_id: &str) -> Vec<ContainerRecord> {
        self.list_containers(&ContainerFilter {
            state: Some(ContainerState::Running),
            ..Default::default()
        })
        .into_iter()
        .map(|(c, _)| c)
        .filter(|c| c.pod_id == pod_id)
        .collect()
    }

    /// Runs `cmd` in container `id` as its main process runs (zero `timeout`: none).
    pub fn exec_sync(
        &self,
        id: &str,
        cmd: &[String],
        timeout: Duration,
    ) -> Result<ExecOutput, ServiceError> {
        if cmd.is_empty() {
            return Err(ServiceError::invalid("cmd", "must not be empty"));
        }
        let record = self.container(id)?;
        let runtime = self.oci_runtime(&record.runtime_handler)?;
        Ok(self
            .host
            .exec_sync(&self.paths(&record.id)?, &runtime, cmd, timeout)?)
    }

    /// Applies new limits to container `id` and keeps them in its record, so its status
    /// reports them.
    pub fn update_container_resources(
        &self,
        id: &str,
        resources: &Resources,
    ) -> Result<(), ServiceError> {
        let record = self.container(id)?;
        let _guard = self.locks.lock(&record.id);
        let runtime = self.oci_runtime(&record.runtime_handler)?;
        self.host
            .update_resources(&self.paths(&record.id)?, &runtime, resources)?;
        self.containers
            .update(&record.id, |c| c.set_resources(resources))?;
        Ok(())
    }

    /// Has the monitor of container `id` reopen its log file.
    pub fn reopen_container_log(&self, id: &str) -> Result<(), ServiceError> {
        let record = self.container(id)?;
        Ok(self.host.reopen_log(&self.paths(&record.id)?)?)
    }

    /// CPU, memory and writable-layer usage of `record` now.
    pub fn container_stats(
        &self,
        record: &ContainerRecord,
    ) -> Result<ContainerStatsSample, ServiceError> {
        Ok(self.host.container_stats(&self.paths(&record.id)?)?)
    }

    /// The container `id`, FailedPrecondition unless it runs.
    pub fn running_container(&self, id: &str) -> Result<ContainerRecord, ServiceError> {
        let record = self.container(id)?;
        if self.runtime_state(&record).state != ContainerState::Running {
            return Err(ServiceError::FailedPrecondition(format!(
                "container {} is not running",
                record.id
            )));
        }
        Ok(record)
    }

    /// What the streaming server needs to run `cmd` in the running container `id`.
    pub fn exec_target(
        &self,
        id: &str,
        cmd: Vec<String>,
        tty: bool,
    ) -> Result<ExecTarget, ServiceError> {
        if cmd.is_empty() {
            return Err(ServiceError::invalid("cmd", "must not be empty"));
        }
        let record = self.running_container(id)?;
        Ok(ExecTarget {
            runtime: self.oci_runtime(&record.runtime_handler)?,
            paths: self.paths(&record.id)?,
            cmd,
            tty,
        })
    }

    /// What the streaming server needs to attach to the running container `id`.
    pub fn attach_target(&self, id: &str) -> Result<AttachTarget, ServiceError> {
        let record = self.running_container(id)?;
        Ok(AttachTarget {
            socket: self.paths(&record.id)?.ctl_socket,
            id: record.id,
        })
    }

    /// What the streaming server needs to forward ports into the Ready pod `pod_id`.
    pub fn port_forward_target(&self, pod_id: &str) -> Result<PortForwardTarget, ServiceError> {
        let pod = self.pod(pod_id)?;
        if pod.state != PodState::Ready {
            return Err(ServiceError::FailedPrecondition(format!(
                "pod {} is not ready",
                pod.id
            )));
        }
        Ok(PortForwardTarget {
            netns: (!pod.host_network).then(|| self.pod_paths(&pod.id).netns()),
        })
    }
}
