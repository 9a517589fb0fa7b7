//! Ed25519 signing of the release manifest, with ring.
//!
//! Files are the standard ones, so that a user can check a release with OpenSSL alone:
//! the private key is PKCS#8 DER (`PREFIX.pk8`, mode 0600; PEM is accepted too, so keys
//! made by `openssl genpkey -algorithm ed25519` work, and OpenSSL reads ours), the public key a PEM
//! SubjectPublicKeyInfo (`PREFIX.pub`), and the signature the raw 64 bytes over the exact
//! bytes of `manifest.json`, which is what
//! `openssl pkeyutl -verify -pubin -inkey PREFIX.pub -rawin -in manifest.json -sigfile manifest.json.sig`
//! checks. Ed25519 signatures are deterministic: the same key and manifest give the same
//! signature, so signed releases are reproducible too.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use base64::Engine;
use ring::rand::SystemRandom;
use ring::signature::{self, Ed25519KeyPair, KeyPair};
use sha2::{Digest, Sha256};

/// DER of an Ed25519 SubjectPublicKeyInfo up to the 32 key bytes (RFC 8410).
const SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];
/// DER of an RFC 8410 (version 1) Ed25519 PKCS#8 private key up to the 32 seed bytes:
/// what OpenSSL writes and reads. ring writes version 2 (with the public key), which
/// OpenSSL 3.0 cannot read, so keygen rewrites ring's key in this form.
const PKCS8_V1_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];
pub const SIGNATURE_LEN: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum SignError {
    #[error("cannot read the key {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not {what}: {reason}")]
    NotAKey {
        path: PathBuf,
        what: &'static str,
        reason: String,
    },
    #[error("{path} exists already; refusing to overwrite a key")]
    Exists { path: PathBuf },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot generate a key: {0}")]
    Generate(String),
}

/// A public key and its fingerprint (`SHA256:` and the hex of the first 16 bytes of the
/// sha256 of the key bytes), for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey(pub [u8; 32]);

impl PublicKey {
    pub fn fingerprint(&self) -> String {
        format!("SHA256:{}", hex::encode(&Sha256::digest(self.0)[..16]))
    }

    pub fn to_pem(&self) -> String {
        let mut der = SPKI_PREFIX.to_vec();
        der.extend_from_slice(&self.0);
        let b64 = base64::engine::general_purpose::STANDARD.encode(der);
        format!("-----BEGIN PUBLIC KEY-----\n{b64}\n-----END PUBLIC KEY-----\n")
    }

    /// Reads a PEM (or DER) SubjectPublicKeyInfo holding an Ed25519 key.
    pub fn read(path: &Path) -> Result<PublicKey, SignError> {
        let bytes = fs::read(path).map_err(|source| SignError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let not = |reason: &str| SignError::NotAKey {
            path: path.to_path_buf(),
            what: "an Ed25519 public key (PEM \"PUBLIC KEY\")",
            reason: reason.into(),
        };
        let der = match pem_decode(&bytes, "PUBLIC KEY") {
            Some(der) => der.map_err(|e| not(&e))?,
            None if bytes.starts_with(&SPKI_PREFIX) => bytes,
            None if bytes.starts_with(b"-----BEGIN") => {
                return Err(not("a PEM block of another kind"))
            }
            None => return Err(not("neither PEM nor DER")),
        };
        if der.len() != SPKI_PREFIX.len() + 32 || der[..SPKI_PREFIX.len()] != SPKI_PREFIX {
            return Err(not("the key is not Ed25519"));
        }
        let mut key = [0u8; 32];
        key.copy_from_slice(&der[SPKI_PREFIX.len()..]);
        Ok(PublicKey(key))
    }

    /// True when `sig` is this key's signature of `message`.
    pub fn verifies(&self, message: &[u8], sig: &[u8]) -> bool {
        signature::UnparsedPublicKey::new(&signature::ED25519, &self.0)
            .verify(message, sig)
            .is_ok()
    }
}

/// A private key, loaded.
pub struct SigningKey(Ed25519KeyPair);

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey({})", self.public().fingerprint())
    }
}

