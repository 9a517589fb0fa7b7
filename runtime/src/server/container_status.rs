//! Container queries: ContainerStatus and ListContainers, and the status a container's
//! lifecycle events carry, encoded from the service layer's views
//! ([`crate::service::container_ops`]).

use std::collections::HashMap;

use tonic::Status;

use super::containers::cri_state;
use super::records::{to_hash, ContainerRecord};
use super::Daemon;
use crate::proto::v1::*;
use crate::service::container_ops::{ContainerFilter, ContainerView};

/// The CRI status of a container view.
fn encode(view: ContainerView) -> ContainerStatus {
    let ContainerView {
        record,
        state,
        user,
        bundle: _,
    } = view;
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
        user: user.map(|u| ContainerUser {
            linux: Some(LinuxContainerUser {
                uid: u.uid.into(),
                gid: u.gid.into(),
                supplemental_groups: u.groups.into_iter().map(i64::from).collect(),
            }),
        }),
    }
}

impl Daemon {
    /// The CRI status of a container (also sent with its lifecycle events).
    pub(super) fn status_of(&self, record: &ContainerRecord) -> ContainerStatus {
        encode(self.view_of(record.clone()))
    }

    pub(super) fn rpc_container_status(
        &self,
        request: ContainerStatusRequest,
    ) -> Result<ContainerStatusResponse, Status> {
        let view = self.container_view(&request.container_id)?;
        let mut info = HashMap::new();
        if request.verbose {
            let details = serde_json::json!({
                "pid": view.state.pid,
                "sandboxID": view.record.pod_id,
                "runtimeHandler": view.record.runtime_handler,
                "bundle": view.bundle,
            });
            info.insert("info".to_owned(), details.to_string());
        }
        Ok(ContainerStatusResponse {
            status: Some(encode(view)),
            info,
        })
    }

    pub(super) fn rpc_list_containers(
        &self,
        request: ListContainersRequest,
    ) -> Result<ListContainersResponse, Status> {
        let filter = request.filter.unwrap_or_default();
        let state = match filter.state {
            None => None,
            Some(s) => Some(super::containers::domain_state(s.state)?),
        };
        let containers = self
            .list_containers(&ContainerFilter {
                id: filter.id,
                pod_id: filter.pod_sandbox_id,
                labels: filter.label_selector,
                state,
            })
            .into_iter()
            .map(|(c, state)| Container {
                id: c.id.clone(),
                pod_sandbox_id: c.pod_id.clone(),
                metadata: Some(c.metadata()),
                image: Some(ImageSpec {
                    image: c.image_ref.clone(),
                    ..Default::default()
                }),
                image_ref: c.image_id.clone(),
                state: cri_state(state) as i32,
                created_at: c.created_at,
                labels: to_hash(&c.labels),
                annotations: to_hash(&c.annotations),
                image_id: c.image_id.clone(),
            })
            .collect();
        Ok(ListContainersResponse { containers })
    }
}
