//! The pod and container lifecycle over the recording fake host: the order of host
//! steps, the rollback of a failed one, the records left behind and the error kinds,
//! all without root.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::fake::{Call, Fake};
use super::records::PodState;
use super::{ContainerSpec, Daemon, PodSpec, ServiceError};
use crate::config::Config;
use crate::container::ContainerState;
use crate::error::{ErrorKind, Kind};
use crate::proto::v1::{
    ContainerConfig, LinuxContainerConfig, LinuxContainerSecurityContext, NamespaceMode,
    NamespaceOption, PodSandboxConfig,
};

/// A daemon over the fake host in a temporary folder.
pub(crate) struct Harness {
    pub dir: tempfile::TempDir,
    pub fake: Arc<Fake>,
    pub daemon: Daemon,
}

/// The image [`Harness::new`] puts in the store.
pub(crate) const IMAGE: &str = "busybox";

impl Harness {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let fake = Arc::new(Fake::default());
        let daemon = Self::open(dir.path(), fake.clone());
        let harness = Harness { dir, fake, daemon };
        harness.add_image();
        harness
    }

    fn config(dir: &std::path::Path) -> Config {
        Config {
            root: dir.join("root"),
            state: dir.join("state"),
            registry_config_dir: dir.join("registries"),
            ..Config::default()
        }
    }

    fn open(dir: &std::path::Path, fake: Arc<Fake>) -> Daemon {
        Daemon::open_on(Self::config(dir), fake, dir.join("berth-monitor")).unwrap()
    }

    /// A second daemon on the same folders over a new fake (a restart after a reboot).
    pub fn reopen(&self) -> (Arc<Fake>, Daemon) {
        let fake = Arc::new(Fake::default());
        (fake.clone(), Self::open(self.dir.path(), fake))
    }

    /// An image without layers, as a pull leaves its record.
    fn add_image(&self) {
        let hex = "ab".repeat(32);
        let record = crate::oci_image::ImageRecord {
            id: format!("sha256:{hex}"),
            repo_tags: vec!["docker.io/library/busybox:latest".to_owned()],
            repo_digests: Vec::new(),
            size: 1,
            config: crate::oci_image::ImageConfigSummary {
                cmd: vec!["sh".to_owned()],
                stop_signal: "SIGQUIT".to_owned(),
                ..Default::default()
            },
            layers: Vec::new(),
            pinned: false,
            blobs: Vec::new(),
        };
        let path = self.dir.path().join(format!("root/images/{hex}.json"));
        std::fs::write(path, serde_json::to_vec(&record).unwrap()).unwrap();
    }

    pub fn run(&self, spec: PodSpec) -> String {
        self.daemon.run_pod(spec).unwrap()
    }

    pub fn create(&self, pod: &str, name: &str) -> String {
        self.daemon.create_container(container(pod, name)).unwrap()
    }
}

pub(crate) fn pod(name: &str) -> PodSpec {
    PodSpec {
        name: name.to_owned(),
        namespace: "default".to_owned(),
        uid: format!("uid-{name}"),
        attempt: 0,
        runtime_handler: String::new(),
        hostname: None,
        host_network: false,
        host_ipc: false,
        share_pid: false,
        sysctls: Vec::new(),
        cgroup_parent: None,
        labels: BTreeMap::from([("app".to_owned(), name.to_owned())]),
        annotations: BTreeMap::new(),
        config: PodSandboxConfig::default(),
    }
}

pub(crate) fn container(pod: &str, name: &str) -> ContainerSpec {
    ContainerSpec {
        pod_id: pod.to_owned(),
        name: name.to_owned(),
        attempt: 0,
        image: IMAGE.to_owned(),
        config: ContainerConfig::default(),
    }
}

fn kind(e: ServiceError) -> Kind {
    e.kind()
}

