//! Which links berth-networkd configures, and how: systemd-networkd's `.network` files.
//!
//! Files come from `/usr/lib/systemd/network` (the verified image) and
//! `/etc/systemd/network` (the node's tmpfs); a file in `/etc` replaces the one of the same
//! name in `/usr/lib`, and one that is empty or a link to `/dev/null` masks it. Files are
//! taken in file-name order and the first whose `[Match]` fits a link configures it, as in
//! networkd. A file that fails to parse is reported (file:line: field) and skipped, so one
//! typo never leaves the node off the network. A link no file matches gets Berth's
//! built-in default: DHCPv4 on a physical link (one with `/sys/class/net/X/device`),
//! nothing on `lo`, bridges, veths and other virtual links.

mod parse;
#[cfg(test)]
mod tests;

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

pub use parse::{parse, parse_bool, parse_mac, Warning};

/// A `.network` file's errors.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{}:{line}: {message}", file.display())]
    Syntax {
        file: PathBuf,
        line: usize,
        message: String,
    },
    #[error("{}:{line}: {field} {value:?}: {message}", file.display())]
    Value {
        file: PathBuf,
        line: usize,
        field: String,
        value: String,
        message: String,
    },
    #[error("reading {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// An IPv4 address with its prefix length (`10.0.0.5/24`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv4Prefix {
    pub addr: Ipv4Addr,
    pub len: u8,
}

impl Ipv4Prefix {
    /// Whether `ip` is inside this prefix.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        let mask = prefix_mask(self.len);
        u32::from(self.addr) & mask == u32::from(ip) & mask
    }
}

impl std::fmt::Display for Ipv4Prefix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

/// The netmask of a prefix length (0..=32).
pub fn prefix_mask(len: u8) -> u32 {
    match len {
        0 => 0,
        l => u32::MAX << (32 - u32::from(l.min(32))),
    }
}

/// `DHCP=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DhcpMode {
    Yes,
    No,
    Ipv4,
    Ipv6,
}

impl DhcpMode {
    /// Whether this asks for a DHCPv4 lease.
    pub fn v4(self) -> bool {
        matches!(self, DhcpMode::Yes | DhcpMode::Ipv4)
    }

    /// Whether this allows DHCPv6, which starts when a router advertisement has the M
    /// flag (SLAAC does not depend on `DHCP=`, as in networkd).
    pub fn v6(self) -> bool {
        matches!(self, DhcpMode::Yes | DhcpMode::Ipv6)
    }
}

/// `[Match]`: every key given must match; an empty section matches every link.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MatchSection {
    pub names: Vec<String>,
    pub macs: Vec<[u8; 6]>,
    pub types: Vec<String>,
}

/// `[Route]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Route {
    pub destination: Option<Ipv4Prefix>,
    pub gateway: Option<Ipv4Addr>,
}

/// `UseDomains=` of `[DHCPv4]`, `[DHCPv6]` and `[IPv6AcceptRA]`: whether the domains a
/// server or router gives become search domains. `route` (networkd: use them to route
/// queries, not to search) has nothing to route with in a plain resolv.conf, so it keeps
/// them out of the search list as `no` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UseDomains {
    Yes,
    No,
    Route,
}

impl UseDomains {
    /// Whether the domains go in resolv.conf's `search` line.
    pub fn search(self) -> bool {
        self == UseDomains::Yes
    }
}

/// What a `[DHCPv6]` or `[IPv6AcceptRA]` section takes from the server or router.
/// networkd's `UseDomains=` defaults to no; Berth's to yes, as its DHCPv4 always has:
/// a cloud's search domains (GCE's `c.<project>.internal`) are how a node finds its peers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DnsUse {
    pub use_dns: bool,
    pub use_domains: UseDomains,
    /// `UseNTP=` of `[DHCPv6]` (the RA has no NTP option): option 56 to berth-timesync.
    pub use_ntp: bool,
}

impl Default for DnsUse {
    fn default() -> Self {
        DnsUse {
            use_dns: true,
            use_domains: UseDomains::Yes,
            use_ntp: true,
        }
    }
}

/// `[DHCPv4]`. Berth takes the MTU by default (networkd does not): the clouds rely on it
/// (GCE's 1460), and a node that ignores it loses large packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DhcpSettings {
    pub use_hostname: bool,
    pub use_mtu: bool,
    pub use_routes: bool,
    pub use_dns: bool,
    pub use_domains: UseDomains,
    /// `UseNTP=`: the lease's NTP servers (option 42) go to berth-timesync.
    pub use_ntp: bool,
}

impl Default for DhcpSettings {
    fn default() -> Self {
        DhcpSettings {
            use_hostname: true,
            use_mtu: true,
            use_routes: true,
            use_dns: true,
            use_domains: UseDomains::Yes,
            use_ntp: true,
        }
    }
}

