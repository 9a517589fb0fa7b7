//! Container queries: ContainerStatus and ListContainers, and the status a container's
//! lifecycle events carry. Process state comes from the monitor's files and the OCI
//! runtime (see `containers.rs`), never from the record.

use std::collections::HashMap;

use tonic::Status;

use super::containers::cri_state;
use super::records::{to_hash, ContainerRecord};
use super::Daemon;
use crate::container;
use crate::proto::v1::*;

impl Daemon {
    /// The CRI status of a container (also sent with its lifecycle events).
    pub(super) fn status_of(&self, record: &ContainerRecord) -> ContainerStatus {
        let state = self.runtime_state(record);
        let config = record.config.clone();
        ContainerStatus {
            id: record.id.clone(),
            metadata: Some(record.metadata()),
            state: cri_state(state.state) as i32,
            created_at: record.created_at,
            started_at: state.started_at,
            finished_at: state.finished_at,
            exit_code: state.exit_code,
            image: Some(ImageSpec {
                image: record.image_ref.clone(),
                ..Default::default()
            }),
            image_ref: record.image_id.clone(),
            reason: state.reason,
            message: state.message,
            labels: to_hash(&record.labels),
            annotations: to_hash(&record.annotations),
            mounts: config.mounts,
            log_path: record.log_path.clone(),
            resources: config
                .linux
                .and_then(|l| l.resources)
                .map(|linux| ContainerResources {
                    linux: Some(linux),
                    windows: None,
                }),
            image_id: record.image_id.clone(),
            user: self
                .paths(&record.id)
                .ok()
                .and_then(|paths| container::process_user(&paths).ok())
                .map(|(uid, gid, groups)| ContainerUser {
                    linux: Some(LinuxContainerUser {
                        uid: uid.into(),
                        gid: gid.into(),
                        supplemental_groups: groups.into_iter().map(i64::from).collect(),
                    }),
                }),
        }
    }

    pub(super) fn container_status(
        &self,
        request: ContainerStatusRequest,
    ) -> Result<ContainerStatusResponse, Status> {
        let record = self.container(&request.container_id)?;
        let mut info = HashMap::new();
        if request.verbose {
            let state = self.runtime_state(&record);
            let details = serde_json::json!({
                "pid": state.pid,
                "sandboxID": record.pod_id,
                "runtimeHandler": record.runtime_handler,
                "bundle": self.paths(&record.id).ok().map(|p| p.bundle),
            });
            info.insert("info".to_owned(), details.to_string());
        }
        Ok(ContainerStatusResponse {
            status: Some(self.status_of(&record)),
            info,
        })
    }

    pub(super) fn list_containers(
        &self,
        request: ListContainersRequest,
    ) -> Result<ListContainersResponse, Status> {
        let filter = request.filter.unwrap_or_default();
        let containers = self
            .containers_matching(&filter.id, &filter.pod_sandbox_id, &filter.label_selector)
            .filter_map(|c| {
                let state = cri_state(self.runtime_state(&c).state) as i32;
                if filter.state.as_ref().is_some_and(|s| s.state != state) {
                    return None;
                }
                Some(Container {
                    id: c.id.clone(),
                    pod_sandbox_id: c.pod_id.clone(),
                    metadata: Some(c.metadata()),
                    image: Some(ImageSpec {
                        image: c.image_ref.clone(),
                        ..Default::default()
                    }),
                    image_ref: c.image_id.clone(),
                    state,
                    created_at: c.created_at,
                    labels: to_hash(&c.labels),
                    annotations: to_hash(&c.annotations),
                    image_id: c.image_id.clone(),
                })
            })
            .collect();
        Ok(ListContainersResponse { containers })
    }
}