#[test]
fn run_pod_makes_namespaces_then_network_and_records_ready() {
    let h = Harness::new();
    let id = h.run(pod("web"));
    assert_eq!(h.fake.ops(), ["create_namespaces", "network_setup"]);
    assert!(matches!(
        &h.fake.calls()[0],
        Call::CreateNamespaces { hostname, host_network: false, .. } if hostname == "node-1"
    ));
    let record = h.daemon.pod(&id).unwrap();
    assert_eq!(record.state, PodState::Ready);
    assert_eq!(record.ips, ["10.88.0.2", "fd00::2"]);
    assert!(record.cgroup_parent.ends_with(&format!("pod-{id}")));
    // A prefix finds it; the pod's /etc files are written with the primary IP.
    assert_eq!(h.daemon.pod(&id[..8]).unwrap().id, id);
    let hosts = std::fs::read_to_string(h.daemon.pod_paths(&id).hosts_file()).unwrap();
    assert!(hosts.contains("10.88.0.2"), "{hosts}");
}

#[test]
fn a_shared_pid_namespace_and_a_host_network_change_the_steps() {
    let h = Harness::new();
    let mut spec = pod("shared");
    spec.share_pid = true;
    spec.hostname = Some("shared-0".to_owned());
    h.run(spec);
    assert_eq!(
        h.fake.ops(),
        ["create_namespaces", "start_pid_namespace", "network_setup"]
    );
    assert!(
        matches!(&h.fake.calls()[0], Call::CreateNamespaces { hostname, .. } if hostname == "shared-0")
    );
    h.fake.clear();
    let mut spec = pod("host");
    spec.host_network = true;
    spec.hostname = Some("ignored".to_owned());
    let id = h.run(spec);
    assert_eq!(
        h.fake.ops(),
        ["create_namespaces"],
        "no CNI for the host network"
    );
    assert!(
        matches!(&h.fake.calls()[0], Call::CreateNamespaces { hostname, .. } if hostname == "node-1")
    );
    assert!(h.daemon.pod(&id).unwrap().ips.is_empty());
}

#[test]
fn a_failed_step_rolls_the_pod_back_and_leaves_no_record() {
    for step in ["create_namespaces", "start_pid_namespace", "network_setup"] {
        let h = Harness::new();
        h.fake.fail_next(step);
        let mut spec = pod("web");
        spec.share_pid = true;
        let err = h.daemon.run_pod(spec).unwrap_err();
        assert_eq!(err.kind(), Kind::Internal);
        assert!(err.to_string().contains("fake failure"), "{err}");
        let ops = h.fake.ops();
        let failed_at = ops.iter().position(|op| *op == step).unwrap();
        assert_eq!(
            ops[failed_at + 1..],
            ["network_teardown", "remove_namespaces"],
            "{step}: {ops:?}"
        );
        assert!(h.daemon.pods.all().is_empty(), "{step}");
        // The name is free again.
        h.run(pod("web"));
    }
}

#[test]
fn run_pod_refuses_a_taken_name_and_an_unknown_handler() {
    let h = Harness::new();
    h.run(pod("web"));
    h.fake.clear();
    assert_eq!(
        kind(h.daemon.run_pod(pod("web")).unwrap_err()),
        Kind::AlreadyExists
    );
    let mut spec = pod("other");
    spec.runtime_handler = "nope".to_owned();
    let err = h.daemon.run_pod(spec).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("runtime_handler: unknown handler"),
        "{err}"
    );
    assert!(h.fake.calls().is_empty(), "nothing made");
}

#[test]
fn stop_and_remove_pod_go_through_containers_then_the_sandbox() {
    let h = Harness::new();
    let id = h.run(pod("web"));
    let c = h.create(&id, "app");
    h.daemon.start_container(&c).unwrap();
    h.fake.clear();
    h.daemon.stop_pod(&id).unwrap();
    assert_eq!(
        h.fake.ops(),
        ["stop_container", "network_teardown", "remove_namespaces"]
    );
    assert_eq!(h.daemon.pod(&id).unwrap().state, PodState::NotReady);
    assert_eq!(h.fake.container_state(&c), Some(ContainerState::Exited));
    h.fake.clear();
    h.daemon.remove_pod(&id).unwrap();
    assert_eq!(
        h.fake.ops(),
        [
            "remove_container",
            "network_teardown",
            "remove_namespaces",
            "remove_pod_files",
            "remove_cgroup"
        ]
    );
    assert_eq!(kind(h.daemon.pod(&id).unwrap_err()), Kind::NotFound);
    assert!(h.daemon.containers.all().is_empty());
    assert!(!h.daemon.pod_paths(&id).dir().exists());
    // Both are idempotent for the kubelet's retries.
    h.daemon.stop_pod(&id).unwrap();
    h.daemon.remove_pod(&id).unwrap();
}

