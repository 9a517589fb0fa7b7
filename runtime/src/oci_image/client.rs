//! A blocking client for the OCI distribution API: manifests and blobs over HTTP(S),
//! with the registry's 401 challenge answered by basic auth or a bearer token.
//!
//! A [`Session`] serves one pull: it knows the endpoints to try (mirrors first, see
//! [`hosts`](super::hosts)), the credentials for each, and caches the token each host
//! granted. A host that fails (unreachable, error status, bad content) is skipped for the
//! next one; when all fail the first real failure is reported, naming host and status.
//! Nothing here trusts what it receives: manifests are checked against their digest here,
//! blobs by the caller while they stream into the content store.

use std::cell::RefCell;
use std::collections::HashMap;
use std::io::Read;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use ureq::http::Response;
use ureq::tls::{RootCerts, TlsConfig};
use ureq::{Agent, Body};

use super::auth::{Auth, Challenge};
use super::digest::Digest;
use super::error::ImageError;
use super::hosts::{Endpoint, RegistryConfig};
use super::manifest::MANIFEST_ACCEPT;
use super::reference::Reference;

/// Manifests and indexes larger than this are refused (the distribution spec lets
/// registries refuse anything over 4 MiB).
const MAX_MANIFEST: u64 = 8 << 20;
/// Token responses larger than this are refused.
const MAX_TOKEN: u64 = 1 << 20;

/// HTTP agents shared across pulls, one per TLS setting.
#[derive(Default)]
pub struct Client {
    agents: Mutex<HashMap<(Vec<PathBuf>, bool), Agent>>,
}

/// A manifest or index as fetched and verified.
#[derive(Debug)]
pub struct Fetched {
    pub body: Vec<u8>,
    pub media_type: String,
    pub digest: Digest,
}

/// One endpoint with its credentials and the authorization it earned.
struct Host {
    ep: Endpoint,
    agent: Agent,
    auth: Option<Auth>,
    authorization: RefCell<Option<String>>,
}

/// The registry conversation for one image reference.
pub struct Session {
    registry: String,
    repository: String,
    hosts: Vec<Host>,
}

#[derive(Clone, Copy)]
enum Capability {
    Resolve,
    Pull,
}

impl Client {
    /// A client with no connections yet.
    pub fn new() -> Self {
        Client::default()
    }

    fn agent(&self, ep: &Endpoint) -> Agent {
        let key = (ep.ca_paths.clone(), ep.skip_verify);
        let mut agents = match self.agents.lock() {
            Ok(a) => a,
            Err(poisoned) => poisoned.into_inner(),
        };
        agents
            .entry(key)
            .or_insert_with(|| {
                let mut tls = TlsConfig::builder().disable_verification(ep.skip_verify);
                if !ep.ca.is_empty() {
                    tls = tls.root_certs(RootCerts::new_with_certs(&ep.ca));
                }
                Agent::config_builder()
                    .http_status_as_error(false)
                    .user_agent(concat!("berth-runtime/", env!("CARGO_PKG_VERSION")))
                    .timeout_connect(Some(Duration::from_secs(30)))
                    .timeout_per_read(Some(Duration::from_secs(120)))
                    .tls_config(tls.build())
                    .build()
                    .new_agent()
            })
            .clone()
    }

    /// Starts a session for `reference` with the configured endpoints and the request's
    /// credentials.
    pub fn session(
        &self,
        reference: &Reference,
        config: &RegistryConfig,
        auth: Option<&Auth>,
    ) -> Session {
        let request_auth = auth.filter(|a| !a.is_empty());
        let hosts = config
            .endpoints(&reference.registry)
            .into_iter()
            .map(|ep| {
                let from_request = request_auth
                    .filter(|a| a.applies_to(&reference.registry) || a.applies_to(&ep.host))
                    .cloned();
                let auth = match ep.mirror {
                    true => ep.auth.clone().or(from_request),
                    false => from_request.or(ep.auth.clone()),
                };
                let authorization = auth
                    .as_ref()
                    .filter(|a| !a.registry_token.is_empty())
                    .map(|a| format!("Bearer {}", a.registry_token));
                Host {
                    agent: self.agent(&ep),
                    ep,
                    auth,
                    authorization: RefCell::new(authorization),
                }
            })
            .collect();
        Session {
            registry: reference.registry.clone(),
            repository: reference.repository.clone(),
            hosts,
        }
    }
}

impl Session {
    /// Fetches the manifest or index `reference` names (by tag: from hosts that may
    /// resolve; by digest: from hosts that may pull) and verifies its digest.
    pub fn resolve(&self, reference: &Reference) -> Result<Fetched, ImageError> {
        let (capability, wanted) = match &reference.digest {
            Some(d) => (Capability::Pull, Some(d)),
            None => (Capability::Resolve, None),
        };
        let what = reference.to_string();
        self.first_success(capability, Some(&what), |h| {
            self.fetch_manifest(h, &reference.manifest_ref(), wanted)
        })
    }

