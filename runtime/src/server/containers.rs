//! Container RPCs: the lifecycle calls decode, validate into a
//! [`ContainerSpec`](crate::service::ContainerSpec) and call the service layer
//! ([`crate::service::containers`]); ExecSync, UpdateContainerResources,
//! ReopenContainerLog and stats call [`crate::service::container_ops`] and encode its
//! answer.

use std::time::Duration;

use tonic::Status;

use super::records::to_hash;
use super::spec_request;
use super::validate;
use crate::container;
use crate::proto::v1::*;
use crate::service::container_ops::ContainerFilter;
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

/// A CRI state filter as the domain state. An unknown number selects nothing the
/// kubelet could mean, so it is refused with the field named.
pub(super) fn domain_state(state: i32) -> Result<container::ContainerState, Status> {
    match ContainerState::try_from(state) {
        Ok(ContainerState::ContainerCreated) => Ok(container::ContainerState::Created),
        Ok(ContainerState::ContainerRunning) => Ok(container::ContainerState::Running),
        Ok(ContainerState::ContainerExited) => Ok(container::ContainerState::Exited),
        Ok(ContainerState::ContainerUnknown) => Ok(container::ContainerState::Unknown),
        Err(_) => Err(validate::invalid(
            "filter.state.state",
            &format!("{state} is not a container state"),
        )
        .into()),
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

    pub(super) fn rpc_exec_sync(
        &self,
        request: ExecSyncRequest,
    ) -> Result<ExecSyncResponse, Status> {
        let timeout = Duration::from_secs(u64::try_from(request.timeout).unwrap_or(0));
        let output = self.exec_sync(&request.container_id, &request.cmd, timeout)?;
        Ok(ExecSyncResponse {
            stdout: output.stdout,
            stderr: output.stderr,
            exit_code: output.exit_code,
        })
    }

    pub(super) fn rpc_update_container_resources(
        &self,
        request: UpdateContainerResourcesRequest,
    ) -> Result<UpdateContainerResourcesResponse, Status> {
        let resources = validate::required(request.linux.as_ref(), "linux")?;
        let resources = spec_request::resources(resources, "linux")?;
        self.update_container_resources(&request.container_id, &resources)?;
        Ok(UpdateContainerResourcesResponse {})
    }

    pub(super) fn rpc_reopen_container_log(
        &self,
        request: ReopenContainerLogRequest,
    ) -> Result<ReopenContainerLogResponse, Status> {
        self.reopen_container_log(&request.container_id)?;
        Ok(ReopenContainerLogResponse {})
    }

    pub(super) fn stats_of(&self, record: &ContainerRecord) -> Result<ContainerStats, Status> {
        let sample = self.container_stats(record)?;
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

    pub(super) fn rpc_container_stats(
        &self,
        request: ContainerStatsRequest,
    ) -> Result<ContainerStatsResponse, Status> {
        let record = self.container(&request.container_id)?;
        Ok(ContainerStatsResponse {
            stats: Some(self.stats_of(&record)?),
        })
    }

    pub(super) fn rpc_list_container_stats(
        &self,
        request: ListContainerStatsRequest,
    ) -> Result<ListContainerStatsResponse, Status> {
        let filter = request.filter.unwrap_or_default();
        let stats = self
            .list_containers(&ContainerFilter {
                id: filter.id,
                pod_id: filter.pod_sandbox_id,
                labels: filter.label_selector,
                state: Some(container::ContainerState::Running),
            })
            .into_iter()
            // A container that exits between the listing and the read is skipped.
            .filter_map(|(c, _)| self.stats_of(&c).ok())
            .collect();
        Ok(ListContainerStatsResponse { stats })
    }
}
