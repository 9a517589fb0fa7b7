//! Registry endpoints configured like containerd's `certs.d`: one folder per registry
//! holding a `hosts.toml`, so a node can pull `registry.k8s.io/pause` from a private
//! mirror, or talk plain HTTP or a self-signed CA to a registry, with the file format
//! users already know.
//!
//! ```text
//! <dir>/registry.k8s.io/hosts.toml
//! <dir>/127.0.0.1:5000/hosts.toml
//! <dir>/_default/hosts.toml        # for registries without a folder of their own
//! ```
//!
//! ```toml
//! server = "https://registry.k8s.io"     # the upstream, tried after the hosts below
//!
//! [host."https://mirror.example:5000"]
//!   capabilities = ["pull", "resolve"]  # resolve = tag -> digest; pull = blobs
//!   ca = "mirror-ca.pem"                 # PEM file(s); relative to this folder
//!   skip_verify = false
//!   override_path = false                # true: the URL path is used as is, no /v2
//!   [host."https://mirror.example:5000".header]
//!     x-team = "infra"
//!   # Berth extension: credentials for this host (same fields as CRI AuthConfig).
//!   [host."https://mirror.example:5000".auth]
//!     username = "puller"
//!     password = "secret"               # or auth = "base64(user:pass)", identity_token, registry_token
//!
//! [auth]                                 # Berth extension: credentials for `server`
//!   username = "me"
//!   password = "secret"
//! ```
//!
//! Hosts are tried in file order, then the upstream. Without `server` the upstream is
//! `https://<registry>`, except `docker.io` (`https://registry-1.docker.io`) and loopback
//! registries (`localhost`, `127.0.0.0/8`, `[::1]`), which are plain HTTP as for a local
//! test registry. A `ca` replaces the built-in Mozilla roots for that host. Credentials:
//! a mirror uses its own `auth` table first, the upstream uses the pull request's
//! credentials first; either falls back to the other.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::{Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use ureq::tls::{parse_pem, Certificate, PemItem};

use super::auth::Auth;
use super::error::ImageError;

/// Registry endpoints by registry name, loaded from a `certs.d`-style folder.
#[derive(Debug, Clone, Default)]
pub struct RegistryConfig {
    registries: BTreeMap<String, HostsFile>,
    default: Option<HostsFile>,
}

/// One `hosts.toml`, parsed and validated.
#[derive(Debug, Clone, Default)]
struct HostsFile {
    server: Option<Endpoint>,
    hosts: Vec<Endpoint>,
}

/// One place to fetch from.
#[derive(Clone)]
pub struct Endpoint {
    /// `scheme://host[:port]/…/v2`, without a trailing slash.
    pub base: String,
    /// `host[:port]` for messages and credential matching.
    pub host: String,
    /// May resolve a tag to a digest.
    pub resolve: bool,
    /// May serve content by digest.
    pub pull: bool,
    /// A mirror (a `[host]` entry) rather than the registry itself.
    pub mirror: bool,
    /// Root certificates replacing the built-in roots; empty = built-in.
    pub ca: Vec<Certificate<'static>>,
    /// Paths the `ca` came from, the key agents are shared by.
    pub ca_paths: Vec<PathBuf>,
    /// Accept any certificate.
    pub skip_verify: bool,
    /// Extra request headers.
    pub headers: Vec<(String, String)>,
    /// Credentials configured for this host.
    pub auth: Option<Auth>,
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Endpoint")
            .field("base", &self.base)
            .field("resolve", &self.resolve)
            .field("pull", &self.pull)
            .field("mirror", &self.mirror)
            .field("ca_paths", &self.ca_paths)
            .field("skip_verify", &self.skip_verify)
            .field("auth", &self.auth)
            .finish()
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    server: Option<String>,
    capabilities: Option<Vec<String>>,
    ca: Option<OneOrMany>,
    client: Option<toml::Value>,
    skip_verify: Option<bool>,
    #[serde(default)]
    header: BTreeMap<String, OneOrMany>,
    #[serde(default)]
    override_path: bool,
    /// Accepted for compatibility and ignored: the client's connect timeout applies.
    #[serde(rename = "dial_timeout")]
    _dial_timeout: Option<String>,
    auth: Option<Auth>,
    #[serde(default)]
    host: OrderedHosts,
}

