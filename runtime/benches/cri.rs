//! Pod start latency and memory, Berth next to Debian's containerd 1.6 + runc, in one run:
//! same machine, same CNI config, same image from the same local registry, driven by the
//! same CRI client. Both daemons run side by side and their pod starts alternate (Berth
//! first in even rounds, containerd first in odd ones), so a change of load on the machine
//! during the run weighs on both alike rather than on whichever ran second. For each
//! runtime: 20 pods, each timed from RunPodSandbox through CreateContainer to
//! StartContainer (image already pulled); the daemon's RSS when idle (image pulled, no
//! pods) and with 10 pods running, alone and with its per-container helpers (Berth's
//! monitors, containerd's shims). Needs root; prints why it cannot run otherwise. Run with
//! `cargo xtask bench cri` (= `cargo bench -p berth-runtime --bench cri`).

#[path = "../tests/support/mod.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use berth_runtime::client::{connect, CriClient};
use berth_runtime::proto::v1::*;
use support::{busybox_layout, wait_until, write_cni_config, Registry};

const PODS: usize = 20;
const RSS_PODS: usize = 10;

/// Resident memory of `pid` in KiB.
fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// Pids whose executable name is `name`.
fn pids_named(name: &str) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .map(|c| c.trim() == name)
                .unwrap_or(false)
        })
        .collect()
}

