//! The gRPC side: the daemon's shared state ([`Daemon`]) and the two CRI services on a
//! unix socket (and on TCP when `tcp_address` asks for it). Handlers check the request, then run the (blocking) work of the
//! [`oci_image`](crate::oci_image), [`pod`](crate::pod) and [`container`](crate::container)
//! modules on tokio's blocking pool, so a slow pull never stalls `Status` or `ListPods`.

mod container_status;
mod containers;
mod deadline;
mod events;
mod filters;
mod image_service;
mod locks;
mod metrics;
mod pod_stats;
mod pods;
mod reconcile;
pub mod records;
mod runtime_service;
mod streaming;
mod validate;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use tokio::net::UnixListener;
use tokio_stream::wrappers::{TcpListenerStream, UnixListenerStream};

use crate::config::Config;
use crate::container::OciRuntime;
use crate::error::{to_status, ErrorKind};
use crate::oci_image::{ImageStore, RegistryConfig};
use crate::pod::{Cni, CniConfig};
use crate::proto::v1::image_service_server::ImageServiceServer;
use crate::proto::v1::runtime_service_server::RuntimeServiceServer;
use crate::store::Table;

use self::locks::IdLocks;
use self::records::{ContainerRecord, PodRecord};

/// Everything the handlers share.
pub struct Daemon {
    config: Config,
    pods: Table<PodRecord>,
    containers: Table<ContainerRecord>,
    images: ImageStore,
    cni: Cni,
    monitor: PathBuf,
    oom_score_adj_allowed: bool,
    locks: IdLocks,
    events: events::Subscribers,
    /// Handlers whose OCI runtime supports recursive read-only mounts (`rro`): asked of the
    /// runtimes (`crun features`) at the first call that needs it, not before the socket
    /// serves.
    rro_handlers: std::sync::OnceLock<std::collections::BTreeSet<String>>,
    /// The Exec/Attach/PortForward server, started by [`serve`].
    stream: Option<Arc<crate::stream::StreamServer>>,
}

/// Says a failed request in the daemon's log (the journal), as containerd logs a failed
/// RunPodSandbox, CreateContainer or PullImage: the kubelet's event is not the only trace.
fn logged<T>(
    what: impl FnOnce() -> String,
    reply: Result<tonic::Response<T>, tonic::Status>,
) -> Result<tonic::Response<T>, tonic::Status> {
    if let Err(e) = &reply {
        eprintln!("berth-runtime: {} failed: {}", what(), e.message());
    }
    reply
}

impl Daemon {
    /// Opens the stores under the configured folders and reconciles them with what runs.
    pub fn open(config: Config) -> Result<Self> {
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
        let cni = Cni::new(CniConfig {
            conf_dir: config.cni.conf_dir.clone(),
            bin_dirs: config.cni.bin_dirs.clone(),
            cache_dir: config.state.join("cni"),
        });
        let monitor = monitor_path(&config)?;
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
            cni,
            monitor,
            oom_score_adj_allowed,
            locks: IdLocks::default(),
            events: events::Subscribers::default(),
            rro_handlers: std::sync::OnceLock::new(),
            stream: None,
        };
        daemon.reconcile();
        Ok(daemon)
    }

    /// Handlers whose OCI runtime supports recursive read-only mounts.
    fn rro_handlers(&self) -> &std::collections::BTreeSet<String> {
        self.rro_handlers.get_or_init(|| {
            self.config
                .runtimes
                .iter()
                .filter(|(_, r)| {
                    crate::container::oci_runtime::supports_recursive_read_only(&r.path)
                })
                .map(|(name, _)| name.clone())
                .collect()
        })
    }

    /// The OCI runtime for a RuntimeClass handler.
    fn oci_runtime(&self, handler: &str) -> Result<OciRuntime, tonic::Status> {
        let (name, runtime) = self.config.runtime_for(handler).ok_or_else(|| {
            validate::invalid(
                "runtime_handler",
                &format!(
                    "unknown handler {handler:?}; configured: {:?}",
                    self.config.runtimes.keys().collect::<Vec<_>>()
                ),
            )
        })?;
        Ok(OciRuntime::for_handler(
            &self.config.state,
            name,
            &runtime.path,
        ))
    }
}