impl SigningKey {
    /// Reads a PKCS#8 Ed25519 private key (DER or PEM; v1 as OpenSSL writes, v2 as ring).
    pub fn read(path: &Path) -> Result<SigningKey, SignError> {
        let bytes = fs::read(path).map_err(|source| SignError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let not = |reason: String| SignError::NotAKey {
            path: path.to_path_buf(),
            what: "an Ed25519 private key (PKCS#8)",
            reason,
        };
        let der = match pem_decode(&bytes, "PRIVATE KEY") {
            Some(der) => der.map_err(not)?,
            None => bytes,
        };
        Ed25519KeyPair::from_pkcs8(&der)
            .or_else(|_| Ed25519KeyPair::from_pkcs8_maybe_unchecked(&der))
            .map(SigningKey)
            .map_err(|e| not(e.to_string()))
    }

    pub fn public(&self) -> PublicKey {
        let mut key = [0u8; 32];
        key.copy_from_slice(self.0.public_key().as_ref());
        PublicKey(key)
    }

    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        self.0.sign(message).as_ref().to_vec()
    }
}

/// Writes a new key pair: `PREFIX.pk8` (mode 0600) and `PREFIX.pub`. Never overwrites.
pub fn generate(prefix: &Path) -> Result<(PathBuf, PathBuf, PublicKey), SignError> {
    let private = with_suffix(prefix, ".pk8");
    let public = with_suffix(prefix, ".pub");
    for path in [&private, &public] {
        if path.exists() {
            return Err(SignError::Exists { path: path.clone() });
        }
    }
    let rng = SystemRandom::new();
    let generated =
        Ed25519KeyPair::generate_pkcs8(&rng).map_err(|e| SignError::Generate(e.to_string()))?;
    // ring's version 2 document holds the seed right after the same 16-byte prefix
    // (with its own length and version bytes).
    let seed = generated
        .as_ref()
        .get(16..48)
        .ok_or_else(|| SignError::Generate("unexpected PKCS#8 from ring".into()))?;
    let mut pkcs8 = PKCS8_V1_PREFIX.to_vec();
    pkcs8.extend_from_slice(seed);
    let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(&pkcs8)
        .map_err(|e| SignError::Generate(e.to_string()))?;
    if pair.public_key().as_ref()
        != Ed25519KeyPair::from_pkcs8(generated.as_ref())
            .map_err(|e| SignError::Generate(e.to_string()))?
            .public_key()
            .as_ref()
    {
        return Err(SignError::Generate(
            "seed extraction does not round-trip".into(),
        ));
    }
    let mut key = [0u8; 32];
    key.copy_from_slice(pair.public_key().as_ref());
    let key = PublicKey(key);
    write_new(&private, &pkcs8, 0o600)?;
    if let Err(e) = write_new(&public, key.to_pem().as_bytes(), 0o644) {
        let _ = fs::remove_file(&private);
        return Err(e);
    }
    Ok((private, public, key))
}

fn with_suffix(prefix: &Path, suffix: &str) -> PathBuf {
    let mut name = prefix.as_os_str().to_os_string();
    name.push(suffix);
    PathBuf::from(name)
}

/// Writes `bytes` to a temporary file created with `mode`, then renames it to `path`
/// unless `path` appeared meanwhile.
fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<(), SignError> {
    let err = |source| SignError::Write {
        path: path.to_path_buf(),
        source,
    };
    let tmp = with_suffix(path, ".partial");
    let _ = fs::remove_file(&tmp);
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)
        .map_err(err)?;
    let result = file
        .write_all(bytes)
        .and_then(|()| file.sync_all())
        .and_then(|()| fs::hard_link(&tmp, path));
    let _ = fs::remove_file(&tmp);
    result.map_err(err)
}

/// The DER inside a PEM block labelled `label` (`PRIVATE KEY`, `PUBLIC KEY`); `None` when
/// the text holds no such block.
pub fn pem_decode(bytes: &[u8], label: &str) -> Option<Result<Vec<u8>, String>> {
    let text = std::str::from_utf8(bytes).ok()?;
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = text.find(&begin)? + begin.len();
    let stop = start + text[start..].find(&end)?;
    let b64: String = text[start..stop].split_whitespace().collect();
    Some(
        base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|e| format!("bad base64 in the PEM block: {e}")),
    )
}

#[cfg(test)]
#[path = "sign_tests.rs"]
mod tests;
