//! Shared by the host tests and the benchmark: a real registry (Debian's
//! `docker-registry`) on 127.0.0.1, a tiny busybox image built here as an OCI layout, and
//! pushed with skopeo, and a `berth-runtime` daemon in a private root.

#![allow(dead_code, reason = "each test binary uses a part of the support code")]

use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

/// Why host tests cannot run here, if they cannot.
pub fn skip_reason(tools: &[&str]) -> Option<String> {
    if !nix::unistd::Uid::effective().is_root() {
        return Some("needs root (namespaces, mounts, cgroups)".to_owned());
    }
    for tool in tools {
        if which(tool).is_none() {
            return Some(format!(
                "{tool} is not installed (.ci/install-deps installs it)"
            ));
        }
    }
    None
}

/// Skips the calling test (`berth_testkit::skip`) and returns true if this host cannot
/// run it.
pub fn skip(tools: &[&str]) -> bool {
    match skip_reason(tools) {
        Some(reason) => {
            berth_testkit::skip(&reason);
            true
        }
        None => false,
    }
}

/// The path of `tool` on PATH (plus /usr/sbin and /sbin).
pub fn which(tool: &str) -> Option<PathBuf> {
    if tool.starts_with('/') {
        return Path::new(tool).exists().then(|| PathBuf::from(tool));
    }
    let path = std::env::var("PATH").unwrap_or_default();
    let found = path
        .split(':')
        .chain(["/usr/sbin", "/sbin"])
        .map(|dir| Path::new(dir).join(tool))
        .find(|candidate| candidate.exists());
    found
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free port")
}

/// Waits until `ready` says yes, or panics naming `what` after `limit`.
pub fn wait_until(what: &str, limit: Duration, mut ready: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ready() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Debian's docker-registry, serving from a temp folder, stopped on drop.
pub struct Registry {
    child: Child,
    /// `127.0.0.1:PORT`.
    pub host: String,
    _dir: tempfile::TempDir,
}

impl Registry {
    /// Starts the registry and waits until `/v2/` answers.
    pub fn start() -> Registry {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
                dir.path().join("data").display()
            ),
        )
        .expect("write registry config");
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start docker-registry");
        let host = format!("127.0.0.1:{port}");
        let url = format!("http://{host}/v2/");
        wait_until("docker-registry", Duration::from_secs(30), || {
            ureq::get(&url).call().is_ok()
        });
        Registry {
            child,
            host,
            _dir: dir,
        }
    }

    /// Pushes an OCI layout's `tag` to `repo:tag` with skopeo.
    pub fn push(&self, layout: &Path, tag: &str, repo: &str) -> String {
        let reference = format!("{}/{repo}:{tag}", self.host);
        let status = Command::new("skopeo")
            .args(["copy", "--quiet", "--dest-tls-verify=false"])
            .arg(format!("oci:{}:{tag}", layout.display()))
            .arg(format!("docker://{reference}"))
            .status()
            .expect("run skopeo");
        assert!(status.success(), "skopeo copy to {reference} failed");
        reference
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn write_blob(layout: &Path, bytes: &[u8]) -> String {
    let hex = sha256_hex(bytes);
    let dir = layout.join("blobs/sha256");
    std::fs::create_dir_all(&dir).expect("blobs dir");
    std::fs::write(dir.join(&hex), bytes).expect("write blob");
    format!("sha256:{hex}")
}

/// The one layer: busybox-static with its applets as symlinks, /etc/passwd and /tmp.
fn busybox_layer() -> Vec<u8> {
    let busybox = std::fs::read("/bin/busybox").expect("read /bin/busybox (busybox-static)");
    let mut tar = tar::Builder::new(Vec::new());
    let dir = |path: &str, mode: u32, tar: &mut tar::Builder<Vec<u8>>| {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Directory);
        header.set_mode(mode);
        header.set_size(0);
        header.set_mtime(1_700_000_000);
        tar.append_data(&mut header, path, std::io::empty())
            .expect("tar dir");
    };
    for (path, mode) in [
        ("bin", 0o755),
        ("etc", 0o755),
        ("tmp", 0o1777),
        ("root", 0o700),
    ] {
        dir(path, mode, &mut tar);
    }
    let file = |path: &str, mode: u32, data: &[u8], tar: &mut tar::Builder<Vec<u8>>| {
        let mut header = tar::Header::new_gnu();
        header.set_mode(mode);
        header.set_size(data.len() as u64);
        header.set_mtime(1_700_000_000);
        tar.append_data(&mut header, path, data).expect("tar file");
    };
    file("bin/busybox", 0o755, &busybox, &mut tar);
    file(
        "etc/passwd",
        0o644,
        b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n",
        &mut tar,
    );
    file(
        "etc/group",
        0o644,
        b"root:x:0:\nnogroup:x:65534:\n",
        &mut tar,
    );
    for applet in [
        "sh", "echo", "cat", "sleep", "ls", "id", "hostname", "ip", "nc", "httpd", "true", "false",
        "env", "pwd", "wc", "head", "seq", "grep", "ps", "kill", "mount",
    ] {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Symlink);
        header.set_mode(0o777);
        header.set_size(0);
        header.set_mtime(1_700_000_000);
        tar.append_link(&mut header, format!("bin/{applet}"), "busybox")
            .expect("tar symlink");
    }
    tar.into_inner().expect("tar")
}

