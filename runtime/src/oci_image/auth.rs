//! Registry credentials and the `WWW-Authenticate` challenges that ask for them.
//!
//! Credentials come from the CRI request (copied by the gRPC layer) or from a host's `auth`
//! table in `hosts.toml`. A registry answers 401 with a `Basic` or `Bearer` challenge;
//! for `Bearer` the client fetches a token from the challenge's realm (see
//! [`client`](super::client)). Secrets never appear in `Debug` output or errors.

use std::fmt;

use base64::Engine as _;
use serde::Deserialize;

/// Credentials for one registry, as in CRI's `AuthConfig`.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Auth {
    /// User name for basic auth or the token service.
    pub username: String,
    /// Password for basic auth or the token service.
    pub password: String,
    /// `base64(username:password)`, used when `username` is empty.
    pub auth: String,
    /// A refresh token exchanged at the token service (OAuth2 `refresh_token` grant).
    #[serde(alias = "identitytoken")]
    pub identity_token: String,
    /// A bearer token sent as is.
    #[serde(alias = "registrytoken")]
    pub registry_token: String,
    /// The registry these credentials are for; empty means the image's registry.
    #[serde(alias = "serveraddress")]
    pub server_address: String,
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let set = |s: &str| if s.is_empty() { "" } else { "<redacted>" };
        f.debug_struct("Auth")
            .field("username", &self.username)
            .field("password", &set(&self.password))
            .field("auth", &set(&self.auth))
            .field("identity_token", &set(&self.identity_token))
            .field("registry_token", &set(&self.registry_token))
            .field("server_address", &self.server_address)
            .finish()
    }
}

impl Auth {
    /// The user and password for basic auth: the explicit fields, else the decoded `auth`.
    pub fn basic(&self) -> Option<(String, String)> {
        if !self.username.is_empty() {
            return Some((self.username.clone(), self.password.clone()));
        }
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(self.auth.trim())
            .ok()?;
        let text = String::from_utf8(decoded).ok()?;
        let (user, pass) = text.split_once(':')?;
        Some((user.to_string(), pass.to_string()))
    }

    /// The `Authorization: Basic …` header value, if there are basic credentials.
    pub fn basic_header(&self) -> Option<String> {
        let (user, pass) = self.basic()?;
        let raw = format!("{user}:{pass}");
        Some(format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        ))
    }

    /// True when these credentials are meant for `registry` (the image's registry name
    /// or an endpoint's `host[:port]`): `server_address` empty or naming it, with or
    /// without a scheme and path, as Docker config keys are written.
    pub fn applies_to(&self, registry: &str) -> bool {
        if self.server_address.is_empty() {
            return true;
        }
        let addr = self.server_address.as_str();
        let addr = addr.split_once("://").map_or(addr, |(_, rest)| rest);
        let addr = addr.split('/').next().unwrap_or(addr);
        let same = |a: &str, b: &str| {
            let hub =
                |h: &str| matches!(h, "docker.io" | "index.docker.io" | "registry-1.docker.io");
            a.eq_ignore_ascii_case(b) || (hub(a) && hub(b))
        };
        same(addr, registry)
    }

    /// True when nothing is set.
    pub fn is_empty(&self) -> bool {
        self.basic().is_none() && self.identity_token.is_empty() && self.registry_token.is_empty()
    }
}

/// One parsed `WWW-Authenticate` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// `basic` or `bearer`, lowercased.
    pub scheme: String,
    /// `(name lowercased, value)` parameters: realm, service, scope, error.
    pub params: Vec<(String, String)>,
}

impl Challenge {
    /// Parses the first challenge of a header value; `None` when there is no scheme.
    pub fn parse(header: &str) -> Option<Self> {
        let header = header.trim_start();
        let end = header
            .find(|c: char| c.is_whitespace())
            .unwrap_or(header.len());
        let scheme = &header[..end];
        if scheme.is_empty()
            || !scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            return None;
        }
        let mut params = Vec::new();
        let mut rest = header[end..].trim_start();
        while !rest.is_empty() {
            let Some(eq) = rest.find('=') else { break };
            let name = rest[..eq]
                .trim()
                .trim_start_matches(',')
                .trim()
                .to_ascii_lowercase();
            rest = rest[eq + 1..].trim_start();
            let value;
            if let Some(quoted) = rest.strip_prefix('"') {
                let mut out = String::new();
                let mut chars = quoted.char_indices();
                let mut consumed = quoted.len();
                while let Some((i, c)) = chars.next() {
                    match c {
                        '\\' => {
                            if let Some((_, n)) = chars.next() {
                                out.push(n);
                            }
                        }
                        '"' => {
                            consumed = i + 1;
                            break;
                        }
                        c => out.push(c),
                    }
                }
                value = out;
                rest = &quoted[consumed..];
            } else {
                let end = rest.find(',').unwrap_or(rest.len());
                value = rest[..end].trim().to_string();
                rest = &rest[end..];
            }
            rest = rest.trim_start().trim_start_matches(',').trim_start();
            if !name.is_empty() {
                params.push((name, value));
            }
        }
        Some(Challenge {
            scheme: scheme.to_ascii_lowercase(),
            params,
        })
    }

    /// A parameter's value by (lowercase) name.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_docker_hub_bearer_challenge() {
        let c = Challenge::parse(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull""#,
        )
        .unwrap();
        assert_eq!(c.scheme, "bearer");
        assert_eq!(c.param("realm"), Some("https://auth.docker.io/token"));
        assert_eq!(c.param("service"), Some("registry.docker.io"));
        assert_eq!(c.param("scope"), Some("repository:library/busybox:pull"));
    }

    #[test]
    fn parses_basic_and_unquoted_and_escaped_values() {
        let c = Challenge::parse(r#"Basic realm="a \"quoted\" realm", charset=UTF-8"#).unwrap();
        assert_eq!(c.scheme, "basic");
        assert_eq!(c.param("realm"), Some(r#"a "quoted" realm"#));
        assert_eq!(c.param("charset"), Some("UTF-8"));
        assert!(Challenge::parse("").is_none());
    }

    #[test]
    fn basic_credentials_from_fields_or_auth_string() {
        let a = Auth {
            username: "u".into(),
            password: "p".into(),
            ..Auth::default()
        };
        assert_eq!(a.basic_header().as_deref(), Some("Basic dTpw"));
        let b = Auth {
            auth: "dTpw".into(),
            ..Auth::default()
        };
        assert_eq!(b.basic(), Some(("u".into(), "p".into())));
        assert!(Auth::default().is_empty());
        assert!(!format!("{b:?}").contains("dTpw"));
    }

    #[test]
    fn server_address_matching() {
        let a = Auth {
            server_address: "https://index.docker.io/v1/".into(),
            ..Auth::default()
        };
        assert!(a.applies_to("docker.io"));
        assert!(!a.applies_to("quay.io"));
        assert!(Auth::default().applies_to("anything"));
    }

    proptest! {
        #[test]
        fn challenge_parser_never_panics(s in "\\PC{0,120}") {
            let _ = Challenge::parse(&s);
        }

        #[test]
        fn quoted_params_round_trip(realm in "[ -!#-\\[\\]-~]{0,30}", scope in "[a-z:/]{0,20}") {
            let h = format!("Bearer realm=\"{realm}\",scope=\"{scope}\"");
            let c = Challenge::parse(&h).unwrap();
            prop_assert_eq!(c.param("realm"), Some(realm.as_str()));
            prop_assert_eq!(c.param("scope"), Some(scope.as_str()));
        }
    }
}