    /// Fetches the manifest `digest` (a child of an index) and verifies it.
    pub fn manifest(&self, digest: &Digest) -> Result<Fetched, ImageError> {
        let what = format!("{}/{}@{digest}", self.registry, self.repository);
        self.first_success(Capability::Pull, Some(&what), |h| {
            self.fetch_manifest(h, digest.as_str(), Some(digest))
        })
    }

    /// Streams blob `digest` into `consume`, trying the next host if one fails.
    /// `consume` verifies what it reads and cleans up after itself on error.
    pub fn blob(
        &self,
        digest: &Digest,
        consume: &mut dyn FnMut(&mut dyn Read) -> Result<(), ImageError>,
    ) -> Result<(), ImageError> {
        self.first_success(Capability::Pull, None, |h| {
            let url = self.url(h, &format!("blobs/{digest}"));
            let resp = self.get(h, &url, None)?;
            let resp = check_status(h, &url, resp)?;
            let mut reader = resp.into_body().into_reader();
            consume(&mut reader)
        })
    }

    fn first_success<T>(
        &self,
        capability: Capability,
        manifest: Option<&str>,
        mut attempt: impl FnMut(&Host) -> Result<T, ImageError>,
    ) -> Result<T, ImageError> {
        let mut errors = Vec::new();
        let mut tried = Vec::new();
        for h in &self.hosts {
            let allowed = match capability {
                Capability::Resolve => h.ep.resolve,
                Capability::Pull => h.ep.pull,
            };
            if !allowed {
                continue;
            }
            tried.push(h.ep.host.clone());
            match attempt(h) {
                Ok(v) => return Ok(v),
                Err(e) => errors.push(e),
            }
        }
        let not_found =
            |e: &ImageError| matches!(e, ImageError::RegistryStatus { status: 404, .. });
        let first_real = errors.iter().position(|e| !not_found(e));
        match (manifest, first_real) {
            (_, Some(i)) => Err(errors.swap_remove(i)),
            (Some(reference), None) => {
                let hosts = match tried.is_empty() {
                    true => "no host with that capability".to_string(),
                    false => tried.join(", "),
                };
                Err(ImageError::ManifestNotFound {
                    reference: reference.to_string(),
                    hosts,
                })
            }
            (None, None) => match errors.into_iter().next() {
                Some(e) => Err(e),
                None => Err(ImageError::ManifestNotFound {
                    reference: format!("{}/{}", self.registry, self.repository),
                    hosts: "no host with the pull capability".to_string(),
                }),
            },
        }
    }

    fn url(&self, h: &Host, tail: &str) -> String {
        let mut url = format!("{}/{}/{tail}", h.ep.base, self.repository);
        if h.ep.mirror {
            url.push_str("?ns=");
            url.push_str(&self.registry);
        }
        url
    }

