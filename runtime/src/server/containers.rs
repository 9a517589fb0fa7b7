//! Container RPCs: the lifecycle calls decode, validate into a
//! [`ContainerSpec`](crate::service::ContainerSpec) and call the service layer
//! ([`crate::service::containers`]); ExecSync, UpdateContainerResources,
//! ReopenContainerLog and stats call the container module on the record the service
//! layer finds.

use std::collections::HashMap;
use std::time::Duration;

use tonic::Status;

use super::records::to_hash;
use super::{filters, status, validate};
use crate::container;
use crate::proto::v1::*;
use crate::service::records::ContainerRecord;
use crate::service::Daemon;

pub(super) fn cri_state(state: container::ContainerState) -> ContainerState {
    match state {
        container::ContainerState::Created => ContainerState::ContainerCreated,
        container::ContainerState::Running => ContainerState::ContainerRunning,
        container::ContainerState::Exited => ContainerState::ContainerExited,
        container::ContainerState::Unknown => ContainerState::ContainerUnknown,
    }
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

    pub(super) fn rpc_create_container(
        &self,
        request: CreateContainerRequest,
    ) -> Result<CreateContainerResponse, Status> {
        let container_id = self.create_container(validate::container_spec(request)?)?;
        Ok(CreateContainerResponse { container_id })
    }

    pub(super) fn rpc_start_container(
        &self,
        request: StartContainerRequest,
    ) -> Result<StartContainerResponse, Status> {
        self.start_container(&request.container_id)?;
        Ok(StartContainerResponse {})
    }

    pub(super) fn rpc_stop_container(
        &self,
        request: StopContainerRequest,
    ) -> Result<StopContainerResponse, Status> {
        self.stop_container(&request.container_id, request.timeout)?;
        Ok(StopContainerResponse {})
    }

    pub(super) fn rpc_remove_container(
        &self,
        request: RemoveContainerRequest,
    ) -> Result<RemoveContainerResponse, Status> {
        self.remove_container(&request.container_id)?;
        Ok(RemoveContainerResponse {})
    }

    pub(super) fn exec_sync(&self, request: ExecSyncRequest) -> Result<ExecSyncResponse, Status> {
        if request.cmd.is_empty() {
            return Err(validate::invalid("cmd", "must not be empty").into());
        }
        let record = self.container(&request.container_id)?;
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
        let record = self.container(&request.container_id)?;
        let _guard = self.locks.lock(&record.id);
        let resources = validate::required(request.linux.as_ref(), "linux")?;
        let runtime = self.oci_runtime(&record.runtime_handler)?;
        container::update_resources(&self.paths(&record.id)?, &runtime, resources)
            .map_err(status)?;
        // Keep the new limits in the record, so ContainerStatus reports them.
        self.containers
            .update(&record.id, |c| {
                c.config
                    .linux
                    .get_or_insert_with(Default::default)
                    .resources = Some(resources.clone())
            })
            .map_err(status)?;
        Ok(UpdateContainerResourcesResponse {})
    }

    pub(super) fn reopen_container_log(
        &self,
        request: ReopenContainerLogRequest,
    ) -> Result<ReopenContainerLogResponse, Status> {
        let record = self.container(&request.container_id)?;
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
        let record = self.container(&request.container_id)?;
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