struct Figures {
    latencies: Vec<Duration>,
    /// Per pod: RunPodSandbox, CreateContainer, StartContainer.
    steps: Vec<[Duration; 3]>,
    idle_rss: u64,
    busy_rss: u64,
    helpers_rss: u64,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

/// Pod `i` of runtime `runtime`: its own cgroup parent and log folder, as both run at once.
fn pod_config(i: usize, runtime: &str) -> PodSandboxConfig {
    PodSandboxConfig {
        metadata: Some(PodSandboxMetadata {
            name: format!("bench-{i}"),
            uid: format!("bench-uid-{i}"),
            namespace: "bench".to_owned(),
            attempt: 0,
        }),
        hostname: format!("bench-{i}"),
        log_directory: format!("/tmp/berth-bench-logs/{runtime}/{i}"),
        linux: Some(LinuxPodSandboxConfig {
            cgroup_parent: format!("/berth-bench/{runtime}/pod{i}"),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn container_config(image: &str) -> ContainerConfig {
    ContainerConfig {
        metadata: Some(ContainerMetadata {
            name: "sleeper".to_owned(),
            attempt: 0,
        }),
        image: Some(ImageSpec {
            image: image.to_owned(),
            ..Default::default()
        }),
        command: vec![
            "/bin/sh".into(),
            "-c".into(),
            "trap 'exit 0' TERM; while true; do sleep 1; done".into(),
        ],
        log_path: "sleeper.log".to_owned(),
        linux: Some(LinuxContainerConfig::default()),
        ..Default::default()
    }
}

/// One runtime under test and what was measured of it.
struct Subject {
    name: &'static str,
    client: CriClient,
    daemon_pid: u32,
    /// The process name of its per-container helpers.
    helper: &'static str,
    figures: Figures,
    pods: Vec<String>,
}

impl Subject {
    fn new(name: &'static str, client: CriClient, daemon_pid: u32, helper: &'static str) -> Self {
        Subject {
            name,
            client,
            daemon_pid,
            helper,
            figures: Figures {
                latencies: Vec::new(),
                steps: Vec::new(),
                idle_rss: 0,
                busy_rss: 0,
                helpers_rss: 0,
            },
            pods: Vec::new(),
        }
    }

    async fn pull(&mut self, image: &str) {
        self.client
            .images
            .pull_image(PullImageRequest {
                image: Some(ImageSpec {
                    image: image.to_owned(),
                    ..Default::default()
                }),
                ..Default::default()
            })
            .await
            .unwrap_or_else(|e| panic!("{}: pull: {e}", self.name));
    }

    /// Starts pod `i` (RunPodSandbox, CreateContainer, StartContainer), timed.
    async fn start_pod(&mut self, i: usize, image: &str) {
        let config = pod_config(i, self.name);
        let runtime = &mut self.client.runtime;
        let start = Instant::now();
        let pod = runtime
            .run_pod_sandbox(RunPodSandboxRequest {
                config: Some(config.clone()),
                runtime_handler: String::new(),
            })
            .await
            .unwrap_or_else(|e| panic!("{}: RunPodSandbox: {e}", self.name))
            .into_inner()
            .pod_sandbox_id;
        let ran = Instant::now();
        let container = runtime
            .create_container(CreateContainerRequest {
                pod_sandbox_id: pod.clone(),
                config: Some(container_config(image)),
                sandbox_config: Some(config),
            })
            .await
            .unwrap_or_else(|e| panic!("{}: CreateContainer: {e}", self.name))
            .into_inner()
            .container_id;
        let created = Instant::now();
        runtime
            .start_container(StartContainerRequest {
                container_id: container,
            })
            .await
            .unwrap_or_else(|e| panic!("{}: StartContainer: {e}", self.name));
        let started = Instant::now();
        self.figures.latencies.push(started - start);
        self.figures
            .steps
            .push([ran - start, created - ran, started - created]);
        self.pods.push(pod);
    }

    fn take_idle_rss(&mut self) {
        self.figures.idle_rss = rss_kib(self.daemon_pid);
    }

    fn take_busy_rss(&mut self) {
        self.figures.busy_rss = rss_kib(self.daemon_pid);
        self.figures.helpers_rss = pids_named(self.helper).into_iter().map(rss_kib).sum();
    }

    async fn remove_pods(&mut self) {
        for pod in std::mem::take(&mut self.pods) {
            let _ = self
                .client
                .runtime
                .stop_pod_sandbox(StopPodSandboxRequest {
                    pod_sandbox_id: pod.clone(),
                })
                .await;
            let _ = self
                .client
                .runtime
                .remove_pod_sandbox(RemovePodSandboxRequest {
                    pod_sandbox_id: pod,
                })
                .await;
        }
    }
}

/// Pulls, then starts [`PODS`] pods on each, alternating which goes first, with the
/// memory figures taken from both at the same moments.
async fn measure(subjects: &mut [Subject; 2], image: &str) {
    for s in subjects.iter_mut() {
        s.pull(image).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    subjects.iter_mut().for_each(Subject::take_idle_rss);
    for i in 0..PODS {
        let order = if i % 2 == 0 { [0, 1] } else { [1, 0] };
        for k in order {
            subjects[k].start_pod(i, image).await;
        }
        if i + 1 == RSS_PODS {
            tokio::time::sleep(Duration::from_secs(2)).await;
            subjects.iter_mut().for_each(Subject::take_busy_rss);
        }
    }
    for s in subjects.iter_mut() {
        s.remove_pods().await;
    }
}

struct Containerd {
    child: Child,
    socket: PathBuf,
}

impl Drop for Containerd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_containerd(dir: &Path, certs: &Path, cni_conf: &Path, pause: &str) -> Containerd {
    let socket = dir.join("containerd.sock");
    let config = dir.join("containerd.toml");
    std::fs::write(
        &config,
        format!(
            r#"version = 2
root = "{root}"
state = "{state}"
[grpc]
  address = "{socket}"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{pause}"
  # As Berth does on a host without CAP_SYS_RESOURCE: clamp instead of failing the pod.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "{cni}"
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "{certs}"
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
    runtime_type = "io.containerd.runc.v2"
"#,
            root = dir.join("root").display(),
            state = dir.join("state").display(),
            socket = socket.display(),
            cni = cni_conf.display(),
            certs = certs.display(),
        ),
    )
    .expect("containerd config");
    let log = std::fs::File::create(dir.join("containerd.log")).expect("containerd log");
    let child = Command::new("containerd")
        .arg("--config")
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start containerd");
    // Its socket file appears before it listens: wait for a connection, not the file.
    wait_until("containerd's socket", Duration::from_secs(60), || {
        std::os::unix::net::UnixStream::connect(&socket).is_ok()
    });
    Containerd { child, socket }
}

fn report(name: &str, figures: &Figures) -> (f64, f64) {
    let mut sorted = figures.latencies.clone();
    sorted.sort();
    let median = percentile(&sorted, 0.5).as_secs_f64() * 1000.0;
    let p95 = percentile(&sorted, 0.95).as_secs_f64() * 1000.0;
    let step = |i: usize| {
        let mut times: Vec<Duration> = figures.steps.iter().map(|s| s[i]).collect();
        times.sort();
        percentile(&times, 0.5).as_secs_f64() * 1000.0
    };
    println!(
        "{name:<12} pod start median {median:8.1} ms  p95 {p95:8.1} ms  daemon RSS idle {:6} KiB  with {RSS_PODS} pods {:6} KiB  (+ per-pod helpers {:6} KiB)",
        figures.idle_rss, figures.busy_rss, figures.helpers_rss
    );
    println!(
        "{:<12} medians: RunPodSandbox {:6.1} ms  CreateContainer {:6.1} ms  StartContainer {:6.1} ms",
        "",
        step(0),
        step(1),
        step(2)
    );
    (median, p95)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    if support::skip(&[
        "docker-registry",
        "skopeo",
        "crun",
        "containerd",
        "/usr/lib/cni/bridge",
    ]) {
        return;
    }
    let work = tempfile::tempdir().expect("tempdir");
    let registry = Registry::start();
    let layout = work.path().join("layout");
    busybox_layout(&layout, "1", &[], &["sh"]);
    busybox_layout(
        &layout,
        "pause",
        &[
            "/bin/sh",
            "-c",
            "trap 'exit 0' TERM INT; while true; do sleep 3600 & wait; done",
        ],
        &[],
    );
    let image = registry.push(&layout, "1", "bench/busybox");
    let pause = registry.push(&layout, "pause", "bench/pause");
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

    println!(
        "{PODS} pods each (RunPodSandbox + CreateContainer + StartContainer), image pulled before"
    );

    // Both daemons, each on a bridge and subnet of its own.
    let berth_dir = work.path().join("berth");
    std::fs::create_dir_all(&berth_dir).expect("berth dir");
    let cni_conf = berth_dir.join("net.d");
    write_cni_config(
        &cni_conf,
        &berth_dir.join("ipam"),
        "berthbench0",
        "10.88.240.0/24",
    );
    let mut daemon = support::Daemon::new(
        &berth_dir,
        &format!(
            "registry_config_dir = \"{}\"\nsandbox_image = \"{pause}\"\n[cni]\nconf_dir = \"{}\"\n",
            certs.display(),
            cni_conf.display()
        ),
    );
    daemon.start();
    let berth_client = connect(&daemon.socket).await.expect("connect berth");
    let containerd_dir = work.path().join("containerd");
    std::fs::create_dir_all(&containerd_dir).expect("containerd dir");
    let cni_conf = containerd_dir.join("net.d");
    write_cni_config(
        &cni_conf,
        &containerd_dir.join("ipam"),
        "berthbench1",
        "10.88.241.0/24",
    );
    let containerd = start_containerd(&containerd_dir, &certs, &cni_conf, &pause);
    let containerd_client = connect(&containerd.socket)
        .await
        .expect("connect containerd");
    let mut subjects = [
        Subject::new(
            "berth",
            berth_client,
            daemon.pid().unwrap_or(0),
            "berth-monitor",
        ),
        Subject::new(
            "containerd",
            containerd_client,
            containerd.child.id(),
            "containerd-shim",
        ),
    ];
    measure(&mut subjects, &image).await;
    daemon.stop();
    drop(containerd);
    let [berth, theirs] = subjects;
    let berth = berth.figures;
    let theirs = theirs.figures;
    let (berth_median, berth_p95) = report("berth", &berth);
    let (their_median, their_p95) = report("containerd", &theirs);
    println!(
        "ratio berth/containerd: median {:.2}  p95 {:.2}  RSS idle {:.2}  RSS with {RSS_PODS} pods {:.2}  (with helpers {:.2})",
        berth_median / their_median,
        berth_p95 / their_p95,
        berth.idle_rss as f64 / theirs.idle_rss.max(1) as f64,
        berth.busy_rss as f64 / theirs.busy_rss.max(1) as f64,
        (berth.busy_rss + berth.helpers_rss) as f64
            / (theirs.busy_rss + theirs.helpers_rss).max(1) as f64,
    );
}
