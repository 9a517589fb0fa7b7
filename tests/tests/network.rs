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
    // berth-runtime is ordered after network-online.target, itself after the network.
    let console = sh.vm.console();
    let network = console.find("berth: started berth-networkd.service");
    let runtime = console.find("berth: started berth-runtime.service");
    assert!(
        matches!((network, runtime), (Some(n), Some(r)) if n < r),
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
