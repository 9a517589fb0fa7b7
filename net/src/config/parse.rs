//! The parser of one `.network` file (systemd-networkd's format, the subset Berth reads).
//!
//! People who run nodes already know networkd's files, so overrides use them rather than a
//! format of ours. The parser is pure (text in, [`NetworkFile`] plus warnings out) so that
//! proptests can feed it anything. As networkd does, an unknown section or key is a
//! warning, not an error; a value that cannot be understood is an error naming
//! `file:line: [Section] Key=`.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use crate::dhcp::lease::clean_name;

use super::{
    ConfigError, DhcpMode, DhcpSettings, DnsUse, Ipv4Prefix, MatchSection, NetworkFile, Route,
    UseDomains,
};

/// A warning about one line (an unknown key or section), as networkd logs them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    pub file: PathBuf,
    pub line: usize,
    pub message: String,
}

impl std::fmt::Display for Warning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: {}", self.file.display(), self.line, self.message)
    }
}

/// Parses the text of `file`.
pub fn parse(file: &Path, text: &str) -> Result<(NetworkFile, Vec<Warning>), ConfigError> {
    let mut out = NetworkFile {
        path: file.to_path_buf(),
        matches: MatchSection::default(),
        dhcp: DhcpMode::No,
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
    };
    let mut warnings = Vec::new();
    let mut section = String::new();
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with(';') {
            continue;
        }
        if let Some(name) = trimmed.strip_prefix('[') {
            let name = name.strip_suffix(']').ok_or_else(|| ConfigError::Syntax {
                file: file.to_path_buf(),
                line,
                message: format!("section header {trimmed:?} has no closing ']'"),
            })?;
            section = name.trim().to_string();
            if section == "Route" {
                out.routes.push(Route::default());
            }
            if !matches!(
                section.as_str(),
                "Match" | "Network" | "Route" | "DHCPv4" | "DHCPv6" | "IPv6AcceptRA"
            ) {
                warnings.push(Warning {
                    file: file.to_path_buf(),
                    line,
                    message: format!("unknown section [{section}], ignored"),
                });
            }
            continue;
        }
        let Some((key, value)) = trimmed.split_once('=') else {
            return Err(ConfigError::Syntax {
                file: file.to_path_buf(),
                line,
                message: format!("{trimmed:?} is neither a [Section] nor Key=Value"),
            });
        };
        let (key, value) = (key.trim(), value.trim());
        let bad = |message: String| ConfigError::Value {
            file: file.to_path_buf(),
            line,
            field: format!("[{section}] {key}="),
            value: value.to_string(),
            message,
        };
        let known = apply(&mut out, &section, key, value).map_err(bad)?;
        if !known {
            warnings.push(Warning {
                file: file.to_path_buf(),
                line,
                message: format!("unknown key [{section}] {key}=, ignored"),
            });
        }
    }
    Ok((out, warnings))
}

/// Applies one `key=value` of `section` to `out`; `Ok(false)` for a key Berth does not know.
/// An empty value resets a list, as in networkd.
fn apply(out: &mut NetworkFile, section: &str, key: &str, value: &str) -> Result<bool, String> {
    let words = || value.split_whitespace();
    match (section, key) {
        ("Match", "Name") => list(&mut out.matches.names, value, |w| {
            glob::Pattern::new(w)
                .map(|_| w.to_string())
                .map_err(|e| format!("{w:?} is not a glob: {e}"))
        })?,
        ("Match", "MACAddress") => list(&mut out.matches.macs, value, parse_mac)?,
        ("Match", "Type") => list(&mut out.matches.types, value, |w| Ok(w.to_string()))?,
        ("Network", "DHCP") => out.dhcp = parse_dhcp(value)?,
        ("Network", "Address") => list(&mut out.addresses, value, |w| w.parse())?,
        ("Network", "Gateway") => list(&mut out.gateways, value, parse_v4)?,
        ("Network", "DNS") => list(&mut out.dns, value, |w| {
            w.parse::<IpAddr>()
                .map_err(|_| format!("{w:?} is not an IP address"))
        })?,
        ("Network", "NTP") => list(&mut out.ntp, value, |w| {
            match (w.parse::<IpAddr>(), clean_name(w)) {
                (Ok(ip), _) => Ok(ip.to_string()),
                (_, Some(name)) => Ok(name),
                _ => Err(format!("{w:?} is neither an IP address nor a host name")),
            }
        })?,
        ("Network", "IPv6AcceptRA") => out.ipv6_accept_ra = Some(parse_bool(value)?),
        ("Network", "Domains") => {
            if value.is_empty() {
                out.domains.clear();
            }
            for w in words() {
                let domain = w.trim_start_matches('~').trim_end_matches('.');
                if !domain.is_empty() {
                    out.domains.push(domain.to_string());
                }
            }
        }
        ("Route", "Destination") => last_route(out)?.destination = Some(value.parse()?),
        ("Route", "Gateway") => last_route(out)?.gateway = Some(parse_v4(value)?),
        ("DHCPv4", "UseHostname") => out.dhcpv4.use_hostname = parse_bool(value)?,
        ("DHCPv4", "UseMTU") => out.dhcpv4.use_mtu = parse_bool(value)?,
        ("DHCPv4", "UseRoutes") => out.dhcpv4.use_routes = parse_bool(value)?,
        ("DHCPv4", "UseDNS") => out.dhcpv4.use_dns = parse_bool(value)?,
        ("DHCPv4", "UseNTP") => out.dhcpv4.use_ntp = parse_bool(value)?,
        ("DHCPv4", "UseDomains") => out.dhcpv4.use_domains = parse_use_domains(value)?,
        ("DHCPv6", "UseDNS") => out.dhcpv6.use_dns = parse_bool(value)?,
        ("DHCPv6", "UseNTP") => out.dhcpv6.use_ntp = parse_bool(value)?,
        ("DHCPv6", "UseDomains") => out.dhcpv6.use_domains = parse_use_domains(value)?,
        ("IPv6AcceptRA", "UseDNS") => out.ra.use_dns = parse_bool(value)?,
        ("IPv6AcceptRA", "UseDomains") => out.ra.use_domains = parse_use_domains(value)?,
        _ => return Ok(false),
    }
    Ok(true)
}

