//! Pod sandboxes on the host with the real CNI plugins (Debian's containernetworking-plugins
//! in /usr/lib/cni): namespaces held by bind mounts, hostname, bridge + host-local +
//! portmap + loopback, traffic to the pod and through a port mapping, then teardown and
//! removal leaving nothing behind. Needs root; skips with the reason otherwise. `#[ignore]`d,
//! since it changes the host's network: `cargo xtask test` runs it.

use std::io::{Read, Write};
use std::net::{IpAddr, TcpStream};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

use berth_runtime::pod::cni::{HostPort, PortProtocol};
use berth_runtime::pod::PodDns;
use berth_runtime::pod::{self, Cni, CniConfig, PodIdentity, PodPaths};

const PLUGINS: &str = "/usr/lib/cni";

/// Why this host cannot run the test, if it cannot.
fn skip_reason() -> Option<String> {
    if !nix::unistd::geteuid().is_root() {
        return Some("needs root (namespaces, mounts, bridges, iptables)".into());
    }
    for plugin in ["bridge", "host-local", "loopback", "portmap"] {
        if !Path::new(PLUGINS).join(plugin).is_file() {
            return Some(format!(
                "needs {PLUGINS}/{plugin} (Debian containernetworking-plugins)"
            ));
        }
    }
    for tool in ["nsenter", "ip", "busybox", "iptables-save", "hostname"] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .is_ok_and(|o| o.status.success());
        if !found {
            return Some(format!("needs {tool} on PATH"));
        }
    }
    None
}

macro_rules! skip_unless_possible {
    () => {
        berth_testkit::skip_if!(skip_reason());
    };
}

fn run(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{cmd} {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn mounts_under(dir: &Path) -> Vec<String> {
    let dir = dir.to_str().unwrap();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| l.contains(dir))
        .map(str::to_owned)
        .collect()
}

/// Processes whose network namespace is `link` (`net:[inode]`).
fn processes_in(link: &str) -> Vec<String> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| {
            let e = e.ok()?;
            let target = std::fs::read_link(e.path().join("ns/net")).ok()?;
            (target.to_str() == Some(link)).then(|| e.file_name().to_string_lossy().into_owned())
        })
        .collect()
}