/// One parsed `.network` file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkFile {
    pub path: PathBuf,
    pub matches: MatchSection,
    pub dhcp: DhcpMode,
    pub addresses: Vec<Ipv4Prefix>,
    pub gateways: Vec<Ipv4Addr>,
    pub dns: Vec<IpAddr>,
    pub domains: Vec<String>,
    /// `NTP=`: addresses or host names, for berth-timesync.
    pub ntp: Vec<String>,
    pub routes: Vec<Route>,
    pub dhcpv4: DhcpSettings,
    /// `[DHCPv6]`.
    pub dhcpv6: DnsUse,
    /// `[IPv6AcceptRA]`.
    pub ra: DnsUse,
    /// `IPv6AcceptRA=`; `None` (unset) accepts router advertisements on a managed link.
    pub ipv6_accept_ra: Option<bool>,
}

impl NetworkFile {
    /// Berth's default for a link no file matches: DHCPv4 if physical, else nothing.
    pub fn builtin_default(physical: bool) -> NetworkFile {
        NetworkFile {
            path: PathBuf::from("(built-in default)"),
            matches: MatchSection::default(),
            dhcp: if physical {
                DhcpMode::Yes
            } else {
                DhcpMode::No
            },
            addresses: Vec::new(),
            gateways: Vec::new(),
            dns: Vec::new(),
            domains: Vec::new(),
            ntp: Vec::new(),
            routes: Vec::new(),
            dhcpv4: DhcpSettings::default(),
            dhcpv6: DnsUse::default(),
            ra: DnsUse::default(),
            ipv6_accept_ra: None,
        }
    }

    /// Whether berth-networkd configures the link at all: DHCP of either family, a
    /// static address, or router advertisements asked for explicitly.
    pub fn manages(&self) -> bool {
        self.dhcp != DhcpMode::No || !self.addresses.is_empty() || self.ipv6_accept_ra == Some(true)
    }

    /// Whether the kernel is to accept router advertisements (SLAAC, the IPv6 default
    /// route) on the link: on every managed link unless `IPv6AcceptRA=no`.
    pub fn accepts_ra(&self) -> bool {
        self.manages() && self.ipv6_accept_ra != Some(false)
    }

    /// Whether this file's `[Match]` fits `link`.
    pub fn matches(&self, link: &LinkFacts) -> bool {
        let m = &self.matches;
        let name_ok = m.names.is_empty()
            || m.names
                .iter()
                .any(|g| glob::Pattern::new(g).is_ok_and(|p| p.matches(&link.name)));
        let mac_ok = m.macs.is_empty() || link.mac.is_some_and(|mac| m.macs.contains(&mac));
        let type_ok = m.types.is_empty() || m.types.contains(&link.kind);
        name_ok && mac_ok && type_ok
    }
}

/// What matching needs to know about a link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkFacts {
    pub name: String,
    pub index: u32,
    pub mac: Option<[u8; 6]>,
    /// networkd's `Type=`: `loopback`, `ether`, or the kernel's `DEVTYPE` (`bridge`, `vlan`, `wlan`…).
    pub kind: String,
    /// Backed by a device (`/sys/class/net/X/device` exists): virtio-net, gVNIC, ENA, netvsc.
    pub physical: bool,
}

/// The files of `dirs` (lowest precedence first), parsed; broken files are reported in
/// the warnings and left out.
pub fn load(dirs: &[PathBuf]) -> (Vec<NetworkFile>, Vec<String>) {
    let mut by_name: std::collections::BTreeMap<String, PathBuf> = Default::default();
    let mut warnings = Vec::new();
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.ends_with(".network") {
                by_name.insert(name, entry.path());
            }
        }
    }
    let mut files = Vec::new();
    for path in by_name.into_values() {
        match load_one(&path) {
            Ok(Some((file, file_warnings))) => {
                warnings.extend(file_warnings.iter().map(ToString::to_string));
                files.push(file);
            }
            Ok(None) => {}
            Err(e) => warnings.push(format!("{e}; file ignored")),
        }
    }
    (files, warnings)
}

/// One file, or `None` when it is masked (empty, or a link to /dev/null).
fn load_one(path: &Path) -> Result<Option<(NetworkFile, Vec<Warning>)>, ConfigError> {
    if std::fs::canonicalize(path).is_ok_and(|p| p == Path::new("/dev/null")) {
        return Ok(None);
    }
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    if text.trim().is_empty() {
        return Ok(None);
    }
    parse(path, &text).map(Some)
}

/// The file that configures `link`: the first match in `files`, else the built-in default.
pub fn choose<'a>(files: &'a [NetworkFile], link: &LinkFacts) -> Option<&'a NetworkFile> {
    files.iter().find(|f| f.matches(link))
}
