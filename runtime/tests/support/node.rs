//! A booted node driven over its own CRI from the host (`node.rs`, `node_faults.rs`): the
//! ports QEMU forwards, the connection, the runtime's conditions, and the web pod whose
//! page is fetched through the pod's hostPort.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use berth_runtime::client::{connect_tcp, CriClient};
use berth_runtime::proto::v1::*;

/// What QEMU's user network calls the host.
pub const HOST_FROM_GUEST: &str = "10.0.2.2";
/// Guest ports: CRI over TCP, the streaming server, the pod's hostPort.
pub const CRI_PORT: u16 = 10011;
pub const STREAM_PORT: u16 = 10012;
pub const HOST_PORT: u16 = 8080;
/// The page the web pod serves.
pub const PAGE: &str = "served by a pod on a berth node";
/// TCG on a busy two-core machine: generous, never asserted on.
pub const PATIENCE: Duration = Duration::from_secs(300);

/// Connects to the node's CRI through the forward on the host's `port`, waiting for the
/// daemon to serve.
pub fn connect(rt: &tokio::runtime::Runtime, port: u16) -> CriClient {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let start = Instant::now();
    loop {
        let attempt = rt.block_on(async {
            let mut client = connect_tcp(addr).await.map_err(|e| e.to_string())?;
            client
                .runtime
                .version(VersionRequest::default())
                .await
                .map_err(|e| e.to_string())?;
            Ok::<_, String>(client)
        });
        match attempt {
            Ok(client) => return client,
            Err(e) if start.elapsed() > PATIENCE => panic!("no CRI on {addr}: {e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(500)),
        }
    }
}

/// A condition of the runtime's Status.
#[derive(Debug)]
pub struct Condition {
    pub status: bool,
    pub reason: String,
    pub message: String,
}

/// The runtime's conditions by type.
pub fn conditions(rt: &tokio::runtime::Runtime, cri: &mut CriClient) -> HashMap<String, Condition> {
    let status = rt
        .block_on(cri.runtime.status(StatusRequest::default()))
        .expect("Status")
        .into_inner()
        .status
        .expect("a status");
    status
        .conditions
        .into_iter()
        .map(|c| {
            let condition = Condition {
                status: c.status,
                reason: c.reason,
                message: c.message,
            };
            (c.r#type, condition)
        })
        .collect()
}

/// Whether condition `kind` (RuntimeReady, NetworkReady) is true.
pub fn is_true(conditions: &HashMap<String, Condition>, kind: &str) -> bool {
    conditions.get(kind).is_some_and(|c| c.status)
}

/// Fetches `/` from the pod through the host forward `port` and the node's hostPort
/// (portmap's DNAT), retrying while the server starts.
pub fn fetch_page(port: u16) -> String {
    let url = format!("http://127.0.0.1:{port}/");
    // QEMU accepts on the host before the guest answers: each try has its own limit.
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into();
    let start = Instant::now();
    loop {
        match agent.get(&url).call() {
            Ok(mut response) => {
                return response.body_mut().read_to_string().expect("a page body");
            }
            Err(e) if start.elapsed() > PATIENCE => panic!("{url}: {e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(500)),
        }
    }
}

/// A pod on the CNI network, publishing [`HOST_PORT`] when `serving`.
pub fn pod_config(name: &str, serving: bool) -> PodSandboxConfig {
    let port_mappings = match serving {
        true => vec![PortMapping {
            protocol: Protocol::Tcp as i32,
            container_port: 80,
            host_port: HOST_PORT as i32,
            host_ip: String::new(),
        }],
        false => Vec::new(),
    };
    PodSandboxConfig {
        metadata: Some(PodSandboxMetadata {
            name: name.to_owned(),
            uid: format!("uid-{name}"),
            namespace: "default".to_owned(),
            attempt: 0,
        }),
        log_directory: format!("/var/log/pods/default_{name}_uid-{name}"),
        port_mappings,
        linux: Some(LinuxPodSandboxConfig::default()),
        ..Default::default()
    }
}

/// busybox httpd serving [`PAGE`] on port 80, from `image`.
pub fn web_container(image: &str) -> ContainerConfig {
    ContainerConfig {
        metadata: Some(ContainerMetadata {
            name: "web".to_owned(),
            attempt: 0,
        }),
        image: Some(ImageSpec {
            image: image.to_owned(),
            ..Default::default()
        }),
        command: vec![
            "/bin/sh".to_owned(),
            "-c".to_owned(),
            format!(
                "busybox mkdir -p /www && echo '{PAGE}' > /www/index.html && exec httpd -f -v -p 80 -h /www"
            ),
        ],
        log_path: "web/0.log".to_owned(),
        linux: Some(LinuxContainerConfig::default()),
        ..Default::default()
    }
}
