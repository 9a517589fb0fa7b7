//! Property tests of every CRI request the runtime and image services take, with missing
//! and hostile fields (empty, `..`, `/`, NUL, 5000-byte strings, extreme numbers, large
//! maps, wrong enum values), sent through the handlers (validation, then the service
//! layer over the recording fake host) of a daemon holding one real pod and container:
//! the answer is a response or an error a client can act on (InvalidArgument naming the
//! field first, NotFound, AlreadyExists, FailedPrecondition, Unavailable), never a panic
//! and never an Internal error.

mod strategies;

use proptest::prelude::*;

use self::strategies::{container_config, hostile, id, pod_config, strings, Id};
use crate::proto::v1::*;
use crate::service::tests::{container, pod, Harness};
use crate::service::Daemon;

/// The daemon with one Ready pod and one running container.
struct World {
    h: Harness,
    pod: String,
    container: String,
}

impl World {
    fn new() -> Self {
        let h = Harness::new();
        let pod_id = h.daemon.run_pod(pod("live")).unwrap();
        let container_id = h
            .daemon
            .create_container(container(&pod_id, "app"))
            .unwrap();
        h.daemon.start_container(&container_id).unwrap();
        World {
            h,
            pod: pod_id,
            container: container_id,
        }
    }

    fn id(&self, id: &Id) -> String {
        match id {
            Id::Pod => self.pod.clone(),
            Id::Container => self.container.clone(),
            Id::Prefix(n) => self.pod[..*n].to_owned(),
            Id::Hostile(s) => s.clone(),
        }
    }

    fn d(&self) -> &Daemon {
        &self.h.daemon
    }
}

