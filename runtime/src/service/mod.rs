//! The runtime's operations on its own types, below the gRPC layer.
//!
//! [`Daemon`] holds the state every call shares: the pod and container records
//! ([`records`], crash-safe in [`crate::store`]), the image store, one lock per object
//! ([`locks`]) and the [`Host`] through which every step that needs root or starts a
//! process goes. [`pods`] and [`containers`] run the lifecycle calls on the validated
//! requests of [`types`] ([`PodSpec`], [`ContainerSpec`]), [`images`] the image calls;
//! they answer with ids and records or a [`ServiceError`], and say lifecycle steps as
//! [`ContainerEvent`]s. Why this split: the gRPC layer (`server/`) only decodes a
//! request, validates it into these types, calls here and encodes the answer, so the
//! order of steps, the rollback of a failed one and every error are unit-tested over the
//! recording fake host (`fake/`) without root, and fuzzed with hostile requests.
//!
//! The generated CRI types stay in the gRPC layer, with one deliberate exception: the
//! records keep the CRI config a pod or container was made from, whole, to echo it in
//! statuses ([`records`]; [`types`] carry it there). Decisions never read those messages
//! directly: a pod's config is read through [`records::pod_config`], the one conversion
//! of a `PodSandboxConfig` that the gRPC layer's validation uses too.

pub mod container_ops;
pub mod containers;
mod error;
#[cfg(test)]
pub(crate) mod fake;
pub mod filters;
pub mod host;
pub mod images;
pub mod locks;
pub mod pods;
pub mod records;
#[cfg(test)]
pub(crate) mod tests;
pub mod types;

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};

use crate::config::Config;
use crate::container::OciRuntime;
use crate::oci_image::{ImageStore, RegistryConfig};
use crate::pod::{Cni, CniConfig};
use crate::store::Table;

pub use error::ServiceError;
pub use host::{Host, System};

pub use types::{ContainerSpec, PodSpec};

use self::locks::IdLocks;
use self::records::{ContainerRecord, PodRecord};

/// Everything the calls share.
pub struct Daemon {
    pub(crate) config: Config,
    pub(crate) pods: Table<PodRecord>,
    pub(crate) containers: Table<ContainerRecord>,
    pub(crate) images: ImageStore,
    /// Namespaces, CNI, cgroups, mounts, the OCI runtime: see [`host`].
    pub(crate) host: Arc<dyn Host>,
    pub(crate) monitor: PathBuf,
    pub(crate) oom_score_adj_allowed: bool,
    pub(crate) locks: IdLocks,
    /// Where container lifecycle events go (the gRPC layer's `GetContainerEvents`
    /// subscribers, set by [`crate::server::listen`]); none in tests.
    pub(crate) events: Option<Arc<dyn ContainerEvents>>,
    /// Handlers whose OCI runtime supports recursive read-only mounts (`rro`): asked of the
    /// runtimes (`crun features`) at the first call that needs it, not before the socket
    /// serves.
    rro_handlers: std::sync::OnceLock<std::collections::BTreeSet<String>>,
    /// The Exec/Attach/PortForward server, started by [`crate::server::listen`].
    pub(crate) stream: Option<Arc<crate::stream::StreamServer>>,
}

impl Daemon {
    /// Opens the stores under the configured folders over the real host and reconciles
    /// them with what runs.
    pub fn open(config: Config) -> Result<Self> {
        let cni = Cni::new(CniConfig {
            conf_dir: config.cni.conf_dir.clone(),
            bin_dirs: config.cni.bin_dirs.clone(),
            cache_dir: config.state.join("cni"),
        });
        let monitor = monitor_path(&config)?;
        Self::open_on(config, Arc::new(System::new(cni)), monitor)
    }

