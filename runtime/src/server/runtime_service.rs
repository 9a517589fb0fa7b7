//! `runtime.v1.RuntimeService`: each RPC moves its request onto the blocking pool and
//! calls the matching [`Daemon`] method in `pods.rs`, `containers.rs`, `pod_stats.rs` or
//! `streaming.rs` (Exec, Attach and PortForward answer with a URL on the streaming
//! server). `GetContainerEvents` streams from `events.rs`, the metrics come from
//! `metrics.rs`; `CheckpointContainer` answers Unimplemented with the reason.

use std::collections::HashMap;
use std::sync::Arc;

use tonic::{Request, Response, Status};

use super::events::EventItem;
use super::{blocking, Cri, Daemon};
use crate::proto::v1::runtime_service_server::RuntimeService;
use crate::proto::v1::*;

/// The CRI API version this runtime speaks.
const API_VERSION: &str = "v1";

type Reply<T> = Result<Response<T>, Status>;

/// Runs `f` with the daemon on the blocking pool and wraps its answer.
async fn call<Q: Send + 'static, T: Send + 'static>(
    daemon: &Arc<Daemon>,
    request: Request<Q>,
    f: fn(&Daemon, Q) -> Result<T, Status>,
) -> Reply<T> {
    let daemon = daemon.clone();
    let request = request.into_inner();
    blocking(move || f(&daemon, request))
        .await
        .map(Response::new)
}

/// `namespace/name` of a pod config, for the log.
fn pod_name(config: Option<&PodSandboxConfig>) -> String {
    config
        .and_then(|c| c.metadata.as_ref())
        .map(|m| format!("{}/{}", m.namespace, m.name))
        .unwrap_or_default()
}

#[tonic::async_trait]
impl RuntimeService for Cri {
    async fn version(&self, _: Request<VersionRequest>) -> Reply<VersionResponse> {
        Ok(Response::new(VersionResponse {
            version: "0.1.0".to_owned(),
            runtime_name: "berth".to_owned(),
            runtime_version: env!("CARGO_PKG_VERSION").to_owned(),
            runtime_api_version: API_VERSION.to_owned(),
        }))
    }

    async fn status(&self, request: Request<StatusRequest>) -> Reply<StatusResponse> {
        let verbose = request.into_inner().verbose;
        let runtime = self.0.runtime_condition();
        let network = match self.0.host.network_status() {
            Ok(()) => condition("NetworkReady", true, "", ""),
            Err(text) => {
                let (reason, message) = text
                    .split_once(": ")
                    .unwrap_or((crate::pod::cni::NETWORK_NOT_READY_REASON, text.as_str()));
                condition("NetworkReady", false, reason, message)
            }
        };
        let mut info = HashMap::new();
        if verbose {
            let config = serde_json::json!({
                "sandboxImage": self.0.config.sandbox_image,
                "defaultRuntime": self.0.config.default_runtime,
                "runtimes": self.0.config.runtimes.keys().collect::<Vec<_>>(),
                "cgroupDriver": "cgroupfs",
                "cni": {"confDir": self.0.config.cni.conf_dir, "binDirs": self.0.config.cni.bin_dirs},
                "root": self.0.config.root,
                "state": self.0.config.state,
            });
            info.insert("config".to_owned(), config.to_string());
        }
        Ok(Response::new(StatusResponse {
            status: Some(RuntimeStatus {
                conditions: vec![runtime, network],
            }),
            info,
            // The default handler is listed under the empty name too, as containerd does
            // (a pod without a RuntimeClass asks for it by that name).
            runtime_handlers: self
                .0
                .config
                .runtime_for("")
                .map(|(default, _)| ("", default))
                .into_iter()
                .chain(
                    self.0
                        .config
                        .runtimes
                        .keys()
                        .map(|n| (n.as_str(), n.as_str())),
                )
                .map(|(name, runtime)| RuntimeHandler {
                    name: name.to_owned(),
                    features: Some(RuntimeHandlerFeatures {
                        recursive_read_only_mounts: self.0.rro_handlers().contains(runtime),
                        user_namespaces: true,
                    }),
                })
                .collect(),
            features: Some(RuntimeFeatures {
                supplemental_groups_policy: true,
            }),
        }))
    }

