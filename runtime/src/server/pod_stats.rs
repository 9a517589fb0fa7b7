//! `PodSandboxStats` and `ListPodSandboxStats`: a pod's CPU and memory from its cgroup
//! (the parent of its containers' cgroups, so it sums them) and the stats of each of its
//! running containers, as the kubelet's CRI stats provider reads them.

use tonic::Status;

use super::records::{now_nanos, to_hash, PodRecord, PodState};
use super::Daemon;
use crate::proto::v1::*;
use crate::service::filters;

impl Daemon {
    fn pod_stats_of(&self, pod: &PodRecord) -> PodSandboxStats {
        let timestamp = now_nanos();
        let value = |value| Some(UInt64Value { value });
        let cgroup = self.host.cgroup_stats(&pod.cgroup_parent);
        let containers = self
            .running_containers_of(&pod.id)
            .into_iter()
            // A container that exits between the listing and the read is skipped.
            .filter_map(|c| self.stats_of(&c).ok())
            .collect();
        PodSandboxStats {
            attributes: Some(PodSandboxAttributes {
                id: pod.id.clone(),
                metadata: Some(PodSandboxMetadata {
                    name: pod.name.clone(),
                    uid: pod.uid.clone(),
                    namespace: pod.namespace.clone(),
                    attempt: pod.attempt,
                }),
                labels: to_hash(&pod.labels),
                annotations: to_hash(&pod.annotations),
            }),
            linux: Some(LinuxPodSandboxStats {
                cpu: cgroup.map(|c| CpuUsage {
                    timestamp,
                    usage_core_nano_seconds: value(c.cpu_usage_nanos),
                    usage_nano_cores: None,
                }),
                memory: cgroup.map(|c| MemoryUsage {
                    timestamp,
                    working_set_bytes: value(c.memory_working_set_bytes),
                    usage_bytes: value(c.memory_usage_bytes),
                    rss_bytes: value(c.memory_rss_bytes),
                    ..Default::default()
                }),
                network: None,
                process: None,
                containers,
            }),
            windows: None,
        }
    }

    pub(super) fn rpc_pod_sandbox_stats(
        &self,
        request: PodSandboxStatsRequest,
    ) -> Result<PodSandboxStatsResponse, Status> {
        let pod = self.find_pod(&request.pod_sandbox_id)?.ok_or_else(|| {
            Status::not_found(format!("pod sandbox {} not found", request.pod_sandbox_id))
        })?;
        Ok(PodSandboxStatsResponse {
            stats: Some(self.pod_stats_of(&pod)),
        })
    }

    pub(super) fn rpc_list_pod_sandbox_stats(
        &self,
        request: ListPodSandboxStatsRequest,
    ) -> Result<ListPodSandboxStatsResponse, Status> {
        let filter = request.filter.unwrap_or_default();
        let stats = self
            .pods
            .all()
            .into_iter()
            .map(|(_, pod)| pod)
            .filter(|pod| pod.state == PodState::Ready)
            .filter(|pod| filters::id_matches(&filter.id, &pod.id))
            .filter(|pod| filters::labels_match(&filter.label_selector, &pod.labels))
            .map(|pod| self.pod_stats_of(&pod))
            .collect();
        Ok(ListPodSandboxStatsResponse { stats })
    }
}
