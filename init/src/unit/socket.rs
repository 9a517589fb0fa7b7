//! `[Socket]` of socket units (systemd.socket(5)): the sockets PID 1 binds and listens on
//! before the service that serves them runs, so that clients (a unit's journal stream,
//! `/dev/log`) connect while the service is still starting, and traffic starts the
//! service when it is not running. Berth implements `Accept=no` (the listening sockets
//! handed to one service, sd_listen_fds(3)); `Accept=yes` is refused by name. Besides
//! sockets, a unit may listen on FIFOs, special files (`/dev/...`, `/proc/kmsg`) and
//! netlink sockets, as systemd's do.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use super::model::{extend_names, Applied, Ctx};
use super::name::{UnitName, UnitType};
use super::syntax::Assignment;
use super::values;

/// The socket type of one `Listen*=` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListenKind {
    /// `ListenStream=`: `SOCK_STREAM`.
    Stream,
    /// `ListenDatagram=`: `SOCK_DGRAM`.
    Datagram,
    /// `ListenSequentialPacket=`: `SOCK_SEQPACKET` (unix sockets only).
    SequentialPacket,
    /// `ListenFIFO=`: a named pipe, made if missing.
    Fifo,
    /// `ListenSpecial=`: an existing special file (a character device, `/proc/kmsg`).
    Special,
    /// `ListenNetlink=`: a netlink socket of a family, bound to a multicast group.
    Netlink,
}

impl ListenKind {
    /// systemd's word for it in `Listen=` (`systemctl show`, `status`).
    pub fn name(self) -> &'static str {
        match self {
            ListenKind::Stream => "Stream",
            ListenKind::Datagram => "Datagram",
            ListenKind::SequentialPacket => "SequentialPacket",
            ListenKind::Fifo => "FIFO",
            ListenKind::Special => "Special",
            ListenKind::Netlink => "Netlink",
        }
    }
}

/// Where one `Listen*=` line binds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Address {
    /// A file-system unix socket.
    Path(PathBuf),
    /// A Linux abstract unix socket (`@name`).
    Abstract(String),
    /// An IP address and port; a port alone is `[::]:port` (both families).
    Inet(SocketAddr),
    /// A netlink family (its protocol number) and multicast group.
    Netlink { protocol: i32, group: u32 },
}

impl std::fmt::Display for Address {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Address::Path(p) => write!(f, "{}", p.display()),
            Address::Abstract(name) => write!(f, "@{name}"),
            Address::Inet(a) => write!(f, "{a}"),
            Address::Netlink { protocol, group } => {
                let name = NETLINK_FAMILIES
                    .iter()
                    .find(|(_, p)| p == protocol)
                    .map_or_else(|| protocol.to_string(), |(n, _)| (*n).to_owned());
                write!(f, "{name} {group}")
            }
        }
    }
}

/// One socket to listen on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listen {
    pub kind: ListenKind,
    pub address: Address,
}

/// A socket unit's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Socket {
    pub listen: Vec<Listen>,
    /// `Accept=yes` (one service instance per connection): not implemented, the start fails.
    pub accept: bool,
    /// `SocketMode=` of file-system sockets (0666).
    pub socket_mode: u32,
    /// `DirectoryMode=` of the folders made for them (0755).
    pub directory_mode: u32,
    /// `Service=`; by default the service of the same name.
    pub service: Option<UnitName>,
    /// `FileDescriptorName=` (`$LISTEN_FDNAMES`); by default the unit's name.
    pub fd_name: Option<String>,
    /// `PassCredentials=`: `SO_PASSCRED`.
    pub pass_credentials: bool,
    /// `PassSecurity=`: `SO_PASSSEC`.
    pub pass_security: bool,
    /// `ReceiveBuffer=`, `SendBuffer=`: `SO_RCVBUF`/`SO_SNDBUF` (forced, as systemd does).
    pub receive_buffer: Option<u64>,
    pub send_buffer: Option<u64>,
    /// `Symlinks=`: links to the (one) file-system socket.
    pub symlinks: Vec<PathBuf>,
    /// `RemoveOnStop=`: socket files and links removed when the unit stops.
    pub remove_on_stop: bool,
    /// `Backlog=` of `listen(2)` (SOMAXCONN, 4096).
    pub backlog: u32,
    /// `Writable=`: a `ListenSpecial=` file opened for writing too.
    pub writable: bool,
    /// `SocketUser=`, `SocketGroup=`: the owner of socket files and FIFOs.
    pub socket_user: Option<String>,
    pub socket_group: Option<String>,
    /// `TriggerLimitIntervalSec=` (2 s; zero: no limit) and `TriggerLimitBurst=` (20).
    pub trigger_limit_interval: Duration,
    pub trigger_limit_burst: u32,
}

