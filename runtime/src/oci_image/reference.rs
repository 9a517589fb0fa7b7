//! Image references as users write them (`busybox`, `registry.k8s.io/pause:3.10`,
//! `repo@sha256:…`), parsed by the grammar of distribution's `reference` package and
//! normalized the way Docker and containerd do, so the names the kubelet compares come
//! out identical: `busybox` is `docker.io/library/busybox:latest`.

use std::fmt;

use super::digest::Digest;
use super::error::ImageError;

/// The registry that short names (`busybox`, `user/app`) belong to.
pub const DOCKER_HUB: &str = "docker.io";

/// A normalized image reference: registry, repository and a tag or a digest.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    /// `docker.io`, `registry.k8s.io`, `127.0.0.1:5000`.
    pub registry: String,
    /// `library/busybox`, `pause`.
    pub repository: String,
    /// The tag; `latest` when neither tag nor digest was given, `None` when pulled by digest.
    pub tag: Option<String>,
    /// The manifest (or index) digest when the reference names one.
    pub digest: Option<Digest>,
}

impl Reference {
    /// Parses and normalizes `s`.
    pub fn parse(s: &str) -> Result<Self, ImageError> {
        let bad = |reason: &str| ImageError::InvalidReference {
            reference: s.to_string(),
            reason: reason.to_string(),
        };
        if s.is_empty() {
            return Err(bad("empty"));
        }
        let (rest, digest) = match s.split_once('@') {
            Some((rest, d)) => {
                let digest = Digest::parse(d)
                    .ok_or_else(|| bad("the digest must be sha256:<64 lowercase hex>"))?;
                (rest, Some(digest))
            }
            None => (s, None),
        };
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
            None => (rest, None),
        };
        if let Some(tag) = tag {
            if !valid_tag(tag) {
                return Err(bad("the tag must match [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"));
            }
        }
        let (registry, path) = split_domain(name);
        if !registry.is_empty() && !valid_domain(registry) {
            return Err(bad("bad registry host"));
        }
        if path.is_empty() || !path.split('/').all(valid_path_component) {
            return Err(bad(
                "repository path components must be lowercase letters and digits, joined by '.', '_', '__' or '-'",
            ));
        }
        if name.len() > 255 {
            return Err(bad("the name is longer than 255 characters"));
        }
        let mut registry = match registry {
            "" | "index.docker.io" => DOCKER_HUB.to_string(),
            other => other.to_string(),
        };
        let mut repository = path.to_string();
        if registry == DOCKER_HUB && !repository.contains('/') {
            repository = format!("library/{repository}");
        }
        if registry == DOCKER_HUB && super::digest::is_sha256_hex(path) {
            return Err(bad(
                "a 64-character hex string is an image id, not a repository name",
            ));
        }
        registry.make_ascii_lowercase();
        // A digest pins the content: a tag next to it is not verified, so it is dropped,
        // as Docker's ParseDockerRef does.
        let tag = match (&digest, tag) {
            (Some(_), _) => None,
            (None, Some(t)) => Some(t.to_string()),
            (None, None) => Some("latest".to_string()),
        };
        Ok(Reference {
            registry,
            repository,
            tag,
            digest,
        })
    }

    /// `registry/repository`, the name repo tags and repo digests start with.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// What to ask the registry's manifest endpoint for: the digest if there is one.
    pub fn manifest_ref(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => "latest".to_string(),
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

/// Splits `name` into (registry, path) the way Docker does: the first component is a
/// registry when it has a '.' or ':', is `localhost`, or has an uppercase letter.
fn split_domain(name: &str) -> (&str, &str) {
    match name.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first.chars().any(|c| c.is_ascii_uppercase()) =>
        {
            (first, rest)
        }
        _ => ("", name),
    }
}

fn valid_tag(tag: &str) -> bool {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut chars = tag.chars();
    tag.len() <= 128
        && chars.next().is_some_and(word)
        && chars.all(|c| word(c) || c == '.' || c == '-')
}

/// `[a-z0-9]+` joined by `.`, `_`, `__` or any number of `-`.
fn valid_path_component(comp: &str) -> bool {
    let bytes = comp.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if bytes.is_empty() || !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        if alnum(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !alnum(bytes[i]) {
            i += 1;
        }
        let sep = &comp[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|b| b == b'-');
        if !ok {
            return false;
        }
    }
    true
}

