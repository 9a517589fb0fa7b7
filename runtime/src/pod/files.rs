//! The files a pod's containers mount over `/etc/resolv.conf`, `/etc/hostname` and
//! `/etc/hosts`, written once per pod into `state/pods/<id>/`, as containerd does.
//!
//! DNS comes from the request's DNS config ([`PodDns`]; the kubelet puts the cluster DNS there); with
//! none, the pod gets a copy of the host's `resolv.conf`. Host-network pods get the host's
//! `hosts`, others a fresh one to which the pod IP is added once CNI assigned it.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use super::{namespaces, write_file, PodError, PodPaths};

/// A pod's DNS settings as the request gives them (CRI `DnsConfig`), checked when the
/// `resolv.conf` is made from them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodDns {
    pub servers: Vec<String>,
    pub searches: Vec<String>,
    pub options: Vec<String>,
}

/// The host files copied into pods; a parameter so tests can use their own.
#[derive(Debug, Clone)]
pub struct HostEtc {
    /// Usually `/etc/resolv.conf`.
    pub resolv_conf: PathBuf,
    /// Usually `/etc/hosts`.
    pub hosts: PathBuf,
}

impl Default for HostEtc {
    fn default() -> Self {
        HostEtc {
            resolv_conf: "/etc/resolv.conf".into(),
            hosts: "/etc/hosts".into(),
        }
    }
}

/// Writes the pod's `resolv.conf`, `hostname` and `hosts` from the host's `/etc`.
pub fn write_pod_files(
    paths: &PodPaths,
    hostname: &str,
    dns: Option<&PodDns>,
    host_network: bool,
) -> Result<(), PodError> {
    write_pod_files_from(paths, hostname, dns, host_network, &HostEtc::default())
}

/// [`write_pod_files`] with the host files taken from `host`.
pub fn write_pod_files_from(
    paths: &PodPaths,
    hostname: &str,
    dns: Option<&PodDns>,
    host_network: bool,
    host: &HostEtc,
) -> Result<(), PodError> {
    let resolv = match dns.map(resolv_conf).transpose()?.flatten() {
        Some(text) => text.into_bytes(),
        None => read_host(&host.resolv_conf)?,
    };
    let hostname = if hostname.is_empty() {
        host_hostname()?
    } else {
        hostname.to_owned()
    };
    let hosts = if host_network {
        read_host(&host.hosts)?
    } else {
        default_hosts().into_bytes()
    };
    std::fs::create_dir_all(paths.dir()).map_err(|e| PodError::io("create", paths.dir(), e))?;
    write_file(&paths.resolv_conf(), &resolv)?;
    write_file(&paths.hostname_file(), format!("{hostname}\n").as_bytes())?;
    write_file(&paths.hosts_file(), &hosts)
}

/// Adds `<ip> <hostname>` to the pod's `hosts` file (no-op if the line is there).
pub fn add_pod_ip_to_hosts(paths: &PodPaths, ip: IpAddr, hostname: &str) -> Result<(), PodError> {
    let file = paths.hosts_file();
    let mut text = std::fs::read_to_string(&file).map_err(|e| PodError::io("read", &file, e))?;
    let line = format!("{ip}\t{hostname}");
    if text.lines().any(|l| l == line) {
        return Ok(());
    }
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str(&line);
    text.push('\n');
    write_file(&file, text.as_bytes())
}

/// Removes the pod's state folder entirely; unmounts its namespaces first if the caller
/// has not. Idempotent.
pub fn remove_pod_files(paths: &PodPaths) -> Result<(), PodError> {
    namespaces::remove_namespaces(paths)?;
    match std::fs::remove_dir_all(paths.dir()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(PodError::io("remove", paths.dir(), e)),
    }
}