impl RawFile {
    /// Splits the file into its server URL, the server's settings and the host tables.
    fn split(self) -> (Option<String>, RawHost, Vec<(String, RawHost)>) {
        let settings = RawHost {
            capabilities: self.capabilities,
            ca: self.ca,
            client: self.client,
            skip_verify: self.skip_verify,
            header: self.header,
            override_path: self.override_path,
            _dial_timeout: self._dial_timeout,
            auth: self.auth,
        };
        (self.server, settings, self.host.0)
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHost {
    capabilities: Option<Vec<String>>,
    ca: Option<OneOrMany>,
    client: Option<toml::Value>,
    skip_verify: Option<bool>,
    #[serde(default)]
    header: BTreeMap<String, OneOrMany>,
    #[serde(default)]
    override_path: bool,
    #[serde(rename = "dial_timeout")]
    _dial_timeout: Option<String>,
    auth: Option<Auth>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        }
    }
}

/// `[host."url"]` tables in file order (a map would sort them, and order is priority).
#[derive(Debug, Default)]
struct OrderedHosts(Vec<(String, RawHost)>);

impl<'de> Deserialize<'de> for OrderedHosts {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = OrderedHosts;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a table of hosts keyed by URL")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<OrderedHosts, A::Error> {
                let mut hosts = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, RawHost>()? {
                    hosts.push((k, v));
                }
                Ok(OrderedHosts(hosts))
            }
        }
        d.deserialize_map(V)
    }
}

impl RegistryConfig {
    /// No configuration: every registry is its own upstream.
    pub fn empty() -> Self {
        RegistryConfig::default()
    }

    /// Loads every `<dir>/<registry>/hosts.toml`; a missing `dir` is an empty config.
    pub fn load(dir: &Path) -> Result<Self, ImageError> {
        let mut config = RegistryConfig::default();
        let entries = match std::fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(config),
            Err(e) => return Err(ImageError::io("read registry config folder", dir, e)),
        };
        for entry in entries {
            let entry = entry.map_err(|e| ImageError::io("read registry config folder", dir, e))?;
            let file = entry.path().join("hosts.toml");
            if !file.is_file() {
                continue;
            }
            let name = entry.file_name().to_string_lossy().into_owned();
            let text = std::fs::read_to_string(&file)
                .map_err(|e| ImageError::io("read registry config", &file, e))?;
            if name == "_default" {
                config.default = Some(parse_file(&text, &file, None)?);
            } else {
                let registry = name.to_ascii_lowercase();
                let parsed = parse_file(&text, &file, Some(&registry))?;
                config.registries.insert(registry, parsed);
            }
        }
        Ok(config)
    }

    /// Parses one `hosts.toml` text for `registry` (for tests and callers without files).
    pub fn with_hosts_toml(
        mut self,
        registry: &str,
        text: &str,
        folder: &Path,
    ) -> Result<Self, ImageError> {
        let file = folder.join("hosts.toml");
        let registry = registry.to_ascii_lowercase();
        let parsed = parse_file(text, &file, Some(&registry))?;
        self.registries.insert(registry, parsed);
        Ok(self)
    }

    /// Where to fetch `registry`'s images from, in the order to try them.
    pub fn endpoints(&self, registry: &str) -> Vec<Endpoint> {
        let registry = registry.to_ascii_lowercase();
        let file = self.registries.get(&registry).or(self.default.as_ref());
        let mut out: Vec<Endpoint> = file.map(|f| f.hosts.clone()).unwrap_or_default();
        let upstream = self
            .registries
            .get(&registry)
            .and_then(|f| f.server.clone());
        let upstream = match upstream {
            Some(s) => s,
            None => default_upstream(&registry, self.default.as_ref()),
        };
        // A `[host]` entry for the server itself (a common way to give it capabilities)
        // already covers it: the same URL is not tried twice.
        if !out.iter().any(|e| e.base == upstream.base) {
            out.push(upstream);
        }
        out
    }
}

