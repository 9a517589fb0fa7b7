//! VM tests of the network, time and metadata under QEMU's user networking, through the
//! debug variant's root shell: the address, default route, resolver and host name from
//! QEMU's DHCP server; `network-online.target` and a unit ordered after it; a name the
//! test's own DNS server (dnsmasq on the host) answers, and the HTTP server behind it; the
//! clock of a VM started a year in the past set right by the test's NTP server (chrony on
//! the host); the host name and user data from the test's metadata server speaking GCE's,
//! AWS IMDSv2's or Azure's protocol (on the host, reached through a QEMU guest forward),
//! and one that hangs. Run by `cargo xtask test`.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use berth_tests::shell::{vm_builder, Shell};
use berth_tests::*;

/// A server process of the test, killed when dropped.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// dnsmasq on the host's loopback, port 53 (the guest reaches it as 10.0.2.2), answering
/// `registry.test` with the host's address and nothing else.
fn dns_server(dir: &Path) -> Server {
    let child = Command::new("dnsmasq")
        .args([
            "--keep-in-foreground",
            "--no-resolv",
            "--no-hosts",
            "--bind-interfaces",
            "--listen-address=127.0.0.1",
            "--port=53",
            "--address=/registry.test/10.0.2.2",
            "--user=root",
        ])
        .arg(format!("--pid-file={}", dir.join("dnsmasq.pid").display()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("dnsmasq (Debian package dnsmasq-base)");
    std::thread::sleep(Duration::from_millis(500));
    Server(child)
}

/// An HTTP server on the host's loopback that answers every request with `body`.
fn http_server(body: &'static str) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            let mut buf = [0u8; 1024];
            let _ = conn.read(&mut buf);
            let _ = write!(
                conn,
                "HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
        }
    });
    port
}

#[test]
#[ignore = "boots VMs; run by `cargo xtask test`"]
fn dhcp_gives_the_address_route_resolver_and_host_name_and_names_resolve() {
    if vm_tests_skipped() {
        return;
    }
    let (disk, _) = shared_debug_image();
    let dir = tempfile::tempdir().unwrap();
    let _dns = dns_server(dir.path());
    let port = http_server("served by the host");
    let mut sh = Shell::start(
        vm_builder("network_dhcp", disk, true).user_net_option("hostname=berth-test-node"),
    );
    let addr = sh.run("busybox ip -4 addr show dev eth0");
    assert!(addr.contains("inet 10.0.2.15/24"), "{addr}");
    let route = sh.run("busybox ip route");
    assert!(route.contains("default via 10.0.2.2 dev eth0"), "{route}");
    let resolv = sh.run("busybox cat /etc/resolv.conf");
    assert!(resolv.contains("nameserver 10.0.2.3"), "{resolv}");
    let name = sh.run("busybox hostname");
    assert_eq!(name.trim(), "berth-test-node", "DHCP's host name: {name}");
    let online = sh.run("systemctl is-active network-online.target");
    assert_eq!(online.trim(), "active", "{online}");
    // berth-metadata is ordered after network-online.target, itself after the network.
    let console = sh.vm.console();
    let network = console.find("berth: started berth-networkd.service");
    let metadata = console.find("berth: started berth-metadata.service");
    assert!(
        matches!((network, metadata), (Some(n), Some(m)) if n < m),
        "{console}"
    );
    // A .network file of the user's: the resolver is the test's own DNS server.
    let file = "[Match]\nName=eth0\n\n[Network]\nDHCP=yes\nDNS=10.0.2.2\n\n[DHCPv4]\nUseDNS=no\n";
    sh.run(&format!(
        "busybox mkdir -p /etc/systemd/network && printf '{}' > /etc/systemd/network/50-test.network",
        file.replace('\n', "\\n")
    ));
    let restart = sh.run("systemctl restart berth-networkd; echo rc=$?");
    assert!(restart.contains("rc=0"), "{restart}");
    let resolv = sh.run("busybox cat /etc/resolv.conf");
    assert!(resolv.contains("nameserver 10.0.2.2"), "{resolv}");
    let lookup = sh.run("busybox nslookup registry.test");
    assert!(lookup.contains("10.0.2.2"), "{lookup}");
    let page = sh.run(&format!(
        "busybox wget -q -O - http://registry.test:{port}/"
    ));
    assert!(page.contains("served by the host"), "{page}");
}