/// systemd's netlink family names (socket-util.c's table) and their protocol numbers.
pub const NETLINK_FAMILIES: [(&str, i32); 18] = [
    ("route", 0),
    ("firewall", 3),
    ("inet-diag", 4),
    ("nflog", 5),
    ("xfrm", 6),
    ("selinux", 7),
    ("iscsi", 8),
    ("audit", 9),
    ("fib-lookup", 10),
    ("connector", 11),
    ("netfilter", 12),
    ("ip6-fw", 13),
    ("dnrtmsg", 14),
    ("kobject-uevent", 15),
    ("generic", 16),
    ("scsitransport", 18),
    ("ecryptfs", 19),
    ("rdma", 20),
];

impl Default for Socket {
    fn default() -> Socket {
        Socket {
            listen: Vec::new(),
            accept: false,
            socket_mode: 0o666,
            directory_mode: 0o755,
            service: None,
            fd_name: None,
            pass_credentials: false,
            pass_security: false,
            receive_buffer: None,
            send_buffer: None,
            symlinks: Vec::new(),
            remove_on_stop: false,
            backlog: 4096,
            writable: false,
            socket_user: None,
            socket_group: None,
            trigger_limit_interval: Duration::from_secs(2),
            trigger_limit_burst: 20,
        }
    }
}

impl Socket {
    /// The service the socket activates and hands its descriptors to: `Service=`, or the
    /// unit of the same name with `.service`.
    pub fn service_of(&self, socket_unit: &UnitName) -> Option<UnitName> {
        match &self.service {
            Some(s) => Some(s.clone()),
            None => UnitName::parse(&format!("{}.service", socket_unit.stem())).ok(),
        }
    }

    /// The name in `$LISTEN_FDNAMES` of this unit's descriptors.
    pub fn fd_name_of(&self, socket_unit: &UnitName) -> String {
        self.fd_name
            .clone()
            .unwrap_or_else(|| socket_unit.as_str().to_owned())
    }

    pub(crate) fn apply(&mut self, ctx: &mut Ctx, a: &Assignment) -> Applied {
        let v = a.value.as_str();
        match a.key.as_str() {
            "ListenStream" => self.listen_line(ctx, a, ListenKind::Stream),
            "ListenDatagram" => self.listen_line(ctx, a, ListenKind::Datagram),
            "ListenSequentialPacket" => self.listen_line(ctx, a, ListenKind::SequentialPacket),
            "ListenFIFO" => self.listen_line(ctx, a, ListenKind::Fifo),
            "ListenSpecial" => self.listen_line(ctx, a, ListenKind::Special),
            "ListenNetlink" => self.listen_line(ctx, a, ListenKind::Netlink),
            "Writable" => ctx.bool(a, &mut self.writable),
            "SocketUser" => self.socket_user = ctx.expand(a).filter(|v| !v.is_empty()),
            "SocketGroup" => self.socket_group = ctx.expand(a).filter(|v| !v.is_empty()),
            "TriggerLimitIntervalSec" => match values::timespan(v) {
                Ok(d) => self.trigger_limit_interval = d.unwrap_or(Duration::ZERO),
                Err(e) => ctx.warn(a, e),
            },
            "TriggerLimitBurst" => match v.parse::<u32>() {
                Ok(n) => self.trigger_limit_burst = n,
                Err(_) => ctx.warn(a, "not a number"),
            },
            "Accept" => ctx.bool(a, &mut self.accept),
            "SocketMode" => mode(ctx, a, &mut self.socket_mode),
            "DirectoryMode" => mode(ctx, a, &mut self.directory_mode),
            "Service" => {
                let mut names = Vec::new();
                extend_names(ctx, a, &mut names);
                match names.as_slice() {
                    [] => self.service = None,
                    [one] if one.unit_type() == UnitType::Service && !one.is_template() => {
                        self.service = Some(one.clone())
                    }
                    _ => ctx.warn(a, "not the name of one service unit"),
                }
            }
            "FileDescriptorName" => match ctx.expand(a) {
                Some(name) if name.is_empty() => self.fd_name = None,
                Some(name) if valid_fd_name(&name) => self.fd_name = Some(name),
                Some(_) => ctx.warn(a, "not a valid file descriptor name"),
                None => {}
            },
            "PassCredentials" => ctx.bool(a, &mut self.pass_credentials),
            "PassSecurity" => ctx.bool(a, &mut self.pass_security),
            "ReceiveBuffer" => size(ctx, a, &mut self.receive_buffer),
            "SendBuffer" => size(ctx, a, &mut self.send_buffer),
            "Symlinks" if v.is_empty() => self.symlinks.clear(),
            "Symlinks" => {
                if let Some(value) = ctx.expand(a) {
                    for word in value.split_whitespace() {
                        if word.starts_with('/') {
                            self.symlinks.push(PathBuf::from(word));
                        } else {
                            ctx.warn(a, format!("{word} is not an absolute path"));
                        }
                    }
                }
            }
            "RemoveOnStop" => ctx.bool(a, &mut self.remove_on_stop),
            "Backlog" => match v.parse::<u32>() {
                Ok(n) => self.backlog = n,
                Err(_) => ctx.warn(a, "not a number"),
            },
            _ => return Applied::Unknown,
        }
        Applied::Done
    }