/// Fetches `/` from a busybox httpd, retrying while it starts (bounded by attempts).
fn http_get(ip: IpAddr, port: u16) -> String {
    let mut last = None;
    for _ in 0..100 {
        match TcpStream::connect_timeout(&(ip, port).into(), Duration::from_secs(5)) {
            Ok(mut s) => {
                s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                s.write_all(b"GET /index.html HTTP/1.0\r\n\r\n").unwrap();
                let mut body = String::new();
                s.read_to_string(&mut body).unwrap();
                return body;
            }
            Err(e) => last = Some(e),
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("connect {ip}:{port}: {last:?}");
}

/// Removes what the test made even when an assertion fails halfway.
struct Cleanup {
    cni: Cni,
    pod_id: String,
    paths: PodPaths,
    bridge: String,
    server: Option<Child>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Some(mut s) = self.server.take() {
            let _ = s.kill();
            let _ = s.wait();
        }
        let _ = self
            .cni
            .teardown(&self.pod_id, Some(&self.paths.netns()), &identity(), &[]);
        let _ = pod::remove_pod_files(&self.paths);
        let _ = Command::new("ip")
            .args(["link", "del", &self.bridge])
            .output();
    }
}

fn identity() -> PodIdentity {
    PodIdentity {
        name: "web-0".into(),
        namespace: "berth-test".into(),
        uid: "uid-1".into(),
    }
}

#[test]
#[ignore = "creates bridges and iptables rules on the host; run by `cargo xtask test`"]
fn pod_network_end_to_end() {
    skip_unless_possible!();
    let tmp = tempfile::tempdir().unwrap();
    let pid = std::process::id();
    let bridge = format!("bt{}", pid % 1_000_000);
    let net = format!("10.213.{}", pid % 250);
    let gateway: IpAddr = format!("{net}.1").parse().unwrap();
    let ipam_dir = tmp.path().join("ipam");
    let conf_dir = tmp.path().join("net.d");
    std::fs::create_dir(&conf_dir).unwrap();
    let conflist = serde_json::json!({
        "cniVersion": "1.0.0",
        "name": "berth-test",
        "plugins": [
            {
                "type": "bridge",
                "bridge": bridge,
                "isGateway": true,
                "ipMasq": true,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": format!("{net}.0/24"), "gateway": gateway.to_string()}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                    "dataDir": ipam_dir,
                }
            },
            {"type": "portmap", "capabilities": {"portMappings": true}}
        ]
    });
    std::fs::write(
        conf_dir.join("10-berth-test.conflist"),
        conflist.to_string(),
    )
    .unwrap();
    let cni = Cni::new(CniConfig {
        conf_dir,
        bin_dirs: vec![PLUGINS.into(), "/opt/cni/bin".into()],
        cache_dir: tmp.path().join("cni-cache"),
    });
    cni.status().unwrap();

    let state = tmp.path().join("state");
    let pod_id = format!("berthtest{pid}");
    let paths = PodPaths::new(&state, &pod_id);
    let mut guard = Cleanup {
        cni: cni.clone(),
        pod_id: pod_id.clone(),
        paths: paths.clone(),
        bridge: bridge.clone(),
        server: None,
    };
    let host_name_before = run("hostname", &[]);

    let ns = pod::create_namespaces(&paths, "berth-pod", false, false, &[]).unwrap();
    assert_eq!(ns.net.as_deref(), Some(paths.netns().as_path()));
    let dns = PodDns {
        servers: vec!["10.96.0.10".into()],
        searches: vec!["svc.cluster.local".into()],
        options: vec![],
    };
    pod::write_pod_files(&paths, "berth-pod", Some(&dns), false).unwrap();

    assert_eq!(
        std::fs::read_to_string(paths.resolv_conf()).unwrap(),
        "search svc.cluster.local\nnameserver 10.96.0.10\n"
    );
    let netns_link = format!("net:[{}]", std::fs::metadata(paths.netns()).unwrap().ino());

    // The UTS namespace has the pod's hostname; the host kept its own.
    let uts = format!("--uts={}", paths.utsns().display());
    assert_eq!(run("nsenter", &[&uts, "hostname"]).trim(), "berth-pod");
    assert_eq!(run("hostname", &[]), host_name_before);

    // A free host port for the mapping.
    let host_port = std::net::TcpListener::bind("0.0.0.0:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mapping = HostPort {
        protocol: PortProtocol::Tcp,
        container_port: 8080,
        host_port,
        host_ip: Some(gateway),
    };
    let result = cni
        .setup(
            &pod_id,
            &paths.netns(),
            &identity(),
            std::slice::from_ref(&mapping),
        )
        .unwrap();
    let pod_ip = result.ips[0];
    assert!(
        pod_ip.to_string().starts_with(&format!("{net}.")),
        "{pod_ip}"
    );
    pod::add_pod_ip_to_hosts(&paths, pod_ip, "berth-pod").unwrap();
    assert!(std::fs::read_to_string(paths.hosts_file())
        .unwrap()
        .contains(&format!("{pod_ip}\tberth-pod")));
    assert!(ipam_dir
        .join("berth-test")
        .join(pod_ip.to_string())
        .is_file());

    // eth0 has the address and lo is up, inside the pod netns.
    let netns_arg = format!("--net={}", paths.netns().display());
    let eth0 = run(
        "nsenter",
        &[&netns_arg, "ip", "-o", "addr", "show", "dev", "eth0"],
    );
    assert!(eth0.contains(&format!("inet {pod_ip}/24")), "{eth0}");
    let lo = run(
        "nsenter",
        &[&netns_arg, "ip", "-o", "link", "show", "dev", "lo"],
    );
    assert!(lo.contains(",UP"), "{lo}");
    assert!(!run("ip", &["-o", "link", "show", "master", &bridge]).is_empty());

    // A server in the pod netns is reachable over the bridge and through the host port.
    let www = tmp.path().join("www");
    std::fs::create_dir(&www).unwrap();
    std::fs::write(www.join("index.html"), "hello from the pod\n").unwrap();
    guard.server = Some(
        Command::new("nsenter")
            .args([&netns_arg, "busybox", "httpd", "-f", "-p", "8080", "-h"])
            .arg(&www)
            .spawn()
            .unwrap(),
    );
    assert!(http_get(pod_ip, 8080).contains("hello from the pod"));
    assert!(http_get(gateway, host_port).contains("hello from the pod"));
    if let Some(mut s) = guard.server.take() {
        s.kill().unwrap();
        s.wait().unwrap();
    }

    // Teardown (twice), then removal: nothing may be left.
    cni.teardown(
        &pod_id,
        Some(&paths.netns()),
        &identity(),
        std::slice::from_ref(&mapping),
    )
    .unwrap();
    cni.teardown(
        &pod_id,
        Some(&paths.netns()),
        &identity(),
        std::slice::from_ref(&mapping),
    )
    .unwrap();
    pod::remove_namespaces(&paths).unwrap();
    pod::remove_pod_files(&paths).unwrap();
    pod::remove_pod_files(&paths).unwrap();
    cni.teardown(&pod_id, None, &identity(), &[]).unwrap();

    let left: Vec<PathBuf> = std::fs::read_dir(ipam_dir.join("berth-test"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .parse::<IpAddr>()
                .is_ok()
        })
        .collect();
    assert!(left.is_empty(), "IPAM allocations left: {left:?}");
    assert_eq!(mounts_under(tmp.path()), Vec::<String>::new());
    assert_eq!(
        run("ip", &["-o", "link", "show", "master", &bridge]),
        "",
        "veth left on {bridge}"
    );
    assert!(!paths.dir().exists());
    assert_eq!(
        std::fs::read_dir(tmp.path().join("cni-cache"))
            .unwrap()
            .count(),
        0
    );
    assert_eq!(
        processes_in(&netns_link),
        Vec::<String>::new(),
        "processes hold the pod netns"
    );
    let nat = run("iptables-save", &["-t", "nat"]);
    assert!(
        !nat.contains(&pod_id),
        "iptables rules left for {pod_id}:\n{nat}"
    );
}

