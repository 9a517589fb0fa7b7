//! The runtime end to end on this host, as root, through its gRPC API: a real registry,
//! crun, the CNI plugins; a daemon killed with SIGKILL and started again; and nothing
//! left behind once everything is removed. `#[ignore]`d, since it makes bridges and iptables
//! rules: `cargo xtask test` runs it.

mod support;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use berth_runtime::client::{connect, CriClient};
use berth_runtime::proto::v1::*;
use support::{busybox_layout, wait_until, write_cni_config, Registry};

const TOOLS: &[&str] = &["docker-registry", "skopeo", "crun", "/usr/lib/cni/bridge"];

fn pod_config(name: &str, log_dir: &Path, port: Option<(i32, i32)>) -> PodSandboxConfig {
    PodSandboxConfig {
        metadata: Some(PodSandboxMetadata {
            name: name.to_owned(),
            uid: format!("uid-{name}"),
            namespace: "default".to_owned(),
            attempt: 0,
        }),
        hostname: format!("{name}-host"),
        log_directory: log_dir.display().to_string(),
        dns_config: Some(DnsConfig {
            servers: vec!["10.96.0.10".to_owned()],
            searches: vec!["default.svc.cluster.local".to_owned()],
            options: vec!["ndots:5".to_owned()],
        }),
        port_mappings: port
            .map(|(container_port, host_port)| PortMapping {
                protocol: Protocol::Tcp as i32,
                container_port,
                host_port,
                host_ip: String::new(),
            })
            .into_iter()
            .collect(),
        labels: HashMap::from([("app".to_owned(), name.to_owned())]),
        annotations: HashMap::from([("note".to_owned(), "berth test".to_owned())]),
        linux: Some(LinuxPodSandboxConfig::default()),
        ..Default::default()
    }
}

fn container_config(image: &str, script: &str) -> ContainerConfig {
    ContainerConfig {
        metadata: Some(ContainerMetadata {
            name: "printer".to_owned(),
            attempt: 0,
        }),
        image: Some(ImageSpec {
            image: image.to_owned(),
            ..Default::default()
        }),
        command: vec!["/bin/sh".to_owned(), "-c".to_owned(), script.to_owned()],
        envs: vec![KeyValue {
            key: "GREETING".to_owned(),
            value: "hello".to_owned(),
        }],
        log_path: "printer/0.log".to_owned(),
        labels: HashMap::from([("role".to_owned(), "printer".to_owned())]),
        linux: Some(LinuxContainerConfig::default()),
        ..Default::default()
    }
}

async fn container_state(client: &mut CriClient, id: &str) -> ContainerStatus {
    client
        .runtime
        .container_status(ContainerStatusRequest {
            container_id: id.to_owned(),
            verbose: false,
        })
        .await
        .expect("ContainerStatus")
        .into_inner()
        .status
        .expect("status")
}

/// Every line of /proc/self/mountinfo that mentions `dir`.
fn mounts_under(dir: &Path) -> Vec<String> {
    let dir = dir.display().to_string();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter(|line| line.contains(&dir))
        .map(str::to_owned)
        .collect()
}

