//! The gRPC side: the two CRI services on a unix socket (and on TCP when `tcp_address`
//! asks for it), a thin layer over the service layer ([`crate::service`]). A handler
//! decodes the request, validates it into the service's types (`validate.rs`, an
//! InvalidArgument naming the field otherwise), calls the service on tokio's blocking
//! pool (so a slow pull never stalls `Status` or `ListPods`) and encodes the answer;
//! errors become gRPC statuses in one place (`status.rs`). Every RuntimeService and
//! ImageService call goes through the service layer this way; nothing here touches the
//! host (the streaming server, started beside the gRPC one, serves the URLs).
//!
//! The generated CRI types end here: the validation turns them into domain types
//! ([`spec_request`] for a container's config and limits, `security_request.rs` for its
//! seccomp profile, `validate.rs` for the rest, using [`records::pod_config`] for a pod
//! config), the service's [`ContainerEvent`](crate::service::ContainerEvent)s become
//! `ContainerEventType`s in `events.rs`, and the tests that drive the spec builder with
//! CRI configs live beside the conversion (`spec_build_tests.rs`, `spec_build_props.rs`).

mod container_status;
mod containers;
mod deadline;
mod events;
mod image_service;
mod metrics;
mod pod_stats;
mod pods;
mod runtime_service;
mod security_request;
pub mod spec_request;
mod status;
mod streaming;
mod validate;

#[cfg(test)]
mod fuzz;

use self::status::status;
pub use crate::service::records;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use tokio::net::UnixListener;
use tokio_stream::wrappers::{TcpListenerStream, UnixListenerStream};

use crate::proto::v1::image_service_server::ImageServiceServer;
use crate::proto::v1::runtime_service_server::RuntimeServiceServer;
pub use crate::service::Daemon;

/// Says a failed request in the daemon's log (the journal), as containerd logs a failed
/// RunPodSandbox, CreateContainer or PullImage: the kubelet's event is not the only trace.
fn logged<T>(
    what: impl FnOnce() -> String,
    reply: Result<tonic::Response<T>, tonic::Status>,
) -> Result<tonic::Response<T>, tonic::Status> {
    if let Err(e) = &reply {
        say(format_args!("{} failed: {}", what(), e.message()));
    }
    reply
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

/// Says `line` on stderr (the journal) in one write(2). `eprintln!` writes each formatted
/// piece with its own call on the unbuffered stderr (the streaming server's line was 11),
/// each a wake-up of the journal; at start, under an emulated CPU, they count.
fn say(line: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let line = format!("berth-runtime: {line}\n");
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

/// The gRPC face of the daemon: both services are implemented on it; the container
/// events' subscribers are the gRPC layer's own.
#[derive(Clone)]
pub struct Cri(Arc<Daemon>, Arc<events::Subscribers>);

/// Runs blocking work on tokio's blocking pool.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, tonic::Status> + Send + 'static,
) -> Result<T, tonic::Status> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| tonic::Status::internal(format!("handler failed: {e}")))?
}

/// The daemon with every socket it serves listening, before the async runtime exists;
/// [`Listening::serve`] serves them.
pub struct Listening {
    cri: Cri,
    socket: PathBuf,
    unix: std::os::unix::net::UnixListener,
    tcp: Option<std::net::TcpListener>,
    stream: Arc<crate::stream::StreamServer>,
    stream_listener: std::net::TcpListener,
}

/// Listens on `socket` (0660), on `tcp_address` when configured and for the streaming
/// server, with std's sockets: nothing here needs the async runtime, so every error a bad
/// configuration or a taken address can cause is met before its threads are started.
/// READY=1 waits for [`Listening::serve`]: it means the accept loops run, not only that
/// the kernel queues connections.
pub fn listen(mut daemon: Daemon, socket: &Path) -> Result<Listening> {
    let stream_addr = daemon.config.stream_address();
    let (stream, stream_listener) = crate::stream::StreamServer::bind(stream_addr)
        .context("cannot start the streaming server")?;
    say(format_args!("streaming server on {}", stream.addr()));
    daemon.stream = Some(stream.clone());
    let events = Arc::new(events::Subscribers::default());
    daemon.events = Some(events.clone());
    if let Some(dir) = socket.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    match std::fs::remove_file(socket) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("cannot remove {}", socket.display())),
    }
    let unix = crate::sockpath::bind(socket)
        .and_then(|l| l.set_nonblocking(true).map(|()| l))
        .with_context(|| format!("cannot listen on {}", socket.display()))?;
    std::fs::set_permissions(socket, std::fs::Permissions::from_mode(0o660))
        .with_context(|| format!("cannot chmod {}", socket.display()))?;
    let tcp = match daemon.config.tcp_address {
        Some(addr) => Some(
            std::net::TcpListener::bind(addr)
                .and_then(|l| l.set_nonblocking(true).map(|()| l))
                .with_context(|| format!("cannot listen for CRI on tcp_address {addr}"))?,
        ),
        None => None,
    };
    Ok(Listening {
        cri: Cri(Arc::new(daemon), events),
        socket: socket.to_owned(),
        unix,
        tcp,
        stream,
        stream_listener,
    })
}

impl Listening {
    /// Serves both CRI services, and the streaming server, until SIGTERM or SIGINT. Runs
    /// on a tokio runtime.
    pub async fn serve(self) -> Result<()> {
        let Listening {
            cri,
            socket,
            unix,
            tcp,
            stream,
            stream_listener,
        } = self;
        stream
            .serve(stream_listener)
            .context("cannot start the streaming server")?;
        let listener = UnixListener::from_std(unix)
            .with_context(|| format!("cannot listen on {}", socket.display()))?;
        let tcp = tcp
            .map(tokio::net::TcpListener::from_std)
            .transpose()
            .context("cannot listen for CRI on tcp_address")?;
        say(format_args!("serving CRI v1 on {}", socket.display()));
        if let Some(addr) = tcp.as_ref().and_then(|l| l.local_addr().ok()) {
            say(format_args!(
                "serving CRI v1 on tcp {addr} (unauthenticated: tcp_address)"
            ));
        }
        // Once the listeners are the runtime's: the accept loops below run from here on.
        if let Err(e) = sd_notify::notify(&[sd_notify::NotifyState::Ready]) {
            say(format_args!(
                "cannot tell the service manager it is ready: {e}"
            ));
        }
        // Ask the OCI runtimes for their features now that the socket serves, so that the
        // kubelet's first Status rarely waits for it.
        let warm = cri.0.clone();
        tokio::task::spawn_blocking(move || warm.rro_handlers().len());
        // One signal stops every listener.
        let (stop, stopped) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            shutdown_signal().await;
            let _ = stop.send(true);
        });
        let on_unix = serve_on(
            cri.clone(),
            UnixListenerStream::new(listener),
            stopped.clone(),
        );
        match tcp {
            Some(tcp) => {
                let on_tcp = serve_on(cri, TcpListenerStream::new(tcp), stopped);
                tokio::try_join!(on_unix, on_tcp).map(|_| ())
            }
            None => on_unix.await,
        }
        .context("gRPC server failed")?;
        let _ = std::fs::remove_file(&socket);
        Ok(())
    }
}

/// Serves both CRI services on the connections of `incoming` until `stop` turns true.
async fn serve_on<IO, IE>(
    cri: Cri,
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
        .add_service(RuntimeServiceServer::new(cri.clone()))
        .add_service(ImageServiceServer::new(cri))
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
