//! The requests and responses of the Google Cloud APIs `publish gce` uses, as typed serde
//! structures: what is sent is built from these types, and what comes back is read into
//! them, so a field's name and type are written once.
//!
//! References: Cloud Storage `objects` resource
//! (<https://cloud.google.com/storage/docs/json_api/v1/objects#resource>), Compute Engine
//! `images` (<https://cloud.google.com/compute/docs/reference/rest/v1/images>) and
//! `Operation` resources, and OAuth 2.0 token responses (RFC 6749 section 5.1).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The metadata sent when a resumable upload is opened.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectMetadata<'a> {
    pub name: &'a str,
    pub content_type: &'a str,
    /// Base64 of the big-endian CRC32C of the whole object.
    pub crc32c: String,
}

/// An object as Cloud Storage returns it (the fields used here).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Object {
    #[serde(default)]
    pub name: String,
    /// Decimal, as a string (JSON API convention for 64-bit values).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crc32c: Option<String>,
}

/// The `Image` resource sent to `images.insert`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageInsert<'a> {
    pub name: &'a str,
    pub description: &'a str,
    pub labels: &'a BTreeMap<String, String>,
    pub raw_disk: RawDisk,
    pub guest_os_features: Vec<GuestOsFeature>,
    pub architecture: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub family: Option<&'a str>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RawDisk {
    /// `https://storage.googleapis.com/BUCKET/OBJECT`.
    pub source: String,
    /// `TAR`: a gzip-compressed tar holding `disk.raw`.
    pub container_type: &'static str,
}

#[derive(Debug, Serialize)]
pub struct GuestOsFeature {
    #[serde(rename = "type")]
    pub kind: &'static str,
}

/// An image as Compute Engine returns it (the fields used here).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Image {
    #[serde(default)]
    pub name: String,
    /// `READY`, `PENDING`, `FAILED`, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub self_link: Option<String>,
}

/// A Compute Engine operation (the fields used here).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Operation {
    #[serde(default)]
    pub name: String,
    /// `PENDING`, `RUNNING` or `DONE`.
    #[serde(default)]
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<OperationError>,
}

impl Operation {
    pub fn is_done(&self) -> bool {
        self.status == "DONE"
    }

    /// The messages of the operation's `error`, if it has one.
    pub fn errors(&self) -> Option<String> {
        let error = self.error.as_ref()?;
        let text: Vec<String> = error
            .errors
            .iter()
            .map(|e| {
                format!(
                    "{}: {}",
                    e.code.as_deref().unwrap_or("ERROR"),
                    e.message.as_deref().unwrap_or("")
                )
            })
            .collect();
        Some(text.join("; "))
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct OperationError {
    #[serde(default)]
    pub errors: Vec<OperationErrorItem>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct OperationErrorItem {
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
}

/// An OAuth 2.0 token response.
#[derive(Debug, Serialize, Deserialize)]
pub struct Token {
    #[serde(default)]
    pub access_token: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_in: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_type: Option<String>,
}

/// Google's error body: `{"error": {"message": ...}}`.
#[derive(Debug, Deserialize)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Deserialize)]
pub struct ErrorDetail {
    #[serde(default)]
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_image_insert_has_the_fields_and_names_the_api_wants() {
        let labels = BTreeMap::from([("berth-version".to_string(), "0-1-0".to_string())]);
        let body = ImageInsert {
            name: "berth-0-1-0-ab",
            description: "d",
            labels: &labels,
            raw_disk: RawDisk {
                source: "https://storage.googleapis.com/b/o.tar.gz".into(),
                container_type: "TAR",
            },
            guest_os_features: vec![GuestOsFeature {
                kind: "UEFI_COMPATIBLE",
            }],
            architecture: "X86_64",
            family: None,
        };
        let json = serde_json::to_value(&body).unwrap();
        assert_eq!(json["rawDisk"]["containerType"], "TAR");
        assert_eq!(json["guestOsFeatures"][0]["type"], "UEFI_COMPATIBLE");
        assert_eq!(json["labels"]["berth-version"], "0-1-0");
        assert!(json.get("family").is_none());
    }

    #[test]
    fn an_operation_with_errors_says_them_and_unknown_fields_are_ignored() {
        let op: Operation = serde_json::from_str(
            r#"{"name":"op-1","status":"DONE","operationType":"insert",
                "error":{"errors":[{"code":"QUOTA","message":"no room"},{"message":"x"}]}}"#,
        )
        .unwrap();
        assert!(op.is_done());
        assert_eq!(op.errors().as_deref(), Some("QUOTA: no room; ERROR: x"));
        let running: Operation = serde_json::from_str(r#"{"name":"op-2"}"#).unwrap();
        assert!(!running.is_done() && running.errors().is_none());
    }
}
