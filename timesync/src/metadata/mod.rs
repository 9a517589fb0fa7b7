//! The instance's host name and user data from the cloud's metadata service.
//!
//! The cloud comes from SMBIOS ([`crate::cloud`]); outside a cloud there is nothing to
//! ask and nothing is waited for. Each cloud's protocol is its own module: GCE's
//! `Metadata-Flavor: Google` header ([`gce`]), AWS IMDSv2's session token ([`aws`]),
//! Azure IMDS's `Metadata: true` and base64 user data ([`azure`]). Everything is fetched
//! before anything is written ([`output`]): a service that hangs or answers garbage
//! leaves no half-written state, only an error naming the request that failed.

pub mod aws;
pub mod azure;
pub mod gce;
pub mod http;
pub mod output;

use std::path::PathBuf;

use thiserror::Error;

use crate::cloud::Cloud;
pub use http::{Http, HttpOptions};

/// The link-local address every one of the three clouds serves its metadata on.
pub const DEFAULT_BASE: &str = "http://169.254.169.254";

/// What the metadata service said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metadata {
    /// The instance's host name, its first label, checked (RFC 1123, lower case).
    pub hostname: String,
    /// The user data, as given; `None` when the instance has none.
    pub user_data: Option<Vec<u8>>,
}

#[derive(Debug, Error)]
pub enum MetadataError {
    #[error("{method} {url}: {source} (after {tries} tries)")]
    Request {
        method: &'static str,
        url: String,
        tries: u32,
        source: Box<ureq::Error>,
    },
    #[error("{method} {url}: HTTP status {status}")]
    Status {
        method: &'static str,
        url: String,
        status: u16,
    },
    #[error("{url}: the reply lacks the header {header}: {value} (not the metadata server)")]
    MissingHeader {
        url: String,
        header: &'static str,
        value: &'static str,
    },
    #[error("{url}: the host name {value:?} is not usable: {reason}")]
    Hostname {
        url: String,
        value: String,
        reason: String,
    },
    #[error("{url}: {what}: {reason}")]
    Garbage {
        url: String,
        what: &'static str,
        reason: String,
    },
    #[error("writing {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Fetches the host name and user data of `cloud` from the service at `base`
/// (`http://169.254.169.254`, or a test server).
pub fn fetch(cloud: Cloud, http: &Http, base: &str) -> Result<Metadata, MetadataError> {
    let base = base.trim_end_matches('/');
    match cloud {
        Cloud::Gce => gce::fetch(http, base),
        Cloud::Aws => aws::fetch(http, base),
        Cloud::Azure => azure::fetch(http, base),
    }
}

/// The first label of a host name or FQDN, lower-cased and checked as a RFC 1123 label
/// (what `sethostname` and a Kubernetes node name accept).
pub fn short_hostname(raw: &str) -> Result<String, String> {
    let label = raw
        .trim()
        .split('.')
        .next()
        .unwrap_or("")
        .to_ascii_lowercase();
    if label.is_empty() {
        return Err("it is empty".into());
    }
    if label.len() > 63 {
        return Err(format!(
            "its first label is {} characters, more than 63",
            label.len()
        ));
    }
    if let Some(c) = label
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
    {
        return Err(format!("it contains {c:?}"));
    }
    if label.starts_with('-') || label.ends_with('-') {
        return Err("it starts or ends with '-'".into());
    }
    Ok(label)
}

/// The checked host name, or an error naming `url`.
pub(crate) fn hostname_from(url: &str, raw: &[u8]) -> Result<String, MetadataError> {
    let text = String::from_utf8_lossy(raw);
    short_hostname(&text).map_err(|reason| MetadataError::Hostname {
        url: url.to_owned(),
        value: text.chars().take(80).collect(),
        reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn host_names_are_first_labels() {
        assert_eq!(
            short_hostname("node-1.us-central1-a.c.proj.internal\n").unwrap(),
            "node-1"
        );
        assert_eq!(
            short_hostname("ip-10-0-0-1.ec2.internal").unwrap(),
            "ip-10-0-0-1"
        );
        assert_eq!(short_hostname("MyVM").unwrap(), "myvm");
        for bad in ["", ".x", "a_b", "-a", "a-", &"a".repeat(64), "<html>"] {
            assert!(short_hostname(bad).is_err(), "{bad:?}");
        }
    }

    proptest! {
        #[test]
        fn an_accepted_name_is_a_label(raw in "\\PC{0,80}") {
            if let Ok(name) = short_hostname(&raw) {
                prop_assert!(!name.is_empty() && name.len() <= 63);
                prop_assert!(name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'));
            }
        }
    }
}