/// The `resolv.conf` for a DNS config, or `None` if it sets nothing (then the host's is
/// used, as containerd does).
pub fn resolv_conf(dns: &PodDns) -> Result<Option<String>, PodError> {
    if dns.servers.is_empty() && dns.searches.is_empty() && dns.options.is_empty() {
        return Ok(None);
    }
    for (i, server) in dns.servers.iter().enumerate() {
        if !is_nameserver(server) {
            return Err(PodError::field(
                format!("config.dns_config.servers[{i}]"),
                format!("{server:?} is not an IP address"),
            ));
        }
    }
    check_words(&dns.searches, "searches")?;
    check_words(&dns.options, "options")?;
    let mut out = String::new();
    if !dns.searches.is_empty() {
        out.push_str(&format!("search {}\n", dns.searches.join(" ")));
    }
    for server in &dns.servers {
        out.push_str(&format!("nameserver {server}\n"));
    }
    if !dns.options.is_empty() {
        out.push_str(&format!("options {}\n", dns.options.join(" ")));
    }
    Ok(Some(out))
}

/// An IP address, IPv6 optionally with a zone (`fe80::1%eth0`), as glibc reads them.
fn is_nameserver(s: &str) -> bool {
    match s.split_once('%') {
        Some((addr, zone)) => {
            matches!(addr.parse::<IpAddr>(), Ok(IpAddr::V6(_)))
                && !zone.is_empty()
                && zone
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        }
        None => s.parse::<IpAddr>().is_ok(),
    }
}

/// Search domains and options are single words on one line.
fn check_words(words: &[String], name: &str) -> Result<(), PodError> {
    for (i, w) in words.iter().enumerate() {
        let field = || format!("config.dns_config.{name}[{i}]");
        if w.is_empty() {
            return Err(PodError::field(field(), "empty"));
        }
        if w.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(PodError::field(
                field(),
                format!("{w:?} contains whitespace"),
            ));
        }
    }
    Ok(())
}

/// The `hosts` file of a pod with its own network, before the pod IP is known.
pub fn default_hosts() -> String {
    concat!(
        "127.0.0.1\tlocalhost\n",
        "::1\tlocalhost ip6-localhost ip6-loopback\n",
        "fe00::0\tip6-localnet\n",
        "fe00::0\tip6-mcastprefix\n",
        "fe00::1\tip6-allnodes\n",
        "fe00::2\tip6-allrouters\n",
    )
    .to_owned()
}

/// A host file's content; a missing one reads as empty (a host without `/etc/hosts`).
fn read_host(path: &Path) -> Result<Vec<u8>, PodError> {
    match std::fs::read(path) {
        Ok(data) => Ok(data),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(PodError::io("read", path, e)),
    }
}

