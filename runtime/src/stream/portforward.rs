//! Port forwarding into a pod: a TCP connection to localhost:port inside the pod's
//! network namespace (the host's for host-network pods), bridged to one client stream.
//!
//! The connection is made on a dedicated thread that enters the namespace with setns and
//! exits once the socket exists (a socket stays in the namespace it was created in), so
//! no thread of the daemon's pools ever changes namespace.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream as StdTcpStream};
use std::path::PathBuf;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

/// What a port-forward URL stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortForwardTarget {
    /// The pod's network namespace file; `None` for the host's network.
    pub netns: Option<PathBuf>,
}

fn connect_here(port: u16) -> Result<StdTcpStream, String> {
    let v4 = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let v6 = SocketAddr::from((Ipv6Addr::LOCALHOST, port));
    StdTcpStream::connect(v4)
        .or_else(|e4| StdTcpStream::connect(v6).map_err(|_| e4))
        .map_err(|e| format!("connecting to localhost:{port}: {e}"))
}

/// Connects to localhost:`port` in the target's network namespace.
pub async fn connect(target: &PortForwardTarget, port: u16) -> Result<TcpStream, String> {
    let netns = target.netns.clone();
    let (tx, rx) = oneshot::channel();
    std::thread::Builder::new()
        .name("berth-portforward".into())
        .spawn(move || {
            let result = (|| {
                if let Some(path) = &netns {
                    let file = std::fs::File::open(path)
                        .map_err(|e| format!("opening {}: {e}", path.display()))?;
                    nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET)
                        .map_err(|e| format!("entering {}: {e}", path.display()))?;
                }
                connect_here(port)
            })();
            let _ = tx.send(result);
        })
        .map_err(|e| format!("starting the port-forward thread: {e}"))?;
    let stream = rx
        .await
        .map_err(|_| "the port-forward thread died".to_string())??;
    stream
        .set_nonblocking(true)
        .map_err(|e| format!("socket: {e}"))?;
    TcpStream::from_std(stream).map_err(|e| format!("socket: {e}"))
}

/// Bridges one client stream (`from_client`, `to_client`) to localhost:`port` in the
/// pod until both sides have ended or `cancel` fires.
pub async fn forward(
    target: &PortForwardTarget,
    port: u16,
    mut from_client: mpsc::Receiver<Bytes>,
    to_client: mpsc::Sender<Bytes>,
    cancel: CancellationToken,
) -> Result<(), String> {
    let stream = connect(target, port).await?;
    let (mut read, mut write) = stream.into_split();
    let upstream = async move {
        while let Some(data) = from_client.recv().await {
            if write.write_all(&data).await.is_err() {
                return;
            }
        }
        let _ = write.shutdown().await;
    };
    let downstream = async move {
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            match read.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if to_client
                        .send(Bytes::copy_from_slice(&buf[..n]))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
            }
        }
    };
    tokio::select! {
        _ = async { tokio::join!(upstream, downstream) } => Ok(()),
        _ = cancel.cancelled() => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn forwards_to_a_local_port_and_reports_a_closed_one() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = Vec::new();
            s.read_to_end(&mut buf).await.unwrap();
            s.write_all(&buf).await.unwrap();
            s.write_all(b"!").await.unwrap();
        });
        let host = PortForwardTarget { netns: None };
        let (in_tx, in_rx) = mpsc::channel(4);
        let (out_tx, mut out_rx) = mpsc::channel(4);
        in_tx.send(Bytes::from_static(b"ping")).await.unwrap();
        drop(in_tx);
        forward(&host, port, in_rx, out_tx, CancellationToken::new())
            .await
            .unwrap();
        let mut got = Vec::new();
        while let Some(b) = out_rx.recv().await {
            got.extend_from_slice(&b);
        }
        assert_eq!(got, b"ping!");
        server.await.unwrap();

        // A port nobody listens on (the one just freed) is an error naming it.
        let err = connect(&host, port).await.unwrap_err();
        assert!(err.contains(&format!("localhost:{port}")), "{err}");
        let missing = PortForwardTarget {
            netns: Some("/nonexistent/netns".into()),
        };
        assert!(connect(&missing, port)
            .await
            .unwrap_err()
            .contains("/nonexistent"));
    }
}