/// `https://<registry>/v2`, with the Docker Hub and loopback exceptions.
fn default_upstream(registry: &str, default: Option<&HostsFile>) -> Endpoint {
    let base = if registry == "docker.io" {
        "https://registry-1.docker.io".to_string()
    } else if is_loopback(registry) {
        format!("http://{registry}")
    } else {
        format!("https://{registry}")
    };
    // `_default`'s top-level ca/skip_verify/auth apply to upstreams without a folder.
    let template = default.and_then(|f| f.server.clone());
    let mut ep = template.unwrap_or_else(|| Endpoint {
        base: String::new(),
        host: String::new(),
        resolve: true,
        pull: true,
        mirror: false,
        ca: Vec::new(),
        ca_paths: Vec::new(),
        skip_verify: false,
        headers: Vec::new(),
        auth: None,
    });
    ep.base = format!("{base}/v2");
    ep.host = registry.to_string();
    ep.resolve = true;
    ep.pull = true;
    ep.mirror = false;
    ep
}

/// `localhost`, `127.x.y.z` or `[::1]`, with any port.
pub fn is_loopback(registry: &str) -> bool {
    let host = match registry.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => registry.split(':').next().unwrap_or(""),
    };
    host == "localhost"
        || host == "::1"
        || host
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn parse_file(text: &str, file: &Path, registry: Option<&str>) -> Result<HostsFile, ImageError> {
    let bad = |reason: String| ImageError::HostsConfig {
        path: file.to_path_buf(),
        reason,
    };
    let raw: RawFile = toml::from_str(text).map_err(|e| bad(e.to_string()))?;
    let folder = file.parent().unwrap_or(Path::new("."));
    let (server_url, server_settings, raw_hosts) = raw.split();
    let mut hosts = Vec::new();
    for (url, settings) in raw_hosts {
        hosts.push(
            endpoint(&url, settings, true, folder)
                .map_err(|r| bad(format!("host {url:?}: {r}")))?,
        );
    }
    let server = match server_url {
        Some(url) => Some(
            endpoint(&url, server_settings, false, folder)
                .map_err(|r| bad(format!("server {url:?}: {r}")))?,
        ),
        // Top-level settings without `server` still apply to the default upstream.
        None => {
            let template_url = match registry {
                Some(r) => default_upstream(r, None).base,
                None => "https://_default".to_string(),
            };
            let s = &server_settings;
            let has_settings = s.ca.is_some()
                || s.skip_verify.is_some()
                || s.auth.is_some()
                || !s.header.is_empty()
                || s.client.is_some();
            match has_settings {
                true => Some(endpoint(&template_url, server_settings, false, folder).map_err(bad)?),
                false => None,
            }
        }
    };
    Ok(HostsFile { server, hosts })
}

