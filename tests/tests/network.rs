//! VM tests of the network, time and metadata under QEMU's user networking, through the
//! debug variant's root shell: the address, default route, resolver and host name from
//! QEMU's DHCP server; `network-online.target` and a unit ordered after it; a name the
//! test's own DNS server (dnsmasq on the host) answers, and the HTTP server behind it; the
//! clock of a VM started a year in the past set right by the test's NTP server (chrony on
//! the host). Run by `cargo xtask test`.

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

/// GCE's metadata server for one connection, run by QEMU for each guest connection to
/// 169.254.169.254:80 (a `guestfwd` command: the request on stdin, the reply on stdout).
/// It answers only requests with `Metadata-Flavor: Google`, with that header, as GCE
/// does, and appends each path it was asked for to the log file given as its argument.
const GCE_METADATA_SERVER: &str = r##"import sys
request = []
while True:
    line = sys.stdin.buffer.readline().decode("latin-1")
    if line in ("", "\r\n", "\n"):
        break
    request.append(line.strip())
path = request[0].split()[1] if request and len(request[0].split()) > 1 else ""
with open(sys.argv[1], "a") as log:
    log.write(path + "\n")
flavored = any(l.lower() == "metadata-flavor: google" for l in request[1:])
bodies = {
    "/computeMetadata/v1/instance/hostname": "node-7.c.berth-test.internal",
    "/computeMetadata/v1/instance/attributes/user-data": "#cloud-config\nberth: from-the-test\n",
}
if not flavored:
    head, body = "403 Forbidden", ""
elif path in bodies:
    head, body = "200 OK", bodies[path]
else:
    head, body = "404 Not Found", ""
extra = "Metadata-Flavor: Google\r\n" if flavored else ""
sys.stdout.write("HTTP/1.1 %s\r\n%sContent-Length: %d\r\nConnection: close\r\n\r\n%s" % (head, extra, len(body), body))
sys.stdout.flush()
"##;

/// A VM that SMBIOS says is on GCE, its metadata server the test's (through a guest
/// forward of 169.254.169.254:80): the host name and the user data arrive, and the host
/// name wins over DHCP's.
#[test]
#[ignore = "boots VMs; run by `cargo xtask test`"]
fn the_host_name_and_user_data_come_from_gces_metadata_server() {
    if vm_tests_skipped() {
        return;
    }
    let (disk, _) = shared_debug_image();
    let dir = tempfile::tempdir().unwrap();
    let server = dir.path().join("gce_metadata.py");
    std::fs::write(&server, GCE_METADATA_SERVER).unwrap();
    let log = dir.path().join("asked.log");
    let mut sh = Shell::start(
        vm_builder("network_gce_metadata", disk, true)
            .user_net_option("hostname=from-dhcp")
            // QEMU forwards only addresses inside its network: GCE's link-local one.
            .user_net_option("net=169.254.169.0/24")
            .user_net_option(&format!(
                "guestfwd=tcp:169.254.169.254:80-cmd:python3 {} {}",
                server.display(),
                log.display()
            ))
            .extra_args([
                "-smbios",
                "type=1,manufacturer=Google,product=Google Compute Engine",
            ]),
    );
    let name = sh.run("busybox hostname");
    assert_eq!(
        name.trim(),
        "node-7",
        "the metadata's host name wins: {name}"
    );
    let data = sh.run("busybox cat /run/berth/user-data; busybox stat -c %a /run/berth/user-data");
    assert!(
        data.contains("berth: from-the-test") && data.trim().ends_with("600"),
        "{data}"
    );
    let asked = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        asked.contains("/computeMetadata/v1/instance/hostname"),
        "{asked}"
    );
}
