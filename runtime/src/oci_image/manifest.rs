//! The JSON documents of an image (index, manifest, config) in their OCI and Docker v2
//! forms, read leniently (unknown fields ignored) but checked for what the pull relies
//! on: media types, digests, and one diff id per layer.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::digest::Digest;

pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";

/// The `Accept` header for manifest requests: every form we can read.
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
application/vnd.oci.image.manifest.v1+json, \
application/vnd.docker.distribution.manifest.list.v2+json, \
application/vnd.docker.distribution.manifest.v2+json";

/// What kind of top-level document a media type names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Index,
    Manifest,
}

/// Classifies a manifest media type.
pub fn kind_of(media_type: &str) -> Option<Kind> {
    match media_type {
        OCI_INDEX | DOCKER_LIST => Some(Kind::Index),
        OCI_MANIFEST | DOCKER_MANIFEST => Some(Kind::Manifest),
        _ => None,
    }
}

/// True for the layer media types we can unpack (OCI and Docker; tar, gzip, zstd;
/// distributable or not). The compression itself is detected from the bytes.
pub fn is_layer(media_type: &str) -> bool {
    matches!(
        media_type,
        "application/vnd.oci.image.layer.v1.tar"
            | "application/vnd.oci.image.layer.v1.tar+gzip"
            | "application/vnd.oci.image.layer.v1.tar+zstd"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd"
            | "application/vnd.docker.image.rootfs.diff.tar.gzip"
            | "application/vnd.docker.image.rootfs.diff.tar"
            | "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
    )
}

/// The `mediaType` field of a manifest body, when it has one.
pub fn media_type_of(body: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct Probe {
        #[serde(rename = "mediaType")]
        media_type: Option<String>,
    }
    serde_json::from_slice::<Probe>(body)
        .ok()?
        .media_type
        .filter(|m| !m.is_empty())
}

/// A content descriptor.
#[derive(Debug, Clone, Deserialize)]
pub struct Descriptor {
    #[serde(rename = "mediaType", default)]
    pub media_type: String,
    pub digest: String,
    pub size: i64,
    #[serde(default)]
    pub platform: Option<Platform>,
}

impl Descriptor {
    /// The validated digest; `None` if it is not `sha256:<hex>`.
    pub fn digest(&self) -> Option<Digest> {
        Digest::parse(&self.digest)
    }

    /// The size, if it is not negative.
    pub fn size(&self) -> Option<u64> {
        u64::try_from(self.size).ok()
    }
}

/// A descriptor's platform.
#[derive(Debug, Clone, Deserialize)]
pub struct Platform {
    #[serde(default)]
    pub os: String,
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub variant: Option<String>,
}

/// An OCI index or Docker manifest list.
#[derive(Debug, Deserialize)]
pub struct Index {
    pub manifests: Vec<Descriptor>,
}

impl Index {
    /// The first linux/amd64 entry, any variant (as containerd's default matcher).
    pub fn linux_amd64(&self) -> Option<&Descriptor> {
        self.manifests.iter().find(|d| {
            d.platform
                .as_ref()
                .is_some_and(|p| p.os == "linux" && p.architecture == "amd64")
        })
    }
}

/// An OCI image manifest or Docker v2 schema 2 manifest.
#[derive(Debug, Deserialize)]
pub struct Manifest {
    pub config: Descriptor,
    #[serde(default)]
    pub layers: Vec<Descriptor>,
}

/// The parts of the image config the runtime uses.
#[derive(Debug, Deserialize)]
pub struct ImageConfigFile {
    #[serde(default)]
    pub config: Option<RunConfig>,
    pub rootfs: RootFs,
}

/// The image's `config` object (how to run it).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RunConfig {
    #[serde(default)]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default)]
    pub cmd: Option<Vec<String>>,
    #[serde(default)]
    pub env: Option<Vec<String>>,
    #[serde(default)]
    pub working_dir: Option<String>,
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub stop_signal: Option<String>,
}

/// `rootfs`: the diff ids, one per layer, bottom first.
#[derive(Debug, Deserialize)]
pub struct RootFs {
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default)]
    pub diff_ids: Vec<String>,
}

/// What the CRI reports about an image's config (ImageStatus' `spec` and `uid`/`username`
/// come from here, and the container spec's defaults).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageConfigSummary {
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    pub working_dir: String,
    pub user: String,
    pub labels: BTreeMap<String, String>,
    pub stop_signal: String,
}

impl From<RunConfig> for ImageConfigSummary {
    fn from(c: RunConfig) -> Self {
        ImageConfigSummary {
            entrypoint: c.entrypoint.unwrap_or_default(),
            cmd: c.cmd.unwrap_or_default(),
            env: c.env.unwrap_or_default(),
            working_dir: c.working_dir.unwrap_or_default(),
            user: c.user.unwrap_or_default(),
            labels: c.labels.unwrap_or_default(),
            stop_signal: c.stop_signal.unwrap_or_default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_picks_linux_amd64_any_variant() {
        let idx: Index = serde_json::from_str(
            r#"{"schemaVersion":2,"manifests":[
              {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:aa","size":1,"platform":{"os":"linux","architecture":"arm64","variant":"v8"}},
              {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:bb","size":1,"platform":{"os":"unknown","architecture":"unknown"}},
              {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:cc","size":1,"platform":{"os":"linux","architecture":"amd64","variant":"v3"}}
            ]}"#,
        )
        .unwrap();
        assert_eq!(idx.linux_amd64().unwrap().digest, "sha256:cc");
    }

    #[test]
    fn config_summary_from_docker_config() {
        let c: ImageConfigFile = serde_json::from_str(
            r#"{"architecture":"amd64","os":"linux","config":{"Entrypoint":["/bin/sh"],"Cmd":null,"Env":["A=1"],"WorkingDir":"/w","User":"1000:1000","Labels":{"k":"v"},"StopSignal":"SIGQUIT"},"rootfs":{"type":"layers","diff_ids":["sha256:00"]}}"#,
        )
        .unwrap();
        let s = ImageConfigSummary::from(c.config.unwrap());
        assert_eq!(s.entrypoint, ["/bin/sh"]);
        assert!(s.cmd.is_empty());
        assert_eq!(s.user, "1000:1000");
        assert_eq!(s.stop_signal, "SIGQUIT");
        assert_eq!(c.rootfs.diff_ids.len(), 1);
    }

    #[test]
    fn media_types() {
        assert_eq!(kind_of(DOCKER_LIST), Some(Kind::Index));
        assert_eq!(kind_of(OCI_MANIFEST), Some(Kind::Manifest));
        assert_eq!(
            kind_of("application/vnd.docker.distribution.manifest.v1+prettyjws"),
            None
        );
        assert!(is_layer("application/vnd.oci.image.layer.v1.tar+zstd"));
        assert!(!is_layer("application/vnd.oci.image.config.v1+json"));
        assert_eq!(media_type_of(br#"{"mediaType":"x"}"#).as_deref(), Some("x"));
        assert_eq!(media_type_of(b"not json"), None);
    }
}
