//! Exec, Attach and PortForward end to end on this host, as root: a real daemon, crun,
//! CNI, a busybox container, and a client speaking SPDY/3.1 and WebSocket to the
//! streaming server. Bad clients too: used, wrong and unknown tokens, protocols the
//! server does not speak, and a client that vanishes while its command runs.

mod support;

use std::collections::HashMap;
use std::time::Duration;

use berth_runtime::client::{connect, CriClient};
use berth_runtime::proto::v1::*;
use support::stream_client::{
    exit_code, read_all, read_until, spdy_port_forward, upgrade, SpdyCommand, WsCommand,
};
use support::{busybox_layout, wait_until, write_cni_config, Registry};

const TOOLS: &[&str] = &["docker-registry", "skopeo", "crun", "/usr/lib/cni/bridge"];

fn container(name: &str, image: &str, command: &[&str], stdin: bool, tty: bool) -> ContainerConfig {
    ContainerConfig {
        metadata: Some(ContainerMetadata {
            name: name.to_owned(),
            attempt: 0,
        }),
        image: Some(ImageSpec {
            image: image.to_owned(),
            ..Default::default()
        }),
        command: command.iter().map(|s| s.to_string()).collect(),
        log_path: format!("{name}.log"),
        stdin,
        stdin_once: stdin && !tty,
        tty,
        linux: Some(LinuxContainerConfig::default()),
        ..Default::default()
    }
}

async fn run_container(
    client: &mut CriClient,
    pod: &str,
    pod_config: &PodSandboxConfig,
    config: ContainerConfig,
) -> String {
    let id = client
        .runtime
        .create_container(CreateContainerRequest {
            pod_sandbox_id: pod.to_owned(),
            config: Some(config),
            sandbox_config: Some(pod_config.clone()),
        })
        .await
        .expect("CreateContainer")
        .into_inner()
        .container_id;
    client
        .runtime
        .start_container(StartContainerRequest {
            container_id: id.clone(),
        })
        .await
        .expect("StartContainer");
    id
}

async fn exec_url(
    client: &mut CriClient,
    id: &str,
    cmd: &[&str],
    tty: bool,
    stdin: bool,
) -> String {
    client
        .runtime
        .exec(ExecRequest {
            container_id: id.to_owned(),
            cmd: cmd.iter().map(|s| s.to_string()).collect(),
            tty,
            stdin,
            stdout: true,
            stderr: !tty,
        })
        .await
        .expect("Exec")
        .into_inner()
        .url
}

async fn exec_sync(client: &mut CriClient, id: &str, cmd: &[&str]) -> String {
    let out = client
        .runtime
        .exec_sync(ExecSyncRequest {
            container_id: id.to_owned(),
            cmd: cmd.iter().map(|s| s.to_string()).collect(),
            timeout: 30,
        })
        .await
        .expect("ExecSync")
        .into_inner();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "creates bridges and iptables rules on the host; run by `cargo xtask test`"]
