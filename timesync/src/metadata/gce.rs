//! GCE's metadata server: `GET /computeMetadata/v1/…` with `Metadata-Flavor: Google`;
//! a genuine reply carries the same header back, which tells the real server from
//! anything else that answers on the address. User data is the instance attribute
//! `user-data` (404 when unset), the key cloud-init and COS read.

use super::http::Http;
use super::{hostname_from, Metadata, MetadataError};

const FLAVOR: (&str, &str) = ("Metadata-Flavor", "Google");

fn get(http: &Http, url: &str) -> Result<Option<Vec<u8>>, MetadataError> {
    let reply = http.get(url, &[FLAVOR])?;
    if reply.header(FLAVOR.0) != Some(FLAVOR.1) {
        return Err(MetadataError::MissingHeader {
            url: url.to_owned(),
            header: FLAVOR.0,
            value: FLAVOR.1,
        });
    }
    match reply.status {
        200 => Ok(Some(reply.body)),
        404 => Ok(None),
        status => Err(MetadataError::Status {
            method: "GET",
            url: url.to_owned(),
            status,
        }),
    }
}

pub fn fetch(http: &Http, base: &str) -> Result<Metadata, MetadataError> {
    let url = format!("{base}/computeMetadata/v1/instance/hostname");
    let raw = get(http, &url)?.ok_or_else(|| MetadataError::Status {
        method: "GET",
        url: url.clone(),
        status: 404,
    })?;
    let hostname = hostname_from(&url, &raw)?;
    let user_data = get(
        http,
        &format!("{base}/computeMetadata/v1/instance/attributes/user-data"),
    )?;
    Ok(Metadata {
        hostname,
        user_data,
    })
}