/// An answer a client can act on; InvalidArgument names a field first.
fn acceptable<T: std::fmt::Debug>(
    what: &str,
    reply: Result<T, tonic::Status>,
) -> Result<(), TestCaseError> {
    let Err(status) = reply else {
        return Ok(());
    };
    use tonic::Code::{AlreadyExists, FailedPrecondition, InvalidArgument, NotFound, Unavailable};
    match status.code() {
        InvalidArgument => {
            let (field, _) = status.message().split_once(": ").unwrap_or(("", ""));
            let is_path = !field.is_empty()
                && field
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_.[]".contains(&b));
            prop_assert!(
                is_path,
                "{what}: InvalidArgument without a field: {}",
                status.message()
            );
        }
        NotFound | AlreadyExists | FailedPrecondition | Unavailable => {}
        code => prop_assert!(false, "{what}: {code:?}: {}", status.message()),
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn pod_sandbox_requests(config in pod_config(), handler in prop_oneof![8 => Just(String::new()), 1 => hostile()], target in id(), verbose in any::<bool>()) {
        let w = World::new();
        let request = RunPodSandboxRequest { config, runtime_handler: handler };
        acceptable("RunPodSandbox", w.d().rpc_run_pod(request))?;
        let id = w.id(&target);
        acceptable("PodSandboxStatus", w.d().pod_status(PodSandboxStatusRequest { pod_sandbox_id: id.clone(), verbose }))?;
        acceptable("PodSandboxStats", w.d().rpc_pod_sandbox_stats(PodSandboxStatsRequest { pod_sandbox_id: id.clone() }))?;
        acceptable("PortForward", w.d().rpc_port_forward(PortForwardRequest { pod_sandbox_id: id.clone(), port: vec![-1, 0, 65536] }))?;
        acceptable("ListPodSandbox", w.d().list_pods(ListPodSandboxRequest { filter: Some(PodSandboxFilter { id: id.clone(), ..Default::default() }) }))?;
        acceptable("ListPodSandboxStats", w.d().rpc_list_pod_sandbox_stats(ListPodSandboxStatsRequest::default()))?;
        acceptable("ListPodSandboxMetrics", w.d().rpc_list_pod_sandbox_metrics(ListPodSandboxMetricsRequest::default()))?;
        acceptable("StopPodSandbox", w.d().rpc_stop_pod(StopPodSandboxRequest { pod_sandbox_id: id.clone() }))?;
        acceptable("RemovePodSandbox", w.d().rpc_remove_pod(RemovePodSandboxRequest { pod_sandbox_id: id }))?;
    }

    #[test]
    fn container_requests(config in container_config(), pod_id in prop_oneof![6 => Just(Id::Pod), 1 => id()], target in id(), timeout in any::<i64>(), cmd in strings(), flags in any::<(bool, bool, bool, bool)>(), resources in prop::option::of(any::<(i64, i64)>())) {
        let w = World::new();
        let request = CreateContainerRequest { pod_sandbox_id: w.id(&pod_id), config, sandbox_config: None };
        acceptable("CreateContainer", w.d().rpc_create_container(request))?;
        let id = w.id(&target);
        let (stdin, stdout, stderr, tty) = flags;
        acceptable("ContainerStatus", w.d().rpc_container_status(ContainerStatusRequest { container_id: id.clone(), verbose: tty }))?;
        acceptable("ListContainers", w.d().rpc_list_containers(ListContainersRequest { filter: Some(ContainerFilter { id: id.clone(), ..Default::default() }) }))?;
        acceptable("ContainerStats", w.d().rpc_container_stats(ContainerStatsRequest { container_id: id.clone() }))?;
        acceptable("ListContainerStats", w.d().rpc_list_container_stats(ListContainerStatsRequest::default()))?;
        acceptable("ExecSync", w.d().rpc_exec_sync(ExecSyncRequest { container_id: id.clone(), cmd: cmd.clone(), timeout }))?;
        acceptable("Exec", w.d().rpc_exec(ExecRequest { container_id: id.clone(), cmd, tty, stdin, stdout, stderr }))?;
        acceptable("Attach", w.d().rpc_attach(AttachRequest { container_id: id.clone(), stdin, tty, stdout, stderr }))?;
        let linux = resources.map(|(cpu_quota, memory_limit_in_bytes)| LinuxContainerResources { cpu_quota, memory_limit_in_bytes, ..Default::default() });
        acceptable("UpdateContainerResources", w.d().rpc_update_container_resources(UpdateContainerResourcesRequest { container_id: id.clone(), linux, ..Default::default() }))?;
        acceptable("ReopenContainerLog", w.d().rpc_reopen_container_log(ReopenContainerLogRequest { container_id: id.clone() }))?;
        acceptable("StartContainer", w.d().rpc_start_container(StartContainerRequest { container_id: id.clone() }))?;
        acceptable("StopContainer", w.d().rpc_stop_container(StopContainerRequest { container_id: id.clone(), timeout }))?;
        acceptable("RemoveContainer", w.d().rpc_remove_container(RemoveContainerRequest { container_id: id }))?;
    }

    #[test]
    fn image_requests(name in hostile(), present in any::<bool>(), verbose in any::<bool>()) {
        let w = World::new();
        let spec = |image: String| present.then_some(ImageSpec { image, ..Default::default() });
        acceptable("ImageStatus", w.d().image_status(ImageStatusRequest { image: spec(name.clone()), verbose }))?;
        acceptable("ListImages", w.d().list_images(ListImagesRequest { filter: Some(ImageFilter { image: spec(name.clone()) }) }))?;
        acceptable("ImageFsInfo", w.d().image_fs_info(ImageFsInfoRequest {}))?;
        // Only names no registry could serve: a pull of a well-formed name would reach
        // for the network, which a unit test never does.
        let pull = PullImageRequest { image: spec(format!("Not A Name {name}")), ..Default::default() };
        acceptable("PullImage", w.d().rpc_pull_image(pull))?;
        acceptable("RemoveImage", w.d().rpc_remove_image(RemoveImageRequest { image: spec(name) }))?;
    }
}

#[test]
fn the_live_objects_survive_requests_about_others() {
    let w = World::new();
    w.d()
        .rpc_stop_pod(StopPodSandboxRequest {
            pod_sandbox_id: "..".into(),
        })
        .unwrap();
    let err = w
        .d()
        .rpc_remove_container(RemoveContainerRequest {
            container_id: String::new(),
        })
        .unwrap_err();
    assert_eq!(err.message(), "container_id: must not be empty");
    assert!(w.d().pod(&w.pod).is_ok() && w.d().container(&w.container).is_ok());
}
