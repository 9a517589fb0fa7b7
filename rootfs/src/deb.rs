//! Reading `.deb` files in Rust, without dpkg.
//!
//! The build may run unprivileged and on hosts without dpkg, and it must put exactly the
//! archive's bytes, modes and owners in the image: so the `ar` container, its compressed
//! tarballs and the tar entries are read here. Entries are written through [`crate::place`]
//! (no escapes, no writes through symlinks, merged `/usr`), pruned by [`Prune`], and their
//! owners are returned instead of applied: host files stay owned by the builder and the
//! image writer applies the recorded owners.

use crate::place::{self, clean_relative, merged_usr, PlaceError};
use crate::prune::Prune;
use berth_image::tree::{Owner, Owners};
use std::collections::HashSet;
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};

/// The fields of a package's `control` file that the build cross-checks with the lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Control {
    pub package: String,
    pub version: String,
    pub architecture: String,
}

/// What one package put in the tree.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Extracted {
    /// Every path written (folders, files, links), relative to the root.
    pub paths: Vec<PathBuf>,
    /// Owners of written paths that are not `0:0`, from the tar headers.
    pub owners: Owners,
    /// Paths that replaced an earlier file, symlink or hard link (a later package wins).
    pub replaced: Vec<PathBuf>,
    /// Number of entries left out by the pruning rules.
    pub pruned: usize,
}

/// Errors reading or extracting a `.deb`; each names the `.deb` file.
#[derive(Debug, thiserror::Error)]
pub enum DebError {
    #[error("cannot open {deb}: {source}")]
    Open {
        deb: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{deb}: not a valid .deb (ar archive): {source}")]
    Archive {
        deb: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{deb}: not a .deb: {reason}")]
    NotADeb { deb: PathBuf, reason: String },
    #[error("{deb}: member {member} has an unsupported compression")]
    Compression { deb: PathBuf, member: String },
    #[error("{deb}: {member} is corrupt or truncated: {source}")]
    Corrupt {
        deb: PathBuf,
        member: String,
        #[source]
        source: io::Error,
    },
    #[error("{deb}: refusing entry {entry}: {reason}")]
    UnsafePath {
        deb: PathBuf,
        entry: PathBuf,
        reason: String,
    },
    #[error("{deb}: {source}")]
    Place {
        deb: PathBuf,
        #[source]
        source: PlaceError,
    },
    #[error("{deb}: entry {entry} is truncated")]
    Truncated { deb: PathBuf, entry: PathBuf },
    #[error("{deb}: entry {entry} is a {kind}, which a package of the root may not ship")]
    Unsupported {
        deb: PathBuf,
        entry: PathBuf,
        kind: String,
    },
    #[error("{deb}: entry {entry} is a hard link to {target}, which is pruned")]
    LinkToPruned {
        deb: PathBuf,
        entry: PathBuf,
        target: PathBuf,
    },
    #[error("{deb}: control file: {reason}")]
    Control { deb: PathBuf, reason: String },
}

/// A reader that fails instead of ending early: an `ar` member shorter than its header
/// says is a truncated `.deb`.
struct Exact<R> {
    inner: R,
    remaining: u64,
}

impl<R: Read> Read for Exact<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.remaining == 0 || buf.is_empty() {
            return Ok(0);
        }
        let max = usize::try_from(self.remaining)
            .unwrap_or(usize::MAX)
            .min(buf.len());
        let n = self.inner.read(&mut buf[..max])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "archive member ends early",
            ));
        }
        self.remaining -= n as u64;
        Ok(n)
    }
}

