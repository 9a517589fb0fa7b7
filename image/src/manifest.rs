//! `manifest.json`: what a build produced — partition table, root hash and salt, packages
//! with versions, and the sha256 of every artifact — written deterministically (sorted keys,
//! no wall-clock time) so that it is itself a reproducible artifact.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuildManifest {
    pub name: String,
    pub version: String,
    pub variant: String,
    pub source_date_epoch: u64,
    pub root_hash: String,
    pub verity: VeritySummary,
    pub disk: DiskSummary,
    /// The kernel, its command line and the initramfs.
    #[serde(default)]
    pub kernel: Option<KernelSummary>,
    pub packages: Vec<PackageSummary>,
    /// Host tools whose version shapes the output (e2fsprogs).
    pub tools: Vec<String>,
    pub artifacts: Vec<Artifact>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VeritySummary {
    pub algorithm: String,
    pub data_block_size: u64,
    pub hash_block_size: u64,
    pub data_blocks: u64,
    pub hash_size: u64,
    pub salt: String,
    pub uuid: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiskSummary {
    pub size: u64,
    pub sector_size: u64,
    pub guid: String,
    pub partitions: Vec<PartitionSummary>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartitionSummary {
    pub number: u32,
    pub label: String,
    pub type_guid: String,
    pub uuid: String,
    pub offset: u64,
    pub size: u64,
    pub attributes: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KernelSummary {
    pub version: String,
    pub package: String,
    pub package_version: String,
    pub cmdline: String,
    pub initramfs_modules: Vec<String>,
    pub initramfs_bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PackageSummary {
    pub name: String,
    pub version: String,
    pub architecture: String,
    pub sha256: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Artifact {
    pub name: String,
    pub size: u64,
    pub sha256: String,
}

#[derive(Debug, thiserror::Error)]
pub enum BuildManifestError {
    #[error("cannot {op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not a Berth manifest: {source}")]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

impl BuildManifest {
    /// Writes pretty JSON through a temporary file and a rename.
    pub fn write(&self, path: &Path) -> Result<(), BuildManifestError> {
        let mut text =
            serde_json::to_string_pretty(self).map_err(|e| BuildManifestError::Parse {
                path: path.to_path_buf(),
                source: e,
            })?;
        text.push('\n');
        let tmp = path.with_extension("json.partial");
        let io = |op, source| BuildManifestError::Io {
            op,
            path: path.to_path_buf(),
            source,
        };
        fs::write(&tmp, text).map_err(|e| io("write", e))?;
        fs::rename(&tmp, path).map_err(|e| io("rename into place", e))
    }

    pub fn read(path: &Path) -> Result<BuildManifest, BuildManifestError> {
        let text = fs::read_to_string(path).map_err(|source| BuildManifestError::Io {
            op: "read",
            path: path.to_path_buf(),
            source,
        })?;
        serde_json::from_str(&text).map_err(|source| BuildManifestError::Parse {
            path: path.to_path_buf(),
            source,
        })
    }
}

/// sha256 of a file, streamed.
pub fn sha256_file(path: &Path) -> Result<String, BuildManifestError> {
    let io = |source| BuildManifestError::Io {
        op: "hash",
        path: path.to_path_buf(),
        source,
    };
    let mut file = fs::File::open(path).map_err(io)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).map_err(io)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}
