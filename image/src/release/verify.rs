//! Checking a release folder as a user would after a download: the manifest's signature,
//! every artifact against the manifest and `SHA256SUMS`, and the root hash in the
//! manifest against the raw disk's dm-verity tree. Each mismatch is reported by name (file,
//! field, expected and found values); the check goes on after one, so the report is whole.
//!
//! Trust flows from the key: the signature covers `manifest.json`, which lists every
//! artifact's sha256 and the root hash; the root hash covers every byte of the root
//! through the verity tree. `SHA256SUMS` is a convenience for `sha256sum -c` and must
//! agree with the manifest.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::manifest::{ReleaseManifest, ReleaseManifestError};
use super::sign::{PublicKey, SignError, SIGNATURE_LEN};
use super::sums;
use crate::inspect::{self, RootState};
use crate::manifest::sha256_file;

pub const MANIFEST: &str = "manifest.json";
pub const SIGNATURE: &str = "manifest.json.sig";
pub const SUMS: &str = "SHA256SUMS";

/// What stops a check before it starts.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error(transparent)]
    Manifest(#[from] ReleaseManifestError),
    #[error(transparent)]
    Key(#[from] SignError),
}

/// The outcome: what was checked and what did not match.
#[derive(Debug, Default)]
pub struct Report {
    pub passed: Vec<String>,
    pub problems: Vec<String>,
    /// What was not checked, and why.
    pub notes: Vec<String>,
}

impl Report {
    fn check(&mut self, ok: bool, passed: String, problem: impl FnOnce() -> String) {
        if ok {
            self.passed.push(passed);
        } else {
            self.problems.push(problem());
        }
    }
}

/// Checks the release in `dir`; `key` is the public key to check the signature with
/// (`None`: the signature is not checked, and the report says so). `progress` gets the
/// bytes hashed or verified so far.
pub fn verify_release(
    dir: &Path,
    key: Option<&Path>,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Report, VerifyError> {
    let key = key.map(PublicKey::read).transpose()?;
    let manifest_path = dir.join(MANIFEST);
    let bytes = std::fs::read(&manifest_path).map_err(|source| ReleaseManifestError::Read {
        path: manifest_path.clone(),
        source,
    })?;
    let mut report = Report::default();
    match key {
        None => report
            .notes
            .push("signature not checked: no public key given".into()),
        Some(key) => check_signature(dir, &bytes, &key, &mut report),
    }
    let manifest = ReleaseManifest::parse(&bytes, &manifest_path)?;

    let mut hashes: BTreeMap<String, Option<String>> = BTreeMap::new();
    let mut done = 0u64;
    let mut hash = |name: &str| -> Option<String> {
        hashes
            .entry(name.to_string())
            .or_insert_with(|| {
                let path = dir.join(name);
                let sha = sha256_file(&path).ok();
                done += std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
                progress(done);
                sha
            })
            .clone()
    };
    for artifact in &manifest.facts.artifacts {
        let path = dir.join(&artifact.name);
        let size = std::fs::metadata(&path).map(|m| m.len());
        match (size, hash(&artifact.name)) {
            (Ok(size), Some(sha)) => {
                report.check(
                    size == artifact.size,
                    format!("{}: size {size}", artifact.name),
                    || {
                        format!(
                            "{}: size is {size}, {MANIFEST} says {}",
                            artifact.name, artifact.size
                        )
                    },
                );
                report.check(
                    sha == artifact.sha256,
                    format!("{}: sha256 matches {MANIFEST}", artifact.name),
                    || {
                        format!(
                            "{}: sha256 is {sha}, {MANIFEST} says {}",
                            artifact.name, artifact.sha256
                        )
                    },
                );
            }
            _ => report.problems.push(format!(
                "{}: listed in {MANIFEST} but missing or unreadable",
                artifact.name
            )),
        }
    }
    match std::fs::read_to_string(dir.join(SUMS))
        .map_err(|e| e.to_string())
        .and_then(|t| sums::parse(&t))
    {
        Err(e) => report.problems.push(format!("{SUMS}: {e}")),
        Ok(lines) => {
            for (name, want) in &lines {
                match hash(name) {
                    None => report.problems.push(format!(
                        "{name}: listed in {SUMS} but missing or unreadable"
                    )),
                    Some(sha) => report.check(
                        &sha == want,
                        format!("{name}: sha256 matches {SUMS}"),
                        || format!("{name}: sha256 is {sha}, {SUMS} says {want}"),
                    ),
                }
            }
            for artifact in &manifest.facts.artifacts {
                if !lines.iter().any(|(name, _)| name == &artifact.name) {
                    report.problems.push(format!(
                        "{}: listed in {MANIFEST} but not in {SUMS}",
                        artifact.name
                    ));
                }
            }
        }
    }
    check_root_hash(dir, &manifest, &mut report, progress);
    Ok(report)
}

fn check_signature(dir: &Path, manifest: &[u8], key: &PublicKey, report: &mut Report) {
    match std::fs::read(dir.join(SIGNATURE)) {
        Err(e) => report.problems.push(format!("{SIGNATURE}: cannot read it: {e}")),
        Ok(sig) if sig.len() != SIGNATURE_LEN => report.problems.push(format!(
            "{SIGNATURE}: is {} bytes, an Ed25519 signature is {SIGNATURE_LEN}",
            sig.len()
        )),
        Ok(sig) => report.check(
            key.verifies(manifest, &sig),
            format!("{SIGNATURE}: good signature by key {}", key.fingerprint()),
            || {
                format!(
                    "{SIGNATURE}: not a signature of {MANIFEST} by key {} (wrong key, or the manifest was changed)",
                    key.fingerprint()
                )
            },
        ),
    }
}

/// The artifact the manifest lists whose name ends with `suffix` (`.raw`, `.raw.zst`).
pub fn raw_disk(dir: &Path, manifest: &ReleaseManifest, suffix: &str) -> Option<PathBuf> {
    manifest
        .facts
        .artifacts
        .iter()
        .find(|a| a.name.ends_with(suffix))
        .map(|a| dir.join(&a.name))
}

/// A temporary file, removed when dropped.
struct TempDisk(PathBuf);

impl Drop for TempDisk {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Unpacks a `.raw.zst` into a sparse temporary file, for the dm-verity check of a release
/// downloaded without its (large) raw disk.
fn unpack_zst(zst: &Path) -> Result<TempDisk, String> {
    use std::io::Read;
    use std::os::unix::fs::FileExt;
    let path = std::env::temp_dir().join(format!("berth-verify-{}.raw", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let out = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    let temp = TempDisk(path);
    let input = std::fs::File::open(zst).map_err(|e| e.to_string())?;
    let mut decoder = zstd::stream::read::Decoder::new(input).map_err(|e| e.to_string())?;
    let mut buf = vec![0u8; super::disk_image::CHUNK];
    let mut offset = 0u64;
    loop {
        let mut filled = 0;
        while filled < buf.len() {
            match decoder
                .read(&mut buf[filled..])
                .map_err(|e| e.to_string())?
            {
                0 => break,
                n => filled += n,
            }
        }
        if filled == 0 {
            break;
        }
        if !super::disk_image::is_zero(&buf[..filled]) {
            out.write_all_at(&buf[..filled], offset)
                .map_err(|e| format!("cannot write {}: {e}", temp.0.display()))?;
        }
        offset += filled as u64;
    }
    out.set_len(offset)
        .map_err(|e| format!("cannot size {}: {e}", temp.0.display()))?;
    Ok(temp)
}

fn check_root_hash(
    dir: &Path,
    manifest: &ReleaseManifest,
    report: &mut Report,
    progress: &(dyn Fn(u64) + Sync),
) {
    let want = &manifest.facts.root_hash;
    // The raw disk, else the zstd one unpacked to a temporary file (removed on return).
    let (disk, name, _unpacked) = match raw_disk(dir, manifest, ".raw").filter(|p| p.exists()) {
        Some(disk) => {
            let name = super::file_name(&disk);
            (disk, name, None)
        }
        None => match raw_disk(dir, manifest, ".raw.zst").filter(|p| p.exists()) {
            Some(zst) => match unpack_zst(&zst) {
                Ok(temp) => (temp.0.clone(), super::file_name(&zst), Some(temp)),
                Err(e) => {
                    let name = super::file_name(&zst);
                    report
                        .problems
                        .push(format!("{name}: cannot unpack it: {e}"));
                    return;
                }
            },
            None => {
                report.notes.push(format!(
                    "root hash not checked: no raw disk (*.raw or *.raw.zst) in {}",
                    dir.display()
                ));
                return;
            }
        },
    };
    let roots = match inspect::inspect(&disk, progress) {
        Ok((_, roots)) => roots,
        Err(e) => {
            report.problems.push(format!("{name}: {e}"));
            return;
        }
    };
    let mut found = false;
    for root in &roots {
        let label = &root.root.label;
        match &root.state {
            RootState::Unverified(_) => {}
            RootState::Corrupt(why) => report
                .problems
                .push(format!("{name}: {label}: dm-verity check failed: {why}")),
            RootState::Verified {
                info,
                uuid_problems,
            } => {
                let got = hex::encode(info.root_hash);
                if &got == want {
                    found = true;
                    report
                        .passed
                        .push(format!("{name}: {label} verifies against root hash {want}"));
                } else {
                    report.problems.push(format!(
                        "{name}: {label} has dm-verity root hash {got}, {MANIFEST} says {want}"
                    ));
                }
                for p in uuid_problems {
                    report.problems.push(format!("{name}: {p}"));
                }
            }
        }
    }
    if !found
        && !roots
            .iter()
            .any(|r| matches!(r.state, RootState::Verified { .. } | RootState::Corrupt(_)))
    {
        report
            .problems
            .push(format!("{name}: no root partition with a dm-verity tree"));
    }
}

#[cfg(test)]
#[path = "verify_tests.rs"]
mod tests;