/// Finds the member `<prefix>` / `<prefix>.{xz,zst,gz}`, hands its decompressed stream to
/// `f`, then reads the stream to its end so that truncation anywhere is an error.
fn with_member<T>(
    deb: &Path,
    prefix: &str,
    f: impl FnOnce(&mut dyn Read, &str) -> Result<T, DebError>,
) -> Result<T, DebError> {
    let file = File::open(deb).map_err(|source| DebError::Open {
        deb: deb.to_path_buf(),
        source,
    })?;
    let mut archive = ar::Archive::new(BufReader::new(file));
    let mut first = true;
    while let Some(entry) = archive.next_entry() {
        let entry = entry.map_err(|source| DebError::Archive {
            deb: deb.to_path_buf(),
            source,
        })?;
        let id = String::from_utf8_lossy(entry.header().identifier())
            .trim_end_matches('/')
            .to_string();
        let corrupt = |source| DebError::Corrupt {
            deb: deb.to_path_buf(),
            member: id.clone(),
            source,
        };
        let size = entry.header().size();
        let mut exact = Exact {
            inner: entry,
            remaining: size,
        };
        if first {
            first = false;
            let mut version = String::new();
            exact
                .by_ref()
                .take(64)
                .read_to_string(&mut version)
                .map_err(corrupt)?;
            if id != "debian-binary" || !version.starts_with("2.") {
                return Err(DebError::NotADeb {
                    deb: deb.to_path_buf(),
                    reason: "the first member is not debian-binary 2.x".into(),
                });
            }
            continue;
        }
        let Some(ext) = id.strip_prefix(prefix) else {
            continue;
        };
        let mut stream: Box<dyn Read + '_> = match ext {
            ".xz" => Box::new(xz2::read::XzDecoder::new_multi_decoder(exact)),
            ".zst" => Box::new(zstd::stream::read::Decoder::new(exact).map_err(corrupt)?),
            ".gz" => Box::new(flate2::read::MultiGzDecoder::new(exact)),
            "" => Box::new(exact),
            _ => {
                return Err(DebError::Compression {
                    deb: deb.to_path_buf(),
                    member: id,
                })
            }
        };
        let out = f(&mut stream, &id)?;
        io::copy(&mut stream, &mut io::sink()).map_err(corrupt)?;
        return Ok(out);
    }
    Err(DebError::NotADeb {
        deb: deb.to_path_buf(),
        reason: if first {
            "empty archive".into()
        } else {
            format!("no {prefix} member")
        },
    })
}

/// Reads `Package`, `Version` and `Architecture` from the package's `control` file.
pub fn control(deb: &Path) -> Result<Control, DebError> {
    with_member(deb, "control.tar", |stream, member| {
        let corrupt = |source| DebError::Corrupt {
            deb: deb.to_path_buf(),
            member: member.to_string(),
            source,
        };
        let mut tar = tar::Archive::new(stream);
        let mut text = None;
        // Every entry is read, so that a truncated tarball is noticed.
        for entry in tar.entries().map_err(corrupt)? {
            let mut entry = entry.map_err(corrupt)?;
            let path = entry.path().map_err(corrupt)?.into_owned();
            if text.is_some()
                || clean_relative(&path).ok().flatten().as_deref() != Some(Path::new("control"))
            {
                continue;
            }
            let mut control = String::new();
            entry
                .by_ref()
                .take(1 << 20)
                .read_to_string(&mut control)
                .map_err(corrupt)?;
            text = Some(control);
        }
        let text = text.ok_or_else(|| DebError::Control {
            deb: deb.to_path_buf(),
            reason: format!("{member} has no control file"),
        })?;
        parse_control(&text).map_err(|reason| DebError::Control {
            deb: deb.to_path_buf(),
            reason,
        })
    })
}

fn parse_control(text: &str) -> Result<Control, String> {
    let field = |name: &str| {
        text.lines()
            .filter(|l| !l.starts_with([' ', '\t']))
            .filter_map(|l| l.split_once(':'))
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim().to_string())
            .filter(|v| !v.is_empty())
            .ok_or_else(|| format!("no {name} field"))
    };
    Ok(Control {
        package: field("Package")?,
        version: field("Version")?,
        architecture: field("Architecture")?,
    })
}