    /// [`Daemon::open`] over `host`, with the `berth-monitor` binary at `monitor`.
    pub fn open_on(config: Config, host: Arc<dyn Host>, monitor: PathBuf) -> Result<Self> {
        for dir in [&config.root, &config.state] {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        // Read again at each pull; a bad file now is said, and fails only the pulls it
        // concerns rather than the daemon.
        let registries = RegistryConfig::load(&config.registry_config_dir).unwrap_or_else(|e| {
            eprintln!(
                "berth-runtime: warning: registry configuration: {e}; pulls fail until it is fixed"
            );
            RegistryConfig::empty()
        });
        let images = ImageStore::open(&config.root, registries)
            .context("cannot open the image store")?
            .reading_registries_from(&config.registry_config_dir);
        let pods = Table::open(&config.root.join("meta/pods"))?;
        let containers = Table::open(&config.root.join("meta/containers"))?;
        let oom_score_adj_allowed = crate::container::procfs::oom_score_adj_allowed();
        if !oom_score_adj_allowed {
            eprintln!(
                "berth-runtime: warning: this host refuses a negative oom_score_adj \
                 (no CAP_SYS_RESOURCE); containers asking for one get the lowest allowed value"
            );
        }
        let daemon = Self {
            config,
            pods,
            containers,
            images,
            host,
            monitor,
            oom_score_adj_allowed,
            locks: IdLocks::default(),
            events: None,
            rro_handlers: std::sync::OnceLock::new(),
            stream: None,
        };
        daemon.reconcile();
        Ok(daemon)
    }

    /// Handlers whose OCI runtime supports recursive read-only mounts.
    pub(crate) fn rro_handlers(&self) -> &std::collections::BTreeSet<String> {
        self.rro_handlers.get_or_init(|| {
            self.config
                .runtimes
                .iter()
                .filter(|(_, r)| self.host.supports_recursive_read_only(&r.path))
                .map(|(name, _)| name.clone())
                .collect()
        })
    }

    /// The OCI runtime for a RuntimeClass handler.
    pub(crate) fn oci_runtime(&self, handler: &str) -> Result<OciRuntime, ServiceError> {
        let (name, runtime) = self.config.runtime_for(handler).ok_or_else(|| {
            ServiceError::invalid(
                "runtime_handler",
                format!(
                    "unknown handler {handler:?}; configured: {:?}",
                    self.config.runtimes.keys().collect::<Vec<_>>()
                ),
            )
        })?;
        let mut oci = OciRuntime::for_handler(&self.config.state, name, &runtime.path);
        oci.exec = self.host.runtime_exec(&runtime.path);
        Ok(oci)
    }

    /// Brings the pod records in line with the host at start. Containers need nothing:
    /// their state is always read from their monitor's files and the OCI runtime (one
    /// whose monitor vanished, e.g. after a reboot, reports Exited or Unknown). Pods whose
    /// namespaces vanished (a reboot cleared /run) are no longer Ready; the kubelet then
    /// stops and removes them.
    fn reconcile(&self) {
        for (id, pod) in self.pods.all() {
            if pod.state != records::PodState::Ready || pod.host_network {
                continue;
            }
            let paths = crate::pod::PodPaths::new(&self.config.state, &id);
            if self.host.is_namespace(&paths.netns()) {
                continue;
            }
            eprintln!("berth-runtime: pod {id}: its network namespace is gone; now NotReady");
            if let Err(e) = self
                .pods
                .update(&id, |p| p.state = records::PodState::NotReady)
            {
                eprintln!("berth-runtime: pod {id}: {e}");
            }
        }
    }
}

/// A container lifecycle step the service layer has just done (the gRPC layer says it as
/// the CRI's `ContainerEventType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContainerEvent {
    Created,
    Started,
    Stopped,
    Deleted,
}

/// Receives the lifecycle events of containers the service layer creates, starts, stops
/// and removes, with the daemon to describe the container and its pod at that moment.
pub trait ContainerEvents: Send + Sync {
    /// One event of `kind` for `record`.
    fn container_event(&self, daemon: &Daemon, record: &ContainerRecord, kind: ContainerEvent);
}

impl Daemon {
    /// Tells the event receiver, if there is one.
    pub(crate) fn emit(&self, record: &ContainerRecord, kind: ContainerEvent) {
        if let Some(events) = &self.events {
            events.container_event(self, record, kind);
        }
    }
}

/// `berth-monitor` as configured, else beside the running daemon.
fn monitor_path(config: &Config) -> Result<PathBuf> {
    if !config.monitor_path.as_os_str().is_empty() {
        return Ok(config.monitor_path.clone());
    }
    let exe = std::env::current_exe().context("cannot find the daemon's own path")?;
    Ok(exe.with_file_name("berth-monitor"))
}
