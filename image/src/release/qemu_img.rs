//! VMDK (stream-optimized, what AWS and VMware import) and qcow2 (local QEMU), written by
//! `qemu-img convert`: both formats are large specifications whose reference writer is
//! qemu-img itself, and it is on every Berth build host already.
//!
//! qemu-img's qcow2 output is a function of the input. Its VMDK output is not: the
//! descriptor holds a random content ID (`CID=`) and the extent's file name. So the VMDK is
//! written under its final name (in a staging folder, renamed later) and the CID is then
//! replaced by one derived from the disk's sha256, in place, same length. The bytes still
//! depend on the qemu-img version, which the manifest records.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::process::Command;

use super::{file_name, Artifact, ReleaseError};
use crate::manifest::sha256_file;

/// The formats made with qemu-img.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QemuFormat {
    /// Stream-optimized VMDK.
    Vmdk,
    Qcow2,
}

impl QemuFormat {
    pub fn extension(self) -> &'static str {
        match self {
            QemuFormat::Vmdk => "vmdk",
            QemuFormat::Qcow2 => "qcow2",
        }
    }

    fn args(self) -> &'static [&'static str] {
        match self {
            QemuFormat::Vmdk => &["-O", "vmdk", "-o", "subformat=streamOptimized"],
            QemuFormat::Qcow2 => &["-O", "qcow2"],
        }
    }
}

/// `qemu-img --version`'s first line, or why qemu-img cannot run.
pub fn version() -> Result<String, ReleaseError> {
    let out = Command::new("qemu-img")
        .arg("--version")
        .output()
        .map_err(|source| ReleaseError::ToolMissing {
            tool: "qemu-img",
            package: "qemu-utils",
            source,
        })?;
    let text = String::from_utf8_lossy(&out.stdout);
    Ok(text.lines().next().unwrap_or("qemu-img").trim().to_string())
}

/// Converts the raw disk `raw` to `out` (a new file, named as it will be published).
/// `disk_sha256` is the raw disk's hex sha256, for the VMDK content ID.
pub fn convert(
    raw: &Path,
    out: &Path,
    format: QemuFormat,
    disk_sha256: &str,
) -> Result<Artifact, ReleaseError> {
    if out.exists() {
        return Err(ReleaseError::Io {
            op: "create",
            path: out.to_path_buf(),
            source: std::io::ErrorKind::AlreadyExists.into(),
        });
    }
    let output = Command::new("qemu-img")
        .args(["convert", "-f", "raw"])
        .args(format.args())
        .arg(raw)
        .arg(out)
        .output()
        .map_err(|source| ReleaseError::ToolMissing {
            tool: "qemu-img",
            package: "qemu-utils",
            source,
        })?;
    if !output.status.success() {
        let _ = std::fs::remove_file(out);
        return Err(ReleaseError::ToolFailed {
            tool: "qemu-img",
            path: out.to_path_buf(),
            status: output.status.to_string(),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
        });
    }
    if format == QemuFormat::Vmdk {
        set_vmdk_cid(out, &content_id(disk_sha256))?;
    }
    let size = std::fs::metadata(out)
        .map_err(ReleaseError::io("read the size of", out))?
        .len();
    let sha256 = sha256_file(out).map_err(|e| ReleaseError::Format {
        path: out.to_path_buf(),
        reason: e.to_string(),
    })?;
    Ok(Artifact {
        name: file_name(out),
        size,
        sha256,
    })
}

/// The VMDK content ID for a disk: the first 32 bits of its sha256, never `ffffffff`
/// (which means "no parent" in the parent field).
pub fn content_id(disk_sha256: &str) -> String {
    let cid = disk_sha256
        .get(..8)
        .unwrap_or("00000000")
        .to_ascii_lowercase();
    if cid == "ffffffff" {
        "fffffffe".into()
    } else {
        cid
    }
}