fn host_hostname() -> Result<String, PodError> {
    nix::unistd::gethostname()
        .map_err(|source| PodError::Sys {
            op: "gethostname",
            path: PathBuf::new(),
            source,
        })
        .map(|h| h.to_string_lossy().into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dns(servers: &[&str], searches: &[&str], options: &[&str]) -> PodDns {
        let v = |s: &[&str]| s.iter().map(|x| x.to_string()).collect();
        PodDns {
            servers: v(servers),
            searches: v(searches),
            options: v(options),
        }
    }

    #[test]
    fn resolv_conf_from_request() {
        let text = resolv_conf(&dns(
            &["10.96.0.10", "fd00::a", "fe80::1%eth0"],
            &["default.svc.cluster.local", "svc.cluster.local"],
            &["ndots:5", "edns0"],
        ))
        .unwrap()
        .unwrap();
        assert_eq!(
            text,
            "search default.svc.cluster.local svc.cluster.local\n\
             nameserver 10.96.0.10\nnameserver fd00::a\nnameserver fe80::1%eth0\n\
             options ndots:5 edns0\n"
        );
    }

    #[test]
    fn empty_dns_config_means_host_file() {
        assert_eq!(resolv_conf(&dns(&[], &[], &[])).unwrap(), None);
        assert_eq!(
            resolv_conf(&dns(&["1.1.1.1"], &[], &[])).unwrap().unwrap(),
            "nameserver 1.1.1.1\n"
        );
    }

    #[test]
    fn bad_dns_fields_are_named() {
        let e = resolv_conf(&dns(&["1.1.1.1", "dns.example"], &[], &[])).unwrap_err();
        assert_eq!(
            e.to_string(),
            "config.dns_config.servers[1]: \"dns.example\" is not an IP address"
        );
        assert_eq!(
            crate::error::ErrorKind::kind(&e),
            crate::error::Kind::InvalidArgument
        );
        let e = resolv_conf(&dns(&[], &["a", "b c"], &[])).unwrap_err();
        assert!(
            e.to_string().starts_with("config.dns_config.searches[1]:"),
            "{e}"
        );
        let e = resolv_conf(&dns(&[], &[], &["x\nnameserver 6.6.6.6"])).unwrap_err();
        assert!(
            e.to_string().starts_with("config.dns_config.options[0]:"),
            "{e}"
        );
        assert!(resolv_conf(&dns(&["fe80::1%"], &[], &[])).is_err());
        assert!(resolv_conf(&dns(&["1.2.3.4%eth0"], &[], &[])).is_err());
    }

    fn host_etc(dir: &Path) -> HostEtc {
        std::fs::write(dir.join("resolv"), "nameserver 192.0.2.1\n").unwrap();
        std::fs::write(dir.join("hosts"), "127.0.0.1 localhost\n192.0.2.9 node\n").unwrap();
        HostEtc {
            resolv_conf: dir.join("resolv"),
            hosts: dir.join("hosts"),
        }
    }

    #[test]
    fn pod_with_own_network() {
        let dir = tempfile::tempdir().unwrap();
        let host = host_etc(dir.path());
        let paths = PodPaths::new(&dir.path().join("state"), "p1");
        let d = dns(&["10.0.0.10"], &["cluster.local"], &[]);
        write_pod_files_from(&paths, "web-0", Some(&d), false, &host).unwrap();
        let read = |p: PathBuf| std::fs::read_to_string(p).unwrap();
        assert_eq!(
            read(paths.resolv_conf()),
            "search cluster.local\nnameserver 10.0.0.10\n"
        );
        assert_eq!(read(paths.hostname_file()), "web-0\n");
        assert_eq!(read(paths.hosts_file()), default_hosts());
        add_pod_ip_to_hosts(&paths, "10.88.0.5".parse().unwrap(), "web-0").unwrap();
        add_pod_ip_to_hosts(&paths, "10.88.0.5".parse().unwrap(), "web-0").unwrap();
        let hosts = read(paths.hosts_file());
        assert!(hosts.starts_with("127.0.0.1\tlocalhost\n"));
        assert!(hosts.ends_with("\n10.88.0.5\tweb-0\n"));
        assert_eq!(hosts.matches("10.88.0.5").count(), 1);
        remove_pod_files(&paths).unwrap();
        assert!(!paths.dir().exists());
        remove_pod_files(&paths).unwrap();
    }

    #[test]
    fn host_network_pod_copies_host_files() {
        let dir = tempfile::tempdir().unwrap();
        let host = host_etc(dir.path());
        let paths = PodPaths::new(&dir.path().join("state"), "p2");
        write_pod_files_from(&paths, "node", None, true, &host).unwrap();
        let read = |p: PathBuf| std::fs::read_to_string(p).unwrap();
        assert_eq!(read(paths.resolv_conf()), "nameserver 192.0.2.1\n");
        assert_eq!(
            read(paths.hosts_file()),
            "127.0.0.1 localhost\n192.0.2.9 node\n"
        );
    }

    #[test]
    fn invalid_dns_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let host = host_etc(dir.path());
        let paths = PodPaths::new(&dir.path().join("state"), "p3");
        let d = dns(&["nope"], &[], &[]);
        assert!(write_pod_files_from(&paths, "x", Some(&d), false, &host).is_err());
        assert!(!paths.dir().exists());
    }
}