    fn fetch_manifest(
        &self,
        h: &Host,
        reference: &str,
        wanted: Option<&Digest>,
    ) -> Result<Fetched, ImageError> {
        let url = self.url(h, &format!("manifests/{reference}"));
        let resp = self.get(h, &url, Some(MANIFEST_ACCEPT))?;
        let resp = check_status(h, &url, resp)?;
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(|s| s.trim().to_string())
        };
        let content_type = header("content-type").unwrap_or_default();
        let announced = header("docker-content-digest");
        let body = resp
            .into_body()
            .with_config()
            .limit(MAX_MANIFEST)
            .read_to_vec()
            .map_err(|e| ImageError::Unreachable {
                host: h.ep.host.clone(),
                url: url.clone(),
                source: Box::new(e),
            })?;
        let digest = Digest::of(&body);
        let expected = wanted
            .map(|d| d.to_string())
            .or(announced.filter(|a| Digest::parse(a).is_some()));
        if let Some(expected) = expected {
            if expected != digest.as_str() {
                return Err(ImageError::DigestMismatch {
                    expected,
                    actual: digest.to_string(),
                });
            }
        }
        let media_type = super::manifest::media_type_of(&body).unwrap_or_else(|| {
            content_type
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_string()
        });
        Ok(Fetched {
            body,
            media_type,
            digest,
        })
    }

    /// GET with the host's authorization, answering one 401 challenge.
    fn get(&self, h: &Host, url: &str, accept: Option<&str>) -> Result<Response<Body>, ImageError> {
        let resp = self.send(h, url, accept)?;
        if resp.status().as_u16() != 401 {
            return Ok(resp);
        }
        let challenge = resp
            .headers()
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok())
            .and_then(Challenge::parse);
        let had_auth = h.authorization.borrow().is_some();
        let fail = |detail: &str| ImageError::RegistryStatus {
            host: h.ep.host.clone(),
            url: url.to_string(),
            status: 401,
            detail: format!(": {detail}"),
        };
        let value = match challenge {
            Some(c) if c.scheme == "bearer" => self.token(h, &c)?,
            Some(c) if c.scheme == "basic" => match h.auth.as_ref().and_then(Auth::basic_header) {
                Some(v) if !had_auth => v,
                Some(_) => return Err(fail("the registry refused the credentials")),
                None => {
                    return Err(fail(
                        "the registry wants basic auth and no credentials were given",
                    ))
                }
            },
            Some(c) => return Err(fail(&format!("unsupported auth scheme {:?}", c.scheme))),
            None => return Err(fail("no WWW-Authenticate challenge")),
        };
        *h.authorization.borrow_mut() = Some(value);
        let resp = self.send(h, url, accept)?;
        if resp.status().as_u16() == 401 {
            return Err(fail("the registry refused the credentials"));
        }
        Ok(resp)
    }

    fn send(
        &self,
        h: &Host,
        url: &str,
        accept: Option<&str>,
    ) -> Result<Response<Body>, ImageError> {
        let mut req = h.agent.get(url);
        for (k, v) in &h.ep.headers {
            req = req.header(k.as_str(), v.as_str());
        }
        if let Some(a) = accept {
            req = req.header("Accept", a);
        }
        if let Some(auth) = h.authorization.borrow().as_deref() {
            req = req.header("Authorization", auth);
        }
        req.call().map_err(|e| ImageError::Unreachable {
            host: h.ep.host.clone(),
            url: url.to_string(),
            source: Box::new(e),
        })
    }

    /// Gets a bearer token from the challenge's realm: anonymous, with basic
    /// credentials, or by exchanging an identity (refresh) token.
    fn token(&self, h: &Host, c: &Challenge) -> Result<String, ImageError> {
        let realm = c.param("realm").unwrap_or_default();
        let bad = |reason: String| ImageError::BadResponse {
            host: h.ep.host.clone(),
            what: "token challenge".to_string(),
            reason,
        };
        if !(realm.starts_with("https://") || realm.starts_with("http://")) {
            return Err(bad(format!("realm {realm:?} is not an http(s) URL")));
        }
        let default_scope = format!("repository:{}:pull", self.repository);
        let scope = c.param("scope").unwrap_or(&default_scope);
        let service = c.param("service").unwrap_or_default();
        let realm_host = realm
            .split("://")
            .nth(1)
            .and_then(|r| r.split('/').next())
            .unwrap_or(realm)
            .to_string();
        let auth = h.auth.as_ref();
        let result = match auth.filter(|a| !a.identity_token.is_empty()) {
            Some(a) => h.agent.post(realm).send_form([
                ("grant_type", "refresh_token"),
                ("refresh_token", a.identity_token.as_str()),
                ("service", service),
                ("scope", scope),
                ("client_id", "berth"),
            ]),
            None => {
                let mut req = h.agent.get(realm).query("scope", scope);
                if !service.is_empty() {
                    req = req.query("service", service);
                }
                if let Some(basic) = auth.and_then(Auth::basic_header) {
                    req = req.header("Authorization", basic);
                }
                req.call()
            }
        };
        let resp = result.map_err(|e| ImageError::Unreachable {
            host: realm_host.clone(),
            url: realm.to_string(),
            source: Box::new(e),
        })?;
        let status = resp.status().as_u16();
        if status != 200 {
            let detail = error_detail(resp);
            return Err(ImageError::RegistryStatus {
                host: realm_host,
                url: realm.to_string(),
                status,
                detail: format!(" (token request){detail}"),
            });
        }
        #[derive(serde::Deserialize)]
        struct TokenResponse {
            token: Option<String>,
            access_token: Option<String>,
        }
        let body = resp
            .into_body()
            .with_config()
            .limit(MAX_TOKEN)
            .read_to_vec()
            .map_err(|e| ImageError::Unreachable {
                host: realm_host.clone(),
                url: realm.to_string(),
                source: Box::new(e),
            })?;
        let parsed: TokenResponse =
            serde_json::from_slice(&body).map_err(|e| bad(format!("token response: {e}")))?;
        match parsed
            .token
            .or(parsed.access_token)
            .filter(|t| !t.is_empty())
        {
            Some(t) => Ok(format!("Bearer {t}")),
            None => Err(bad("token response has no token".to_string())),
        }
    }
}

/// Passes 200 through; anything else becomes [`ImageError::RegistryStatus`].
fn check_status(h: &Host, url: &str, resp: Response<Body>) -> Result<Response<Body>, ImageError> {
    let status = resp.status().as_u16();
    if status == 200 {
        return Ok(resp);
    }
    Err(ImageError::RegistryStatus {
        host: h.ep.host.clone(),
        url: url.to_string(),
        status,
        detail: error_detail(resp),
    })
}

/// The registry's error message (distribution's `errors[0].message`) or a short body.
fn error_detail(resp: Response<Body>) -> String {
    let Ok(body) = resp.into_body().with_config().limit(4096).read_to_vec() else {
        return String::new();
    };
    #[derive(serde::Deserialize)]
    struct Errors {
        errors: Vec<ErrorEntry>,
    }
    #[derive(serde::Deserialize)]
    struct ErrorEntry {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    if let Ok(Errors { errors }) = serde_json::from_slice::<Errors>(&body) {
        if let Some(e) = errors.first() {
            return format!(": {} {}", e.code, e.message);
        }
    }
    let text: String = String::from_utf8_lossy(&body).chars().take(200).collect();
    match text.trim() {
        "" => String::new(),
        t => format!(": {t}"),
    }
}
