//! The service layer over the recording fake host, without root: [`Harness`] is a
//! daemon in a temporary folder with one image in its store; `pods.rs` and
//! `containers.rs` check the order of host steps, the rollback of a failed one, the
//! records left behind and the error kinds. The gRPC layer's fuzz and event tests use
//! the harness too.

mod container_ops;
mod containers;
mod pods;

use std::collections::BTreeMap;
use std::sync::Arc;

use super::fake::Fake;
use super::{ContainerSpec, Daemon, PodSpec, ServiceError};
use crate::config::Config;
use crate::error::{ErrorKind, Kind};
use crate::proto::v1::{ContainerConfig, PodSandboxConfig};

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
        port_mappings: Vec::new(),
        dns: None,
        config: PodSandboxConfig::default(),
    }
}

pub(crate) fn container(pod: &str, name: &str) -> ContainerSpec {
    ContainerSpec {
        pod_id: pod.to_owned(),
        name: name.to_owned(),
        attempt: 0,
        image: IMAGE.to_owned(),
        request: crate::server::spec_request::container_request(&ContainerConfig::default())
            .expect("the default config converts"),
        log_path: String::new(),
        labels: BTreeMap::new(),
        annotations: BTreeMap::new(),
        config: ContainerConfig::default(),
    }
}

pub(crate) fn kind(e: ServiceError) -> Kind {
    e.kind()
}
