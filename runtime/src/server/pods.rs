//! Pod sandbox RPCs: decode, validate into a [`PodSpec`](crate::service::PodSpec), call
//! the service layer ([`crate::service::pods`]), encode its records as CRI messages.

use tonic::Status;

use super::validate;
use crate::proto::v1::*;
use crate::service::filters;
use crate::service::records::pod_config::namespace_options;
use crate::service::records::{now_nanos, to_hash, PodRecord, PodState};
use crate::service::Daemon;

impl PodRecord {
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

impl Daemon {
    pub(super) fn rpc_run_pod(
        &self,
        request: RunPodSandboxRequest,
    ) -> Result<RunPodSandboxResponse, Status> {
        let pod_sandbox_id = self.run_pod(validate::pod_spec(request)?)?;
        Ok(RunPodSandboxResponse { pod_sandbox_id })
    }

    pub(super) fn rpc_stop_pod(
        &self,
        request: StopPodSandboxRequest,
    ) -> Result<StopPodSandboxResponse, Status> {
        self.stop_pod(&request.pod_sandbox_id)?;
        Ok(StopPodSandboxResponse {})
    }

    pub(super) fn rpc_remove_pod(
        &self,
        request: RemovePodSandboxRequest,
    ) -> Result<RemovePodSandboxResponse, Status> {
        self.remove_pod(&request.pod_sandbox_id)?;
        Ok(RemovePodSandboxResponse {})
    }

    pub(crate) fn pod_sandbox_status(&self, pod: &PodRecord) -> PodSandboxStatus {
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
                    options: Some(namespace_options(&pod.config)),
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
        let pod = self.pod(&request.pod_sandbox_id)?;
        let mut info = std::collections::HashMap::new();
        if request.verbose {
            let details = serde_json::json!({
                "cgroupParent": pod.cgroup_parent,
                "netns": (!pod.host_network).then(|| self.pod_paths(&pod.id).netns()),
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
