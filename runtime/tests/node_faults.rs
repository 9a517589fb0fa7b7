//! A node given bad input (#14): the registry unreachable, a pod whose image does not
//! exist, a CNI config with errors, and an image record damaged by a power loss. Each must
//! be reported through the CRI with the reason and in the runtime's journal, while the node
//! stays Ready for everything else: the kubelet sees a failed pod, not a failed node.
//!
//! As `node.rs`: the debug image booted in QEMU, driven from the host through the node's
//! own CRI (its `tcp_address`, forwarded by QEMU), images from Debian's docker-registry on
//! the host, and the node's journal read through the console shell.

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use berth_runtime::client::CriClient;
use berth_runtime::proto::v1::*;
use berth_tests::shell::{vm_builder, Shell};
use berth_tests::{shared_debug_image, sparse_copy, vm_tests_skipped};
use support::node::*;
use support::{busybox_layout, free_port, Registry};
use tonic::{Code, Status};

/// Where the runtime keeps image records on STATE (`--root`'s `images/`).
const RECORDS: &str = "/var/lib/berth/runtime/images";

type Tokio = tokio::runtime::Runtime;

/// The host ports QEMU forwards to the guest's.
struct Forwards {
    cri: u16,
    http: u16,
}

/// Boots the node and configures its runtime and registries as `node.rs` does: each
/// registry in `registries` gets a plain-HTTP `hosts.toml`.
fn boot(name: &str, disk: &Path, fw: &Forwards, registries: &[&str]) -> Shell {
    let builder = vm_builder(name, disk, false)
        .memory_mib(2048)
        .port_forward(fw.cri, CRI_PORT)
        .port_forward(fw.http, HOST_PORT);
    let mut sh = Shell::start(builder);
    let config = format!("tcp_address = \"0.0.0.0:{CRI_PORT}\"\\n");
    ok(
        &mut sh,
        &format!(
            "busybox mkdir -p /etc/berth && busybox printf '{config}' > /etc/berth/runtime.toml && \
             systemctl restart berth-runtime"
        ),
    );
    for registry in registries {
        let hosts = format!(
            "server = \"http://{registry}\"\\n\\n[host.\"http://{registry}\"]\\n  capabilities = [\"pull\", \"resolve\"]\\n"
        );
        ok(
            &mut sh,
            &format!(
                "busybox mkdir -p /etc/berth/certs.d/{registry} && \
                 busybox printf '{hosts}' > /etc/berth/certs.d/{registry}/hosts.toml"
            ),
        );
    }
    sh
}

/// Runs `command` on the node, which must succeed.
fn ok(sh: &mut Shell, command: &str) -> String {
    let out = sh.run(&format!("{command}; echo rc=$?"));
    assert!(out.trim().ends_with("rc=0"), "{command}:\n{out}");
    out
}

/// RuntimeReady and NetworkReady are both true.
fn assert_ready(rt: &Tokio, cri: &mut CriClient) {
    let ready = conditions(rt, cri);
    assert!(is_true(&ready, "RuntimeReady"), "{ready:?}");
    assert!(is_true(&ready, "NetworkReady"), "{ready:?}");
}

/// The error of a request that must fail.
fn failure<T: std::fmt::Debug>(what: &str, reply: Result<T, Status>) -> Status {
    match reply {
        Ok(answer) => panic!("{what} succeeded: {answer:?}"),
        Err(status) => {
            eprintln!("{what}: {:?}: {}", status.code(), status.message());
            status
        }
    }
}

fn pull(rt: &Tokio, cri: &mut CriClient, image: &str) -> Result<String, Status> {
    rt.block_on(cri.images.pull_image(PullImageRequest {
        image: Some(ImageSpec {
            image: image.to_owned(),
            ..Default::default()
        }),
        ..Default::default()
    }))
    .map(|r| r.into_inner().image_ref)
}

