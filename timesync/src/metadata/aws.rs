//! AWS IMDSv2: a session token first (`PUT /latest/api/token` with its lifetime in
//! `X-aws-ec2-metadata-token-ttl-seconds`), then every `GET` with the token in
//! `X-aws-ec2-metadata-token`. IMDSv1 (no token) is never used: instances may (and
//! should) disable it. User data is `/latest/user-data`, 404 when there is none.

use super::http::Http;
use super::{hostname_from, Metadata, MetadataError};

/// The token is used for a few seconds: ask for a short life.
const TOKEN_TTL_SECONDS: &str = "60";

fn status_error(method: &'static str, url: &str, status: u16) -> MetadataError {
    MetadataError::Status {
        method,
        url: url.to_owned(),
        status,
    }
}

pub fn fetch(http: &Http, base: &str) -> Result<Metadata, MetadataError> {
    let token_url = format!("{base}/latest/api/token");
    let reply = http.put(
        &token_url,
        &[("X-aws-ec2-metadata-token-ttl-seconds", TOKEN_TTL_SECONDS)],
    )?;
    if reply.status != 200 {
        return Err(status_error("PUT", &token_url, reply.status));
    }
    let token = String::from_utf8(reply.body)
        .ok()
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_graphic()))
        .ok_or_else(|| MetadataError::Garbage {
            url: token_url.clone(),
            what: "session token",
            reason: "not a printable ASCII token".into(),
        })?;
    let auth = [("X-aws-ec2-metadata-token", token.as_str())];

    let url = format!("{base}/latest/meta-data/local-hostname");
    let reply = http.get(&url, &auth)?;
    if reply.status != 200 {
        return Err(status_error("GET", &url, reply.status));
    }
    let hostname = hostname_from(&url, &reply.body)?;

    let url = format!("{base}/latest/user-data");
    let reply = http.get(&url, &auth)?;
    let user_data = match reply.status {
        200 => Some(reply.body),
        404 => None,
        status => return Err(status_error("GET", &url, status)),
    };
    Ok(Metadata {
        hostname,
        user_data,
    })
}
