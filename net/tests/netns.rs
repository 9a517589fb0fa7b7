//! berth-networkd against a real DHCP server, on the host, as root: two network
//! namespaces joined by a veth pair, dnsmasq in one, the daemon in the other (in its own
//! UTS namespace, so its sethostname cannot touch the host). Checked with `ip -n`.

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The daemon under test: cargo's build, or `$BERTH_NETWORKD` (to measure a release build).
fn daemon_binary() -> String {
    std::env::var("BERTH_NETWORKD")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_berth-networkd").to_string())
}
const MAC: &str = "52:54:00:12:34:56";

/// Why this test cannot run here, if it cannot.
fn missing() -> Option<String> {
    if !nix::unistd::geteuid().is_root() {
        return Some("needs root (network namespaces)".into());
    }
    for tool in ["ip", "dnsmasq", "unshare", "nsenter"] {
        let found = ["/usr/sbin", "/usr/bin", "/sbin", "/bin"]
            .iter()
            .any(|d| Path::new(d).join(tool).exists());
        if !found {
            return Some(format!(
                "{tool} not installed (apt-get install dnsmasq iproute2 util-linux)"
            ));
        }
    }
    None
}

fn run(args: &[&str]) -> String {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .expect("run a command");
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The two namespaces and the veth between them; removed (with dnsmasq) on drop.
struct Net {
    server: String,
    client: String,
    dir: tempfile::TempDir,
    children: Vec<Child>,
}

impl Net {
    /// `srv` in the server namespace with `server_addr`, `vc` (MAC [`MAC`]) in the client's.
    fn new(tag: &str, server_addr: &str) -> Net {
        let id = std::process::id();
        let net = Net {
            server: format!("bnet-s{tag}{id}"),
            client: format!("bnet-c{tag}{id}"),
            dir: tempfile::tempdir().expect("tempdir"),
            children: Vec::new(),
        };
        run(&["ip", "netns", "add", &net.server]);
        run(&["ip", "netns", "add", &net.client]);
        run(&[
            "ip",
            "link",
            "add",
            "vs",
            "netns",
            &net.server,
            "type",
            "veth",
            "peer",
            "name",
            "vc",
            "netns",
            &net.client,
            "address",
            MAC,
        ]);
        run(&[
            "ip",
            "-n",
            &net.server,
            "addr",
            "add",
            server_addr,
            "dev",
            "vs",
        ]);
        run(&["ip", "-n", &net.server, "link", "set", "vs", "up"]);
        let conf = net.path("conf");
        std::fs::create_dir_all(&conf).expect("conf dir");
        // A veth is virtual, so the built-in default leaves it alone: a file asks for DHCP.
        std::fs::write(
            conf.join("50-vc.network"),
            "[Match]\nName=vc\n\n[Network]\nDHCP=yes\n",
        )
        .expect("write");
        std::fs::write(net.path("cmdline"), "console=ttyS0 roothash=00\n").expect("write");
        net
    }

    /// Replaces the client's `.network` file.
    fn network_file(&self, text: &str) {
        std::fs::write(self.path("conf").join("50-vc.network"), text).expect("write");
    }

    /// Gives `vs` an IPv6 address (dnsmasq's RAs need one to take the prefix from).
    fn server_ipv6(&self, addr: &str) {
        run(&[
            "ip",
            "-n",
            &self.server,
            "addr",
            "add",
            addr,
            "dev",
            "vs",
            "nodad",
        ]);
    }

    /// Waits up to 30 s for `check` of `ip -n <client> <args>` to hold; returns the output.
    fn wait_ip(&self, args: &[&str], check: impl Fn(&str) -> bool) -> String {
        let until = Instant::now() + Duration::from_secs(30);
        loop {
            let out = self.ip(args);
            if check(&out) || Instant::now() > until {
                return out;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// dnsmasq's log once it has `needle` (it logs after the daemon has gone: up to 10 s).
    fn wait_dnsmasq_log(&self, needle: &str) -> String {
        let until = Instant::now() + Duration::from_secs(10);
        loop {
            let log = self.read("dnsmasq.log");
            if log.contains(needle) || Instant::now() > until {
                return log;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The file `name` once it has `needle` (up to 30 s; the daemon writes it after a change).
    fn wait_file(&self, name: &str, needle: &str) -> String {
        let until = Instant::now() + Duration::from_secs(30);
        let mut text = self.read(name);
        while !text.contains(needle) && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(200));
            text = self.read(name);
        }
        text
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// dnsmasq serving DHCP only (`--port=0`), logging to `dnsmasq.log`.
    fn dnsmasq(&mut self, options: &[&str]) {
        let mut cmd = Command::new("ip");
        cmd.args([
            "netns",
            "exec",
            &self.server,
            "dnsmasq",
            "--no-daemon",
            "--conf-file=/dev/null",
            "--port=0",
        ])
        .args([
            "--interface=vs",
            "--bind-interfaces",
            "--log-dhcp",
            "--no-ping",
        ])
        .arg(format!(
            "--dhcp-leasefile={}",
            self.path("leases").display()
        ))
        .arg(format!(
            "--log-facility={}",
            self.path("dnsmasq.log").display()
        ))
        .args(options)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        self.children.push(cmd.spawn().expect("start dnsmasq"));
    }

    /// The daemon in the client namespace (and a UTS namespace of its own), its stderr
    /// in `daemon.log`, notifying `notify`.
    fn daemon(&self) -> (Child, UnixDatagram) {
        let notify_path = self.path("notify");
        let notify = UnixDatagram::bind(&notify_path).expect("bind the notify socket");
        let log = std::fs::File::create(self.path("daemon.log")).expect("log file");
        let child = Command::new("unshare")
            .args([
                "--uts",
                "ip",
                "netns",
                "exec",
                &self.client,
                &daemon_binary(),
            ])
            .arg("--config-dir")
            .arg(self.path("conf"))
            .arg("--run-dir")
            .arg(self.path("run"))
            .arg("--etc-resolv-conf")
            .arg(self.path("etc-resolv.conf"))
            .arg("--cmdline")
            .arg(self.path("cmdline"))
            .arg("--metadata-hostname")
            .arg(self.path("no-metadata"))
            .env("NOTIFY_SOCKET", &notify_path)
            .stderr(Stdio::from(log))
            .spawn()
            .expect("start berth-networkd");
        (child, notify)
    }

    fn ip(&self, args: &[&str]) -> String {
        let mut all = vec!["ip", "-n", &self.client];
        all.extend_from_slice(args);
        run(&all)
    }

    fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.path(name)).unwrap_or_default()
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        for ns in [&self.server, &self.client] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
        if std::thread::panicking() {
            eprintln!(
                "daemon.log:\n{}\ndnsmasq.log:\n{}",
                self.read("daemon.log"),
                self.read("dnsmasq.log")
            );
        }
    }
}

/// Kills the daemon if a test fails before stopping it, so no daemon outlives its test.
struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Waits for the `READY=1` datagram (the daemon's readiness) and returns its text.
fn wait_ready(notify: &UnixDatagram) -> String {
    notify
        .set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    let mut buf = [0u8; 1024];
    let n = notify
        .recv(&mut buf)
        .expect("READY=1 from berth-networkd within 60 s");
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

/// SIGTERM, then the exit status.
fn stop(child: &mut Child) -> std::process::ExitStatus {
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("SIGTERM");
    child.wait().expect("wait for berth-networkd")
}

fn vm_hwm(pid: u32) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM"))
        .unwrap_or("VmHWM: ?")
        .split_whitespace()
        .skip(1)
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn gce_shaped_lease() {
    berth_testkit::skip_if!(missing());
    let mut net = Net::new("g", "10.128.0.1/20");
    net.dnsmasq(&[
        // dnsmasq picks the range by the interface's subnet; the /32 goes out as option 1.
        "--dhcp-range=10.128.0.10,10.128.0.10,255.255.240.0,2m",
        "--dhcp-option=1,255.255.255.255",
        "--dhcp-option=121,10.128.0.1/32,0.0.0.0,0.0.0.0/0,10.128.0.1",
        "--dhcp-option=26,1460",
        "--dhcp-option=6,10.128.0.2,10.128.0.3",
        "--dhcp-option=15,c.proj.internal",
        "--dhcp-option=119,c.proj.internal,google.internal",
        // GCE's time source is the metadata server.
        "--dhcp-option=42,169.254.169.254",
        &format!("--dhcp-host={MAC},node-1"),
    ]);
    let started = Instant::now();
    let (daemon, notify) = net.daemon();
    let mut daemon = Daemon(daemon);
    let ready = wait_ready(&notify);
    let elapsed = started.elapsed();
    let hwm = vm_hwm(daemon.0.id());
    eprintln!("MEASURE gce_shaped_lease: start -> READY=1 (address + default route) {elapsed:?}; VmHWM {hwm}");
    assert!(
        ready.contains("READY=1") && ready.contains("online: vc"),
        "{ready}"
    );

    let addr = net.ip(&["-4", "addr", "show", "dev", "vc"]);
    assert!(addr.contains("inet 10.128.0.10/32"), "{addr}");
    let link = net.ip(&["link", "show", "dev", "vc"]);
    assert!(link.contains("mtu 1460"), "{link}");
    let routes = net.ip(&["-4", "route", "show"]);
    let on_link = routes
        .lines()
        .position(|l| l.starts_with("10.128.0.1 dev vc proto dhcp scope link"));
    let default = routes
        .lines()
        .position(|l| l.starts_with("default via 10.128.0.1 dev vc proto dhcp"));
    assert!(on_link.is_some() && default.is_some(), "{routes}");
    // Option 121 given, so option 3 (dnsmasq sends its own address) adds nothing more.
    assert_eq!(routes.lines().count(), 2, "{routes}");

    let resolv = net.read("run/resolv.conf");
    assert!(
        resolv.contains("nameserver 10.128.0.2\nnameserver 10.128.0.3\n"),
        "{resolv}"
    );
    assert!(
        resolv.contains("search c.proj.internal google.internal\n"),
        "{resolv}"
    );
    let link_target =
        std::fs::read_link(net.path("etc-resolv.conf")).expect("etc resolv.conf is a link");
    assert_eq!(link_target, net.path("run/resolv.conf"));
    assert_eq!(net.read("run/hostname"), "node-1\n");
    // berth-timesync's server list from option 42.
    assert_eq!(net.read("run/ntp-servers"), "169.254.169.254\n");
    let uts = run(&[
        "nsenter",
        "-t",
        &daemon.0.id().to_string(),
        "-u",
        "hostname",
    ]);
    assert_eq!(uts.trim(), "node-1");
    let state = net.read("run/state");
    assert!(
        state.starts_with("vc dhcp 10.128.0.10/32 via 10.128.0.1 mtu 1460"),
        "{state}"
    );

    let status = stop(&mut daemon.0);
    assert!(status.success(), "{status}");
    let release = format!("DHCPRELEASE(vs) 10.128.0.10 {MAC}");
    let log = net.wait_dnsmasq_log(&release);
    assert!(log.contains(&release), "{log}");
    let addr = net.ip(&["-4", "addr", "show", "dev", "vc"]);
    assert!(
        !addr.contains("10.128.0.10"),
        "address kept after release: {addr}"
    );
    assert!(net.ip(&["-4", "route", "show"]).trim().is_empty());
}

#[test]
fn plain_lease_with_router_option() {
    berth_testkit::skip_if!(missing());
    let mut net = Net::new("p", "10.0.5.1/24");
    net.dnsmasq(&[
        "--dhcp-range=10.0.5.50,10.0.5.60,255.255.255.0,10m",
        "--dhcp-option=6,10.0.5.1",
    ]);
    let (daemon, notify) = net.daemon();
    let mut daemon = Daemon(daemon);
    let ready = wait_ready(&notify);
    assert!(ready.contains("online: vc"), "{ready}");
    let addr = net.ip(&["-4", "addr", "show", "dev", "vc"]);
    assert!(
        addr.contains("inet 10.0.5.5") && addr.contains("/24 brd 10.0.5.255"),
        "{addr}"
    );
    let routes = net.ip(&["-4", "route", "show"]);
    assert!(
        routes.contains("default via 10.0.5.1 dev vc proto dhcp"),
        "{routes}"
    );
    // The router is inside the /24: no on-link host route is needed.
    assert!(
        !routes.lines().any(|l| l.starts_with("10.0.5.1 ")),
        "{routes}"
    );
    assert_eq!(
        net.read("run/resolv.conf")
            .lines()
            .filter(|l| l.starts_with("nameserver"))
            .count(),
        1
    );
    assert!(stop(&mut daemon.0).success());
}

#[test]
fn garbage_from_the_server() {
    berth_testkit::skip_if!(missing());
    let net = Net::new("x", "10.0.9.1/24");
    // A responder in the server namespace: answers every DISCOVER with garbage.
    let ns = std::fs::File::open(format!("/run/netns/{}", net.server)).expect("open the netns");
    let responder = std::thread::spawn(move || garbage_server(ns));
    let (daemon, _notify) = net.daemon();
    let mut daemon = Daemon(daemon);
    let served = responder.join().expect("responder thread");
    assert_eq!(served, 4);
    // Still running, still discovering, and it said what was wrong.
    assert!(
        daemon.0.try_wait().expect("try_wait").is_none(),
        "berth-networkd exited"
    );
    assert!(stop(&mut daemon.0).success());
    let log = net.read("daemon.log");
    assert!(log.contains("not DHCP"), "{log}");
    assert!(
        log.contains("ignored an OFFER: no server identifier (option 54)"),
        "{log}"
    );
    assert!(
        log.contains("ignored a reply without a message type"),
        "{log}"
    );
    assert!(!log.contains("panicked"), "{log}");
}

/// Serves four bad replies, one per DISCOVER received, then returns how many it sent.
fn garbage_server(ns: std::fs::File) -> usize {
    use dhcproto::{v4, Decodable, Decoder, Encodable};
    nix::sched::setns(ns, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
    let sock = std::net::UdpSocket::bind("0.0.0.0:67").expect("bind 67");
    // The server's namespace has no default route: send the broadcasts out of `vs`.
    let vs = std::ffi::OsString::from("vs");
    nix::sys::socket::setsockopt(&sock, nix::sys::socket::sockopt::BindToDevice, &vs)
        .expect("SO_BINDTODEVICE");
    sock.set_broadcast(true).expect("broadcast");
    sock.set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    let mut buf = [0u8; 1500];
    let mut served = 0;
    while served < 4 {
        let n = sock.recv(&mut buf).expect("a DISCOVER within 60 s");
        let Ok(req) = v4::Message::decode(&mut Decoder::new(&buf[..n])) else {
            continue;
        };
        let mut reply = v4::Message::new_with_id(
            req.xid(),
            [0, 0, 0, 0].into(),
            [10, 0, 9, 50].into(),
            [0, 0, 0, 0].into(),
            [0, 0, 0, 0].into(),
            req.chaddr(),
        );
        reply.set_opcode(v4::Opcode::BootReply);
        let bytes = match served {
            0 => b"\x02\x01\x06garbage".to_vec(),
            1 => {
                // An OFFER without a server identifier.
                reply
                    .opts_mut()
                    .insert(v4::DhcpOption::MessageType(v4::MessageType::Offer));
                reply.to_vec().expect("encode")
            }
            2 => reply.to_vec().expect("encode"),
            _ => {
                let mut bytes = reply.to_vec().expect("encode");
                bytes.truncate(250);
                bytes
            }
        };
        sock.send_to(&bytes, "255.255.255.255:68").expect("send");
        served += 1;
    }
    served
}

/// A forwarding node (as Kubernetes makes it) with no DHCPv4: dnsmasq sends RAs with a /64
/// and RDNSS only. The kernel does SLAAC and takes the default route because the daemon set
/// `accept_ra=2`; the daemon puts the RDNSS server in resolv.conf and is online by IPv6.
#[test]
fn slaac_and_rdnss_on_a_forwarding_node() {
    berth_testkit::skip_if!(missing());
    let mut net = Net::new("6", "10.0.6.1/24");
    net.server_ipv6("2001:db8:6::1/64");
    run(&[
        "ip",
        "netns",
        "exec",
        &net.client,
        "sysctl",
        "-q",
        "-w",
        "net.ipv6.conf.all.forwarding=1",
    ]);
    net.network_file("[Match]\nName=vc\n\n[Network]\nDHCP=ipv6\n");
    net.dnsmasq(&[
        "--enable-ra",
        "--dhcp-range=::,constructor:vs,ra-only",
        "--dhcp-option=option6:dns-server,[2001:db8:6::53]",
        "--dhcp-option=option6:domain-search,v6.example",
    ]);
    let (daemon, notify) = net.daemon();
    let mut daemon = Daemon(daemon);
    let ready = wait_ready(&notify);
    assert!(
        ready.contains("online: vc has a global IPv6 address and an IPv6 default route"),
        "{ready}"
    );
    let sysctl = run(&[
        "ip",
        "netns",
        "exec",
        &net.client,
        "cat",
        "/proc/sys/net/ipv6/conf/vc/accept_ra",
    ]);
    assert_eq!(sysctl.trim(), "2");
    let addr = net.ip(&["-6", "addr", "show", "dev", "vc", "scope", "global"]);
    assert!(
        addr.contains("inet6 2001:db8:6:0:") && addr.contains("/64 scope global dynamic"),
        "{addr}"
    );
    let routes = net.ip(&["-6", "route", "show", "default"]);
    assert!(
        routes.contains("default via fe80::") && routes.contains("dev vc proto ra"),
        "{routes}"
    );
    let resolv = net.read("run/resolv.conf");
    assert!(resolv.contains("nameserver 2001:db8:6::53\n"), "{resolv}");
    assert!(net.read("run/state").contains("vc ra dns 2001:db8:6::53"));
    assert!(stop(&mut daemon.0).success());
    let log = net.read("daemon.log");
    assert!(
        log.contains("DNS from router advertisements: servers [2001:db8:6::53]"),
        "{log}"
    );
}

/// DHCPv4 and RAs on one link: both families configured, resolv.conf has the DHCPv4
/// server first, then the RDNSS one.
#[test]
fn dual_stack_resolv_conf() {
    berth_testkit::skip_if!(missing());
    let mut net = Net::new("d", "10.0.7.1/24");
    net.server_ipv6("2001:db8:7::1/64");
    net.dnsmasq(&[
        "--dhcp-range=10.0.7.50,10.0.7.60,255.255.255.0,10m",
        "--dhcp-option=6,10.0.7.1",
        "--enable-ra",
        "--dhcp-range=::,constructor:vs,ra-only",
        "--dhcp-option=option6:dns-server,[2001:db8:7::53]",
    ]);
    let (daemon, notify) = net.daemon();
    let mut daemon = Daemon(daemon);
    let ready = wait_ready(&notify);
    assert!(
        ready.contains("online: vc has an IPv4 address and a default route"),
        "{ready}"
    );
    let addr = net.wait_ip(
        &["-6", "addr", "show", "dev", "vc", "scope", "global"],
        |a| a.contains("2001:db8:7:0:"),
    );
    assert!(addr.contains("2001:db8:7:0:"), "{addr}");
    let resolv = net.wait_file("run/resolv.conf", "2001:db8:7::53");
    assert!(
        resolv.contains("nameserver 10.0.7.1\nnameserver 2001:db8:7::53\n"),
        "{resolv}"
    );
    assert!(net
        .ip(&["-6", "route", "show", "default"])
        .contains("proto ra"));
    assert!(stop(&mut daemon.0).success());
}

/// Stateful DHCPv6: dnsmasq's RAs carry the M flag (and no SLAAC prefix), the daemon
/// starts DHCPv6, takes an address from the range as a /128 and the DNS server of
/// option 23, is online by IPv6 (no DHCPv4 on this link), and releases at stop.
#[test]
fn dhcpv6_address_from_the_range() {
    berth_testkit::skip_if!(missing());
    let mut net = Net::new("v", "10.0.8.1/24");
    net.server_ipv6("2001:db8:8::1/64");
    net.network_file("[Match]\nName=vc\n\n[Network]\nDHCP=ipv6\n");
    net.dnsmasq(&[
        "--enable-ra",
        "--dhcp-range=2001:db8:8::100,2001:db8:8::1ff,64,1h",
        "--dhcp-option=option6:dns-server,[2001:db8:8::53]",
    ]);
    let (daemon, notify) = net.daemon();
    let mut daemon = Daemon(daemon);
    let ready = wait_ready(&notify);
    assert!(
        ready.contains("online: vc has a global IPv6 address and an IPv6 default route"),
        "{ready}"
    );
    let addr = net.ip(&["-6", "addr", "show", "dev", "vc", "scope", "global"]);
    let leased = addr
        .lines()
        .find_map(|l| l.trim().strip_prefix("inet6 2001:db8:8::"))
        .and_then(|rest| rest.split_once("/128"))
        .map(|(host, _)| host.to_string())
        .unwrap_or_else(|| panic!("no DHCPv6 /128 in {addr}"));
    let host = u32::from_str_radix(&leased, 16).expect("hex host part");
    assert!((0x100..=0x1ff).contains(&host), "{addr}");
    let routes = net.ip(&["-6", "route", "show"]);
    // The on-link prefix is the RA's (L flag), installed by the kernel.
    assert!(
        routes.contains("2001:db8:8::/64 dev vc proto kernel"),
        "{routes}"
    );
    assert!(routes.contains("default via fe80::"), "{routes}");
    let resolv = net.read("run/resolv.conf");
    assert!(resolv.contains("nameserver 2001:db8:8::53\n"), "{resolv}");
    assert!(
        net.read("run/state")
            .contains(&format!("vc dhcp6 2001:db8:8::{leased}/128")),
        "{}",
        net.read("run/state")
    );
    assert!(stop(&mut daemon.0).success());
    // dnsmasq names the client of a DHCPv6 RELEASE by its DUID (DUID-LL of the MAC).
    let release = "DHCPRELEASE(vs) 00:03:00:01:52:54:00:12:34:56";
    let log = net.wait_dnsmasq_log(release);
    assert!(log.contains(release), "{log}");
    let addr = net.ip(&["-6", "addr", "show", "dev", "vc", "scope", "global"]);
    assert!(!addr.contains("/128"), "address kept after release: {addr}");
}

/// Stateless DHCPv6: dnsmasq's RAs (`ra-stateless`) carry the O flag and a SLAAC prefix,
/// not M. The daemon sends an Information-request and puts the REPLY's DNS server
/// (option 23) and search domain (option 24) in resolv.conf; the file turns the RA's own
/// RDNSS/DNSSL off (`[IPv6AcceptRA] UseDNS=no UseDomains=no`), so they can only have come
/// by DHCPv6. The address is SLAAC's: no DHCPv6 /128.
#[test]
fn stateless_dhcpv6_dns_on_the_o_flag() {
    berth_testkit::skip_if!(missing());
    let mut net = Net::new("o", "10.0.9.1/24");
    net.server_ipv6("2001:db8:9::1/64");
    net.network_file(
        "[Match]\nName=vc\n\n[Network]\nDHCP=ipv6\n\n[IPv6AcceptRA]\nUseDNS=no\nUseDomains=no\n",
    );
    net.dnsmasq(&[
        "--enable-ra",
        "--dhcp-range=::,constructor:vs,ra-stateless",
        "--dhcp-option=option6:dns-server,[2001:db8:9::53]",
        "--dhcp-option=option6:domain-search,stateless.example",
        "--dhcp-option=option6:information-refresh-time,900",
        "--dhcp-option=option6:ntp-server,[2001:db8:9::123]",
    ]);
    let (daemon, notify) = net.daemon();
    let mut daemon = Daemon(daemon);
    let ready = wait_ready(&notify);
    assert!(
        ready.contains("online: vc has a global IPv6 address and an IPv6 default route"),
        "{ready}"
    );
    let resolv = net.wait_file("run/resolv.conf", "2001:db8:9::53");
    assert!(resolv.contains("nameserver 2001:db8:9::53\n"), "{resolv}");
    assert!(resolv.contains("search stateless.example\n"), "{resolv}");
    let state = net.read("run/state");
    assert!(
        state.contains("vc dhcp6 information dns 2001:db8:9::53"),
        "{state}"
    );
    assert_eq!(net.read("run/ntp-servers"), "2001:db8:9::123\n");
    // The RA's RDNSS was seen but, by the file, not used.
    let addr = net.ip(&["-6", "addr", "show", "dev", "vc", "scope", "global"]);
    assert!(addr.contains("inet6 2001:db8:9:0:"), "{addr}");
    assert!(!addr.contains("/128"), "a DHCPv6 address in {addr}");
    assert!(stop(&mut daemon.0).success());
    let log = net.read("daemon.log");
    assert!(
        log.contains("router advertisement with the O flag only"),
        "{log}"
    );
    assert!(
        log.contains(
            "DHCPv6 information: servers [2001:db8:9::53] search [stateless.example], refresh in 900s"
        ),
        "{log}"
    );
    assert!(!log.contains("starting DHCPv6"), "{log}");
    let dnsmasq = net.wait_dnsmasq_log("DHCPINFORMATION-REQUEST");
    assert!(dnsmasq.contains("DHCPINFORMATION-REQUEST(vs)"), "{dnsmasq}");
}

/// The router changes its mind: first RAs with O only (the stateless client asks for DNS),
/// then, dnsmasq restarted with an address range, RAs with M: the stateless client gives
/// way to the stateful one, which takes a /128 and the new server's DNS.
#[test]
fn an_ra_with_m_after_o_only_switches_to_stateful_dhcpv6() {
    berth_testkit::skip_if!(missing());
    let mut net = Net::new("m", "10.0.10.1/24");
    net.server_ipv6("2001:db8:a::1/64");
    net.network_file("[Match]\nName=vc\n\n[Network]\nDHCP=ipv6\n\n[IPv6AcceptRA]\nUseDNS=no\n");
    net.dnsmasq(&[
        "--enable-ra",
        "--dhcp-range=::,constructor:vs,ra-stateless",
        "--dhcp-option=option6:dns-server,[2001:db8:a::53]",
    ]);
    let (daemon, notify) = net.daemon();
    let mut daemon = Daemon(daemon);
    wait_ready(&notify);
    let resolv = net.wait_file("run/resolv.conf", "2001:db8:a::53");
    assert!(resolv.contains("nameserver 2001:db8:a::53\n"), "{resolv}");

    for mut child in net.children.drain(..) {
        let _ = child.kill();
        let _ = child.wait();
    }
    net.dnsmasq(&[
        "--enable-ra",
        "--dhcp-range=2001:db8:a::100,2001:db8:a::1ff,64,1h",
        "--dhcp-option=option6:dns-server,[2001:db8:a::54]",
    ]);
    let state = net.wait_file("run/state", "vc dhcp6 2001:db8:a::");
    assert!(state.contains("vc dhcp6 2001:db8:a::1"), "{state}");
    assert!(!state.contains("information"), "{state}");
    let resolv = net.wait_file("run/resolv.conf", "2001:db8:a::54");
    assert!(resolv.contains("nameserver 2001:db8:a::54\n"), "{resolv}");
    assert!(!resolv.contains("2001:db8:a::53"), "{resolv}");
    let addr = net.ip(&["-6", "addr", "show", "dev", "vc", "scope", "global"]);
    assert!(addr.contains("/128"), "{addr}");
    assert!(stop(&mut daemon.0).success());
    let log = net.read("daemon.log");
    let o = log
        .find("with the O flag only")
        .expect("the stateless start");
    let m = log
        .find("with the M flag: starting DHCPv6")
        .expect("the stateful start");
    assert!(o < m, "{log}");
}

/// A link that comes into the daemon's namespace after it started (moved in, which the
/// kernel announces as a new link, as it does a hotplugged NIC) is matched and gets its
/// lease, and the node becomes online by it; deleted, its client is stopped and its lines
/// leave the state and resolv.conf, the daemon running on.
#[test]
fn a_link_that_appears_after_start_is_configured_and_withdrawn_when_gone() {
    berth_testkit::skip_if!(missing());
    let mut net = Net::new("h", "10.0.6.1/24");
    net.dnsmasq(&[
        "--dhcp-range=10.0.6.50,10.0.6.60,255.255.255.0,10m",
        "--dhcp-option=6,10.0.6.1",
    ]);
    // Parked beside its peer while the daemon starts with no link to configure.
    net.ip(&["link", "set", "vc", "netns", &net.server]);
    let (daemon, notify) = net.daemon();
    let mut daemon = Daemon(daemon);
    // The state file is written once the links are listed (after the subscription).
    let until = Instant::now() + Duration::from_secs(30);
    while !net.path("run/state").exists() && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(net.path("run/state").exists(), "{}", net.read("daemon.log"));
    run(&[
        "ip",
        "-n",
        &net.server,
        "link",
        "set",
        "vc",
        "netns",
        &net.client,
    ]);

    let ready = wait_ready(&notify);
    assert!(ready.contains("online: vc"), "{ready}");
    let addr = net.wait_ip(&["-4", "addr", "show", "dev", "vc"], |a| {
        a.contains("inet 10.0.6.5")
    });
    assert!(addr.contains("inet 10.0.6.5"), "{addr}");
    let log = net.read("daemon.log");
    assert!(log.contains("berth-networkd: vc appeared"), "{log}");
    assert!(net.read("run/state").contains("vc dhcp 10.0.6.5"));
    assert!(net.read("run/resolv.conf").contains("nameserver 10.0.6.1"));

    net.ip(&["link", "del", "vc"]);
    let until = Instant::now() + Duration::from_secs(30);
    while net.read("run/state").contains("vc") && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(50));
    }
    let log = net.read("daemon.log");
    assert!(!net.read("run/state").contains("vc"), "{log}");
    assert!(
        !net.read("run/resolv.conf").contains("10.0.6.1"),
        "{}",
        net.read("run/resolv.conf")
    );
    assert!(
        log.contains("berth-networkd: vc removed")
            && log.contains("berth-networkd: vc: DHCP client stopped"),
        "{log}"
    );
    assert!(matches!(daemon.0.try_wait(), Ok(None)), "{log}");
    assert!(stop(&mut daemon.0).success());
}
