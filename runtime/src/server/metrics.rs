//! `ListMetricDescriptors` and `ListPodSandboxMetrics`: the kubelet's CRI metrics (with
//! `PodAndContainerStatsFromCRI`), read from the same cgroup files as the stats calls.
//! The set is fixed at start-up, as the CRI asks; every value is an integer in the unit
//! its name says.

use tonic::Status;

use super::records::{now_nanos, PodRecord, PodState};
use super::Daemon;
use crate::container::cgroup::CgroupStats;
use crate::proto::v1::*;

/// Labels of every metric: the container (empty for the pod's own), pod and namespace.
const LABELS: [&str; 4] = ["id", "container", "pod", "namespace"];

/// Name, help, type and how to read it from a cgroup sample.
type Reader = fn(&CgroupStats) -> u64;
const METRICS: [(&str, &str, MetricType, Reader); 4] = [
    (
        "container_cpu_usage_nanoseconds_total",
        "Cumulative CPU time consumed, in nanoseconds",
        MetricType::Counter,
        |s| s.cpu_usage_nanos,
    ),
    (
        "container_memory_usage_bytes",
        "Current memory usage, page cache included, in bytes",
        MetricType::Gauge,
        |s| s.memory_usage_bytes,
    ),
    (
        "container_memory_working_set_bytes",
        "Memory usage minus inactive file pages, in bytes",
        MetricType::Gauge,
        |s| s.memory_working_set_bytes,
    ),
    (
        "container_memory_rss",
        "Anonymous memory, in bytes",
        MetricType::Gauge,
        |s| s.memory_rss_bytes,
    ),
];

fn metrics_of(sample: &CgroupStats, labels: &[String]) -> Vec<Metric> {
    let timestamp = now_nanos();
    METRICS
        .iter()
        .map(|(name, _, kind, read)| Metric {
            name: (*name).to_owned(),
            timestamp,
            metric_type: *kind as i32,
            label_values: labels.to_vec(),
            value: Some(UInt64Value {
                value: read(sample),
            }),
        })
        .collect()
}

impl Daemon {
    pub(super) fn rpc_list_metric_descriptors(
        &self,
        _: ListMetricDescriptorsRequest,
    ) -> Result<ListMetricDescriptorsResponse, Status> {
        Ok(ListMetricDescriptorsResponse {
            descriptors: METRICS
                .iter()
                .map(|(name, help, _, _)| MetricDescriptor {
                    name: (*name).to_owned(),
                    help: (*help).to_owned(),
                    label_keys: LABELS.iter().map(|l| (*l).to_owned()).collect(),
                })
                .collect(),
        })
    }

    fn pod_metrics(&self, pod: &PodRecord) -> PodSandboxMetrics {
        let labels = |id: &str, container: &str| {
            vec![
                id.to_owned(),
                container.to_owned(),
                pod.name.clone(),
                pod.namespace.clone(),
            ]
        };
        let container_metrics = self
            .running_containers_of(&pod.id)
            .into_iter()
            .filter_map(|c| {
                let cgroup = format!("{}/{}", pod.cgroup_parent.trim_end_matches('/'), c.id);
                let sample = self.host.cgroup_stats(&cgroup)?;
                Some(ContainerMetrics {
                    container_id: c.id.clone(),
                    metrics: metrics_of(&sample, &labels(&c.id, &c.name)),
                })
            })
            .collect();
        PodSandboxMetrics {
            pod_sandbox_id: pod.id.clone(),
            metrics: self
                .host
                .cgroup_stats(&pod.cgroup_parent)
                .map(|sample| metrics_of(&sample, &labels(&pod.id, "")))
                .unwrap_or_default(),
            container_metrics,
        }
    }

    pub(super) fn rpc_list_pod_sandbox_metrics(
        &self,
        _: ListPodSandboxMetricsRequest,
    ) -> Result<ListPodSandboxMetricsResponse, Status> {
        Ok(ListPodSandboxMetricsResponse {
            pod_metrics: self
                .pods
                .all()
                .into_iter()
                .map(|(_, pod)| pod)
                .filter(|pod| pod.state == PodState::Ready)
                .map(|pod| self.pod_metrics(&pod))
                .collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_metric_carries_the_described_labels_and_its_value() {
        let sample = CgroupStats {
            cpu_usage_nanos: 7,
            memory_usage_bytes: 100,
            memory_working_set_bytes: 60,
            memory_rss_bytes: 40,
        };
        let labels: Vec<String> = ["c1", "web", "pod", "ns"].map(String::from).to_vec();
        let metrics = metrics_of(&sample, &labels);
        let values: Vec<(String, u64)> = metrics
            .iter()
            .map(|m| (m.name.clone(), m.value.as_ref().unwrap().value))
            .collect();
        assert_eq!(
            values,
            [
                ("container_cpu_usage_nanoseconds_total".to_owned(), 7),
                ("container_memory_usage_bytes".to_owned(), 100),
                ("container_memory_working_set_bytes".to_owned(), 60),
                ("container_memory_rss".to_owned(), 40),
            ]
        );
        assert!(metrics
            .iter()
            .all(|m| m.label_values.len() == LABELS.len() && m.label_values == labels));
        assert_eq!(metrics[0].metric_type, MetricType::Counter as i32);
    }
}