/// Replaces the 8 hex digits after `CID=` in a sparse VMDK's embedded descriptor.
pub fn set_vmdk_cid(path: &Path, cid: &str) -> Result<(), ReleaseError> {
    let bad = |reason: &str| ReleaseError::Format {
        path: path.to_path_buf(),
        reason: format!("not a sparse VMDK as qemu-img writes it: {reason}"),
    };
    if cid.len() != 8 || !cid.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad("content ID must be 8 hex digits"));
    }
    let file: File = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(ReleaseError::io("open", path))?;
    let mut header = [0u8; 512];
    file.read_exact_at(&mut header, 0)
        .map_err(ReleaseError::io("read", path))?;
    if &header[..4] != b"KDMV" {
        return Err(bad("no KDMV magic"));
    }
    let field = |at: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&header[at..at + 8]);
        u64::from_le_bytes(b)
    };
    let (desc_sector, desc_sectors) = (field(28), field(36));
    if desc_sector == 0 || desc_sectors == 0 || desc_sectors > 2048 {
        return Err(bad("no embedded descriptor"));
    }
    let mut desc = vec![0u8; (desc_sectors * 512) as usize];
    file.read_exact_at(&mut desc, desc_sector * 512)
        .map_err(ReleaseError::io("read", path))?;
    let at = desc
        .windows(5)
        .position(|w| w == b"\nCID=")
        .map(|p| p + 5)
        .ok_or_else(|| bad("no CID line in the descriptor"))?;
    // qemu-img prints the CID with `%x`: 1 to 8 digits (a random one below 0x10000000 has
    // fewer than 8). Ours always has 8, so the rest of the text moves by the difference,
    // into the NUL padding that fills the descriptor's sectors.
    let digits = desc[at..]
        .iter()
        .take_while(|b| b.is_ascii_hexdigit())
        .count();
    if !(1..=8).contains(&digits) || desc.get(at + digits) != Some(&b'\n') {
        return Err(bad("CID is not 1 to 8 hex digits"));
    }
    let grow = 8 - digits;
    if desc[desc.len() - grow..].iter().any(|&b| b != 0) {
        return Err(bad("no room in the descriptor for an 8-digit CID"));
    }
    let mut new = Vec::with_capacity(desc.len());
    new.extend_from_slice(&desc[..at]);
    new.extend_from_slice(cid.as_bytes());
    new.extend_from_slice(&desc[at + digits..desc.len() - grow]);
    file.write_all_at(&new, desc_sector * 512)
        .map_err(ReleaseError::io("write", path))?;
    file.sync_all().map_err(ReleaseError::io("sync", path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::release::testdisk;

    fn check(path: &Path) -> String {
        let out = Command::new("qemu-img")
            .args(["check", path.to_str().unwrap()])
            .output()
            .expect("qemu-img (install the Debian package qemu-utils)");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success(), "{text}");
        text
    }

    #[test]
    fn vmdk_and_qcow2_check_clean_compare_equal_and_repeat_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let t = testdisk::make(dir.path());
        let sha = sha256_file(&t.path).unwrap();
        for format in [QemuFormat::Vmdk, QemuFormat::Qcow2] {
            let mut runs = Vec::new();
            for run in ["a", "b"] {
                let sub = dir.path().join(run);
                std::fs::create_dir_all(&sub).unwrap();
                let out = sub.join(format!("berth.{}", format.extension()));
                let artifact = convert(&t.path, &out, format, &sha).unwrap();
                assert!(check(&out).contains("No errors"));
                let cmp = Command::new("qemu-img")
                    .args(["compare", "-f", "raw", t.path.to_str().unwrap()])
                    .arg(&out)
                    .output()
                    .unwrap();
                assert!(
                    cmp.status.success(),
                    "{}",
                    String::from_utf8_lossy(&cmp.stdout)
                );
                runs.push((artifact, std::fs::read(&out).unwrap()));
            }
            assert_eq!(runs[0].0, runs[1].0, "{format:?}");
            assert!(runs[0].1 == runs[1].1, "{format:?} differs between runs");
            if format == QemuFormat::Vmdk {
                let text = String::from_utf8_lossy(&runs[0].1[..4096]).into_owned();
                assert!(text.contains(&format!("CID={}\n", &sha[..8])), "{text}");
                assert!(text.contains("createType=\"streamOptimized\""), "{text}");
            }
        }
    }

    #[test]
    fn a_short_cid_from_qemu_img_is_widened_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let t = testdisk::make(dir.path());
        let sha = sha256_file(&t.path).unwrap();
        let out = dir.path().join("berth.vmdk");
        convert(&t.path, &out, QemuFormat::Vmdk, &sha).unwrap();
        // What qemu-img's `%x` writes for a random CID below 0x10000000: fewer digits,
        // the rest of the descriptor earlier by as many bytes.
        let mut bytes = std::fs::read(&out).unwrap();
        let at = bytes.windows(5).position(|w| w == b"\nCID=").unwrap() + 5;
        bytes.drain(at..at + 5);
        let end = bytes[at..].windows(2).position(|w| w == b"\0\0").unwrap() + at;
        bytes.splice(end..end, [0u8; 5]);
        std::fs::write(&out, &bytes).unwrap();
        assert!(String::from_utf8_lossy(&bytes[..4096]).contains(&format!("CID={}\n", &sha[5..8])));
        set_vmdk_cid(&out, "0badcafe").unwrap();
        let text = String::from_utf8_lossy(&std::fs::read(&out).unwrap()[..4096]).into_owned();
        assert!(
            text.contains("CID=0badcafe\nparentCID=ffffffff\n"),
            "{text}"
        );
        assert!(check(&out).contains("No errors"));
    }

    #[test]
    fn content_id_avoids_the_no_parent_value() {
        assert_eq!(content_id("ffffffff00"), "fffffffe");
        assert_eq!(content_id("0123ABCDxx"), "0123abcd");
    }
}