/// The lines of the runtime's journal on the node holding `needle`, waiting for journald
/// to have them; panics with the journal's tail if they never come.
fn journal_lines(sh: &mut Shell, needle: &str) -> String {
    let start = Instant::now();
    loop {
        let lines = sh.run(&format!(
            "journalctl -u berth-runtime --no-pager -o cat | busybox grep -F -- '{needle}'"
        ));
        if lines.contains(needle) {
            eprintln!("journal: {}", lines.trim());
            return lines;
        }
        if start.elapsed() > PATIENCE {
            let tail = sh.run("journalctl -u berth-runtime --no-pager -o cat | busybox tail -n 40");
            panic!("no {needle:?} in the runtime's journal:\n{tail}");
        }
        std::thread::sleep(Duration::from_secs(2));
    }
}

fn run_pod(rt: &Tokio, cri: &mut CriClient, config: &PodSandboxConfig) -> Result<String, Status> {
    rt.block_on(cri.runtime.run_pod_sandbox(RunPodSandboxRequest {
        config: Some(config.clone()),
        runtime_handler: String::new(),
    }))
    .map(|r| r.into_inner().pod_sandbox_id)
}

fn create_container(
    rt: &Tokio,
    cri: &mut CriClient,
    pod: &str,
    config: &PodSandboxConfig,
    image: &str,
) -> Result<String, Status> {
    rt.block_on(cri.runtime.create_container(CreateContainerRequest {
        pod_sandbox_id: pod.to_owned(),
        config: Some(web_container(image)),
        sandbox_config: Some(config.clone()),
    }))
    .map(|r| r.into_inner().container_id)
}

/// A serving pod of `image`, fetched from the host through its hostPort: the node runs
/// pods. Returns the pod's id.
fn serve_web_pod(
    rt: &Tokio,
    cri: &mut CriClient,
    fw: &Forwards,
    name: &str,
    image: &str,
) -> String {
    let config = pod_config(name, true);
    let pod = run_pod(rt, cri, &config).expect("RunPodSandbox");
    let container = create_container(rt, cri, &pod, &config, image).expect("CreateContainer");
    rt.block_on(cri.runtime.start_container(StartContainerRequest {
        container_id: container,
    }))
    .expect("StartContainer");
    assert_eq!(fetch_page(fw.http).trim(), PAGE);
    pod
}

fn remove_pod(rt: &Tokio, cri: &mut CriClient, pod: &str) {
    rt.block_on(cri.runtime.stop_pod_sandbox(StopPodSandboxRequest {
        pod_sandbox_id: pod.to_owned(),
    }))
    .expect("StopPodSandbox");
    rt.block_on(cri.runtime.remove_pod_sandbox(RemovePodSandboxRequest {
        pod_sandbox_id: pod.to_owned(),
    }))
    .expect("RemovePodSandbox");
}

fn pod_names(rt: &Tokio, cri: &mut CriClient) -> Vec<String> {
    rt.block_on(
        cri.runtime
            .list_pod_sandbox(ListPodSandboxRequest::default()),
    )
    .expect("ListPodSandbox")
    .into_inner()
    .items
    .into_iter()
    .filter_map(|p| p.metadata.map(|m| m.name))
    .collect()
}

fn image_status(rt: &Tokio, cri: &mut CriClient, image: &str) -> Option<Image> {
    rt.block_on(cri.images.image_status(ImageStatusRequest {
        image: Some(ImageSpec {
            image: image.to_owned(),
            ..Default::default()
        }),
        verbose: false,
    }))
    .expect("ImageStatus")
    .into_inner()
    .image
}

fn listed_tags(rt: &Tokio, cri: &mut CriClient) -> Vec<String> {
    rt.block_on(cri.images.list_images(ListImagesRequest::default()))
        .expect("ListImages")
        .into_inner()
        .images
        .into_iter()
        .flat_map(|i| i.repo_tags)
        .collect()
}

/// 1. A registry nothing listens on: the pull fails naming it, the journal says so, the
///    node stays Ready.
fn unreachable_registry(rt: &Tokio, cri: &mut CriClient, sh: &mut Shell, dead: &str) {
    let image = format!("{dead}/node/busybox:web");
    let err = failure("PullImage from a dead registry", pull(rt, cri, &image));
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
    assert!(err.message().contains(dead), "{err:?}");
    assert!(err.message().contains("unreachable"), "{err:?}");
    assert_ready(rt, cri);
    let logged = journal_lines(sh, &format!("PullImage \"{image}\" failed"));
    assert!(logged.contains("unreachable"), "{logged}");
}