async fn exec_attach_port_forward_over_spdy_and_websocket() {
    if support::skip(TOOLS) {
        return;
    }
    let work = tempfile::tempdir().expect("tempdir");
    let registry = Registry::start();
    let layout = work.path().join("layout");
    busybox_layout(&layout, "1", &[], &["sh"]);
    let image = registry.push(&layout, "1", "test/busybox");
    let suffix = &berth_runtime::store::new_id().expect("id")[..8];
    let cgroup_parent = format!("/berth-stream-{suffix}");
    let certs = work.path().join("certs.d");
    std::fs::create_dir_all(certs.join(&registry.host)).expect("certs.d");
    std::fs::write(
        certs.join(&registry.host).join("hosts.toml"),
        format!(
            "server = \"http://{0}\"\n[host.\"http://{0}\"]\ncapabilities = [\"pull\", \"resolve\"]\n",
            registry.host
        ),
    )
    .expect("hosts.toml");
    let cni_conf = work.path().join("net.d");
    write_cni_config(
        &cni_conf,
        &work.path().join("ipam"),
        &format!("bs{suffix}"),
        "10.88.232.0/24",
    );
    // Short --state: the monitors' control sockets live below it.
    let state = std::path::PathBuf::from(format!("/run/bst-{suffix}"));
    let mut daemon = support::Daemon::new(
        work.path(),
        &format!(
            "registry_config_dir = \"{}\"\ncgroup_parent = \"{cgroup_parent}\"\n[cni]\nconf_dir = \"{}\"\nbin_dirs = [\"/usr/lib/cni\"]\n",
            certs.display(),
            cni_conf.display()
        ),
    );
    daemon.state = state.clone();
    daemon.start();
    let mut client = connect(&daemon.socket).await.expect("connect");
    client
        .images
        .pull_image(PullImageRequest {
            image: Some(ImageSpec {
                image: image.clone(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .expect("PullImage");
    let pod_config = PodSandboxConfig {
        metadata: Some(PodSandboxMetadata {
            name: "streams".to_owned(),
            uid: format!("uid-streams-{suffix}"),
            namespace: "default".to_owned(),
            attempt: 0,
        }),
        hostname: "streams".to_owned(),
        log_directory: work.path().join("logs").display().to_string(),
        labels: HashMap::new(),
        linux: Some(LinuxPodSandboxConfig::default()),
        ..Default::default()
    };
    let pod = client
        .runtime
        .run_pod_sandbox(RunPodSandboxRequest {
            config: Some(pod_config.clone()),
            runtime_handler: String::new(),
        })
        .await
        .expect("RunPodSandbox")
        .into_inner()
        .pod_sandbox_id;
    let server = run_container(
        &mut client,
        &pod,
        &pod_config,
        container(
            "server",
            &image,
            &[
                "/bin/busybox",
                "sh",
                "-c",
                "/bin/busybox mkdir -p /www && echo hello-pf > /www/index.html && exec /bin/busybox httpd -f -p 8080 -h /www",
            ],
            false,
            false,
        ),
    )
    .await;

    // Exec without a terminal: stdout, stderr and the exit code on the v4 error stream.
    let url = exec_url(
        &mut client,
        &server,
        &["/bin/busybox", "sh", "-c", "echo out; echo err >&2; exit 3"],
        false,
        false,
    )
    .await;
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    let mut session = SpdyCommand::open(&url, false, true, true, false).await;
    let stdout = read_all(session.stdout.as_mut().expect("stdout")).await;
    let stderr = read_all(session.stderr.as_mut().expect("stderr")).await;
    let status = session.status().await;
    assert_eq!(
        (stdout.as_slice(), stderr.as_slice()),
        (&b"out\n"[..], &b"err\n"[..])
    );
    assert_eq!(exit_code(&status), 3, "{status}");
    assert_eq!(status["reason"], "NonZeroExitCode");

    // The token was used: the same URL is refused, and so are made-up ones.
    let (code, _, _) = upgrade(&url, "SPDY/3.1", &["v4.channel.k8s.io"]).await;
    assert_eq!(code, 404);
    let base = url.rsplit_once('/').expect("token").0.to_owned();
    let (code, _, _) = upgrade(&format!("{base}/nope"), "SPDY/3.1", &["v4.channel.k8s.io"]).await;
    assert_eq!(code, 404);
    // An exec token is not an attach token.
    let url = exec_url(&mut client, &server, &["true"], false, false).await;
    let attach_path = url.replacen("/exec/", "/attach/", 1);
    let (code, _, _) = upgrade(&attach_path, "SPDY/3.1", &["v4.channel.k8s.io"]).await;
    assert_eq!(code, 404);
    // No common protocol: 403 with what the server accepts.
    let url = exec_url(&mut client, &server, &["true"], false, false).await;
    let (code, headers, _) = upgrade(&url, "SPDY/3.1", &["v9.channel.k8s.io"]).await;
    assert_eq!(code, 403);
    assert!(headers.iter().any(
        |(n, v)| n == "x-accepted-stream-protocol-versions" && v.contains("v4.channel.k8s.io")
    ));
    // No upgrade at all.
    let url = exec_url(&mut client, &server, &["true"], false, false).await;
    let (code, _, _) = upgrade(&url, "h2c", &[]).await;
    assert_eq!(code, 400);

    // Exec with a terminal: the size the client sets is the terminal's, input reaches it.
    let url = exec_url(&mut client, &server, &["/bin/busybox", "sh"], true, true).await;
    let session = SpdyCommand::open(&url, true, true, false, true).await;
    session.resize(123, 45).await;
    session.send(b"/bin/busybox stty size; exit 7\n").await;
    let mut session = session;
    let out = read_until(session.stdout.as_mut().expect("stdout"), "45 123").await;
    assert!(out.contains("45 123"), "{out:?}");
    let _ = read_all(session.stdout.as_mut().expect("stdout")).await;
    assert_eq!(exit_code(&session.status().await), 7);

    // WebSocket v5: stdin through cat, closed with the v5 close signal.
    let url = exec_url(&mut client, &server, &["/bin/busybox", "cat"], false, true).await;
    let mut ws = WsCommand::open(&url, "v5.channel.k8s.io, v4.channel.k8s.io")
        .await
        .expect("websocket");
    assert_eq!(ws.protocol, "v5.channel.k8s.io");
    ws.send(0, b"through websocket").await;
    ws.send(255, &[0]).await;
    let channels = ws.collect().await;
    assert_eq!(
        channels.get(&1).map(Vec::as_slice),
        Some(&b"through websocket"[..])
    );
    let status: serde_json::Value =
        serde_json::from_slice(channels.get(&3).expect("error channel")).expect("status json");
    assert_eq!(status["status"], "Success", "{status}");
    // An unknown subprotocol is refused.
    let url = exec_url(&mut client, &server, &["true"], false, false).await;
    assert!(WsCommand::open(&url, "v9.channel.k8s.io").await.is_err());

    // Port forwarding into the pod's network namespace.
    let mut served = String::new();
    for _ in 0..300 {
        served = exec_sync(
            &mut client,
            &server,
            &["/bin/busybox", "wget", "-qO-", "http://127.0.0.1:8080/"],
        )
        .await;
        if served.contains("hello-pf") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(served.contains("hello-pf"), "httpd in the pod: {served:?}");
    let url = client
        .runtime
        .port_forward(PortForwardRequest {
            pod_sandbox_id: pod.clone(),
            port: vec![],
        })
        .await
        .expect("PortForward")
        .into_inner()
        .url;
    let (response, error) = spdy_port_forward(&url, 8080, b"GET / HTTP/1.0\r\n\r\n").await;
    let response = String::from_utf8_lossy(&response);
    assert!(
        response.contains("hello-pf"),
        "{response:?} {}",
        String::from_utf8_lossy(&error)
    );
    assert!(error.is_empty(), "{}", String::from_utf8_lossy(&error));
    // A port nobody listens on: the error stream says so.
    let url = client
        .runtime
        .port_forward(PortForwardRequest {
            pod_sandbox_id: pod.clone(),
            port: vec![],
        })
        .await
        .expect("PortForward")
        .into_inner()
        .url;
    let (_, error) = spdy_port_forward(&url, 8081, b"x").await;
    assert!(String::from_utf8_lossy(&error).contains("8081"));

    // Attach: the container's stdin and output, through its monitor.
    let shell = run_container(
        &mut client,
        &pod,
        &pod_config,
        container("shell", &image, &["/bin/busybox", "sh"], true, false),
    )
    .await;
    let url = client
        .runtime
        .attach(AttachRequest {
            container_id: shell.clone(),
            stdin: true,
            stdout: true,
            stderr: true,
            tty: false,
        })
        .await
        .expect("Attach")
        .into_inner()
        .url;
    let mut session = SpdyCommand::open(&url, true, true, true, false).await;
    session.send(b"echo hello-attach\n").await;
    let out = read_until(session.stdout.as_mut().expect("stdout"), "hello-attach").await;
    assert_eq!(out, "hello-attach\n");
    // stdin_once: closing stdin ends the shell, and the attach with it.
    session.close_stdin().await;
    let _ = read_all(session.stdout.as_mut().expect("stdout")).await;
    assert_eq!(session.status().await["status"], "Success");

    // A client that disappears while its command runs: the command is killed.
    let nap = (4_000_000 + std::process::id()).to_string();
    let pattern = format!("sleep {nap}");
    let url = exec_url(
        &mut client,
        &server,
        &["/bin/busybox", "sleep", &nap],
        false,
        false,
    )
    .await;
    let session = SpdyCommand::open(&url, false, true, true, false).await;
    wait_until("the exec'd sleep runs", Duration::from_secs(30), || {
        std::process::Command::new("pgrep")
            .args(["-f", &pattern])
            .status()
            .is_ok_and(|s| s.success())
    });
    // The client vanishes: its connection closes without a word.
    session.handle.closed().cancel();
    drop(session);
    wait_until("the exec'd sleep is gone", Duration::from_secs(30), || {
        std::process::Command::new("pgrep")
            .args(["-f", &pattern])
            .status()
            .is_ok_and(|s| !s.success())
    });
    // The daemon still serves.
    assert!(
        exec_sync(&mut client, &server, &["/bin/busybox", "echo", "alive"])
            .await
            .contains("alive")
    );

    client
        .runtime
        .stop_pod_sandbox(StopPodSandboxRequest {
            pod_sandbox_id: pod.clone(),
        })
        .await
        .expect("StopPodSandbox");
    client
        .runtime
        .remove_pod_sandbox(RemovePodSandboxRequest {
            pod_sandbox_id: pod,
        })
        .await
        .expect("RemovePodSandbox");
    daemon.stop();
    support::remove_empty_cgroup_parent(&cgroup_parent);
    let _ = std::fs::remove_dir_all(&state);
    let _ = std::process::Command::new("ip")
        .args(["link", "del", &format!("bs{suffix}")])
        .status();
}