#[test]
#[ignore = "creates bridges and iptables rules on the host; run by `cargo xtask test`"]
fn host_network_pod_has_no_netns() {
    skip_unless_possible!();
    let tmp = tempfile::tempdir().unwrap();
    let paths = PodPaths::new(tmp.path(), "hostnet");
    let ns = pod::create_namespaces(&paths, "ignored", true, false, &[]).unwrap();
    assert_eq!(
        ns.net, None,
        "host network: no netns, so the server makes no CNI call"
    );
    assert_eq!(ns.uts, None, "host network pods keep the host's hostname");
    let ipc = ns.ipc.unwrap();
    assert!(!paths.netns().exists() && !paths.utsns().exists());

    let host_ipc = std::fs::metadata("/proc/self/ns/ipc").unwrap().ino();
    assert_ne!(
        std::fs::metadata(&ipc).unwrap().ino(),
        host_ipc,
        "pod IPC namespace is its own"
    );

    // A second create refuses and leaves the first intact.
    let again = pod::create_namespaces(&paths, "ignored", true, false, &[]).unwrap_err();
    assert!(
        matches!(again, pod::PodError::AlreadyExists { .. }),
        "{again}"
    );
    assert_ne!(std::fs::metadata(&ipc).unwrap().ino(), host_ipc);

    pod::write_pod_files(&paths, "", None, true).unwrap();
    assert_eq!(
        std::fs::read(paths.hosts_file()).unwrap(),
        std::fs::read("/etc/hosts").unwrap_or_default()
    );
    assert_eq!(
        std::fs::read_to_string(paths.hostname_file())
            .unwrap()
            .trim(),
        nix::unistd::gethostname().unwrap().to_str().unwrap()
    );

    pod::remove_namespaces(&paths).unwrap();
    pod::remove_namespaces(&paths).unwrap();
    pod::remove_pod_files(&paths).unwrap();
    assert_eq!(mounts_under(tmp.path()), Vec::<String>::new());
    assert!(!paths.dir().exists());
}