/// 2. An image that does not exist: the pull says not found naming it, and a container of
///    an image never pulled is refused naming it; the same pod then runs the good image.
fn missing_images(
    rt: &Tokio,
    cri: &mut CriClient,
    sh: &mut Shell,
    fw: &Forwards,
    registry: &str,
) -> String {
    for image in [
        format!("{registry}/node/busybox:no-such-tag"),
        format!("{registry}/node/no-such-repo:web"),
    ] {
        let err = failure("PullImage of a missing image", pull(rt, cri, &image));
        assert_eq!(err.code(), Code::NotFound, "{err:?}");
        assert!(err.message().contains(&image), "{err:?}");
        journal_lines(sh, &format!("PullImage \"{image}\" failed"));
    }
    let good = format!("{registry}/node/busybox:web");
    let never_pulled = format!("{registry}/node/busybox:victim");
    let config = pod_config("web", true);
    let pod = run_pod(rt, cri, &config).expect("RunPodSandbox");
    let err = failure(
        "CreateContainer of an image never pulled",
        create_container(rt, cri, &pod, &config, &never_pulled),
    );
    assert_eq!(err.code(), Code::NotFound, "{err:?}");
    assert!(err.message().contains(&never_pulled), "{err:?}");
    let logged = journal_lines(sh, &format!("in pod {pod} failed"));
    assert!(logged.contains(&never_pulled), "{logged}");
    assert_ready(rt, cri);

    pull(rt, cri, &good).expect("PullImage of the good image");
    let container = create_container(rt, cri, &pod, &config, &good).expect("CreateContainer");
    rt.block_on(cri.runtime.start_container(StartContainerRequest {
        container_id: container,
    }))
    .expect("StartContainer");
    assert_eq!(fetch_page(fw.http).trim(), PAGE);
    pod
}

/// 3. A CNI config that sorts first and cannot be used: NetworkReady false and new pods
///    refused, both naming the file or the plugin; the running pod keeps serving; removing
///    the file restores new pods.
fn broken_cni(rt: &Tokio, cri: &mut CriClient, sh: &mut Shell, fw: &Forwards) {
    let broken = "/etc/cni/net.d/00-broken.conflist";
    let cases = [
        (
            r#"{"cniVersion": "1.0.0", "name": broken"#,
            "00-broken.conflist",
        ),
        (
            r#"{"cniVersion": "1.0.0", "name": "broken", "plugins": [{"type": "no-such-plugin"}]}"#,
            "plugin no-such-plugin not found",
        ),
    ];
    for (i, (text, reason)) in cases.iter().enumerate() {
        ok(sh, &format!("busybox printf '%s' '{text}' > {broken}"));
        let network = conditions(rt, cri)
            .remove("NetworkReady")
            .expect("NetworkReady");
        eprintln!("NetworkReady: {network:?}");
        assert!(!network.status, "{network:?}");
        assert_eq!(network.reason, "NetworkPluginNotReady", "{network:?}");
        assert!(network.message.contains(reason), "{network:?}");
        assert!(is_true(&conditions(rt, cri), "RuntimeReady"));

        let name = format!("broken-net-{i}");
        let err = failure(
            "RunPodSandbox with a broken CNI config",
            run_pod(rt, cri, &pod_config(&name, false)),
        );
        assert_eq!(err.code(), Code::Unavailable, "{err:?}");
        assert!(err.message().contains(reason), "{err:?}");
        assert!(
            !pod_names(rt, cri).contains(&name),
            "a failed pod is left behind"
        );
        let logged = journal_lines(sh, &format!("RunPodSandbox default/{name} failed"));
        assert!(logged.contains(reason), "{logged}");
        assert_eq!(
            fetch_page(fw.http).trim(),
            PAGE,
            "the running pod stops serving"
        );
    }
    ok(sh, &format!("busybox rm {broken}"));
    assert_ready(rt, cri);
    let pod = run_pod(rt, cri, &pod_config("after-cni", false)).expect("RunPodSandbox once fixed");
    remove_pod(rt, cri, &pod);
}

