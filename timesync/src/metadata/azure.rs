//! Azure IMDS: `GET /metadata/instance?api-version=2021-02-01` with `Metadata: true`
//! gives the instance as JSON (the host name is `compute.osProfile.computerName`, else
//! `compute.name`); the user data is `/metadata/instance/compute/userData`, base64 text,
//! empty when there is none.

use base64::Engine;

use super::http::Http;
use super::{short_hostname, Metadata, MetadataError};

const METADATA: (&str, &str) = ("Metadata", "true");

pub fn fetch(http: &Http, base: &str) -> Result<Metadata, MetadataError> {
    let url = format!("{base}/metadata/instance?api-version=2021-02-01");
    let reply = http.get(&url, &[METADATA])?;
    if reply.status != 200 {
        return Err(MetadataError::Status {
            method: "GET",
            url,
            status: reply.status,
        });
    }
    let garbage = |what: &'static str, reason: String| MetadataError::Garbage {
        url: url.clone(),
        what,
        reason,
    };
    let instance: serde_json::Value = serde_json::from_slice(&reply.body)
        .map_err(|e| garbage("instance document", format!("not JSON: {e}")))?;
    let compute = &instance["compute"];
    let raw = [&compute["osProfile"]["computerName"], &compute["name"]]
        .into_iter()
        .filter_map(|v| v.as_str())
        .find(|s| !s.trim().is_empty())
        .ok_or_else(|| {
            garbage(
                "instance document",
                "neither compute.osProfile.computerName nor compute.name is a name".into(),
            )
        })?;
    let hostname = short_hostname(raw).map_err(|reason| MetadataError::Hostname {
        url: url.clone(),
        value: raw.chars().take(80).collect(),
        reason,
    })?;

    let url =
        format!("{base}/metadata/instance/compute/userData?api-version=2021-01-01&format=text");
    let reply = http.get(&url, &[METADATA])?;
    let user_data = match reply.status {
        200 => {
            let text = String::from_utf8_lossy(&reply.body);
            let text = text.trim();
            if text.is_empty() {
                None
            } else {
                Some(
                    base64::engine::general_purpose::STANDARD
                        .decode(text)
                        .map_err(|e| MetadataError::Garbage {
                            url: url.clone(),
                            what: "user data",
                            reason: format!("not base64: {e}"),
                        })?,
                )
            }
        }
        404 => None,
        status => {
            return Err(MetadataError::Status {
                method: "GET",
                url,
                status,
            })
        }
    };
    Ok(Metadata {
        hostname,
        user_data,
    })
}
