//! The release manifest: the build's `manifest.json`, extended with what a release adds —
//! the build time (from `SOURCE_DATE_EPOCH`), the Rust crates in the image, the release
//! tools' versions and every artifact with its size and sha256. This is the file that is
//! signed: it binds the root hash (and so every byte of the root) to the artifacts.
//!
//! The build manifest is read leniently: the fields a release needs are checked, every
//! other field (a kernel section, say, as the boot work adds one) is carried over as it
//! is, so the release does not have to change whenever the build learns something new.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::{Map, Value};

use super::crates::Crate;
use super::{rfc3339, Artifact};

/// Errors reading a manifest.
#[derive(Debug, thiserror::Error)]
pub enum ReleaseManifestError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a Berth manifest: {reason}")]
    Invalid { path: PathBuf, reason: String },
}

/// The fields of a (build or release) manifest that releasing and verifying use.
#[derive(Debug, Clone, Deserialize)]
pub struct Facts {
    pub name: String,
    pub version: String,
    #[serde(default)]
    pub variant: String,
    pub source_date_epoch: u64,
    pub root_hash: String,
    pub disk: DiskFacts,
    #[serde(default)]
    pub packages: Vec<PackageFacts>,
    #[serde(default)]
    pub kernel: Option<KernelFacts>,
    #[serde(default)]
    pub artifacts: Vec<Artifact>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct DiskFacts {
    pub size: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PackageFacts {
    pub name: String,
    pub version: String,
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub sha256: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct KernelFacts {
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub cmdline: String,
}

impl Facts {
    /// The artifact entry named `name`, if the manifest lists one.
    pub fn artifact(&self, name: &str) -> Option<&Artifact> {
        self.artifacts.iter().find(|a| a.name == name)
    }
}

/// A manifest: its JSON as written, and the facts checked out of it.
#[derive(Debug, Clone)]
pub struct ReleaseManifest {
    pub json: Map<String, Value>,
    pub facts: Facts,
}

impl ReleaseManifest {
    pub fn read(path: &Path) -> Result<ReleaseManifest, ReleaseManifestError> {
        let bytes = std::fs::read(path).map_err(|source| ReleaseManifestError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        ReleaseManifest::parse(&bytes, path)
    }

    /// Parses manifest bytes; `path` is for messages.
    pub fn parse(bytes: &[u8], path: &Path) -> Result<ReleaseManifest, ReleaseManifestError> {
        let invalid = |reason: String| ReleaseManifestError::Invalid {
            path: path.to_path_buf(),
            reason,
        };
        let json: Map<String, Value> =
            serde_json::from_slice(bytes).map_err(|e| invalid(e.to_string()))?;
        let facts: Facts = serde_json::from_value(Value::Object(json.clone()))
            .map_err(|e| invalid(e.to_string()))?;
        if facts.root_hash.len() != 64 || hex::decode(&facts.root_hash).is_err() {
            return Err(invalid(format!(
                "root_hash {:?} is not 64 hex digits",
                facts.root_hash
            )));
        }
        Ok(ReleaseManifest { json, facts })
    }

    /// The release manifest: this (build) manifest with the build time, the crates, the
    /// host tools that shaped the artifacts, and the artifacts themselves.
    pub fn for_release(
        &self,
        crates: &[Crate],
        tools: &[String],
        artifacts: &[Artifact],
    ) -> ReleaseManifest {
        let mut json = self.json.clone();
        json.insert(
            "build_time".into(),
            Value::String(rfc3339(self.facts.source_date_epoch)),
        );
        json.insert("crates".into(), to_value(crates));
        let mut all_tools: Vec<Value> = json
            .get("tools")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for tool in tools {
            let tool = Value::String(tool.clone());
            if !all_tools.contains(&tool) {
                all_tools.push(tool);
            }
        }
        json.insert("tools".into(), Value::Array(all_tools));
        let mut sorted = artifacts.to_vec();
        sorted.sort_by(|a, b| a.name.cmp(&b.name));
        json.insert("artifacts".into(), to_value(&sorted));
        let mut facts = self.facts.clone();
        facts.artifacts = sorted;
        ReleaseManifest { json, facts }
    }

    /// Pretty JSON with sorted keys and a final newline: the bytes that are signed.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = serde_json::to_vec_pretty(&self.json).unwrap_or_default();
        bytes.push(b'\n');
        bytes
    }
}

fn to_value<T: serde::Serialize + ?Sized>(value: &T) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn build_manifest_json() -> String {
        r#"{
  "name": "berth", "version": "0.1.0", "variant": "default",
  "source_date_epoch": 1700000000,
  "root_hash": "35fee47e75efb4de9596020b1dad609931b24b2835fb74ac96220bcf7d0f9023",
  "verity": {"salt": "00"},
  "disk": {"size": 27262976, "partitions": []},
  "kernel": {"version": "6.1.0-28-cloud-amd64", "cmdline": "console=ttyS0 roothash=35fe", "future": 1},
  "packages": [{"name": "libc6", "version": "2.36-9+deb12u9", "architecture": "amd64", "sha256": "ab"}],
  "tools": ["e2fsprogs 1.47.0"],
  "artifacts": [{"name": "berth.raw", "size": 27262976, "sha256": "cd"}],
  "something_new": {"kept": true}
}"#
        .into()
    }

    #[test]
    fn release_manifest_keeps_unknown_fields_and_adds_its_own() {
        let m =
            ReleaseManifest::parse(build_manifest_json().as_bytes(), Path::new("m.json")).unwrap();
        assert_eq!(
            m.facts.kernel.as_ref().unwrap().version,
            "6.1.0-28-cloud-amd64"
        );
        let crates = [Crate {
            name: "sha2".into(),
            version: "0.10.9".into(),
            source: None,
            checksum: None,
        }];
        let artifacts = [
            Artifact {
                name: "z".into(),
                size: 1,
                sha256: "00".into(),
            },
            Artifact {
                name: "a".into(),
                size: 2,
                sha256: "11".into(),
            },
        ];
        let r = m.for_release(&crates, &["qemu-img version 7.2.0".into()], &artifacts);
        let text = String::from_utf8(r.to_bytes()).unwrap();
        let back = ReleaseManifest::parse(text.as_bytes(), Path::new("r.json")).unwrap();
        assert_eq!(back.json["build_time"], "2023-11-14T22:13:20Z");
        assert_eq!(back.json["something_new"]["kept"], true);
        assert_eq!(back.json["kernel"]["future"], 1);
        assert_eq!(back.json["crates"][0]["name"], "sha2");
        assert_eq!(back.json["tools"].as_array().unwrap().len(), 2);
        assert_eq!(back.facts.artifacts[0].name, "a");
        assert_eq!(r.to_bytes(), back.to_bytes(), "stable bytes");
    }

    #[test]
    fn bad_manifests_name_the_problem() {
        let err = ReleaseManifest::parse(b"{\"name\": 1}", Path::new("m.json")).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("m.json is not a Berth manifest"),
            "{err}"
        );
        let text = build_manifest_json().replace("35fee47e", "zz");
        let err = ReleaseManifest::parse(text.as_bytes(), Path::new("m.json")).unwrap_err();
        assert!(err.to_string().contains("root_hash"), "{err}");
    }
}
