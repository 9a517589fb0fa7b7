//! The node end to end (#14): the debug image booted in QEMU and driven from the host as a
//! kubelet drives a node, through the node's own CRI. The runtime's `tcp_address` (as
//! containerd's `[grpc] tcp_address`) is set by the test on the node, through the debug
//! variant's console shell, and QEMU forwards it: only a test VM carries that forward.
//! Images come from Debian's docker-registry on the host, reached at QEMU's host address
//! and configured as a user would, with `certs.d/<host>/hosts.toml`.

mod support;

use std::path::Path;

use berth_runtime::client::CriClient;
use berth_runtime::proto::v1::*;
use berth_tests::shell::{vm_builder, Shell};
use berth_tests::{shared_debug_image, sparse_copy, vm_tests_skipped};
use support::node::*;
use support::{busybox_layout, free_port, Registry};

/// The host ports QEMU forwards to the guest's.
struct Forwards {
    cri: u16,
    stream: u16,
    http: u16,
}

fn boot(name: &str, disk: &Path, fw: &Forwards, registry: &str) -> Shell {
    let builder = vm_builder(name, disk, false)
        .memory_mib(2048)
        .port_forward(fw.cri, CRI_PORT)
        .port_forward(fw.stream, STREAM_PORT)
        .port_forward(fw.http, HOST_PORT);
    let mut sh = Shell::start(builder);
    // /etc is the stateless overlay: the node's configuration is written at every boot,
    // as cloud-init or a GCE startup script would.
    let config = format!(
        "tcp_address = \"0.0.0.0:{CRI_PORT}\"\\nstream_server_address = \"0.0.0.0\"\\nstream_server_port = {STREAM_PORT}\\n"
    );
    let hosts = format!(
        "server = \"http://{registry}\"\\n\\n[host.\"http://{registry}\"]\\n  capabilities = [\"pull\", \"resolve\"]\\n"
    );
    let out = sh.run(&format!(
        "busybox mkdir -p /etc/berth && busybox printf '{config}' > /etc/berth/runtime.toml && \
         systemctl restart berth-runtime; echo rc=$?"
    ));
    assert!(out.trim().ends_with("rc=0"), "{out}");
    // The registry after the restart: the runtime reads hosts.toml at each pull.
    let out = sh.run(&format!(
        "busybox mkdir -p /etc/berth/certs.d/{registry} && \
         busybox printf '{hosts}' > /etc/berth/certs.d/{registry}/hosts.toml; echo rc=$?"
    ));
    assert!(out.trim().ends_with("rc=0"), "{out}");
    sh
}

/// Connects to the node's CRI through the forward, waiting for the daemon to serve.
/// RunPodSandbox + CreateContainer + StartContainer: (pod id, container id).
fn run_web_pod(
    rt: &tokio::runtime::Runtime,
    cri: &mut CriClient,
    name: &str,
    image: &str,
) -> (String, String) {
    let config = pod_config(name, true);
    let pod = rt
        .block_on(cri.runtime.run_pod_sandbox(RunPodSandboxRequest {
            config: Some(config.clone()),
            runtime_handler: String::new(),
        }))
        .expect("RunPodSandbox")
        .into_inner()
        .pod_sandbox_id;
    let container = rt
        .block_on(cri.runtime.create_container(CreateContainerRequest {
            pod_sandbox_id: pod.clone(),
            config: Some(web_container(image)),
            sandbox_config: Some(config),
        }))
        .expect("CreateContainer")
        .into_inner()
        .container_id;
    rt.block_on(cri.runtime.start_container(StartContainerRequest {
        container_id: container.clone(),
    }))
    .expect("StartContainer");
    (pod, container)
}

fn pod_state(rt: &tokio::runtime::Runtime, cri: &mut CriClient, pod: &str) -> i32 {
    rt.block_on(cri.runtime.pod_sandbox_status(PodSandboxStatusRequest {
        pod_sandbox_id: pod.to_owned(),
        verbose: false,
    }))
    .expect("PodSandboxStatus")
    .into_inner()
    .status
    .expect("a pod status")
    .state
}