#[test]
#[ignore = "boots VMs; run by `cargo xtask test`"]
fn a_clock_a_year_behind_is_set_right_by_ntp() {
    if vm_tests_skipped() {
        return;
    }
    let (disk, _) = shared_debug_image();
    let dir = tempfile::tempdir().unwrap();
    let port = free_udp_port();
    let conf = dir.path().join("chrony.conf");
    std::fs::write(
        &conf,
        format!(
            "port {port}\ncmdport 0\nlocal stratum 8\nallow 127.0.0.1\nbindaddress 127.0.0.1\n\
             driftfile {}\npidfile {}\n",
            dir.path().join("drift").display(),
            dir.path().join("chronyd.pid").display()
        ),
    )
    .unwrap();
    let _chrony = Server(
        Command::new("chronyd")
            .args(["-d", "-x", "-u", "root", "-f"])
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chronyd (Debian package chrony)"),
    );
    let a_year_ago = SystemTime::now() - Duration::from_secs(365 * 86_400);
    let rtc = utc_date(a_year_ago);
    let mut sh = Shell::start(
        vm_builder("network_ntp", disk, true).extra_args(["-rtc", &format!("base={rtc}")]),
    );
    let before: u64 = sh.run("busybox date +%s").trim().parse().unwrap();
    assert!(
        now_secs() - before > 300 * 86_400,
        "the RTC is a year behind"
    );
    // Point the client at the test's server (a drop-in, as a user would) and restart it.
    sh.run(&format!(
        "busybox mkdir -p /etc/systemd/system/berth-timesync.service.d && printf '[Service]\\nExecStart=\\nExecStart=/usr/bin/berth-timesync --server 10.0.2.2:{port}\\n' > /etc/systemd/system/berth-timesync.service.d/test.conf"
    ));
    let restart = sh.run("systemctl daemon-reload && systemctl restart berth-timesync; echo rc=$?");
    assert!(restart.contains("rc=0"), "{restart}");
    let after: u64 = sh.run("busybox date +%s").trim().parse().unwrap();
    let off = after.abs_diff(now_secs());
    assert!(off < 30, "the clock is {off} s off after time sync");
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// `YYYY-MM-DDTHH:MM:SS` in UTC, as QEMU's `-rtc base=` takes it.
fn utc_date(t: SystemTime) -> String {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let out = Command::new("date")
        .args(["-u", "-d", &format!("@{secs}"), "+%Y-%m-%dT%H:%M:%S"])
        .output()
        .expect("date");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .expect("a free UDP port")
}
/// The test's cloud metadata server for one connection, run by QEMU for each guest
/// connection to 169.254.169.254:80 (a `guestfwd` command: the request on stdin, the
/// reply on stdout). Its arguments: the protocol (`gce`, `aws`, `azure` or `hang`), the
/// log file it appends `METHOD TARGET STATUS` to for each request, and the AWS session
/// token it hands out. Each protocol is enforced as the cloud does:
/// - `gce`: only requests with `Metadata-Flavor: Google` are answered (403 without), and
///   with that header.
/// - `aws` (IMDSv2): `PUT /latest/api/token` with `X-aws-ec2-metadata-token-ttl-seconds`
///   (1 to 21600) gives the token; any other request without `X-aws-ec2-metadata-token:
///   <token>` gets 401, so IMDSv1 gets nothing.
/// - `azure`: `Metadata: true` and an `api-version` query are required (400 without);
///   the user data is base64, as Azure's `compute/userData` gives it.
/// - `hang`: reads the request, logs it, never answers (until the guest hangs up).
const METADATA_SERVER: &str = r##"import base64, json, signal, sys
from urllib.parse import urlsplit, parse_qs
flavor, log_path, token = sys.argv[1:4]
# Never outlive a test by long, whatever the guest does.
signal.alarm(120)
request = []
while True:
    line = sys.stdin.buffer.readline().decode("latin-1")
    if line in ("", "\r\n", "\n"):
        break
    request.append(line.strip())
first = request[0].split() if request else []
method, target = (first[0], first[1]) if len(first) > 1 else ("", "")
headers = {}
for line in request[1:]:
    name, _, value = line.partition(":")
    headers[name.strip().lower()] = value.strip()
url = urlsplit(target)
path, query = url.path, parse_qs(url.query)

def log(status):
    with open(log_path, "a") as f:
        f.write("%s %s %s\n" % (method, target, status))

if flavor == "hang":
    log("hung")
    sys.stdin.buffer.read()
    sys.exit(0)

status, body, extra = 404, "", []
if flavor == "gce":
    bodies = {
        "/computeMetadata/v1/instance/hostname": "node-7.c.berth-test.internal",
        "/computeMetadata/v1/instance/attributes/user-data": "#cloud-config\nberth: from-the-test\n",
    }
    if headers.get("metadata-flavor") != "Google":
        status = 403
    else:
        extra.append("Metadata-Flavor: Google")
        if path in bodies:
            status, body = 200, bodies[path]
elif flavor == "aws":
    bodies = {
        "/latest/meta-data/local-hostname": "ip-10-0-2-15.ec2.internal",
        "/latest/user-data": "#!/bin/sh\necho from-imdsv2\n",
    }
    if path == "/latest/api/token":
        ttl = headers.get("x-aws-ec2-metadata-token-ttl-seconds", "")
        if method != "PUT":
            status = 405
        elif ttl.isdigit() and 1 <= int(ttl) <= 21600:
            status, body = 200, token
            extra.append("X-Aws-Ec2-Metadata-Token-Ttl-Seconds: " + ttl)
        else:
            status = 400
    elif headers.get("x-aws-ec2-metadata-token") != token:
        status = 401
    elif method != "GET":
        status = 405
    elif path in bodies:
        status, body = 200, bodies[path]
elif flavor == "azure":
    instance = {"compute": {"name": "azure-vm-name", "osProfile": {"computerName": "azure-node-3"}}}
    if headers.get("metadata") != "true":
        status, body = 400, '{"error": "Bad request. Required metadata header not specified"}'
    elif "api-version" not in query:
        status, body = 400, '{"error": "Bad request. api-version was not specified in the request"}'
    elif path == "/metadata/instance":
        status, body = 200, json.dumps(instance)
    elif path == "/metadata/instance/compute/userData":
        status, body = 200, base64.b64encode(b"#cloud-config\nberth: from-azure\n").decode()
log(status)
reasons = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed"}
head = "".join(h + "\r\n" for h in extra)
sys.stdout.write("HTTP/1.1 %d %s\r\n%sContent-Length: %d\r\nConnection: close\r\n\r\n%s" % (status, reasons[status], head, len(body), body))
sys.stdout.flush()
"##;

/// The test's metadata server as QEMU runs it, and what it was asked.
struct MetadataServer {
    dir: tempfile::TempDir,
    /// The IMDSv2 session token it hands out: fresh for each test, so a client can only
    /// have it from the `PUT`.
    token: String,
}

impl MetadataServer {
    fn new() -> MetadataServer {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("metadata_server.py"), METADATA_SERVER).unwrap();
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let token = format!("AQAEA-berth-{}-{nanos}==", std::process::id());
        MetadataServer { dir, token }
    }

    fn log(&self) -> std::path::PathBuf {
        self.dir.path().join("asked.log")
    }

    /// `METHOD TARGET STATUS` of each request, in order (`hung` for no answer).
    fn asked(&self) -> Vec<String> {
        std::fs::read_to_string(self.log())
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

/// Boots a VM that SMBIOS (each of `smbios` a `-smbios` value) puts in a cloud, its
/// metadata service at 169.254.169.254:80 the test's server speaking `protocol` (see
/// [`METADATA_SERVER`]) through a guest forward, DHCP offering the host name `from-dhcp`.
fn boot_with_metadata_server(
    name: &str,
    protocol: &str,
    smbios: &[&str],
) -> (Shell, MetadataServer) {
    let (disk, _) = shared_debug_image();
    let server = MetadataServer::new();
    let mut builder = vm_builder(name, disk, true)
        .user_net_option("hostname=from-dhcp")
        // QEMU forwards only addresses inside its network: the clouds' link-local one.
        .user_net_option("net=169.254.169.0/24")
        .user_net_option(&format!(
            "guestfwd=tcp:169.254.169.254:80-cmd:python3 {} {protocol} {} {}",
            server.dir.path().join("metadata_server.py").display(),
            server.log().display(),
            server.token
        ));
    for table in smbios {
        builder = builder.extra_args(["-smbios", table]);
    }
    (Shell::start(builder), server)
}

/// `-smbios` as on EC2 (Nitro): what `dmidecode` shows on an m5 instance.
const EC2_SMBIOS: &[&str] = &[
    "type=0,vendor=Amazon EC2,version=1.0",
    "type=1,manufacturer=Amazon EC2,product=m5.large",
];

/// The node's host name and user data (content, then mode) through the console shell.
fn host_name_and_user_data(sh: &mut Shell) -> (String, String) {
    let name = sh.run("busybox hostname").trim().to_owned();
    let data = sh.run("busybox cat /run/berth/user-data; busybox stat -c %a /run/berth/user-data");
    (name, data)
}

/// A VM that SMBIOS says is on GCE, its metadata server the test's (through a guest
/// forward of 169.254.169.254:80): the host name and the user data arrive, and the host
/// name wins over DHCP's.
#[test]
#[ignore = "boots VMs; run by `cargo xtask test`"]
fn the_host_name_and_user_data_come_from_gces_metadata_server() {
    if vm_tests_skipped() {
        return;
    }
    let (mut sh, server) = boot_with_metadata_server(
        "network_gce_metadata",
        "gce",
        &["type=1,manufacturer=Google,product=Google Compute Engine"],
    );
    let (name, data) = host_name_and_user_data(&mut sh);
    assert_eq!(name, "node-7", "the metadata's host name wins: {name}");
    assert!(
        data.contains("berth: from-the-test") && data.trim().ends_with("600"),
        "{data}"
    );
    let asked = server.asked();
    assert!(
        asked.contains(&"GET /computeMetadata/v1/instance/hostname 200".to_owned()),
        "{asked:?}"
    );
}

/// A VM that SMBIOS says is on EC2, its metadata service the test's speaking IMDSv2: the
/// session token is asked for first (`PUT`, with its lifetime), every `GET` carries it
/// (the server refuses one without with 401, so IMDSv1 would have got nothing), and the
/// host name and the user data arrive.
#[test]
#[ignore = "boots VMs; run by `cargo xtask test`"]
fn the_host_name_and_user_data_come_from_aws_imdsv2() {
    if vm_tests_skipped() {
        return;
    }
    let (mut sh, server) = boot_with_metadata_server("network_aws_metadata", "aws", EC2_SMBIOS);
    let (name, data) = host_name_and_user_data(&mut sh);
    assert_eq!(
        name, "ip-10-0-2-15",
        "the metadata's host name wins: {name}"
    );
    assert!(
        data.contains("echo from-imdsv2") && data.trim().ends_with("600"),
        "{data}"
    );
    // The token before anything else, then each GET answered (it carried the token).
    assert_eq!(
        server.asked(),
        [
            "PUT /latest/api/token 200",
            "GET /latest/meta-data/local-hostname 200",
            "GET /latest/user-data 200",
        ],
        "what the metadata server was asked"
    );
}

/// A VM that SMBIOS says is on Azure (its chassis asset tag), its metadata service the
/// test's speaking Azure IMDS (`Metadata: true` and `api-version` required): the host
/// name (`osProfile.computerName`) and the user data (base64 on the wire) arrive.
#[test]
#[ignore = "boots VMs; run by `cargo xtask test`"]
fn the_host_name_and_user_data_come_from_azure_imds() {
    if vm_tests_skipped() {
        return;
    }
    let (mut sh, server) = boot_with_metadata_server(
        "network_azure_metadata",
        "azure",
        &[
            "type=1,manufacturer=Microsoft Corporation,product=Virtual Machine",
            "type=3,manufacturer=Microsoft Corporation,asset=7783-7084-3265-9085-8269-3286-77",
        ],
    );
    let (name, data) = host_name_and_user_data(&mut sh);
    assert_eq!(
        name, "azure-node-3",
        "the metadata's host name wins: {name}"
    );
    assert!(
        data.contains("berth: from-azure") && data.trim().ends_with("600"),
        "decoded from base64: {data}"
    );
    let asked = server.asked();
    assert_eq!(asked.len(), 2, "{asked:?}");
    assert!(
        asked
            .iter()
            .all(|a| a.contains("api-version=") && a.ends_with(" 200")),
        "{asked:?}"
    );
}

/// An EC2 VM whose metadata service accepts connections and never answers: the boot goes
/// on to `berth: ready` once the fetcher gives up (three tries of its 2 s limit), the
/// failure is in the journal with the URL and the timeout, nothing is written, DHCP's host
/// name stays; a fetch run again against the same service keeps the last good state.
#[test]
#[ignore = "boots VMs; run by `cargo xtask test`"]
fn a_metadata_server_that_hangs_is_reported_and_the_node_boots() {
    if vm_tests_skipped() {
        return;
    }
    // `berth: ready` is waited for by the boot itself.
    let (mut sh, server) = boot_with_metadata_server("network_aws_hang", "hang", EC2_SMBIOS);
    let journal = sh.run("journalctl -u berth-metadata --no-pager");
    eprintln!("{journal}");
    assert!(
        journal.contains("FAILED AWS metadata: PUT http://169.254.169.254/latest/api/token: ")
            && journal.to_lowercase().contains("timeout")
            && journal.contains("(after 3 tries); nothing written, boot goes on"),
        "{journal}"
    );
    let active = sh.run("systemctl is-active berth-metadata");
    assert_eq!(active.trim(), "active", "{active}");
    let name = sh.run("busybox hostname");
    assert_eq!(name.trim(), "from-dhcp", "DHCP's host name stays: {name}");
    // Nothing written, not even a temporary file.
    let files = sh.run("busybox find /run/berth");
    assert!(
        !files.contains("user-data") && !files.contains("metadata/") && !files.contains("tmp"),
        "{files}"
    );
    // Asked for the token three times, never went on without it.
    let asked = server.asked();
    assert_eq!(asked, ["PUT /latest/api/token hung"; 3], "{asked:?}");

    // The last good state (as an earlier fetch left it) survives a fetch that hangs.
    sh.run(
        "busybox mkdir -p /run/berth/metadata && echo good-node > /run/berth/metadata/hostname \
         && echo last-good > /run/berth/user-data && busybox chmod 600 /run/berth/user-data",
    );
    let restart = sh.run("systemctl restart berth-metadata; echo rc=$?");
    assert!(restart.contains("rc=0"), "{restart}");
    let kept = sh.run(
        "busybox cat /run/berth/metadata/hostname /run/berth/user-data; busybox ls -a /run/berth",
    );
    assert!(
        kept.contains("good-node") && kept.contains("last-good") && !kept.contains(".tmp"),
        "{kept}"
    );
    let journal = sh.run("journalctl -u berth-metadata --no-pager");
    assert_eq!(
        journal.matches("FAILED AWS metadata").count(),
        2,
        "the second fetch failed too: {journal}"
    );
    assert_eq!(server.asked().len(), 6, "{:?}", server.asked());
}

/// Runs `check` in the guest's shell until `done` accepts what it printed or a generous
/// limit passes (never asserted on); returns the last output.
fn hotplug_wait(sh: &mut Shell, check: &str, done: impl Fn(&str) -> bool) -> String {
    let limit = std::time::Instant::now() + Duration::from_secs(600);
    loop {
        let out = sh.run(check);
        if done(&out) || std::time::Instant::now() > limit {
            return out;
        }
        std::thread::sleep(Duration::from_secs(2));
    }
}

/// A NIC attached to the running VM through QMP (`netdev_add` of a second user network,
/// `device_add` of virtio-net on an empty PCIe root port), as a cloud attaches one: the
/// kernel's link notification reaches berth-networkd, which matches the new link (eth1)
/// like those found at boot and runs DHCP on it; detached again, its DHCP client is
/// stopped and its state line goes. virtio_net is loaded by then (eth0 uses it).
#[test]
#[ignore = "boots VMs; run by `cargo xtask test`"]
fn a_nic_attached_after_boot_is_configured() {
    if vm_tests_skipped() {
        return;
    }
    let (disk, _) = shared_debug_image();
    let mut sh = Shell::start(vm_builder("network_hotplug_nic", disk, true).hotplug_port("rp1"));
    let eth0 = sh.run("busybox ip -4 addr show dev eth0");
    assert!(eth0.contains("inet 10.0.2.15/24"), "{eth0}");
    let before = sh.run("busybox ip link show eth1 2>&1; echo rc=$?");
    assert!(
        !before.contains("rc=0"),
        "no eth1 before the attach: {before}"
    );

    sh.vm
        .qmp(&serde_json::json!({
            "execute": "netdev_add",
            "arguments": {"type": "user", "id": "hotnet1", "net": "10.0.3.0/24"}
        }))
        .expect("netdev_add");
    sh.vm
        .qmp(&serde_json::json!({
            "execute": "device_add",
            "arguments": {
                "driver": "virtio-net-pci", "netdev": "hotnet1", "id": "nic1",
                "bus": "rp1", "romfile": ""
            }
        }))
        .expect("device_add");

    let addr = hotplug_wait(&mut sh, "busybox ip -4 addr show dev eth1 2>&1", |out| {
        out.contains("inet 10.0.3.15/24")
    });
    let journal = sh.run("journalctl -u berth-networkd --no-pager");
    eprintln!("{journal}");
    assert!(addr.contains("inet 10.0.3.15/24"), "{addr}\n{journal}");
    assert!(journal.contains("eth1 appeared"), "{journal}");
    let state = hotplug_wait(&mut sh, "busybox cat /run/berth/network/state", |out| {
        out.contains("eth1 dhcp 10.0.3.15/24")
    });
    assert!(state.contains("eth1 dhcp 10.0.3.15/24"), "{state}");
    assert!(state.contains("eth0 dhcp 10.0.2.15/24"), "{state}");
    // Each NIC has its default route: the second's lease did not replace the first's.
    let routes = sh.run("busybox ip route");
    assert!(
        routes.contains("default via 10.0.2.2 dev eth0")
            && routes.contains("default via 10.0.3.2 dev eth1"),
        "{routes}"
    );

    // Detached: the link goes, and with it its client and its state line.
    sh.vm
        .qmp(&serde_json::json!({"execute": "device_del", "arguments": {"id": "nic1"}}))
        .expect("device_del");
    let state = hotplug_wait(&mut sh, "busybox cat /run/berth/network/state", |out| {
        !out.contains("eth1")
    });
    let journal = sh.run("journalctl -u berth-networkd --no-pager");
    assert!(!state.contains("eth1"), "{state}\n{journal}");
    assert!(
        journal.contains("eth1 removed") && journal.contains("eth1: DHCP client stopped"),
        "{journal}"
    );
    let active = sh.run("systemctl is-active berth-networkd");
    assert_eq!(active.trim(), "active", "{active}");
    // The first NIC's default route survived the second's lease and its removal.
    let routes = sh.run("busybox ip route");
    assert!(routes.contains("default via 10.0.2.2 dev eth0"), "{routes}");
}