    async fn runtime_config(
        &self,
        _: Request<RuntimeConfigRequest>,
    ) -> Reply<RuntimeConfigResponse> {
        Ok(Response::new(RuntimeConfigResponse {
            linux: Some(LinuxRuntimeConfiguration {
                cgroup_driver: CgroupDriver::Cgroupfs as i32,
            }),
        }))
    }

    async fn update_runtime_config(
        &self,
        _: Request<UpdateRuntimeConfigRequest>,
    ) -> Reply<UpdateRuntimeConfigResponse> {
        // The kubelet sends the pod CIDR here; the CNI config already carries it.
        Ok(Response::new(UpdateRuntimeConfigResponse {}))
    }

    async fn run_pod_sandbox(
        &self,
        request: Request<RunPodSandboxRequest>,
    ) -> Reply<RunPodSandboxResponse> {
        let pod = pod_name(request.get_ref().config.as_ref());
        let reply = call(&self.0, request, Daemon::rpc_run_pod).await;
        super::logged(|| format!("RunPodSandbox {pod}"), reply)
    }

    async fn stop_pod_sandbox(
        &self,
        request: Request<StopPodSandboxRequest>,
    ) -> Reply<StopPodSandboxResponse> {
        call(&self.0, request, Daemon::rpc_stop_pod).await
    }

    async fn remove_pod_sandbox(
        &self,
        request: Request<RemovePodSandboxRequest>,
    ) -> Reply<RemovePodSandboxResponse> {
        call(&self.0, request, Daemon::rpc_remove_pod).await
    }

    async fn pod_sandbox_status(
        &self,
        request: Request<PodSandboxStatusRequest>,
    ) -> Reply<PodSandboxStatusResponse> {
        call(&self.0, request, Daemon::pod_status).await
    }

    async fn list_pod_sandbox(
        &self,
        request: Request<ListPodSandboxRequest>,
    ) -> Reply<ListPodSandboxResponse> {
        call(&self.0, request, Daemon::list_pods).await
    }

    async fn create_container(
        &self,
        request: Request<CreateContainerRequest>,
    ) -> Reply<CreateContainerResponse> {
        let request_ref = request.get_ref();
        let what = format!(
            "CreateContainer {} in pod {}",
            request_ref
                .config
                .as_ref()
                .and_then(|c| c.metadata.as_ref())
                .map_or("", |m| m.name.as_str()),
            request_ref.pod_sandbox_id
        );
        let reply = call(&self.0, request, Daemon::rpc_create_container).await;
        super::logged(|| what, reply)
    }

    async fn start_container(
        &self,
        request: Request<StartContainerRequest>,
    ) -> Reply<StartContainerResponse> {
        let what = format!("StartContainer {}", request.get_ref().container_id);
        let reply = call(&self.0, request, Daemon::rpc_start_container).await;
        super::logged(|| what, reply)
    }

    async fn stop_container(
        &self,
        request: Request<StopContainerRequest>,
    ) -> Reply<StopContainerResponse> {
        call(&self.0, request, Daemon::rpc_stop_container).await
    }

    async fn remove_container(
        &self,
        request: Request<RemoveContainerRequest>,
    ) -> Reply<RemoveContainerResponse> {
        call(&self.0, request, Daemon::rpc_remove_container).await
    }

    async fn list_containers(
        &self,
        request: Request<ListContainersRequest>,
    ) -> Reply<ListContainersResponse> {
        call(&self.0, request, Daemon::rpc_list_containers).await
    }