#[test]
fn pod_sysctls_shm_and_shared_pid_namespace() {
    skip_unless_possible!();
    let tmp = tempfile::tempdir().unwrap();
    let paths = PodPaths::new(tmp.path(), "shared");
    let wanted = std::collections::HashMap::from([
        ("kernel.shm_rmid_forced".to_owned(), "1".to_owned()),
        ("fs.mqueue.msg_max".to_owned(), "100".to_owned()),
        (
            "net.ipv4.ip_unprivileged_port_start".to_owned(),
            "80".to_owned(),
        ),
    ]);
    let sysctls = pod::sysctls::check(&wanted, false, false).unwrap();
    let host_before = std::fs::read_to_string("/proc/sys/kernel/shm_rmid_forced").unwrap();
    let ns = pod::create_namespaces(&paths, "shared", false, false, &sysctls).unwrap();
    let ipc = ns.ipc.unwrap();
    let net = ns.net.unwrap();
    let read_in = |flag: String, file: &str| {
        run("nsenter", &[&flag, "--", "cat", file])
            .trim()
            .to_owned()
    };
    assert_eq!(
        read_in(
            format!("--ipc={}", ipc.display()),
            "/proc/sys/kernel/shm_rmid_forced"
        ),
        "1"
    );
    assert_eq!(
        read_in(
            format!("--ipc={}", ipc.display()),
            "/proc/sys/fs/mqueue/msg_max"
        ),
        "100"
    );
    assert_eq!(
        read_in(
            format!("--net={}", net.display()),
            "/proc/sys/net/ipv4/ip_unprivileged_port_start"
        ),
        "80"
    );
    assert_eq!(
        std::fs::read_to_string("/proc/sys/kernel/shm_rmid_forced").unwrap(),
        host_before,
        "the host's value is untouched"
    );
    assert!(
        mounts_under(&paths.shm())
            .iter()
            .any(|l| l.contains(" - tmpfs ")),
        "the pod's /dev/shm is a tmpfs"
    );

    // The shared PID namespace: its init is PID 1 inside, a process outside.
    let monitor = Path::new(env!("CARGO_BIN_EXE_berth-monitor"));
    let pidns = pod::pidns::start(monitor, &paths).unwrap();
    let line = std::fs::read_to_string(paths.pid_init_file()).unwrap();
    let init: i32 = line.split(' ').next().unwrap().parse().unwrap();
    let status = std::fs::read_to_string(format!("/proc/{init}/status")).unwrap();
    let nspid = status.lines().find(|l| l.starts_with("NSpid:")).unwrap();
    assert_eq!(nspid.split_whitespace().last(), Some("1"), "{nspid}");
    assert_eq!(
        std::fs::metadata(&pidns).unwrap().ino(),
        std::fs::metadata(format!("/proc/{init}/ns/pid"))
            .unwrap()
            .ino()
    );
    // The first process entering the namespace after its init is PID 2 there.
    let pid_flag = format!("--pid={}", pidns.display());
    let seen = run(
        "nsenter",
        &[&pid_flag, "--", "busybox", "sh", "-c", "echo $$"],
    );
    assert_eq!(seen.trim(), "2");

    pod::remove_namespaces(&paths).unwrap();
    // SIGKILL is sent; the init is gone (or a zombie) once the kernel has run it down.
    let process = berth_runtime::container::procfs::ProcessId::parse(&line).unwrap();
    let gone = || !process.is_alive();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !gone() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(gone(), "the init is killed with the pod");
    assert!(!pidns.exists());
    pod::remove_namespaces(&paths).unwrap();
    pod::remove_pod_files(&paths).unwrap();
    assert_eq!(mounts_under(tmp.path()), Vec::<String>::new());
}