/// The streaming server's URL with the guest's address replaced by the host forward.
fn through_forward(url: &str, port: u16) -> String {
    let rest = url
        .strip_prefix("http://")
        .unwrap_or_else(|| panic!("not an http URL: {url}"));
    let (_, path) = rest
        .split_once('/')
        .unwrap_or_else(|| panic!("no path: {url}"));
    format!("http://127.0.0.1:{port}/{path}")
}

#[test]
#[ignore = "boots VMs; run by `cargo xtask test`"]
fn a_node_pulls_serves_execs_logs_restarts_its_runtime_and_reboots() {
    if vm_tests_skipped() || support::skip(&["docker-registry", "skopeo", "busybox"]) {
        return;
    }
    let registry = Registry::start();
    let port = registry
        .host
        .rsplit_once(':')
        .map(|(_, p)| p.to_owned())
        .expect("registry port");
    let layouts = tempfile::tempdir().expect("tempdir");
    busybox_layout(layouts.path(), "web", &[], &["sh"]);
    registry.push(layouts.path(), "web", "node/busybox");
    let guest_registry = format!("{HOST_FROM_GUEST}:{port}");
    let image = format!("{guest_registry}/node/busybox:web");

    let (disk, _) = shared_debug_image();
    let dir = tempfile::tempdir().expect("tempdir");
    let copy = sparse_copy(disk, dir.path());
    let fw = Forwards {
        cri: free_port(),
        stream: free_port(),
        http: free_port(),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio");

    let mut sh = boot("node_boot_1", &copy, &fw, &guest_registry);
    // The kernel prerequisites of the Kubernetes container-runtime docs.
    let prereqs = sh.run(
        "for m in overlay br_netfilter; do [ -d /sys/module/$m ] && echo module:$m; done; \
         busybox cat /proc/sys/net/bridge/bridge-nf-call-iptables \
           /proc/sys/net/bridge/bridge-nf-call-ip6tables /proc/sys/net/ipv4/ip_forward; \
         busybox awk '$2 == \"/sys/fs/cgroup\" { print $3 }' /proc/mounts",
    );
    let prereqs: Vec<&str> = prereqs.split_whitespace().collect();
    assert_eq!(
        prereqs,
        [
            "module:overlay",
            "module:br_netfilter",
            "1",
            "1",
            "1",
            "cgroup2"
        ]
    );
    let mut cri = connect(&rt, fw.cri);
    let version = rt
        .block_on(cri.runtime.version(VersionRequest::default()))
        .expect("Version")
        .into_inner();
    assert_eq!(version.runtime_name, "berth");
    assert_eq!(version.runtime_api_version, "v1");
    let driver = rt
        .block_on(cri.runtime.runtime_config(RuntimeConfigRequest::default()))
        .expect("RuntimeConfig")
        .into_inner()
        .linux
        .expect("linux config")
        .cgroup_driver;
    assert_eq!(driver, CgroupDriver::Cgroupfs as i32);

    // A network add-on's config appearing at run time: none, NetworkReady false; one
    // written, NetworkReady true, without restarting anything.
    let moved = sh
        .run("busybox mv /etc/cni/net.d/90-berth.conflist /run/berth-default.conflist; echo rc=$?");
    assert!(moved.trim().ends_with("rc=0"), "{moved}");
    let ready = conditions(&rt, &mut cri);
    assert!(is_true(&ready, "RuntimeReady"), "{ready:?}");
    assert!(!is_true(&ready, "NetworkReady"), "{ready:?}");
    let written = sh
        .run("busybox cp /run/berth-default.conflist /etc/cni/net.d/10-addon.conflist; echo rc=$?");
    assert!(written.trim().ends_with("rc=0"), "{written}");
    let ready = conditions(&rt, &mut cri);
    assert!(is_true(&ready, "NetworkReady"), "{ready:?}");

    // Pull from the host's registry through hosts.toml.
    let pulled = rt.block_on(cri.images.pull_image(PullImageRequest {
        image: Some(ImageSpec {
            image: image.clone(),
            ..Default::default()
        }),
        ..Default::default()
    }));
    let pulled = match pulled {
        Ok(pulled) => pulled.into_inner().image_ref,
        Err(e) => panic!(
            "PullImage: {e}\n{}",
            sh.run("busybox df -k; busybox df -i; busybox mount")
        ),
    };
    assert!(pulled.starts_with("sha256:"), "{pulled}");

    // A pod on the CNI bridge serving HTTP, fetched from the host through its hostPort.
    let (pod, container) = run_web_pod(&rt, &mut cri, "web", &image);
    assert_eq!(fetch_page(fw.http).trim(), PAGE);
    let addr = sh.run("busybox ip -4 -o addr show dev cni0");
    assert!(addr.contains("10.88.0.1/16"), "{addr}");

    // ExecSync and a streaming exec (SPDY, as kubectl exec goes through the kubelet).
    let exec = rt
        .block_on(cri.runtime.exec_sync(ExecSyncRequest {
            container_id: container.clone(),
            cmd: vec!["cat".to_owned(), "/www/index.html".to_owned()],
            timeout: 60,
        }))
        .expect("ExecSync")
        .into_inner();
    assert_eq!(exec.exit_code, 0);
    assert_eq!(String::from_utf8_lossy(&exec.stdout).trim(), PAGE);
    let url = rt
        .block_on(cri.runtime.exec(ExecRequest {
            container_id: container.clone(),
            cmd: vec![
                "sh".to_owned(),
                "-c".to_owned(),
                "hostname; echo streamed".to_owned(),
            ],
            stdout: true,
            stderr: true,
            ..Default::default()
        }))
        .expect("Exec")
        .into_inner()
        .url;
    let url = through_forward(&url, fw.stream);
    let streamed = rt.block_on(async {
        let mut session =
            support::stream_client::SpdyCommand::open(&url, false, true, true, false).await;
        let mut stdout = session.stdout.take().expect("stdout");
        let out = support::stream_client::read_all(&mut stdout).await;
        let status = session.status().await;
        (String::from_utf8_lossy(&out).into_owned(), status)
    });
    assert!(streamed.0.contains("streamed"), "{streamed:?}");
    assert_eq!(support::stream_client::exit_code(&streamed.1), 0);

    // The container's CRI log, on the node, holds the answer httpd logged to stderr for
    // the host's request (from QEMU's host address: portmap's DNAT keeps the source).
    let status = rt
        .block_on(cri.runtime.container_status(ContainerStatusRequest {
            container_id: container.clone(),
            verbose: false,
        }))
        .expect("ContainerStatus")
        .into_inner()
        .status
        .expect("a container status");
    assert_eq!(status.state, ContainerState::ContainerRunning as i32);
    let log = sh.run(&format!("busybox cat {}", status.log_path));
    assert!(
        log.lines().any(|l| l.contains(" stderr F ")
            && l.contains("10.0.2.2")
            && l.contains("response:200")),
        "{log}"
    );

    // The runtime restarts under the service manager; the container keeps serving.
    let restart = sh.run("systemctl restart berth-runtime; echo rc=$?");
    assert!(restart.trim().ends_with("rc=0"), "{restart}");
    let mut cri = connect(&rt, fw.cri);
    assert_eq!(fetch_page(fw.http).trim(), PAGE);
    assert_eq!(
        pod_state(&rt, &mut cri, &pod),
        PodSandboxState::SandboxReady as i32
    );
    sh.power_off();

    // After a reboot: the image is still on STATE, the old pod is NotReady and goes away,
    // and a new pod runs.
    let sh = boot("node_boot_2", &copy, &fw, &guest_registry);
    let mut cri = connect(&rt, fw.cri);
    let images = rt
        .block_on(cri.images.list_images(ListImagesRequest::default()))
        .expect("ListImages")
        .into_inner()
        .images;
    assert!(
        images.iter().any(|i| i.repo_tags.contains(&image)),
        "{images:?}"
    );
    assert_eq!(
        pod_state(&rt, &mut cri, &pod),
        PodSandboxState::SandboxNotready as i32
    );
    rt.block_on(cri.runtime.stop_pod_sandbox(StopPodSandboxRequest {
        pod_sandbox_id: pod.clone(),
    }))
    .expect("StopPodSandbox");
    rt.block_on(cri.runtime.remove_pod_sandbox(RemovePodSandboxRequest {
        pod_sandbox_id: pod.clone(),
    }))
    .expect("RemovePodSandbox");
    let (_pod, _container) = run_web_pod(&rt, &mut cri, "web-again", &image);
    assert_eq!(fetch_page(fw.http).trim(), PAGE);
    let console = sh.power_off();
    assert!(!console.contains("berth: FAILED"), "{console}");
}