    async fn container_status(
        &self,
        request: Request<ContainerStatusRequest>,
    ) -> Reply<ContainerStatusResponse> {
        call(&self.0, request, Daemon::rpc_container_status).await
    }

    async fn update_container_resources(
        &self,
        request: Request<UpdateContainerResourcesRequest>,
    ) -> Reply<UpdateContainerResourcesResponse> {
        call(&self.0, request, Daemon::rpc_update_container_resources).await
    }

    async fn reopen_container_log(
        &self,
        request: Request<ReopenContainerLogRequest>,
    ) -> Reply<ReopenContainerLogResponse> {
        call(&self.0, request, Daemon::rpc_reopen_container_log).await
    }

    async fn exec_sync(&self, request: Request<ExecSyncRequest>) -> Reply<ExecSyncResponse> {
        call(&self.0, request, Daemon::rpc_exec_sync).await
    }

    async fn exec(&self, request: Request<ExecRequest>) -> Reply<ExecResponse> {
        call(&self.0, request, Daemon::rpc_exec).await
    }

    async fn attach(&self, request: Request<AttachRequest>) -> Reply<AttachResponse> {
        call(&self.0, request, Daemon::rpc_attach).await
    }

    async fn port_forward(
        &self,
        request: Request<PortForwardRequest>,
    ) -> Reply<PortForwardResponse> {
        call(&self.0, request, Daemon::rpc_port_forward).await
    }

    async fn container_stats(
        &self,
        request: Request<ContainerStatsRequest>,
    ) -> Reply<ContainerStatsResponse> {
        call(&self.0, request, Daemon::rpc_container_stats).await
    }

    async fn list_container_stats(
        &self,
        request: Request<ListContainerStatsRequest>,
    ) -> Reply<ListContainerStatsResponse> {
        call(&self.0, request, Daemon::rpc_list_container_stats).await
    }

    async fn pod_sandbox_stats(
        &self,
        request: Request<PodSandboxStatsRequest>,
    ) -> Reply<PodSandboxStatsResponse> {
        call(&self.0, request, Daemon::rpc_pod_sandbox_stats).await
    }

    async fn list_pod_sandbox_stats(
        &self,
        request: Request<ListPodSandboxStatsRequest>,
    ) -> Reply<ListPodSandboxStatsResponse> {
        call(&self.0, request, Daemon::rpc_list_pod_sandbox_stats).await
    }

    async fn list_metric_descriptors(
        &self,
        request: Request<ListMetricDescriptorsRequest>,
    ) -> Reply<ListMetricDescriptorsResponse> {
        call(&self.0, request, Daemon::rpc_list_metric_descriptors).await
    }

    async fn list_pod_sandbox_metrics(
        &self,
        request: Request<ListPodSandboxMetricsRequest>,
    ) -> Reply<ListPodSandboxMetricsResponse> {
        call(&self.0, request, Daemon::rpc_list_pod_sandbox_metrics).await
    }

    async fn checkpoint_container(
        &self,
        request: Request<CheckpointContainerRequest>,
    ) -> Reply<CheckpointContainerResponse> {
        Err(Status::unimplemented(format!(
            "CheckpointContainer ({}): berth-runtime does not support checkpointing \
             containers (no CRIU)",
            request.into_inner().container_id
        )))
    }

    async fn get_container_events(
        &self,
        _: Request<GetEventsRequest>,
    ) -> Reply<tonic::codegen::BoxStream<ContainerEventResponse>> {
        let stream: tokio_stream::wrappers::ReceiverStream<EventItem> =
            tokio_stream::wrappers::ReceiverStream::new(self.1.subscribe());
        Ok(Response::new(Box::pin(stream)))
    }
}

/// A CRI runtime condition.
pub(super) fn condition(kind: &str, status: bool, reason: &str, message: &str) -> RuntimeCondition {
    RuntimeCondition {
        r#type: kind.to_owned(),
        status,
        reason: reason.to_owned(),
        message: message.to_owned(),
    }
}
