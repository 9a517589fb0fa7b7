//! Test helpers: Debian's chronyd as a real NTP server on a loopback port, and small
//! NTP responders of our own (honest with a bias, a liar, garbage, kiss-o'-death).

#![allow(dead_code)]

use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use berth_timesync::clock::RecordingClock;
use berth_timesync::ntp::packet::{Leap, NtpTimestamp, Packet, MODE_SERVER};
use berth_timesync::ntp::query::query_once;
use berth_timesync::ntp::sample::Seconds;

pub const YEAR: i64 = 365 * 86_400 * 1_000_000_000;

/// Where chronyd is, or why the test cannot run.
pub fn chronyd() -> Result<PathBuf, String> {
    use std::os::unix::fs::MetadataExt;
    // /proc/self belongs to the effective user.
    if std::fs::metadata("/proc/self")
        .map(|m| m.uid())
        .unwrap_or(0)
        != 0
    {
        return Err("chronyd runs only as root (\"Fatal error : Not superuser\")".to_owned());
    }
    ["/usr/sbin/chronyd", "/sbin/chronyd"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .ok_or_else(|| "chronyd not found (apt-get install chrony)".to_owned())
}

fn free_udp_port() -> u16 {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind a UDP port");
    socket.local_addr().expect("local address").port()
}

/// chronyd serving its own clock (`local stratum 8`) on 127.0.0.1, never touching the
/// host's clock (`-x`); killed on drop.
pub struct Chrony {
    child: Child,
    _dir: tempfile::TempDir,
    pub addr: SocketAddr,
}

impl Chrony {
    pub fn start(chronyd: &PathBuf) -> Chrony {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_udp_port();
        let conf = dir.path().join("chrony.conf");
        std::fs::write(
            &conf,
            format!(
                "port {port}\nlocal stratum 8\nallow 127.0.0.1\nbindaddress 127.0.0.1\n\
                 cmdport 0\npidfile {}\n",
                dir.path().join("chronyd.pid").display()
            ),
        )
        .expect("write chrony.conf");
        let child = Command::new(chronyd)
            .args(["-d", "-x", "-u", "root", "-f"])
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start chronyd");
        let mut chrony = Chrony {
            child,
            _dir: dir,
            addr: ([127, 0, 0, 1], port).into(),
        };
        chrony.wait_serving();
        chrony
    }

    /// Waits (a bounded number of tries) until chronyd answers.
    fn wait_serving(&mut self) {
        let clock = RecordingClock::new(Seconds(0));
        let mut last = String::new();
        for _ in 0..50 {
            if let Ok(Some(status)) = self.child.try_wait() {
                let mut err = String::new();
                if let Some(mut stderr) = self.child.stderr.take() {
                    use std::io::Read;
                    let _ = stderr.read_to_string(&mut err);
                }
                panic!("chronyd exited ({status}): {err}");
            }
            match query_once(&clock, self.addr, Duration::from_millis(200)) {
                Ok(_) => return,
                Err(e) => last = e.to_string(),
            }
            // Not listening yet (connection refused at once): give it a moment.
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("chronyd on {} never answered: {last}", self.addr);
    }
}

impl Drop for Chrony {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How a responder answers.
#[derive(Debug, Clone, Copy)]
pub enum Behaviour {
    /// The real time plus a bias (nanoseconds).
    Honest { bias: i64 },
    /// Five bytes of junk, then 48 bytes that answer some other request.
    Garbage,
    /// Stratum 0, kiss code RATE.
    KissOfDeath,
}

/// An NTP server of the test's own on 127.0.0.1, stopped on drop.
pub struct Responder {
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

fn now_nanos() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

impl Responder {
    pub fn spawn(behaviour: Behaviour) -> Responder {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
        socket
            .set_read_timeout(Some(Duration::from_millis(50)))
            .expect("timeout");
        let addr = socket.local_addr().expect("addr");
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 512];
            while !stopping.load(Ordering::Relaxed) {
                let Ok((len, peer)) = socket.recv_from(&mut buf) else {
                    continue;
                };
                let Ok(request) = Packet::parse(&buf[..len]) else {
                    continue;
                };
                let reply = |stratum, reference_id, time: i64| Packet {
                    leap: Leap::None,
                    version: 4,
                    mode: MODE_SERVER,
                    stratum,
                    poll: 6,
                    precision: -20,
                    root_delay: 0,
                    root_dispersion: 0x10,
                    reference_id,
                    reference: NtpTimestamp::from_unix_nanos(time),
                    origin: request.transmit,
                    receive: NtpTimestamp::from_unix_nanos(time),
                    transmit: NtpTimestamp::from_unix_nanos(time),
                };
                match behaviour {
                    Behaviour::Honest { bias } => {
                        let _ = socket
                            .send_to(&reply(2, *b"TEST", now_nanos() + bias).to_bytes(), peer);
                    }
                    Behaviour::Garbage => {
                        let _ = socket.send_to(b"hello", peer);
                        let other = Packet {
                            origin: NtpTimestamp(request.transmit.0 ^ 1),
                            ..reply(2, *b"TEST", now_nanos())
                        };
                        let _ = socket.send_to(&other.to_bytes(), peer);
                    }
                    Behaviour::KissOfDeath => {
                        let _ = socket.send_to(&reply(0, *b"RATE", 0).to_bytes(), peer);
                    }
                }
            }
        });
        Responder {
            addr,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
