//! A CRI client over a unix socket, for the tests, the benchmark (which drives containerd
//! and Berth with the same code) and anyone scripting the runtime from Rust.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use tonic::transport::{Channel, Endpoint};

use crate::proto::v1::image_service_client::ImageServiceClient;
use crate::proto::v1::runtime_service_client::RuntimeServiceClient;

/// Both CRI services on one connection.
#[derive(Clone)]
pub struct CriClient {
    /// `runtime.v1.RuntimeService`.
    pub runtime: RuntimeServiceClient<Channel>,
    /// `runtime.v1.ImageService`.
    pub images: ImageServiceClient<Channel>,
}

/// Connects to the CRI socket at `socket`.
pub async fn connect(socket: &Path) -> Result<CriClient, tonic::transport::Error> {
    connect_to(format!("unix://{}", socket.display())).await
}

/// Connects to a daemon serving CRI on TCP (`tcp_address` in its configuration).
pub async fn connect_tcp(addr: SocketAddr) -> Result<CriClient, tonic::transport::Error> {
    connect_to(format!("http://{addr}")).await
}

async fn connect_to(uri: String) -> Result<CriClient, tonic::transport::Error> {
    let channel = Endpoint::from_shared(uri)?
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await?;
    Ok(CriClient {
        runtime: RuntimeServiceClient::new(channel.clone()),
        images: ImageServiceClient::new(channel),
    })
}