/// `host[:port]` where host is dotted DNS labels or a bracketed IPv6 address.
fn valid_domain(domain: &str) -> bool {
    let (host, port) = if domain.starts_with('[') {
        match domain.find(']') {
            Some(end) => (&domain[..=end], &domain[end + 1..]),
            None => return false,
        }
    } else {
        match domain.find(':') {
            Some(i) => (&domain[..i], &domain[i..]),
            None => (domain, ""),
        }
    };
    let port_ok = port.is_empty()
        || port.strip_prefix(':').is_some_and(|p| {
            !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit())
        });
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    let host_ok = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(v6) => {
            !v6.is_empty()
                && v6
                    .chars()
                    .all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.')
        }
        None => host.split('.').all(label_ok),
    };
    host_ok && port_ok
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn norm(s: &str) -> String {
        Reference::parse(s).unwrap().to_string()
    }

    #[test]
    fn short_names_normalize_to_docker_hub() {
        assert_eq!(norm("busybox"), "docker.io/library/busybox:latest");
        assert_eq!(norm("busybox:1.36"), "docker.io/library/busybox:1.36");
        assert_eq!(norm("user/app"), "docker.io/user/app:latest");
        assert_eq!(
            norm("docker.io/busybox"),
            "docker.io/library/busybox:latest"
        );
        assert_eq!(
            norm("index.docker.io/library/busybox"),
            "docker.io/library/busybox:latest"
        );
    }

    #[test]
    fn registries_are_recognized_by_dot_colon_or_localhost() {
        let r = Reference::parse("registry.k8s.io/pause:3.10").unwrap();
        assert_eq!(
            (r.registry.as_str(), r.repository.as_str()),
            ("registry.k8s.io", "pause")
        );
        let r = Reference::parse("localhost/a/b").unwrap();
        assert_eq!(
            (r.registry.as_str(), r.repository.as_str()),
            ("localhost", "a/b")
        );
        let r = Reference::parse("127.0.0.1:5000/test/busybox:1").unwrap();
        assert_eq!(r.registry, "127.0.0.1:5000");
        assert_eq!(r.tag.as_deref(), Some("1"));
        let r = Reference::parse("[::1]:5000/x").unwrap();
        assert_eq!(r.registry, "[::1]:5000");
    }

    #[test]
    fn digests_pin_and_drop_the_tag() {
        let d = format!("sha256:{}", "ab".repeat(32));
        let r = Reference::parse(&format!("busybox:1@{d}")).unwrap();
        assert_eq!(r.tag, None);
        assert_eq!(r.manifest_ref(), d);
        assert_eq!(r.to_string(), format!("docker.io/library/busybox@{d}"));
    }

    #[test]
    fn bad_references_are_invalid_arguments_naming_the_input() {
        for bad in [
            "",
            "Busybox",
            "busybox:",
            "busybox@sha256:abc",
            "busybox@md5:0123",
            "a//b",
            "-a",
            "a_-b",
            "host:port/x",
            "busybox:-tag",
            &"a".repeat(300),
            &"0".repeat(64),
        ] {
            let err = Reference::parse(bad).unwrap_err();
            assert!(
                matches!(err, ImageError::InvalidReference { .. }),
                "{bad}: {err}"
            );
            assert!(err.to_string().contains(&format!("{bad:?}")), "{err}");
        }
    }

    fn component() -> impl Strategy<Value = String> {
        "[a-z0-9]{1,5}([._-][a-z0-9]{1,5}){0,2}"
    }

    proptest! {
        #[test]
        fn never_panics(s in "\\PC{0,80}") {
            let _ = Reference::parse(&s);
        }

        #[test]
        fn normalized_form_round_trips(
            host in proptest::option::of("[a-z]{1,8}\\.[a-z]{2,4}(:[0-9]{1,5})?"),
            first in "[a-z0-9]{1,5}(-[a-z0-9]{1,5})?",
            more in proptest::collection::vec(component(), 0..3),
            tag in proptest::option::of("[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}"),
            digest in proptest::option::of("[0-9a-f]{64}"),
        ) {
            let path: Vec<String> = std::iter::once(first).chain(more).collect();
            let mut s = match &host { Some(h) => format!("{h}/{}", path.join("/")), None => path.join("/") };
            if let Some(t) = &tag { s.push(':'); s.push_str(t); }
            if let Some(d) = &digest { s.push_str("@sha256:"); s.push_str(d); }
            let r = Reference::parse(&s).unwrap();
            prop_assert_eq!(Reference::parse(&r.to_string()).unwrap(), r.clone());
            prop_assert_eq!(r.registry.as_str(), host.as_deref().unwrap_or(DOCKER_HUB));
            prop_assert!(r.tag.is_some() != r.digest.is_some());
        }
    }
}