#[test]
fn a_kubelet_cgroup_is_not_removed() {
    let h = Harness::new();
    let mut spec = pod("web");
    spec.cgroup_parent = Some("/kubepods/pod1".to_owned());
    let id = h.run(spec);
    h.daemon.remove_pod(&id).unwrap();
    assert!(!h.fake.ops().contains(&"remove_cgroup"));
}

#[test]
fn a_restart_after_a_reboot_finds_pods_not_ready_and_skips_damaged_records() {
    let h = Harness::new();
    let id = h.run(pod("web"));
    let meta = h.dir.path().join("root/meta/pods");
    std::fs::write(meta.join("damaged.json"), b"{\"id\":").unwrap();
    let (_, daemon) = h.reopen();
    assert_eq!(daemon.pod(&id).unwrap().state, PodState::NotReady);
    assert_eq!(daemon.pods.all().len(), 1);
    assert_eq!(kind(daemon.pod("damaged").unwrap_err()), Kind::NotFound);
}

#[test]
fn container_lifecycle_create_start_stop_remove() {
    let h = Harness::new();
    let pod = h.run(pod("web"));
    h.fake.clear();
    let id = h.create(&pod, "app");
    assert_eq!(h.fake.ops(), ["mount_rootfs", "create_container"]);
    let record = h.daemon.container(&id).unwrap();
    assert_eq!(
        (record.pod_id.as_str(), record.name.as_str()),
        (pod.as_str(), "app")
    );
    assert_eq!(record.image_id, format!("sha256:{}", "ab".repeat(32)));
    assert_eq!(
        h.daemon.runtime_state(&record).state,
        ContainerState::Created
    );
    h.daemon.start_container(&id[..10]).unwrap();
    assert_eq!(
        h.daemon.runtime_state(&record).state,
        ContainerState::Running
    );
    h.daemon.stop_container(&id, 7).unwrap();
    assert_eq!(
        h.fake.calls().last(),
        Some(&Call::StopContainer {
            container: id.clone(),
            timeout: std::time::Duration::from_secs(7),
            signal: "SIGQUIT".to_owned(),
        }),
        "the image's stop signal and the timeout"
    );
    assert_eq!(
        h.daemon.runtime_state(&record).state,
        ContainerState::Exited
    );
    h.daemon.remove_container(&id).unwrap();
    assert_eq!(h.fake.ops().last(), Some(&"remove_container"));
    assert_eq!(kind(h.daemon.container(&id).unwrap_err()), Kind::NotFound);
    assert_eq!(
        h.daemon.runtime_state(&record).state,
        ContainerState::Unknown
    );
    // Unknown containers: start says NotFound, stop and remove are fine.
    assert_eq!(
        kind(h.daemon.start_container(&id).unwrap_err()),
        Kind::NotFound
    );
    h.daemon.stop_container(&id, 0).unwrap();
    h.daemon.remove_container(&id).unwrap();
}

