//! Memory of berth-networkd next to Debian's systemd-networkd, each holding a DHCPv4 lease
//! from the same dnsmasq, in one run. dnsmasq serves two veth pairs from one network
//! namespace; berth-networkd (this profile's build, or `$BERTH_NETWORKD`) configures the
//! far end of one in its own namespace, systemd-networkd the other in another, both by a
//! `.network` file asking `DHCP=ipv4` for `vc`. Once both links have their address and
//! default route and 10 s more have passed, VmRSS and PSS (`/proc/PID/smaps_rollup`) of
//! each are printed side by side with the ratio.
//!
//! systemd-networkd runs outside systemd here: in a private mount namespace with tmpfs
//! over `/run/systemd` and `/etc/systemd/network` (so it never sees or touches the host's),
//! and with udev's "initialized" mark for its link in a private `/run/udev` (no udevd runs
//! in the namespace; networkd waits for that mark before configuring a link). It drops to
//! the `systemd-network` user itself.
//!
//! Needs root (network and mount namespaces), `ip`, `unshare`, dnsmasq and systemd-networkd
//! (`apt-get install iproute2 util-linux dnsmasq systemd`); says why and exits non-zero
//! otherwise. Run with `cargo bench -p berth-net --bench rss_vs_networkd`.

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

const NETWORKD: &str = "/lib/systemd/systemd-networkd";
const LIMIT: Duration = Duration::from_secs(60);
const SETTLE: Duration = Duration::from_secs(10);
const NETWORK_FILE: &str = "[Match]\nName=vc\n\n[Network]\nDHCP=ipv4\n";

fn which(tool: &str) -> Option<PathBuf> {
    ["/usr/sbin", "/usr/bin", "/sbin", "/bin"]
        .iter()
        .map(|d| Path::new(d).join(tool))
        .find(|p| p.exists())
}

/// Why this host cannot run the bench, if it cannot.
fn missing() -> Option<String> {
    if !nix::unistd::geteuid().is_root() {
        return Some("needs root: it creates network and mount namespaces".into());
    }
    for tool in ["ip", "unshare", "dnsmasq"] {
        if which(tool).is_none() {
            return Some(format!(
                "{tool} not installed (apt-get install iproute2 util-linux dnsmasq)"
            ));
        }
    }
    (!Path::new(NETWORKD).exists())
        .then(|| format!("{NETWORKD} not installed (apt-get install systemd)"))
}