/// Appends the whitespace-separated words of `value` to `items`, or clears it when empty.
fn list<T>(
    items: &mut Vec<T>,
    value: &str,
    parse: impl Fn(&str) -> Result<T, String>,
) -> Result<(), String> {
    if value.is_empty() {
        items.clear();
    }
    for word in value.split_whitespace() {
        items.push(parse(word)?);
    }
    Ok(())
}

fn last_route(out: &mut NetworkFile) -> Result<&mut Route, String> {
    out.routes
        .last_mut()
        .ok_or_else(|| "a [Route] key outside a [Route] section".to_string())
}

fn parse_v4(word: &str) -> Result<Ipv4Addr, String> {
    word.parse()
        .map_err(|_| format!("{word:?} is not an IPv4 address"))
}

/// systemd's booleans.
pub fn parse_bool(value: &str) -> Result<bool, String> {
    match value.to_ascii_lowercase().as_str() {
        "1" | "yes" | "y" | "true" | "t" | "on" => Ok(true),
        "0" | "no" | "n" | "false" | "f" | "off" => Ok(false),
        _ => Err(format!("{value:?} is not a boolean (yes/no)")),
    }
}

/// A boolean or `route`.
fn parse_use_domains(value: &str) -> Result<UseDomains, String> {
    if value.eq_ignore_ascii_case("route") {
        return Ok(UseDomains::Route);
    }
    match parse_bool(value) {
        Ok(true) => Ok(UseDomains::Yes),
        Ok(false) => Ok(UseDomains::No),
        Err(_) => Err(format!("{value:?} is not a boolean (yes/no) or \"route\"")),
    }
}

fn parse_dhcp(value: &str) -> Result<DhcpMode, String> {
    match value.to_ascii_lowercase().as_str() {
        "ipv4" => Ok(DhcpMode::Ipv4),
        "ipv6" => Ok(DhcpMode::Ipv6),
        other => match parse_bool(other) {
            Ok(true) => Ok(DhcpMode::Yes),
            Ok(false) => Ok(DhcpMode::No),
            Err(_) => Err(format!("{value:?} is not one of yes, no, ipv4, ipv6")),
        },
    }
}

/// `aa:bb:cc:dd:ee:ff` (also `-` separated, as networkd accepts).
pub fn parse_mac(word: &str) -> Result<[u8; 6], String> {
    let bad = || format!("{word:?} is not a MAC address (aa:bb:cc:dd:ee:ff)");
    let parts: Vec<&str> = word.split([':', '-']).collect();
    if parts.len() != 6 {
        return Err(bad());
    }
    let mut mac = [0u8; 6];
    for (byte, part) in mac.iter_mut().zip(&parts) {
        if part.len() != 2 {
            return Err(bad());
        }
        *byte = u8::from_str_radix(part, 16).map_err(|_| bad())?;
    }
    Ok(mac)
}

impl std::str::FromStr for Ipv4Prefix {
    type Err = String;

    /// `10.0.0.5/24`; a bare address is a /32.
    fn from_str(s: &str) -> Result<Self, String> {
        let (addr, len) = match s.split_once('/') {
            Some((addr, len)) => {
                let len: u8 = len
                    .parse()
                    .ok()
                    .filter(|l| *l <= 32)
                    .ok_or_else(|| format!("{s:?}: prefix length must be 0..=32"))?;
                (addr, len)
            }
            None => (s, 32),
        };
        Ok(Ipv4Prefix {
            addr: parse_v4(addr)?,
            len,
        })
    }
}