impl Daemon {
    /// RuntimeReady: the default OCI runtime and the monitor are there to run containers.
    fn runtime_condition(&self) -> crate::proto::v1::RuntimeCondition {
        use runtime_service::condition;
        let missing = self
            .config
            .runtime_for("")
            .map(|(_, r)| r.path.clone())
            .into_iter()
            .chain([self.monitor.clone()])
            .find(|path| !path.is_file());
        match missing {
            None => condition("RuntimeReady", true, "", ""),
            Some(path) => condition(
                "RuntimeReady",
                false,
                "RuntimeBinaryMissing",
                &format!("{} does not exist", path.display()),
            ),
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

/// The gRPC face of the daemon: both services are implemented on it.
#[derive(Clone)]
pub struct Cri(Arc<Daemon>);

/// Maps a module error to a gRPC status.
fn status<E: ErrorKind>(err: E) -> tonic::Status {
    to_status(&err)
}

/// Runs blocking work on tokio's blocking pool.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, tonic::Status> + Send + 'static,
) -> Result<T, tonic::Status> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| tonic::Status::internal(format!("handler failed: {e}")))?
}

/// Serves both CRI services on `socket` (0660), and on `tcp_address` when configured,
/// until SIGTERM or SIGINT.
pub async fn serve(mut daemon: Daemon, socket: &Path) -> Result<()> {
    let stream_addr = daemon.config.stream_address();
    let stream = crate::stream::StreamServer::start(stream_addr)
        .await
        .context("cannot start the streaming server")?;
    eprintln!("berth-runtime: streaming server on {}", stream.addr());
    daemon.stream = Some(stream);
    if let Some(dir) = socket.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    match std::fs::remove_file(socket) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("cannot remove {}", socket.display())),
    }
    let listener = crate::sockpath::bind(socket)
        .and_then(|l| {
            l.set_nonblocking(true)?;
            UnixListener::from_std(l)
        })
        .with_context(|| format!("cannot listen on {}", socket.display()))?;
    std::fs::set_permissions(socket, std::fs::Permissions::from_mode(0o660))
        .with_context(|| format!("cannot chmod {}", socket.display()))?;
    let tcp = match daemon.config.tcp_address {
        Some(addr) => Some(
            tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen for CRI on tcp_address {addr}"))?,
        ),
        None => None,
    };
    let daemon = Arc::new(daemon);
    eprintln!("berth-runtime: serving CRI v1 on {}", socket.display());
    if let Some(addr) = tcp.as_ref().and_then(|l| l.local_addr().ok()) {
        eprintln!("berth-runtime: serving CRI v1 on tcp {addr} (unauthenticated: tcp_address)");
    }
    if let Err(e) = sd_notify::notify(&[sd_notify::NotifyState::Ready]) {
        eprintln!("berth-runtime: cannot tell the service manager it is ready: {e}");
    }
    // Ask the OCI runtimes for their features now that the socket serves, so that the
    // kubelet's first Status rarely waits for it.
    let warm = daemon.clone();
    tokio::task::spawn_blocking(move || warm.rro_handlers().len());
    // One signal stops every listener.
    let (stop, stopped) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stop.send(true);
    });
    let on_unix = serve_on(
        daemon.clone(),
        UnixListenerStream::new(listener),
        stopped.clone(),
    );
    match tcp {
        Some(tcp) => {
            let on_tcp = serve_on(daemon, TcpListenerStream::new(tcp), stopped);
            tokio::try_join!(on_unix, on_tcp).map(|_| ())
        }
        None => on_unix.await,
    }
    .context("gRPC server failed")?;
    let _ = std::fs::remove_file(socket);
    Ok(())
}

/// Serves both CRI services on the connections of `incoming` until `stop` turns true.
async fn serve_on<IO, IE>(
    daemon: Arc<Daemon>,
    incoming: impl tokio_stream::Stream<Item = Result<IO, IE>>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Result<(), tonic::transport::Error>
where
    IO: tokio::io::AsyncRead
        + tokio::io::AsyncWrite
        + tonic::transport::server::Connected
        + Unpin
        + Send
        + 'static,
    IE: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    tonic::transport::Server::builder()
        .layer(deadline::DeadlineLayer)
        .add_service(RuntimeServiceServer::new(Cri(daemon.clone())))
        .add_service(ImageServiceServer::new(Cri(daemon)))
        .serve_with_incoming_shutdown(incoming, async move {
            let _ = stop.wait_for(|stopped| *stopped).await;
        })
        .await
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        // Without signal handlers the daemon still serves; it stops by SIGKILL, which
        // its crash-safe state is made for.
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    eprintln!("berth-runtime: stopping; containers keep running");
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping]);
}