/// 4. Before the power loss: the victim image's record is cut short, as a write the disk
///    never finished, and the VM is killed without a shutdown.
fn damage_and_kill(mut sh: Shell, victim_id: &str) {
    let hex = victim_id
        .strip_prefix("sha256:")
        .expect("a sha256 image id");
    let record = format!("{RECORDS}/{hex}.json");
    ok(
        &mut sh,
        &format!("busybox printf '{{\"id\": \"sha' > {record} && busybox sync"),
    );
    sh.vm.quit().expect("QEMU quits");
}

/// The images of the power loss.
struct Images<'a> {
    good: &'a str,
    victim: &'a str,
    victim_id: &'a str,
}

/// 4. After the power loss: the runtime starts and the node is Ready, the damaged record is
///    said in the journal and left out, the good image stays usable, and pulling the
///    victim again repairs it. `old_pod` is the web pod of the first boot.
fn after_power_loss(
    rt: &Tokio,
    cri: &mut CriClient,
    sh: &mut Shell,
    fw: &Forwards,
    images: &Images<'_>,
    old_pod: &str,
) {
    let Images {
        good,
        victim,
        victim_id,
    } = *images;
    assert_ready(rt, cri);
    let hex = victim_id
        .strip_prefix("sha256:")
        .expect("a sha256 image id");
    let logged = journal_lines(sh, &format!("image record {RECORDS}/{hex}.json"));
    assert!(logged.contains("left out until pulled again"), "{logged}");
    let tags = listed_tags(rt, cri);
    assert!(tags.iter().any(|t| t == good), "{tags:?}");
    assert!(!tags.iter().any(|t| t == victim), "{tags:?}");
    assert!(image_status(rt, cri, good).is_some());
    assert!(image_status(rt, cri, victim).is_none());

    assert_eq!(pull(rt, cri, victim).expect("PullImage again"), victim_id);
    assert_eq!(
        image_status(rt, cri, victim).map(|i| i.id).as_deref(),
        Some(victim_id)
    );
    let record = sh.run(&format!("busybox cat {RECORDS}/{hex}.json"));
    assert!(record.contains(victim), "{record}");
    remove_pod(rt, cri, old_pod);
    serve_web_pod(rt, cri, fw, "web-after-power-loss", good);
}

#[test]
#[ignore = "boots VMs; run by `cargo xtask test`"]
fn a_node_reports_bad_input_and_stays_ready_for_everything_else() {
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
    busybox_layout(layouts.path(), "victim", &[], &["true"]);
    registry.push(layouts.path(), "web", "node/busybox");
    registry.push(layouts.path(), "victim", "node/busybox");
    let guest_registry = format!("{HOST_FROM_GUEST}:{port}");
    // A host port nothing listens on: QEMU's user network refuses the guest's connection.
    let dead_registry = format!("{HOST_FROM_GUEST}:{}", free_port());
    let good = format!("{guest_registry}/node/busybox:web");
    let victim = format!("{guest_registry}/node/busybox:victim");

    let (disk, _) = shared_debug_image();
    let dir = tempfile::tempdir().expect("tempdir");
    let copy = sparse_copy(disk, dir.path());
    let fw = Forwards {
        cri: free_port(),
        http: free_port(),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio");
    let registries = [guest_registry.as_str(), dead_registry.as_str()];

    let mut sh = boot("node_faults_1", &copy, &fw, &registries);
    let mut cri = connect(&rt, fw.cri);
    assert_ready(&rt, &mut cri);
    unreachable_registry(&rt, &mut cri, &mut sh, &dead_registry);
    let old_pod = missing_images(&rt, &mut cri, &mut sh, &fw, &guest_registry);
    broken_cni(&rt, &mut cri, &mut sh, &fw);
    let victim_id = pull(&rt, &mut cri, &victim).expect("PullImage of the victim");
    damage_and_kill(sh, &victim_id);

    let mut sh = boot("node_faults_2", &copy, &fw, &registries);
    let mut cri = connect(&rt, fw.cri);
    let images = Images {
        good: &good,
        victim: &victim,
        victim_id: &victim_id,
    };
    after_power_loss(&rt, &mut cri, &mut sh, &fw, &images, &old_pod);
    let console = sh.power_off();
    assert!(!console.contains("berth: FAILED"), "{console}");
}