    fn listen_line(&mut self, ctx: &mut Ctx, a: &Assignment, kind: ListenKind) {
        if a.value.is_empty() {
            self.listen.clear();
            return;
        }
        let Some(value) = ctx.expand(a) else {
            return;
        };
        let parsed = match kind {
            ListenKind::Fifo | ListenKind::Special if value.starts_with('/') => {
                Ok(Address::Path(PathBuf::from(value.trim())))
            }
            ListenKind::Fifo | ListenKind::Special => Err("not an absolute path".to_owned()),
            ListenKind::Netlink => parse_netlink(&value),
            _ => parse_address(&value),
        };
        match parsed {
            Ok(Address::Inet(_)) if kind == ListenKind::SequentialPacket => {
                ctx.warn(a, "sequential packets need a unix socket")
            }
            Ok(address) => self.listen.push(Listen { kind, address }),
            Err(why) => ctx.warn(a, why),
        }
    }
}

/// A `Listen*=` address as systemd reads it (socket_address_parse): an absolute path, an
/// abstract name after `@`, a port, or an IPv4/IPv6 address with a port.
pub fn parse_address(value: &str) -> Result<Address, String> {
    let value = value.trim();
    if value.starts_with('/') {
        // sockaddr_un holds 107 bytes and the NUL.
        if value.len() > 107 {
            return Err(format!("{value} is longer than a unix socket path may be"));
        }
        return Ok(Address::Path(PathBuf::from(value)));
    }
    if let Some(name) = value.strip_prefix('@') {
        if name.is_empty() || name.len() > 107 {
            return Err(format!("{value} is not an abstract socket name"));
        }
        return Ok(Address::Abstract(name.to_owned()));
    }
    if let Ok(port) = value.parse::<u16>() {
        if port == 0 {
            return Err("port 0 is not a port to listen on".into());
        }
        return Ok(Address::Inet(SocketAddr::new(
            IpAddr::V6(Ipv6Addr::UNSPECIFIED),
            port,
        )));
    }
    match value.parse::<SocketAddr>() {
        Ok(a) if a.port() != 0 => Ok(Address::Inet(a)),
        _ => Err(format!(
            "{value} is not a socket address (a path, @name, a port or address:port)"
        )),
    }
}

/// `ListenNetlink=`: a family, by systemd's name or number, and a multicast group (0).
pub fn parse_netlink(value: &str) -> Result<Address, String> {
    let mut words = value.split_whitespace();
    let family = words.next().ok_or("no netlink family")?;
    let protocol = NETLINK_FAMILIES
        .iter()
        .find(|(n, _)| *n == family)
        .map(|(_, p)| *p)
        .or_else(|| family.parse::<i32>().ok().filter(|p| (0..32).contains(p)))
        .ok_or_else(|| format!("{family} is not a netlink family"))?;
    let group = match words.next() {
        Some(g) => g
            .parse::<u32>()
            .map_err(|_| format!("{g} is not a multicast group"))?,
        None => 0,
    };
    if words.next().is_some() {
        return Err("more than a family and a group".into());
    }
    Ok(Address::Netlink { protocol, group })
}

/// sd_listen_fds(3): up to 255 printable ASCII characters, no `:`.
fn valid_fd_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 255 && name.bytes().all(|b| b.is_ascii_graphic() && b != b':')
}

fn mode(ctx: &mut Ctx, a: &Assignment, slot: &mut u32) {
    match values::mode(&a.value) {
        Ok(m) => *slot = m,
        Err(e) => ctx.warn(a, e),
    }
}

fn size(ctx: &mut Ctx, a: &Assignment, slot: &mut Option<u64>) {
    match values::bytes(&a.value) {
        Ok(Some(n)) if n > 0 && n <= i32::MAX as u64 => *slot = Some(n),
        Ok(_) => ctx.warn(a, "not a buffer size"),
        Err(e) => ctx.warn(a, e),
    }
}

#[cfg(test)]
#[path = "socket_tests.rs"]
mod tests;