/// Extracts the package's files under `root`, which must exist. Paths are cleaned and
/// mapped to merged `/usr`, then pruned; a later package's file replaces an earlier one.
pub fn extract(deb: &Path, root: &Path, prune: &Prune) -> Result<Extracted, DebError> {
    with_member(deb, "data.tar", |stream, member| {
        let corrupt = |source| DebError::Corrupt {
            deb: deb.to_path_buf(),
            member: member.to_string(),
            source,
        };
        let place_err = |source| DebError::Place {
            deb: deb.to_path_buf(),
            source,
        };
        let mut out = Extracted::default();
        let mut files = HashSet::new();
        let mut pruned_files = HashSet::new();
        let mut tar = tar::Archive::new(stream);
        for entry in tar.entries().map_err(corrupt)? {
            let mut entry = entry.map_err(corrupt)?;
            let raw = entry.path().map_err(corrupt)?.into_owned();
            let unsafe_path = |e: PlaceError| DebError::UnsafePath {
                deb: deb.to_path_buf(),
                entry: raw.clone(),
                reason: match e {
                    PlaceError::Absolute { .. } => "absolute path".into(),
                    PlaceError::ParentDir { .. } => "path contains `..`".into(),
                    other => other.to_string(),
                },
            };
            let Some(rel) = clean_relative(&raw).map_err(unsafe_path)? else {
                continue; // `./`: the root itself
            };
            let rel = merged_usr(&rel);
            let header = entry.header();
            let kind = header.entry_type();
            let mode = header.mode().map_err(corrupt)?;
            let uid = header.uid().map_err(corrupt)?;
            let gid = header.gid().map_err(corrupt)?;
            if !prune.keeps(&rel, kind.is_dir()) {
                out.pruned += 1;
                if kind.is_file() {
                    pruned_files.insert(rel);
                }
                continue;
            }
            let written = match kind {
                tar::EntryType::Directory => {
                    place::make_dir(root, &rel, Some(mode)).map_err(place_err)?;
                    None
                }
                tar::EntryType::Regular | tar::EntryType::Continuous => {
                    let size = entry.size();
                    let w = place::write_file(root, &rel, mode, &mut entry).map_err(place_err)?;
                    if w.bytes != size {
                        return Err(DebError::Truncated {
                            deb: deb.to_path_buf(),
                            entry: raw,
                        });
                    }
                    files.insert(rel.clone());
                    Some(w)
                }
                tar::EntryType::Symlink => {
                    let target = link_name(&entry, deb, &raw)?;
                    Some(place::make_symlink(root, &rel, &target).map_err(place_err)?)
                }
                tar::EntryType::Link => {
                    let target = link_name(&entry, deb, &raw)?;
                    let target = clean_relative(&target).map_err(|e| DebError::UnsafePath {
                        deb: deb.to_path_buf(),
                        entry: raw.clone(),
                        reason: format!("hard link target {}", e),
                    })?;
                    let target = merged_usr(&target.unwrap_or_default());
                    if pruned_files.contains(&target) {
                        return Err(DebError::LinkToPruned {
                            deb: deb.to_path_buf(),
                            entry: raw,
                            target,
                        });
                    }
                    if !files.contains(&target) {
                        return Err(place_err(PlaceError::LinkTarget { path: rel, target }));
                    }
                    files.insert(rel.clone());
                    Some(place::make_hardlink(root, &rel, &target).map_err(place_err)?)
                }
                tar::EntryType::XGlobalHeader => continue,
                other => {
                    return Err(DebError::Unsupported {
                        deb: deb.to_path_buf(),
                        entry: raw,
                        kind: kind_name(other),
                    })
                }
            };
            if written.is_some_and(|w| w.replaced) {
                out.replaced.push(rel.clone());
            }
            let owner = Owner {
                uid: id32(uid, deb, &raw)?,
                gid: id32(gid, deb, &raw)?,
            };
            if owner != Owner::default() {
                out.owners.insert(rel.clone(), owner);
            }
            out.paths.push(rel);
        }
        Ok(out)
    })
}

fn link_name<R: Read>(entry: &tar::Entry<R>, deb: &Path, raw: &Path) -> Result<PathBuf, DebError> {
    let corrupt = |reason: &str| DebError::Corrupt {
        deb: deb.to_path_buf(),
        member: format!("data.tar entry {}", raw.display()),
        source: io::Error::new(io::ErrorKind::InvalidData, reason.to_string()),
    };
    match entry.link_name() {
        Ok(Some(target)) if !target.as_os_str().is_empty() => Ok(target.into_owned()),
        Ok(_) => Err(corrupt("link without a target")),
        Err(e) => Err(corrupt(&e.to_string())),
    }
}

fn id32(id: u64, deb: &Path, raw: &Path) -> Result<u32, DebError> {
    u32::try_from(id).map_err(|_| DebError::Unsupported {
        deb: deb.to_path_buf(),
        entry: raw.to_path_buf(),
        kind: format!("file owned by id {id} (over 32 bits)"),
    })
}

fn kind_name(kind: tar::EntryType) -> String {
    match kind {
        tar::EntryType::Char => "character device".into(),
        tar::EntryType::Block => "block device".into(),
        tar::EntryType::Fifo => "named pipe".into(),
        tar::EntryType::GNUSparse => "sparse file".into(),
        other => format!("tar entry of type {:?}", other.as_byte() as char),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_fields() {
        let text = "Package: busybox-static\nVersion: 1:1.35.0-4+b3\nArchitecture: amd64\n\
                    Description: x\n Version: not this\n";
        let c = parse_control(text).unwrap();
        assert_eq!(c.package, "busybox-static");
        assert_eq!(c.version, "1:1.35.0-4+b3");
        assert_eq!(c.architecture, "amd64");
        assert!(parse_control("Package: x\n")
            .unwrap_err()
            .contains("Version"));
    }
}