fn endpoint(url: &str, raw: RawHost, mirror: bool, folder: &Path) -> Result<Endpoint, String> {
    if raw.client.is_some() {
        return Err("client certificates (`client`) are not supported".into());
    }
    let with_scheme = if url.contains("://") {
        url.to_string()
    } else {
        format!("https://{url}")
    };
    let (scheme, rest) = with_scheme.split_once("://").unwrap_or(("https", url));
    if scheme != "http" && scheme != "https" {
        return Err(format!("scheme {scheme:?} is not http or https"));
    }
    let (host, path) = match rest.find('/') {
        Some(i) => (&rest[..i], rest[i..].trim_end_matches('/')),
        None => (rest, ""),
    };
    if host.is_empty() || host.contains(['?', '#', '@', ' ']) {
        return Err("bad host".into());
    }
    let path = if raw.override_path || path.ends_with("/v2") {
        path.to_string()
    } else {
        format!("{path}/v2")
    };
    let (mut resolve, mut pull) = (true, true);
    if let Some(caps) = &raw.capabilities {
        resolve = false;
        pull = false;
        for cap in caps {
            match cap.as_str() {
                "resolve" => resolve = true,
                "pull" => pull = true,
                "push" => {}
                other => return Err(format!("unknown capability {other:?}")),
            }
        }
    }
    let mut ca = Vec::new();
    let mut ca_paths = Vec::new();
    for p in raw.ca.map(OneOrMany::into_vec).unwrap_or_default() {
        let path = folder.join(&p);
        let pem = std::fs::read(&path).map_err(|e| format!("ca {}: {e}", path.display()))?;
        let before = ca.len();
        for item in parse_pem(&pem) {
            if let Ok(PemItem::Certificate(c)) = item {
                ca.push(c);
            }
        }
        if ca.len() == before {
            return Err(format!("ca {}: no PEM certificate in it", path.display()));
        }
        ca_paths.push(path);
    }
    let headers = raw
        .header
        .into_iter()
        .flat_map(|(k, v)| v.into_vec().into_iter().map(move |v| (k.clone(), v)))
        .collect();
    Ok(Endpoint {
        base: format!("{scheme}://{host}{path}"),
        host: host.to_string(),
        resolve,
        pull,
        mirror,
        ca,
        ca_paths,
        skip_verify: raw.skip_verify.unwrap_or(false),
        headers,
        auth: raw.auth,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(registry: &str, text: &str) -> Result<RegistryConfig, ImageError> {
        RegistryConfig::empty().with_hosts_toml(registry, text, Path::new("/nonexistent"))
    }

    #[test]
    fn defaults_without_config() {
        let c = RegistryConfig::empty();
        let hub = c.endpoints("docker.io");
        assert_eq!(hub.len(), 1);
        assert_eq!(hub[0].base, "https://registry-1.docker.io/v2");
        assert_eq!(
            c.endpoints("registry.k8s.io")[0].base,
            "https://registry.k8s.io/v2"
        );
        assert_eq!(
            c.endpoints("127.0.0.1:5000")[0].base,
            "http://127.0.0.1:5000/v2"
        );
        assert_eq!(
            c.endpoints("localhost:5000")[0].base,
            "http://localhost:5000/v2"
        );
    }

    #[test]
    fn a_host_entry_for_the_server_itself_is_tried_once() {
        let c = load(
            "10.0.2.2:5000",
            r#"
server = "http://10.0.2.2:5000"
[host."http://10.0.2.2:5000"]
  capabilities = ["pull", "resolve"]
"#,
        )
        .unwrap();
        let eps = c.endpoints("10.0.2.2:5000");
        assert_eq!(
            eps.len(),
            1,
            "{:?}",
            eps.iter().map(|e| &e.base).collect::<Vec<_>>()
        );
        assert!(eps[0].pull && eps[0].resolve);
    }

    #[test]
    fn mirrors_come_first_in_file_order_then_the_server() {
        let c = load(
            "registry.k8s.io",
            r#"
server = "https://registry.k8s.io"
[host."https://zz.mirror"]
  capabilities = ["pull"]
[host."http://aa.mirror:5000"]
  capabilities = ["pull", "resolve"]
  skip_verify = true
  [host."http://aa.mirror:5000".auth]
    username = "u"
    password = "p"
[host."https://custom/path"]
  override_path = true
"#,
        )
        .unwrap();
        let eps = c.endpoints("registry.k8s.io");
        let bases: Vec<_> = eps.iter().map(|e| e.base.as_str()).collect();
        assert_eq!(
            bases,
            [
                "https://zz.mirror/v2",
                "http://aa.mirror:5000/v2",
                "https://custom/path",
                "https://registry.k8s.io/v2"
            ]
        );
        assert!(eps[0].pull && !eps[0].resolve && eps[0].mirror);
        assert!(eps[1].pull && eps[1].resolve && eps[1].skip_verify);
        assert_eq!(eps[1].auth.as_ref().map(|a| a.username.as_str()), Some("u"));
        assert_eq!(eps[1].host, "aa.mirror:5000");
        assert!(!eps[3].mirror && eps[3].resolve);
    }

    #[test]
    fn top_level_settings_apply_to_the_default_upstream() {
        let c = load(
            "my.registry",
            "skip_verify = true\n[auth]\nusername = \"a\"\n",
        )
        .unwrap();
        let eps = c.endpoints("my.registry");
        assert_eq!(eps.len(), 1);
        assert_eq!(eps[0].base, "https://my.registry/v2");
        assert!(eps[0].skip_verify);
        assert!(eps[0].auth.is_some());
    }

    #[test]
    fn bad_files_name_the_problem() {
        for (text, needle) in [
            ("server = 3", "server"),
            ("unknown_key = 1", "unknown_key"),
            ("[host.\"ftp://x\"]", "ftp"),
            ("[host.\"https://x\"]\ncapabilities = [\"fly\"]", "fly"),
            ("[host.\"https://x\"]\nca = \"missing.pem\"", "missing.pem"),
            ("[host.\"https://x\"]\nclient = \"c.pem\"", "client"),
        ] {
            let err = load("r.io", text).unwrap_err();
            assert!(matches!(err, ImageError::HostsConfig { .. }));
            assert!(err.to_string().contains(needle), "{text}: {err}");
        }
    }

    #[test]
    fn load_reads_folders_and_default_and_tolerates_a_missing_dir() {
        assert!(RegistryConfig::load(Path::new("/nonexistent/certs.d"))
            .unwrap()
            .registries
            .is_empty());
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("example.invalid")).unwrap();
        std::fs::write(
            dir.path().join("example.invalid/hosts.toml"),
            "[host.\"http://127.0.0.1:5000\"]\ncapabilities = [\"pull\", \"resolve\"]\n",
        )
        .unwrap();
        std::fs::create_dir_all(dir.path().join("_default")).unwrap();
        std::fs::write(
            dir.path().join("_default/hosts.toml"),
            "[host.\"https://global.mirror\"]\n",
        )
        .unwrap();
        let c = RegistryConfig::load(dir.path()).unwrap();
        let eps = c.endpoints("example.invalid");
        assert_eq!(eps[0].base, "http://127.0.0.1:5000/v2");
        assert_eq!(eps[1].base, "https://example.invalid/v2");
        let other = c.endpoints("quay.io");
        assert_eq!(other[0].base, "https://global.mirror/v2");
        assert_eq!(other[1].base, "https://quay.io/v2");
    }

    #[test]
    fn ca_files_are_read_relative_to_the_folder() {
        let dir = tempfile::tempdir().unwrap();
        let pem = "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUQk1kZmFrZWZha2VmYWtlZmFrZWZha2UwCgYIKoZIzj0EAwIw\n-----END CERTIFICATE-----\n";
        std::fs::write(dir.path().join("ca.pem"), pem).unwrap();
        let c = RegistryConfig::empty()
            .with_hosts_toml(
                "r.io",
                "[host.\"https://m\"]\nca = \"ca.pem\"\n",
                dir.path(),
            )
            .unwrap();
        assert_eq!(c.endpoints("r.io")[0].ca.len(), 1);
        assert_eq!(
            c.endpoints("r.io")[0].ca_paths,
            vec![dir.path().join("ca.pem")]
        );
    }
}
