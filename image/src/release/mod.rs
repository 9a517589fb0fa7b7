//! Release artifacts: the built disk in the formats each cloud accepts, the checksums and
//! signed manifest that vouch for them, and the SBOM that lists what is inside.
//!
//! Every writer here is a pure function of the disk bytes and `SOURCE_DATE_EPOCH`: no
//! wall-clock time, host name, user, random identifier or temporary file name reaches an
//! artifact, so two releases of the same disk are byte-identical and anyone can rebuild
//! and compare a published release. Where a reference tool would put something variable
//! into its output (qemu-img's VMDK content ID, the VHD time stamp and UUID), we write
//! that part ourselves from the content.
//!
//! Parts: [`disk_image`] reads a disk, optionally grown to a larger size with its backup
//! GPT moved to the new end ([`gpt_move`]); [`tar`] writes GNU sparse tar (GCE), [`vhd`]
//! fixed VHD (Azure), [`compress`] the gzip and zstd streams, [`qemu_img`] VMDK and qcow2;
//! [`make`] runs them all into a release folder; [`sums`] is `SHA256SUMS`, [`manifest`] the release manifest (with [`crates`] from
//! `Cargo.lock`), [`spdx`] the SBOM, [`sign`] Ed25519 signing and [`verify`] checks a
//! release folder.

pub mod check;
pub mod compress;
pub mod crates;
pub mod disk_image;
pub mod gpt_move;
pub mod make;
pub mod manifest;
pub mod qemu_img;
pub mod sign;
pub mod spdx;
pub mod sums;
pub mod tar;
pub mod verify;
pub mod vhd;

#[cfg(test)]
mod testdisk;

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

pub use crate::manifest::Artifact;

/// Compute Engine imports raw disks whose size is a whole number of GiB.
pub const GIB: u64 = 1 << 30;
/// Azure wants a VHD whose virtual size is a whole number of MiB.
pub const MIB: u64 = 1 << 20;

/// Errors writing release artifacts.
#[derive(Debug, thiserror::Error)]
pub enum ReleaseError {
    #[error("cannot {op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path}: {reason}")]
    BadDisk { path: PathBuf, reason: String },
    #[error("cannot run {tool} (install the Debian package {package}): {source}")]
    ToolMissing {
        tool: &'static str,
        package: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("{tool} failed writing {path} ({status}): {stderr}")]
    ToolFailed {
        tool: &'static str,
        path: PathBuf,
        status: String,
        stderr: String,
    },
    #[error("{path}: {reason}")]
    Format { path: PathBuf, reason: String },
}

impl ReleaseError {
    /// A closure for `map_err` that wraps an I/O error with what was done to which path.
    pub fn io(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> ReleaseError {
        let path = path.to_path_buf();
        move |source| ReleaseError::Io { op, path, source }
    }
}

/// A writer that hashes and counts what passes through it, so that each artifact's
/// sha256 and size come from the bytes as written, without reading the file again.
pub struct HashingWriter<W: Write> {
    inner: W,
    hasher: Sha256,
    len: u64,
}

impl<W: Write> HashingWriter<W> {
    pub fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            hasher: Sha256::new(),
            len: 0,
        }
    }

    /// The inner writer, the byte count and the hex sha256.
    pub fn finish(self) -> (W, u64, String) {
        (self.inner, self.len, hex::encode(self.hasher.finalize()))
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// The file name of `path` as text (artifact names are plain ASCII).
pub fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Formats a Unix time as RFC 3339 UTC (`2023-11-14T22:13:20Z`), the form SPDX and the
/// manifest use for the build time.
pub fn rfc3339(epoch: u64) -> String {
    let days = epoch / 86_400;
    let secs = epoch % 86_400;
    // Howard Hinnant's civil_from_days, for days since 1970-01-01.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_matches_known_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(4_102_444_799), "2099-12-31T23:59:59Z");
    }

    #[test]
    fn hashing_writer_counts_and_hashes() {
        let mut w = HashingWriter::new(Vec::new());
        w.write_all(b"abc").unwrap();
        let (inner, len, sha) = w.finish();
        assert_eq!(inner, b"abc");
        assert_eq!(len, 3);
        assert_eq!(
            sha,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
