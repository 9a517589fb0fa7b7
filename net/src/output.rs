//! What the node sees of the network: `resolv.conf`, the host name, the state file, and
//! `READY=1` to the service manager.
//!
//! Files are written whole to a temporary name and renamed, so a reader (the CRI runtime
//! copying `resolv.conf` into a pod) never sees half a file. `/etc/resolv.conf` is made a
//! symbolic link to the generated file, as systemd-resolved's stub mode does, so every
//! later lease change reaches readers without touching `/etc` again.

use std::io;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// A failed write.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("writing {}: {source}", path.display())]
    Write { path: PathBuf, source: io::Error },
}

/// The `resolv.conf` text for these servers and search domains.
pub fn render_resolv(nameservers: &[IpAddr], search: &[String]) -> String {
    let mut out = String::from(
        "# Written by berth-networkd from DHCP leases, router advertisements and .network files.\n",
    );
    for ns in nameservers {
        out.push_str(&format!("nameserver {ns}\n"));
    }
    if !search.is_empty() {
        out.push_str(&format!("search {}\n", search.join(" ")));
    }
    out
}

/// At most this many `nameserver` lines: glibc's resolver reads no more (MAXNS).
pub const MAX_NAMESERVERS: usize = 3;

/// The servers for `resolv.conf`: each once, IPv4 before IPv6 (each family in the order
/// given), at most [`MAX_NAMESERVERS`].
pub fn order_nameservers(servers: &[IpAddr]) -> Vec<IpAddr> {
    let mut out: Vec<IpAddr> = Vec::new();
    for ip in servers
        .iter()
        .filter(|ip| ip.is_ipv4())
        .chain(servers.iter().filter(|ip| ip.is_ipv6()))
    {
        if !out.contains(ip) {
            out.push(*ip);
        }
    }
    out.truncate(MAX_NAMESERVERS);
    out
}

/// Writes `text` to `path` atomically, creating its folder.
pub fn write_atomic(path: &Path, text: &str) -> Result<(), OutputError> {
    let err = |source| OutputError::Write {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    let tmp = tmp_name(path);
    std::fs::write(&tmp, text).map_err(err)?;
    std::fs::rename(&tmp, path).map_err(err)
}

/// Makes `link` a symbolic link to `target` (atomically replacing whatever is there),
/// unless it already is one.
pub fn symlink_atomic(link: &Path, target: &Path) -> Result<(), OutputError> {
    if std::fs::read_link(link).is_ok_and(|t| t == target) {
        return Ok(());
    }
    let err = |source| OutputError::Write {
        path: link.to_path_buf(),
        source,
    };
    let tmp = tmp_name(link);
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(target, &tmp).map_err(err)?;
    std::fs::rename(&tmp, link).map_err(err)
}

fn tmp_name(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".berth-tmp");
    path.with_file_name(name)
}

/// Who names the node: the design's precedence is `berth.hostname=` > the cloud's metadata
/// > DHCP > the built-in `berth-<id>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostnameOwner {
    Cmdline(String),
    Metadata(String),
    Dhcp,
}

/// Who owns the host name, given the kernel command line and the metadata service's
/// host name file (if present).
pub fn hostname_owner(cmdline: &str, metadata: Option<&str>) -> HostnameOwner {
    if let Some(name) = cmdline
        .split_whitespace()
        .find_map(|w| w.strip_prefix("berth.hostname="))
        .filter(|n| !n.is_empty())
    {
        return HostnameOwner::Cmdline(name.to_string());
    }
    match metadata.map(str::trim).filter(|m| !m.is_empty()) {
        Some(name) => HostnameOwner::Metadata(name.to_string()),
        None => HostnameOwner::Dhcp,
    }
}

/// The name to give `sethostname` for a lease's host name: the whole name if it fits the
/// kernel's 64 bytes, else its first label.
pub fn kernel_hostname(name: &str) -> &str {
    if name.len() <= 64 {
        name
    } else {
        name.split('.').next().unwrap_or(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostname_precedence() {
        let cmdline = "console=ttyS0 berth.hostname=pinned roothash=00";
        assert_eq!(
            hostname_owner(cmdline, Some("meta\n")),
            HostnameOwner::Cmdline("pinned".into())
        );
        assert_eq!(
            hostname_owner("console=ttyS0", Some("meta\n")),
            HostnameOwner::Metadata("meta".into())
        );
        assert_eq!(
            hostname_owner("console=ttyS0 berth.hostname=", Some(" \n")),
            HostnameOwner::Dhcp
        );
        assert_eq!(hostname_owner("", None), HostnameOwner::Dhcp);
        let long = format!("{}.example.com", "a".repeat(60));
        assert_eq!(kernel_hostname(&long), "a".repeat(60));
        assert_eq!(
            kernel_hostname("node-1.c.proj.internal"),
            "node-1.c.proj.internal"
        );
    }

    #[test]
    fn resolv_conf_text() {
        let servers = ["10.0.0.2".parse().unwrap(), "2001:db8::53".parse().unwrap()];
        let text = render_resolv(
            &servers,
            &["c.proj.internal".into(), "google.internal".into()],
        );
        assert!(text.ends_with("nameserver 10.0.0.2\nnameserver 2001:db8::53\nsearch c.proj.internal google.internal\n"), "{text}");
        assert!(!render_resolv(&[], &[]).contains("search"));
    }

    #[test]
    fn nameservers_ipv4_first_at_most_three() {
        let ips =
            |list: &[&str]| -> Vec<IpAddr> { list.iter().map(|s| s.parse().unwrap()).collect() };
        assert_eq!(
            order_nameservers(&ips(&[
                "2001:db8::53",
                "10.0.0.2",
                "2001:db8::54",
                "10.0.0.2"
            ])),
            ips(&["10.0.0.2", "2001:db8::53", "2001:db8::54"])
        );
        assert_eq!(
            order_nameservers(&ips(&["2001:db8::53", "10.0.0.2", "10.0.0.3", "10.0.0.4"])),
            ips(&["10.0.0.2", "10.0.0.3", "10.0.0.4"])
        );
        assert_eq!(
            order_nameservers(&ips(&["2001:db8::53"])),
            ips(&["2001:db8::53"])
        );
        assert!(order_nameservers(&[]).is_empty());
    }

    #[test]
    fn files_and_links() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("run/resolv.conf");
        write_atomic(&target, "nameserver 10.0.0.2\n").unwrap();
        let etc = dir.path().join("resolv.conf");
        std::fs::write(&etc, "old\n").unwrap();
        symlink_atomic(&etc, &target).unwrap();
        symlink_atomic(&etc, &target).unwrap();
        assert_eq!(
            std::fs::read_to_string(&etc).unwrap(),
            "nameserver 10.0.0.2\n"
        );
    }
}