#[test]
fn create_container_checks_pod_image_and_name_before_making_anything() {
    let h = Harness::new();
    let pod_id = h.run(pod("web"));
    h.create(&pod_id, "app");
    h.fake.clear();
    let err = h
        .daemon
        .create_container(container(&pod_id, "app"))
        .unwrap_err();
    assert_eq!(err.kind(), Kind::AlreadyExists);
    let mut spec = container(&pod_id, "other");
    spec.image = "missing:1".to_owned();
    let err = h.daemon.create_container(spec).unwrap_err();
    assert_eq!(err.kind(), Kind::NotFound);
    assert!(err.to_string().contains("pull it first"), "{err}");
    let err = h
        .daemon
        .create_container(container("0000", "x"))
        .unwrap_err();
    assert_eq!(err.to_string(), "pod sandbox 0000 not found");
    let mut spec = container(&pod_id, "pid");
    spec.config.linux = Some(LinuxContainerConfig {
        security_context: Some(LinuxContainerSecurityContext {
            namespace_options: Some(NamespaceOption {
                pid: NamespaceMode::Pod as i32,
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    });
    let err = h.daemon.create_container(spec).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("config.linux.security_context.namespace_options.pid: POD"),
        "{err}"
    );
    assert!(h.fake.calls().is_empty(), "{:?}", h.fake.calls());
    h.daemon.stop_pod(&pod_id).unwrap();
    let err = h
        .daemon
        .create_container(container(&pod_id, "late"))
        .unwrap_err();
    assert_eq!(err.kind(), Kind::FailedPrecondition);
}

#[test]
fn a_failed_create_removes_what_it_made_and_leaves_no_record() {
    for step in ["mount_rootfs", "create_container"] {
        let h = Harness::new();
        let pod_id = h.run(pod("web"));
        h.fake.clear();
        h.fake.fail_next(step);
        let err = h
            .daemon
            .create_container(container(&pod_id, "app"))
            .unwrap_err();
        assert_eq!(err.kind(), Kind::Internal, "{err}");
        assert_eq!(h.fake.ops().last(), Some(&"remove_container"), "{step}");
        assert!(h.daemon.containers.all().is_empty());
        h.create(&pod_id, "app");
    }
}

#[test]
fn images_are_found_listed_and_removed_idempotently() {
    let h = Harness::new();
    let id = format!("sha256:{}", "ab".repeat(32));
    assert_eq!(h.daemon.image(IMAGE).unwrap().unwrap().id, id);
    assert_eq!(
        h.daemon.image(&id[7..19]).unwrap().unwrap().id,
        id,
        "an id prefix"
    );
    assert_eq!(h.daemon.images().unwrap().len(), 1);
    assert_eq!(
        h.daemon.sandbox_image_id(),
        None,
        "the pause image is not pulled"
    );
    let err = h.daemon.pull_image("Not A Name", None).unwrap_err();
    assert_eq!(err.kind(), Kind::InvalidArgument, "{err}");
    h.daemon.remove_image(IMAGE).unwrap();
    assert!(h.daemon.image(IMAGE).unwrap().is_none());
    h.daemon.remove_image(IMAGE).unwrap();
}

/// Records the lifecycle events the service sends.
#[derive(Default)]
struct Events(std::sync::Mutex<Vec<(String, crate::proto::v1::ContainerEventType)>>);

impl super::ContainerEvents for Events {
    fn container_event(
        &self,
        _: &Daemon,
        record: &super::records::ContainerRecord,
        kind: crate::proto::v1::ContainerEventType,
    ) {
        self.0.lock().unwrap().push((record.id.clone(), kind));
    }
}

#[test]
fn each_lifecycle_step_sends_its_event() {
    use crate::proto::v1::ContainerEventType::*;
    let mut h = Harness::new();
    let events = Arc::new(Events::default());
    h.daemon.events = Some(events.clone());
    let pod_id = h.run(pod("web"));
    let id = h.create(&pod_id, "app");
    h.daemon.start_container(&id).unwrap();
    h.daemon.stop_container(&id, 0).unwrap();
    h.daemon.remove_container(&id).unwrap();
    // A failed create sends nothing.
    h.fake.fail_next("create_container");
    h.daemon
        .create_container(container(&pod_id, "bad"))
        .unwrap_err();
    let got = events.0.lock().unwrap().clone();
    let kinds: Vec<_> = got.iter().map(|(_, k)| *k).collect();
    assert_eq!(
        kinds,
        [
            ContainerCreatedEvent,
            ContainerStartedEvent,
            ContainerStoppedEvent,
            ContainerDeletedEvent
        ]
    );
    assert!(got.iter().all(|(c, _)| *c == id));
}