fn run(args: &[&str]) -> Result<String, String> {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .map_err(|e| format!("{args:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The namespaces (server, berth, debian), the veths and the processes; removed on drop.
struct Lab {
    namespaces: [String; 3],
    dir: tempfile::TempDir,
    children: Vec<Child>,
}

impl Lab {
    fn new() -> Result<Lab, String> {
        let id = std::process::id();
        let lab = Lab {
            namespaces: [
                format!("brn-s{id}"),
                format!("brn-b{id}"),
                format!("brn-d{id}"),
            ],
            dir: tempfile::tempdir().map_err(|e| format!("tempdir: {e}"))?,
            children: Vec::new(),
        };
        let [server, berth, debian] = &lab.namespaces;
        for ns in &lab.namespaces {
            run(&["ip", "netns", "add", ns])?;
        }
        for (end, client, net) in [("vs1", berth, "10.0.61"), ("vs2", debian, "10.0.62")] {
            run(&[
                "ip", "link", "add", end, "netns", server, "type", "veth", "peer", "name", "vc",
                "netns", client,
            ])?;
            run(&[
                "ip",
                "-n",
                server,
                "addr",
                "add",
                &format!("{net}.1/24"),
                "dev",
                end,
            ])?;
            run(&["ip", "-n", server, "link", "set", end, "up"])?;
        }
        Ok(lab)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn spawn(&mut self, mut cmd: Command, log: &str) -> Result<u32, String> {
        let log = std::fs::File::create(self.path(log)).map_err(|e| format!("{log}: {e}"))?;
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .map_err(|e| format!("starting {cmd:?}: {e}"))?;
        let pid = child.id();
        self.children.push(child);
        Ok(pid)
    }

    fn dnsmasq(&mut self) -> Result<(), String> {
        let mut cmd = Command::new("ip");
        cmd.args([
            "netns",
            "exec",
            &self.namespaces[0],
            "dnsmasq",
            "--no-daemon",
        ])
        .args(["--conf-file=/dev/null", "--port=0", "--bind-interfaces"])
        .args(["--interface=vs1", "--interface=vs2", "--no-ping"])
        .args(["--dhcp-range=10.0.61.50,10.0.61.60,255.255.255.0,10m"])
        .args(["--dhcp-range=10.0.62.50,10.0.62.60,255.255.255.0,10m"])
        .arg(format!(
            "--dhcp-leasefile={}",
            self.path("leases").display()
        ));
        self.spawn(cmd, "dnsmasq.log").map(|_| ())
    }

    /// berth-networkd in the berth namespace; its pid and READY=1 socket.
    fn berth(&mut self) -> Result<(u32, UnixDatagram), String> {
        let conf = self.path("conf");
        std::fs::create_dir_all(&conf).map_err(|e| format!("{}: {e}", conf.display()))?;
        std::fs::write(conf.join("50-vc.network"), NETWORK_FILE).map_err(|e| e.to_string())?;
        std::fs::write(self.path("cmdline"), "console=ttyS0\n").map_err(|e| e.to_string())?;
        let notify_path = self.path("notify");
        let notify = UnixDatagram::bind(&notify_path).map_err(|e| format!("notify socket: {e}"))?;
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.namespaces[1]])
            .arg(berth_networkd())
            .arg("--config-dir")
            .arg(&conf)
            .arg("--run-dir")
            .arg(self.path("run"))
            .arg("--no-etc-resolv-conf")
            .arg("--cmdline")
            .arg(self.path("cmdline"))
            .arg("--metadata-hostname")
            .arg(self.path("no-metadata"))
            .arg("--no-set-hostname")
            .env("NOTIFY_SOCKET", &notify_path);
        let pid = self.spawn(cmd, "berth.log")?;
        Ok((pid, notify))
    }

    /// systemd-networkd in the debian namespace, as the module docs say; its pid.
    fn networkd(&mut self) -> Result<u32, String> {
        let ns = self.namespaces[2].clone();
        let link = run(&["ip", "-n", &ns, "-o", "link", "show", "vc"])?;
        let index: u32 = link
            .split(':')
            .next()
            .and_then(|i| i.trim().parse().ok())
            .ok_or_else(|| format!("no index in {link:?}"))?;
        let script = format!(
            "set -e\n\
             for d in /run/systemd /etc/systemd/network /run/udev; do mkdir -p $d; mount -t tmpfs none $d; done\n\
             mkdir -p /run/udev/data /run/systemd/netif\n\
             printf 'I:1\\n' > /run/udev/data/n{index}\n\
             printf '{}' > /etc/systemd/network/50-vc.network\n\
             chown -R systemd-network:systemd-network /run/systemd\n\
             exec {NETWORKD}\n",
            NETWORK_FILE.replace('\n', "\\n")
        );
        let mut cmd = Command::new("ip");
        cmd.args([
            "netns",
            "exec",
            &ns,
            "unshare",
            "-m",
            "--propagation",
            "private",
        ])
        .args(["sh", "-c", &script]);
        self.spawn(cmd, "networkd.log")
    }

    /// Whether `vc` in namespace `ns` has an address of `net` and a default route.
    fn configured(&self, ns: usize, net: &str) -> bool {
        let ns = &self.namespaces[ns];
        let addr = run(&["ip", "-n", ns, "-4", "addr", "show", "dev", "vc"]).unwrap_or_default();
        let default = run(&["ip", "-n", ns, "-4", "route", "show", "default"]).unwrap_or_default();
        addr.contains(&format!("inet {net}.")) && default.contains("default via")
    }

    fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.path(name)).unwrap_or_default()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        for ns in &self.namespaces {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

/// The daemon measured: cargo's build of this profile, or `$BERTH_NETWORKD` (the image's
/// static build).
fn berth_networkd() -> PathBuf {
    std::env::var_os("BERTH_NETWORKD")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_berth-networkd")))
}

/// `field` (kB) of a `/proc/PID/…` file.
fn kib(pid: u32, file: &str, field: &str) -> Result<u64, String> {
    let path = format!("/proc/{pid}/{file}");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
    text.lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| format!("{path}: no {field} line"))
}

/// (VmRSS, PSS) in KiB.
fn memory(pid: u32) -> Result<(u64, u64), String> {
    Ok((
        kib(pid, "status", "VmRSS:")?,
        kib(pid, "smaps_rollup", "Pss:")?,
    ))
}

fn measure() -> Result<[(u64, u64); 2], String> {
    let mut lab = Lab::new()?;
    lab.dnsmasq()?;
    let (berth_pid, notify) = lab.berth()?;
    let networkd_pid = lab.networkd()?;
    notify
        .set_read_timeout(Some(LIMIT))
        .map_err(|e| format!("notify socket: {e}"))?;
    let mut buf = [0u8; 512];
    let n = notify.recv(&mut buf).map_err(|e| {
        format!(
            "no READY=1 from berth-networkd: {e}\n{}",
            lab.read("berth.log")
        )
    })?;
    let ready = String::from_utf8_lossy(&buf[..n]).into_owned();
    if ready.contains("timed out") {
        return Err(format!(
            "berth-networkd not online: {ready}\n{}",
            lab.read("berth.log")
        ));
    }
    let until = Instant::now() + LIMIT;
    while !(lab.configured(1, "10.0.61") && lab.configured(2, "10.0.62")) {
        if Instant::now() > until {
            return Err(format!(
                "not both configured within {LIMIT:?}\nberth:\n{}\nnetworkd:\n{}",
                lab.read("berth.log"),
                lab.read("networkd.log")
            ));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    eprintln!("both links configured; measuring in {SETTLE:?}");
    std::thread::sleep(SETTLE);
    Ok([memory(berth_pid)?, memory(networkd_pid)?])
}

fn main() -> ExitCode {
    if std::env::args().any(|a| a == "--list") {
        return ExitCode::SUCCESS;
    }
    if let Some(reason) = missing() {
        eprintln!("rss_vs_networkd cannot run here: {reason}");
        return ExitCode::FAILURE;
    }
    let [berth, networkd] = match measure() {
        Ok(figures) => figures,
        Err(e) => {
            eprintln!("rss_vs_networkd: {e}");
            return ExitCode::FAILURE;
        }
    };
    let version = run(&[NETWORKD, "--version"]).unwrap_or_default();
    println!(
        "DHCPv4 client holding a lease from one dnsmasq (KiB; MiB); {}",
        version.lines().next().unwrap_or("systemd-networkd")
    );
    println!("berth-networkd: {}", berth_networkd().display());
    println!(
        "{:<18} {:>8} {:>8}   {:>6} {:>6}",
        "", "VmRSS", "PSS", "RSS", "PSS"
    );
    for (name, (rss, pss)) in [("berth-networkd", berth), ("systemd-networkd", networkd)] {
        let mib = |k: u64| k as f64 / 1024.0;
        println!(
            "{name:<18} {rss:>8} {pss:>8}   {:>6.2} {:>6.2}",
            mib(rss),
            mib(pss)
        );
    }
    println!(
        "ratio berth/networkd: RSS {:.2}, PSS {:.2}",
        berth.0 as f64 / networkd.0 as f64,
        berth.1 as f64 / networkd.1 as f64
    );
    ExitCode::SUCCESS
}