/// Files (not folders) anywhere under `dir`.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() && !path.is_symlink() {
                stack.push(path);
            } else {
                found.push(path);
            }
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "creates bridges and iptables rules on the host; run by `cargo xtask test`"]
async fn pull_run_log_exec_restart_stop_remove() {
    if support::skip(TOOLS) {
        return;
    }
    let work = tempfile::tempdir().expect("tempdir");
    let registry = Registry::start();
    let layout = work.path().join("layout");
    busybox_layout(&layout, "1", &[], &["sh"]);
    let image = registry.push(&layout, "1", "test/busybox");

    let suffix = &berth_runtime::store::new_id().expect("id")[..8];
    let cgroup_parent = format!("/berth-test-{suffix}");
    let certs = work.path().join("certs.d");
    std::fs::create_dir_all(certs.join(&registry.host)).expect("certs.d");
    std::fs::write(
        certs.join(&registry.host).join("hosts.toml"),
        format!(
            "server = \"http://{0}\"\n[host.\"http://{0}\"]\ncapabilities = [\"pull\", \"resolve\"]\n",
            registry.host
        ),
    )
    .expect("hosts.toml");
    let cni_conf = work.path().join("net.d");
    let ipam = work.path().join("ipam");
    write_cni_config(&cni_conf, &ipam, &format!("bt{suffix}"), "10.88.231.0/24");
    let mut daemon = support::Daemon::new(
        work.path(),
        &format!(
            "registry_config_dir = \"{}\"\ncgroup_parent = \"{cgroup_parent}\"\n[cni]\nconf_dir = \"{}\"\nbin_dirs = [\"/usr/lib/cni\"]\n",
            certs.display(),
            cni_conf.display()
        ),
    );
    daemon.start();
    let mut client = connect(&daemon.socket).await.expect("connect");

    // Version, Status, RuntimeConfig.
    let version = client
        .runtime
        .version(VersionRequest::default())
        .await
        .expect("Version")
        .into_inner();
    assert_eq!(version.runtime_name, "berth");
    assert_eq!(version.runtime_api_version, "v1");
    let status = client
        .runtime
        .status(StatusRequest { verbose: true })
        .await
        .expect("Status")
        .into_inner();
    let conditions = status.status.expect("conditions").conditions;
    for kind in ["RuntimeReady", "NetworkReady"] {
        let condition = conditions
            .iter()
            .find(|c| c.r#type == kind)
            .unwrap_or_else(|| panic!("no {kind}"));
        assert!(condition.status, "{kind} false: {condition:?}");
    }
    let config = client
        .runtime
        .runtime_config(RuntimeConfigRequest::default())
        .await
        .expect("RuntimeConfig")
        .into_inner();
    assert_eq!(
        config.linux.expect("linux").cgroup_driver,
        CgroupDriver::Cgroupfs as i32
    );

    // Pull, list, status.
    let pulled = client
        .images
        .pull_image(PullImageRequest {
            image: Some(ImageSpec {
                image: image.clone(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .expect("PullImage")
        .into_inner();
    assert!(pulled.image_ref.starts_with("sha256:"), "{pulled:?}");
    let listed = client
        .images
        .list_images(ListImagesRequest::default())
        .await
        .expect("ListImages")
        .into_inner();
    assert!(listed
        .images
        .iter()
        .any(|i| i.id == pulled.image_ref && i.repo_tags.contains(&image)));
    let by_tag = client
        .images
        .image_status(ImageStatusRequest {
            image: Some(ImageSpec {
                image: image.clone(),
                ..Default::default()
            }),
            verbose: false,
        })
        .await
        .expect("ImageStatus")
        .into_inner()
        .image
        .expect("image known");
    assert_eq!(by_tag.id, pulled.image_ref);
    assert!(by_tag.size > 0);

    // A pod with its own network.
    let logs = work.path().join("logs");
    let pod = pod_config("web", &logs, None);
    let pod_id = client
        .runtime
        .run_pod_sandbox(RunPodSandboxRequest {
            config: Some(pod.clone()),
            runtime_handler: String::new(),
        })
        .await
        .expect("RunPodSandbox")
        .into_inner()
        .pod_sandbox_id;
    let pod_status = client
        .runtime
        .pod_sandbox_status(PodSandboxStatusRequest {
            pod_sandbox_id: pod_id.clone(),
            verbose: false,
        })
        .await
        .expect("PodSandboxStatus")
        .into_inner()
        .status
        .expect("status");
    assert_eq!(pod_status.state, PodSandboxState::SandboxReady as i32);
    let ip = pod_status.network.expect("network").ip;
    assert!(ip.starts_with("10.88.231."), "pod ip {ip}");
    assert_eq!(
        pod_status.labels.get("app").map(String::as_str),
        Some("web")
    );

    // A container that prints, then waits for SIGTERM and exits 7.
    // The trap is set before the first output, which the test waits for: a SIGTERM after
    // it always finds the trap (set after it, a loaded host could race it).
    let script = "trap 'echo bye; exit 7' TERM; echo \"$GREETING from $(hostname)\"; \
                  for i in 1 2 3; do echo line $i; done; echo oops >&2; \
                  while true; do sleep 0.2; done";
    // The evented PLEG's stream: subscribed before the container exists.
    let mut events = client
        .runtime
        .get_container_events(GetEventsRequest::default())
        .await
        .expect("GetContainerEvents")
        .into_inner();
    let container_id = client
        .runtime
        .create_container(CreateContainerRequest {
            pod_sandbox_id: pod_id.clone(),
            config: Some(container_config(&image, script)),
            sandbox_config: Some(pod.clone()),
        })
        .await
        .expect("CreateContainer")
        .into_inner()
        .container_id;
    assert_eq!(
        container_state(&mut client, &container_id).await.state,
        ContainerState::ContainerCreated as i32
    );
    client
        .runtime
        .start_container(StartContainerRequest {
            container_id: container_id.clone(),
        })
        .await
        .expect("StartContainer");
    for kind in [
        ContainerEventType::ContainerCreatedEvent,
        ContainerEventType::ContainerStartedEvent,
    ] {
        let event = tokio::time::timeout(Duration::from_secs(10), events.message())
            .await
            .expect("an event within 10 s")
            .expect("GetContainerEvents stream")
            .expect("the stream goes on");
        assert_eq!(event.container_id, container_id);
        assert_eq!(event.container_event_type, kind as i32, "{event:?}");
        assert_eq!(event.pod_sandbox_status.expect("pod status").id, pod_id);
    }
    let log_path = logs.join("printer/0.log");
    wait_until("the container's log lines", Duration::from_secs(30), || {
        std::fs::read_to_string(&log_path)
            .map(|text| text.contains("line 3") && text.contains("oops"))
            .unwrap_or(false)
    });
    let log = std::fs::read_to_string(&log_path).expect("log");
    let lines: Vec<&str> = log.lines().collect();
    assert!(
        lines
            .iter()
            .any(|l| l.ends_with(" stdout F hello from web-host")),
        "{log}"
    );
    for line in &lines {
        let mut fields = line.splitn(4, ' ');
        let time = fields.next().expect("time");
        assert!(
            time.ends_with('Z') && time.len() == 30,
            "timestamp {time:?} in {line:?}"
        );
        assert!(matches!(fields.next(), Some("stdout" | "stderr")), "{line}");
        assert_eq!(fields.next(), Some("F"), "{line}");
    }
    assert!(lines.iter().any(|l| l.ends_with(" stderr F oops")), "{log}");

    // ExecSync: output, exit code, hostname and resolv.conf from the pod.
    let exec = client
        .runtime
        .exec_sync(ExecSyncRequest {
            container_id: container_id.clone(),
            cmd: vec![
                "/bin/sh".into(),
                "-c".into(),
                "hostname; cat /etc/resolv.conf; echo to-stderr >&2; exit 3".into(),
            ],
            timeout: 10,
        })
        .await
        .expect("ExecSync")
        .into_inner();
    let stdout = String::from_utf8_lossy(&exec.stdout);
    assert_eq!(exec.exit_code, 3);
    assert!(stdout.starts_with("web-host\n"), "{stdout}");
    assert!(stdout.contains("nameserver 10.96.0.10"), "{stdout}");
    assert!(
        stdout.contains("search default.svc.cluster.local"),
        "{stdout}"
    );
    assert_eq!(String::from_utf8_lossy(&exec.stderr), "to-stderr\n");

    // Kill the daemon; the container keeps running and is listed after a restart.
    let running = container_state(&mut client, &container_id).await;
    assert_eq!(running.state, ContainerState::ContainerRunning as i32);
    daemon.kill();
    daemon.start();
    let mut client = connect(&daemon.socket).await.expect("reconnect");
    let listed = client
        .runtime
        .list_containers(ListContainersRequest {
            filter: Some(ContainerFilter {
                state: Some(ContainerStateValue {
                    state: ContainerState::ContainerRunning as i32,
                }),
                ..Default::default()
            }),
        })
        .await
        .expect("ListContainers")
        .into_inner()
        .containers;
    assert!(
        listed.iter().any(|c| c.id == container_id),
        "running container not listed after restart: {listed:?}"
    );
    let pods = client
        .runtime
        .list_pod_sandbox(ListPodSandboxRequest::default())
        .await
        .expect("ListPodSandbox")
        .into_inner()
        .items;
    assert!(pods
        .iter()
        .any(|p| p.id == pod_id && p.state == PodSandboxState::SandboxReady as i32));

    let images = client
        .images
        .list_images(ListImagesRequest::default())
        .await
        .expect("ListImages after restart")
        .into_inner()
        .images;
    assert!(images.iter().any(|i| i.id == pulled.image_ref));

    // Stats from the container's cgroup, new limits, and a rotated log.
    let stats = client
        .runtime
        .container_stats(ContainerStatsRequest {
            container_id: container_id.clone(),
        })
        .await
        .expect("ContainerStats")
        .into_inner()
        .stats
        .expect("stats");
    let cpu = stats
        .cpu
        .and_then(|c| c.usage_core_nano_seconds)
        .map(|v| v.value);
    let memory = stats
        .memory
        .and_then(|m| m.working_set_bytes)
        .map(|v| v.value);
    assert!(cpu.is_some_and(|n| n > 0), "cpu {cpu:?}");
    assert!(memory.is_some_and(|n| n > 0), "memory {memory:?}");
    let all_stats = client
        .runtime
        .list_container_stats(ListContainerStatsRequest::default())
        .await
        .expect("ListContainerStats")
        .into_inner()
        .stats;
    assert_eq!(all_stats.len(), 1);
    let limits = LinuxContainerResources {
        cpu_shares: 512,
        memory_limit_in_bytes: 256 << 20,
        ..Default::default()
    };
    client
        .runtime
        .update_container_resources(UpdateContainerResourcesRequest {
            container_id: container_id.clone(),
            linux: Some(limits.clone()),
            ..Default::default()
        })
        .await
        .expect("UpdateContainerResources");
    let updated = container_state(&mut client, &container_id).await;
    assert_eq!(
        updated
            .resources
            .and_then(|r| r.linux)
            .map(|l| l.memory_limit_in_bytes),
        Some(256 << 20)
    );
    let rotated = logs.join("printer/0.log.1");
    std::fs::rename(&log_path, &rotated).expect("rotate log");
    client
        .runtime
        .reopen_container_log(ReopenContainerLogRequest {
            container_id: container_id.clone(),
        })
        .await
        .expect("ReopenContainerLog");
    assert!(log_path.exists(), "ReopenContainerLog made no new log file");

    // Stop: SIGTERM, the trap exits 7.
    client
        .runtime
        .stop_container(StopContainerRequest {
            container_id: container_id.clone(),
            timeout: 10,
        })
        .await
        .expect("StopContainer");
    let stopped = container_state(&mut client, &container_id).await;
    assert_eq!(stopped.state, ContainerState::ContainerExited as i32);
    assert_eq!(stopped.exit_code, 7, "{stopped:?}");
    assert!(stopped.finished_at >= stopped.started_at && stopped.started_at > 0);
    assert_eq!(stopped.log_path, log_path.display().to_string());
    // Written after the rotation: in the new file, none of it in the old one.
    assert!(!std::fs::read_to_string(&rotated)
        .expect("rotated log")
        .contains("bye"));
    wait_until("the bye line", Duration::from_secs(10), || {
        std::fs::read_to_string(&log_path)
            .map(|t| t.contains("stdout F bye"))
            .unwrap_or(false)
    });

    // Remove everything, twice: the second time must succeed too.
    for _ in 0..2 {
        client
            .runtime
            .remove_container(RemoveContainerRequest {
                container_id: container_id.clone(),
            })
            .await
            .expect("RemoveContainer");
        client
            .runtime
            .stop_pod_sandbox(StopPodSandboxRequest {
                pod_sandbox_id: pod_id.clone(),
            })
            .await
            .expect("StopPodSandbox");
        client
            .runtime
            .remove_pod_sandbox(RemovePodSandboxRequest {
                pod_sandbox_id: pod_id.clone(),
            })
            .await
            .expect("RemovePodSandbox");
    }
    let missing = client
        .runtime
        .container_status(ContainerStatusRequest {
            container_id: container_id.clone(),
            verbose: false,
        })
        .await
        .expect_err("removed container");
    assert_eq!(missing.code(), tonic::Code::NotFound);
    client
        .images
        .remove_image(RemoveImageRequest {
            image: Some(ImageSpec {
                image: image.clone(),
                ..Default::default()
            }),
        })
        .await
        .expect("RemoveImage");
    daemon.stop();

    assert_eq!(
        mounts_under(work.path()),
        Vec::<String>::new(),
        "mounts left"
    );
    assert_eq!(
        files_under(&daemon.state.join("pods")),
        Vec::<PathBuf>::new()
    );
    assert_eq!(
        files_under(&daemon.state.join("containers")),
        Vec::<PathBuf>::new()
    );
    assert_eq!(
        files_under(&daemon.root.join("meta")),
        Vec::<PathBuf>::new()
    );
    assert_eq!(
        files_under(&daemon.root.join("layers")),
        Vec::<PathBuf>::new()
    );
    let allocations: Vec<PathBuf> = files_under(&ipam)
        .into_iter()
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("10."))
        })
        .collect();
    assert_eq!(allocations, Vec::<PathBuf>::new(), "IPAM allocations left");
    support::remove_empty_cgroup_parent(&cgroup_parent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "creates bridges and iptables rules on the host; run by `cargo xtask test`"]
async fn bad_requests_are_named_and_unknown_objects_are_not_found() {
    if support::skip(&["crun"]) {
        return;
    }
    let work = tempfile::tempdir().expect("tempdir");
    let cni_conf = work.path().join("net.d");
    std::fs::create_dir_all(&cni_conf).expect("net.d");
    let mut daemon = support::Daemon::new(
        work.path(),
        &format!("[cni]\nconf_dir = \"{}\"\n", cni_conf.display()),
    );
    daemon.start();
    let mut client = connect(&daemon.socket).await.expect("connect");

    // No CNI config: NetworkReady false with a reason, RuntimeReady true.
    let conditions = client
        .runtime
        .status(StatusRequest::default())
        .await
        .expect("Status")
        .into_inner()
        .status
        .expect("status")
        .conditions;
    let network = conditions
        .iter()
        .find(|c| c.r#type == "NetworkReady")
        .expect("NetworkReady");
    assert!(!network.status);
    assert_eq!(network.reason, "NetworkPluginNotReady");
    assert!(network.message.contains("net.d"), "{network:?}");

    let no_metadata = client
        .runtime
        .run_pod_sandbox(RunPodSandboxRequest {
            config: Some(PodSandboxConfig::default()),
            runtime_handler: String::new(),
        })
        .await
        .expect_err("no metadata");
    assert_eq!(no_metadata.code(), tonic::Code::InvalidArgument);
    assert!(
        no_metadata.message().starts_with("config.metadata"),
        "{no_metadata:?}"
    );

    let bad_handler = client
        .runtime
        .run_pod_sandbox(RunPodSandboxRequest {
            config: Some(pod_config("x", work.path(), None)),
            runtime_handler: "kata".to_owned(),
        })
        .await
        .expect_err("unknown handler");
    assert_eq!(bad_handler.code(), tonic::Code::InvalidArgument);
    assert!(bad_handler.message().contains("kata"), "{bad_handler:?}");

    let no_image = client
        .images
        .pull_image(PullImageRequest::default())
        .await
        .expect_err("no image");
    assert_eq!(no_image.code(), tonic::Code::InvalidArgument);
    assert!(no_image.message().starts_with("image"), "{no_image:?}");

    let unknown = client
        .runtime
        .container_status(ContainerStatusRequest {
            container_id: "0123456789abcdef".to_owned(),
            verbose: false,
        })
        .await
        .expect_err("unknown container");
    assert_eq!(unknown.code(), tonic::Code::NotFound);
    let unknown_pod = client
        .runtime
        .pod_sandbox_status(PodSandboxStatusRequest {
            pod_sandbox_id: "0123456789abcdef".to_owned(),
            verbose: false,
        })
        .await
        .expect_err("unknown pod");
    assert_eq!(unknown_pod.code(), tonic::Code::NotFound);
    let unknown_image = client
        .images
        .image_status(ImageStatusRequest {
            image: Some(ImageSpec {
                image: "example.invalid/none:1".to_owned(),
                ..Default::default()
            }),
            verbose: false,
        })
        .await
        .expect("ImageStatus of an unknown image is not an error")
        .into_inner();
    assert!(unknown_image.image.is_none());
    let no_such_pod = client
        .runtime
        .create_container(CreateContainerRequest {
            pod_sandbox_id: "0123456789abcdef".to_owned(),
            config: Some(container_config("busybox", "true")),
            sandbox_config: Some(pod_config("x", work.path(), None)),
        })
        .await
        .expect_err("unknown pod");
    assert_eq!(no_such_pod.code(), tonic::Code::NotFound);
    // Stopping and removing what does not exist succeeds.
    client
        .runtime
        .stop_container(StopContainerRequest {
            container_id: "0123456789abcdef".to_owned(),
            timeout: 0,
        })
        .await
        .expect("stop unknown container");
    client
        .runtime
        .remove_pod_sandbox(RemovePodSandboxRequest {
            pod_sandbox_id: "0123456789abcdef".to_owned(),
        })
        .await
        .expect("remove unknown pod");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "runs the daemon as root; run by `cargo xtask test`"]
async fn tcp_address_serves_the_same_cri_and_stops_with_the_daemon() {
    if support::skip(&["crun"]) {
        return;
    }
    let work = tempfile::tempdir().expect("tempdir");
    let port = support::free_port();
    let mut daemon = support::Daemon::new(
        work.path(),
        &format!("tcp_address = \"127.0.0.1:{port}\"\n"),
    );
    daemon.start();
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut tcp = berth_runtime::client::connect_tcp(addr)
        .await
        .expect("connect over TCP");
    let mut unix = connect(&daemon.socket).await.expect("connect");
    let over_tcp = tcp
        .runtime
        .version(VersionRequest::default())
        .await
        .expect("Version over TCP")
        .into_inner();
    let over_unix = unix
        .runtime
        .version(VersionRequest::default())
        .await
        .expect("Version")
        .into_inner();
    assert_eq!(over_tcp, over_unix);
    assert_eq!(over_tcp.runtime_name, "berth");
    // Both listeners end with the daemon: SIGTERM, then nothing accepts on the port.
    daemon.stop();
    assert!(std::net::TcpStream::connect(addr).is_err());
    let log = std::fs::read_to_string(&daemon.log).unwrap_or_default();
    assert!(
        log.contains(&format!("serving CRI v1 on tcp 127.0.0.1:{port}")),
        "{log}"
    );
}
