//! The streaming server: Exec, Attach and PortForward as the kubelet expects them from a
//! CRI runtime. The CRI call checks the request, stores what it needs under a one-time
//! token ([`tokens`]) and returns a URL on this server; the client (kubelet, crictl)
//! then connects there and upgrades the HTTP connection to SPDY/3.1 ([`spdy`]) or
//! WebSocket ([`websocket`]), speaking the remote-command ([`remotecommand`]) or
//! port-forward ([`portforward`]) protocol. The server listens only on the configured
//! address (127.0.0.1 by default, like containerd's `stream_server_address`).

mod attach;
pub mod exec;
mod http;
pub mod portforward;
pub mod remotecommand;
pub mod spdy;
mod spdy_session;
pub(crate) mod sys;
pub mod tokens;
pub mod websocket;

use std::net::SocketAddr;
use std::sync::Arc;

pub use self::exec::ExecTarget;
pub use self::portforward::PortForwardTarget;
pub use self::spdy_session::Wanted;
use self::tokens::TokenCache;

/// What a token stands for.
#[derive(Debug, Clone)]
pub enum Pending {
    Exec {
        target: Box<ExecTarget>,
        wanted: Wanted,
    },
    Attach {
        target: AttachTarget,
        wanted: Wanted,
    },
    PortForward(PortForwardTarget),
}

impl Pending {
    fn kind(&self) -> &'static str {
        match self {
            Pending::Exec { .. } => "exec",
            Pending::Attach { .. } => "attach",
            Pending::PortForward(_) => "portforward",
        }
    }
}

/// What an attach URL stands for: the monitor's attach socket of a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachTarget {
    pub id: String,
    pub socket: std::path::PathBuf,
}

/// A streaming server that could not start.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error("cannot listen for streaming on {addr}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Token(#[from] tokens::TokenError),
}

impl crate::error::ErrorKind for StreamError {
    fn kind(&self) -> crate::error::Kind {
        match self {
            StreamError::Bind { .. } => crate::error::Kind::Internal,
            StreamError::Token(tokens::TokenError::Full(_)) => crate::error::Kind::Unavailable,
            StreamError::Token(_) => crate::error::Kind::Internal,
        }
    }
}

/// The running server: issues URLs and serves them.
pub struct StreamServer {
    tokens: TokenCache<Pending>,
    addr: SocketAddr,
}

impl StreamServer {
    /// Listens on `addr` (port 0 picks a free one) without serving yet: URLs can be
    /// issued at once, and connections wait in the listen queue until
    /// [`serve`](Self::serve). Needs no async runtime, so the daemon can listen before
    /// it starts one.
    pub fn bind(addr: SocketAddr) -> Result<(Arc<Self>, std::net::TcpListener), StreamError> {
        let bind_error = |source| StreamError::Bind { addr, source };
        let listener = std::net::TcpListener::bind(addr).map_err(bind_error)?;
        listener.set_nonblocking(true).map_err(bind_error)?;
        let addr = listener.local_addr().map_err(bind_error)?;
        let server = Arc::new(StreamServer {
            tokens: TokenCache::new(tokens::DEFAULT_TTL),
            addr,
        });
        Ok((server, listener))
    }

    /// Serves `listener`, from [`bind`](Self::bind), in the background on the current
    /// tokio runtime.
    pub fn serve(self: &Arc<Self>, listener: std::net::TcpListener) -> Result<(), StreamError> {
        let listener =
            tokio::net::TcpListener::from_std(listener).map_err(|source| StreamError::Bind {
                addr: self.addr,
                source,
            })?;
        tokio::spawn(http::serve(listener, self.clone()));
        Ok(())
    }

    /// The address served.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stores `pending` and returns the one-time URL for it.
    pub fn url_for(&self, pending: Pending) -> Result<String, StreamError> {
        let kind = pending.kind();
        let token = self.tokens.insert(pending)?;
        Ok(format!("http://{}/{kind}/{token}", self.addr))
    }

    /// Takes the request behind `token` if it is of `kind`.
    fn take(&self, kind: &str, token: &str) -> Option<Pending> {
        self.tokens.consume(token).filter(|p| p.kind() == kind)
    }
}