/// Builds an OCI image layout in `layout` holding one busybox image tagged `tag`, with
/// the given entrypoint and cmd.
pub fn busybox_layout(layout: &Path, tag: &str, entrypoint: &[&str], cmd: &[&str]) {
    let tar = busybox_layer();
    let diff_id = format!("sha256:{}", sha256_hex(&tar));
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar).expect("gzip");
    let gz = gz.finish().expect("gzip");
    let layer_digest = write_blob(layout, &gz);
    let config = serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {
            "Env": ["PATH=/bin"],
            "Entrypoint": entrypoint,
            "Cmd": cmd,
            "WorkingDir": "/",
        },
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
    });
    let config = serde_json::to_vec(&config).expect("config json");
    let config_digest = write_blob(layout, &config);
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config_digest,
            "size": config.len(),
        },
        "layers": [{
            "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
            "digest": layer_digest,
            "size": gz.len(),
        }],
    });
    let manifest = serde_json::to_vec(&manifest).expect("manifest json");
    let manifest_digest = write_blob(layout, &manifest);
    let index_path = layout.join("index.json");
    let mut index: serde_json::Value = std::fs::read(&index_path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_else(|| serde_json::json!({"schemaVersion": 2, "manifests": []}));
    if let Some(manifests) = index["manifests"].as_array_mut() {
        manifests.push(serde_json::json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest_digest,
            "size": manifest.len(),
            "annotations": {"org.opencontainers.image.ref.name": tag},
        }));
    }
    std::fs::write(&index_path, serde_json::to_vec(&index).expect("index")).expect("index");
    std::fs::write(
        layout.join("oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .expect("oci-layout");
}

/// A CNI conflist for a test bridge with host-local IPAM in `subnet` (e.g. "10.88.7.0/24").
pub fn write_cni_config(conf_dir: &Path, ipam_dir: &Path, bridge: &str, subnet: &str) {
    std::fs::create_dir_all(conf_dir).expect("cni conf dir");
    let config = serde_json::json!({
        "cniVersion": "1.0.0",
        "name": format!("{bridge}-net"),
        "plugins": [
            {
                "type": "bridge",
                "bridge": bridge,
                "isGateway": true,
                "ipMasq": true,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": subnet}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                    "dataDir": ipam_dir,
                }
            },
            {"type": "portmap", "capabilities": {"portMappings": true}}
        ]
    });
    std::fs::write(
        conf_dir.join("10-berth-test.conflist"),
        serde_json::to_vec_pretty(&config).expect("conflist"),
    )
    .expect("write conflist");
}

/// A `berth-runtime` daemon with its own socket, root, state and config, killed on drop.
pub struct Daemon {
    child: Option<Child>,
    /// The CRI socket.
    pub socket: PathBuf,
    /// Its configuration file.
    pub config: PathBuf,
    /// Its --root.
    pub root: PathBuf,
    /// Its --state.
    pub state: PathBuf,
    /// Its stderr.
    pub log: PathBuf,
}

impl Daemon {
    /// Paths under `dir`; writes `config_text` as the config file.
    pub fn new(dir: &Path, config_text: &str) -> Daemon {
        let config = dir.join("runtime.toml");
        std::fs::write(&config, config_text).expect("write runtime config");
        Daemon {
            child: None,
            socket: dir.join("cri.sock"),
            config,
            root: dir.join("root"),
            state: dir.join("state"),
            log: dir.join("daemon.log"),
        }
    }

    /// Starts the daemon and waits until its socket accepts a connection (the file
    /// appears at bind(), a moment before listen(): a connect then is refused).
    pub fn start(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("daemon log");
        let _ = std::fs::remove_file(&self.socket);
        let child = Command::new(env!("CARGO_BIN_EXE_berth-runtime"))
            .arg("--socket")
            .arg(&self.socket)
            .arg("--root")
            .arg(&self.root)
            .arg("--state")
            .arg(&self.state)
            .arg("--config")
            .arg(&self.config)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start berth-runtime");
        self.child = Some(child);
        let socket = self.socket.clone();
        let log = self.log.clone();
        let start = Instant::now();
        while berth_runtime::sockpath::connect(&socket).is_err() {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!(
                        "berth-runtime exited with {status}: {}",
                        std::fs::read_to_string(&log).unwrap_or_default()
                    );
                }
            }
            assert!(start.elapsed() < Duration::from_secs(30), "no socket");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The daemon's pid.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// SIGKILL, as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM and wait.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(child.id() as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
            let _ = child.wait();
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill();
    }
}
/// The folders of cgroup `parent` (a path from the hierarchy's root, `/x/y`) in every
/// mounted hierarchy: the unified one and, on a cgroup v1 host, each controller's.
pub fn cgroup_dirs(parent: &str) -> Vec<PathBuf> {
    let name = parent.trim_start_matches('/');
    let mut dirs = vec![PathBuf::from("/sys/fs/cgroup").join(name)];
    if let Ok(entries) = std::fs::read_dir("/sys/fs/cgroup") {
        for entry in entries.flatten() {
            dirs.push(entry.path().join(name));
        }
    }
    dirs.into_iter().filter(|d| d.exists()).collect()
}

/// A test's configured `cgroup_parent` once its pods are gone: the parent is the subtree
/// delegated to the runtime and stays (the runtime never removes it, as containerd does
/// not), but no pod or container cgroup may be left inside it. Asserts that, then removes
/// the parent in every hierarchy so that test runs leave nothing on the host.
pub fn remove_empty_cgroup_parent(parent: &str) {
    for dir in cgroup_dirs(parent) {
        let children: Vec<PathBuf> = std::fs::read_dir(&dir)
            .expect("cgroup dir")
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_dir())
            .collect();
        assert_eq!(
            children,
            Vec::<PathBuf>::new(),
            "cgroups left in {}",
            dir.display()
        );
        std::fs::remove_dir(&dir)
            .unwrap_or_else(|e| panic!("cannot remove cgroup {}: {e}", dir.display()));
    }
}

pub mod node;
pub mod stream_client;
