//! Which NTP servers to ask, in order: the cloud's own time source, found from SMBIOS
//! (the nearest and most trusted clock a cloud VM has); then those given with
//! `--server`; then those the DHCP client wrote from the lease (options 42 and 56, one per
//! line in [`DHCP_SERVERS_FILE`]), so that a cloud source that does not answer still
//! leaves the node a clock. Outside a cloud with nothing configured there is no server,
//! and the client says so.

use std::io;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::cloud::{self, Cloud};

/// Written by Berth's DHCP client: the lease's NTP servers, one address or name a line.
pub const DHCP_SERVERS_FILE: &str = "/run/berth/network/ntp-servers";

/// The NTP port.
pub const NTP_PORT: u16 = 123;

/// The cloud's time source: GCE's metadata server serves NTP at the address
/// `metadata.google.internal` names (given as the address, so no resolver is needed this
/// early); AWS's Time Sync Service. Azure has none over the network (its hosts give
/// the time through Hyper-V), so Azure needs `--server` or DHCP.
pub fn cloud_default(cloud: Cloud) -> Option<&'static str> {
    match cloud {
        Cloud::Gce => Some("169.254.169.254"),
        Cloud::Aws => Some("169.254.169.123"),
        Cloud::Azure => None,
    }
}

#[derive(Debug, Error)]
pub enum ServersError {
    #[error("reading the DHCP servers file {path}: {source}")]
    DhcpFile { path: PathBuf, source: io::Error },
    #[error("{0:?} is not a server (host, host:port, address or [IPv6]:port)")]
    BadSpec(String),
    #[error("resolving {name:?}: {source}")]
    Resolve { name: String, source: io::Error },
    #[error("{0:?} resolves to no address")]
    NoAddress(String),
}

/// The servers to ask, and where they came from (for the log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerList {
    pub names: Vec<String>,
    pub source: String,
}

/// The names in a servers file: one a line, `#` comments and blank lines skipped.
pub fn parse_servers_file(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The cloud's source, then the `--server` names, then the DHCP file's; may be empty.
pub fn choose(
    flags: &[String],
    dhcp_file: &Path,
    dmi_dir: &Path,
) -> Result<ServerList, ServersError> {
    let mut names: Vec<String> = Vec::new();
    let mut sources = Vec::new();
    let mut add = |list: Vec<String>, source: String, names: &mut Vec<String>| {
        if !list.is_empty() {
            sources.push(source);
        }
        for name in list {
            if !names.contains(&name) {
                names.push(name);
            }
        }
    };
    let (found, dmi) = cloud::detect(dmi_dir);
    let cloud_source = found.and_then(cloud_default);
    if let (Some(cloud), Some(default)) = (found, cloud_source) {
        add(
            vec![default.to_owned()],
            format!("the {cloud} time source"),
            &mut names,
        );
    }
    add(flags.to_vec(), "--server".to_owned(), &mut names);
    match std::fs::read_to_string(dhcp_file) {
        Ok(text) => add(
            parse_servers_file(&text),
            dhcp_file.display().to_string(),
            &mut names,
        ),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(source) => {
            return Err(ServersError::DhcpFile {
                path: dhcp_file.to_owned(),
                source,
            })
        }
    }
    if names.is_empty() {
        sources.push(match found {
            Some(c) => format!("{c} (no network time source)"),
            None => format!("no cloud ({dmi})"),
        });
    }
    Ok(ServerList {
        names,
        source: sources.join(" + "),
    })
}

/// `host`, `host:port`, an IPv4 or IPv6 address, or `[IPv6]:port` → the host and port.
pub fn parse_spec(spec: &str) -> Result<(String, u16), ServersError> {
    let bad = || ServersError::BadSpec(spec.to_owned());
    if let Ok(addr) = spec.parse::<SocketAddr>() {
        return Ok((addr.ip().to_string(), addr.port()));
    }
    if let Ok(ip) = spec.parse::<IpAddr>() {
        return Ok((ip.to_string(), NTP_PORT));
    }
    let (host, port) = match spec.rsplit_once(':') {
        Some((host, port)) => (host, port.parse::<u16>().map_err(|_| bad())?),
        None => (spec, NTP_PORT),
    };
    let host_ok = !host.is_empty()
        && host.len() <= 253
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
    if !host_ok || port == 0 {
        return Err(bad());
    }
    Ok((host.to_owned(), port))
}

/// Resolves a server spec to its first address.
pub fn resolve(spec: &str) -> Result<SocketAddr, ServersError> {
    let (host, port) = parse_spec(spec)?;
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, port));
    }
    (host.as_str(), port)
        .to_socket_addrs()
        .map_err(|source| ServersError::Resolve {
            name: spec.to_owned(),
            source,
        })?
        .next()
        .ok_or_else(|| ServersError::NoAddress(spec.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn specs_name_host_and_port() {
        assert_eq!(
            parse_spec("169.254.169.123").unwrap(),
            ("169.254.169.123".into(), 123)
        );
        assert_eq!(
            parse_spec("127.0.0.1:11123").unwrap(),
            ("127.0.0.1".into(), 11123)
        );
        assert_eq!(parse_spec("[::1]:11123").unwrap(), ("::1".into(), 11123));
        assert_eq!(parse_spec("fe80::1").unwrap(), ("fe80::1".into(), 123));
        assert_eq!(
            parse_spec("time.google.com").unwrap(),
            ("time.google.com".into(), 123)
        );
        assert_eq!(
            parse_spec("ntp.lan:1234").unwrap(),
            ("ntp.lan".into(), 1234)
        );
        for bad in ["", ":123", "host:", "host:0", "host:99999", "a b", "x/y"] {
            assert!(parse_spec(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_cloud_first_then_flags_then_dhcp() {
        let dir = tempfile::tempdir().unwrap();
        let dmi = dir.path().join("dmi");
        std::fs::create_dir(&dmi).unwrap();
        std::fs::write(dmi.join("sys_vendor"), "Google\n").unwrap();
        let dhcp = dir.path().join("ntp-servers");

        let list = choose(&[], &dhcp, &dmi).unwrap();
        assert_eq!(list.names, ["169.254.169.254"]);
        assert_eq!(list.source, "the GCE time source");

        std::fs::write(&dhcp, "# from the lease\n10.0.0.1\n\n10.0.0.2 # second\n").unwrap();
        let list = choose(&["10.0.0.2".into(), "10.9.9.9".into()], &dhcp, &dmi).unwrap();
        assert_eq!(
            list.names,
            ["169.254.169.254", "10.0.0.2", "10.9.9.9", "10.0.0.1"]
        );
        assert_eq!(
            list.source,
            format!("the GCE time source + --server + {}", dhcp.display())
        );

        // Outside a cloud: the flags and the lease only.
        std::fs::write(dmi.join("sys_vendor"), "QEMU\n").unwrap();
        let list = choose(&["10.9.9.9".into()], &dhcp, &dmi).unwrap();
        assert_eq!(list.names, ["10.9.9.9", "10.0.0.1", "10.0.0.2"]);

        std::fs::write(dmi.join("sys_vendor"), "QEMU\n").unwrap();
        std::fs::remove_file(&dhcp).unwrap();
        let list = choose(&[], &dhcp, &dmi).unwrap();
        assert!(list.names.is_empty());
        assert!(
            list.source.starts_with("no cloud (sys_vendor \"QEMU\""),
            "{}",
            list.source
        );
    }

    proptest! {
        #[test]
        fn any_text_is_a_list_or_an_error(text in "\\PC{0,80}") {
            for name in parse_servers_file(&text) {
                let _ = parse_spec(&name);
            }
        }
    }
}
