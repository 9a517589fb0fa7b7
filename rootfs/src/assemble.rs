//! Assembles the whole root tree from its three inputs.
//!
//! Order matters and is fixed: packages in lock order (a later package's file wins, and
//! only `[cni]`'s plugins of theirs stay), then the workspace's binaries, then `[cni]`'s
//! default network (an overlay may replace it), then the overlay folders, then what maintainer scripts would
//! have generated (the CA bundle), then the ELF check. Nothing of the host is copied except
//! the named binaries and overlays, and owners are returned, never applied, so the build
//! can run unprivileged and the image writer applies them.

use crate::certs::{self, CertsError};
use crate::cni::{self, MissingPlugin};
use crate::deb::{self, DebError};
use crate::elf::{self, ElfError, ElfReport};
use crate::hash::file_digest;
use crate::layout;
use crate::lock::LockedPackage;
use crate::place::{self, clean_relative, merged_usr, PlaceError, MERGED_USR};
use crate::prune::Prune;
use berth_image::spec::CniSection;
use berth_image::tree::Owners;
use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// A workspace binary to install.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binary {
    /// The file on the host (e.g. `target/release/berth-init`).
    pub source: PathBuf,
    /// Its path in the root (e.g. `sbin/init`); merged `/usr` applies.
    pub dest: PathBuf,
    /// Permission bits.
    pub mode: u32,
}

/// Everything the root is made of.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RootfsInput {
    /// Locked packages with their cached `.deb`, in lock order.
    pub packages: Vec<(LockedPackage, PathBuf)>,
    pub binaries: Vec<Binary>,
    /// Folders copied over the result in order; modes kept, owners root.
    pub overlays: Vec<PathBuf>,
    /// `image.toml`'s `[cni]` (`None`: the packages' plugins as they are, no network).
    pub cni: Option<CniSection>,
}

/// One package as it went into the root (for the image manifest).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PackageRecord {
    pub name: String,
    pub version: String,
    pub architecture: String,
    pub sha256: String,
}

/// The assembled tree's metadata.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Assembled {
    /// Non-root owners by path, for the image writer.
    pub owners: Owners,
    pub packages: Vec<PackageRecord>,
    pub elf: ElfReport,
}

/// Errors assembling the root; each names the package or file.
#[derive(Debug, thiserror::Error)]
pub enum RootfsError {
    #[error("{path} already exists and is not empty")]
    DestNotEmpty { path: PathBuf },
    #[error("cannot create {path}: {source}")]
    CreateDest {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot read {path} of package {package}: {source}")]
    ReadDeb {
        package: String,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "package {package}: {path} does not match the lock: expected sha256 {expected}, \
         got {actual}"
    )]
    PackageHash {
        package: String,
        path: PathBuf,
        expected: String,
        actual: String,
    },
    #[error("package {package}: the .deb says {field} {found:?}, the lock says {locked:?}")]
    ControlMismatch {
        package: String,
        field: &'static str,
        locked: String,
        found: String,
    },
    #[error("package {package}: {source}")]
    Deb {
        package: String,
        #[source]
        source: DebError,
    },
    #[error("binary {source_path}: {source}")]
    Binary {
        source_path: PathBuf,
        #[source]
        source: PlaceError,
    },
    #[error("cannot read {path}: {source}")]
    ReadHost {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("overlay {overlay}: {source}")]
    Overlay {
        overlay: PathBuf,
        #[source]
        source: PlaceError,
    },
    #[error("overlay {overlay}: {path} is not a file, folder or symlink")]
    OverlayUnsupported { overlay: PathBuf, path: PathBuf },
    #[error("root skeleton (merged /usr links, mount points): {0}")]
    MergedUsr(#[source] PlaceError),
    #[error(transparent)]
    Certs(#[from] CertsError),
    #[error(transparent)]
    CniPlugin(#[from] MissingPlugin),
    #[error("[cni] default_network: {0}")]
    CniNetwork(#[source] PlaceError),
    #[error(transparent)]
    Elf(#[from] ElfError),
}

/// Builds the root tree in `dest` (which must not exist or be empty).
pub fn assemble(
    input: &RootfsInput,
    dest: &Path,
    progress: &dyn Fn(&str),
) -> Result<Assembled, RootfsError> {
    prepare_dest(dest)?;
    for (link, target) in MERGED_USR {
        place::make_dir(dest, Path::new(target), Some(0o755)).map_err(RootfsError::MergedUsr)?;
        place::make_symlink(dest, Path::new(link), Path::new(target))
            .map_err(RootfsError::MergedUsr)?;
    }
    layout::create(dest).map_err(RootfsError::MergedUsr)?;
    let mut out = Assembled::default();
    let prune = Prune {
        cni_plugins: input.cni.as_ref().map(|c| c.plugins.clone()),
        ..Prune::default()
    };
    for (pkg, deb_path) in &input.packages {
        progress(&format!("extract {}", pkg.pin()));
        check_deb(pkg, deb_path)?;
        let deb_err = |source| RootfsError::Deb {
            package: pkg.name.clone(),
            source,
        };
        let extracted = deb::extract(deb_path, dest, &prune).map_err(deb_err)?;
        for path in &extracted.paths {
            out.owners.remove(path);
        }
        out.owners.extend(extracted.owners);
        for path in &extracted.replaced {
            progress(&format!("{}: replaces {}", pkg.name, path.display()));
        }
        out.packages.push(PackageRecord {
            name: pkg.name.clone(),
            version: pkg.version.clone(),
            architecture: pkg.architecture.clone(),
            sha256: pkg.sha256.clone(),
        });
    }
    for bin in &input.binaries {
        progress(&format!("install {}", bin.dest.display()));
        let rel = install_binary(bin, dest)?;
        out.owners.remove(&rel);
    }
    if let Some(choice) = &input.cni {
        cni::check_plugins(choice, dest)?;
        if let Some(net) = &choice.default_network {
            progress(&format!("{}: {}", cni::DEFAULT_NETWORK_FILE, net.subnet));
            let text = cni::default_network_conflist(net);
            let rel = Path::new(cni::DEFAULT_NETWORK_FILE);
            place::write_file(dest, rel, 0o644, &mut text.as_bytes())
                .map_err(RootfsError::CniNetwork)?;
            out.owners.remove(rel);
        }
    }
    for overlay in &input.overlays {
        progress(&format!("overlay {}", overlay.display()));
        copy_overlay(overlay, Path::new(""), dest, &mut out.owners)?;
    }
    if let Some(n) = certs::generate_bundle(dest)? {
        out.owners.remove(Path::new(certs::BUNDLE));
        progress(&format!("{}: {n} certificates", certs::BUNDLE));
    }
    progress("check shared libraries");
    out.elf = elf::check(dest)?;
    Ok(out)
}

fn prepare_dest(dest: &Path) -> Result<(), RootfsError> {
    let create_err = |source| RootfsError::CreateDest {
        path: dest.to_path_buf(),
        source,
    };
    match fs::read_dir(dest) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(RootfsError::DestNotEmpty {
                    path: dest.to_path_buf(),
                });
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            fs::create_dir_all(dest).map_err(create_err)?;
        }
        Err(e) => return Err(create_err(e)),
    }
    fs::set_permissions(dest, fs::Permissions::from_mode(0o755)).map_err(create_err)
}

/// The `.deb` must be the locked file and say it is the locked package.
fn check_deb(pkg: &LockedPackage, path: &Path) -> Result<(), RootfsError> {
    let digest = file_digest(path).map_err(|source| RootfsError::ReadDeb {
        package: pkg.name.clone(),
        path: path.to_path_buf(),
        source,
    })?;
    if digest.sha256 != pkg.sha256 {
        return Err(RootfsError::PackageHash {
            package: pkg.pin(),
            path: path.to_path_buf(),
            expected: pkg.sha256.clone(),
            actual: digest.sha256,
        });
    }
    let control = deb::control(path).map_err(|source| RootfsError::Deb {
        package: pkg.name.clone(),
        source,
    })?;
    let fields = [
        ("Package", &pkg.name, control.package),
        ("Version", &pkg.version, control.version),
        ("Architecture", &pkg.architecture, control.architecture),
    ];
    for (field, locked, found) in fields {
        if *locked != found {
            return Err(RootfsError::ControlMismatch {
                package: pkg.name.clone(),
                field,
                locked: locked.clone(),
                found,
            });
        }
    }
    Ok(())
}

fn install_binary(bin: &Binary, root: &Path) -> Result<PathBuf, RootfsError> {
    let place_err = |source| RootfsError::Binary {
        source_path: bin.source.clone(),
        source,
    };
    // `/sbin/init` and `sbin/init` both mean the image's `/sbin/init`.
    let dest = bin.dest.strip_prefix("/").unwrap_or(&bin.dest);
    let rel = clean_relative(dest).map_err(place_err)?.ok_or_else(|| {
        place_err(PlaceError::Conflict {
            path: bin.dest.clone(),
            existing: "root folder",
            new: "file",
        })
    })?;
    let rel = merged_usr(&rel);
    let read_err = |source| RootfsError::ReadHost {
        path: bin.source.clone(),
        source,
    };
    let mut file = fs::File::open(&bin.source).map_err(read_err)?;
    if !file.metadata().map_err(read_err)?.is_file() {
        return Err(read_err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file",
        )));
    }
    place::write_file(root, &rel, bin.mode, &mut file).map_err(place_err)?;
    Ok(rel)
}

/// Copies `overlay/<rel>` over the tree with normalized modes; existing folders keep the
/// mode the packages gave them; everything is owned by root.
fn copy_overlay(
    overlay: &Path,
    rel: &Path,
    root: &Path,
    owners: &mut Owners,
) -> Result<(), RootfsError> {
    let host_dir = overlay.join(rel);
    let read_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| RootfsError::ReadHost { path, source }
    };
    let place_err = |source| RootfsError::Overlay {
        overlay: overlay.to_path_buf(),
        source,
    };
    let mut names = Vec::new();
    for dirent in fs::read_dir(&host_dir).map_err(read_err(&host_dir))? {
        names.push(dirent.map_err(read_err(&host_dir))?.file_name());
    }
    names.sort();
    for name in names {
        let src_rel = rel.join(&name);
        let host = overlay.join(&src_rel);
        let dst = merged_usr(&src_rel);
        let meta = fs::symlink_metadata(&host).map_err(read_err(&host))?;
        let ft = meta.file_type();
        // Git keeps only the executable bit, so a checkout's umask must not reach the
        // image: overlay folders are 0755, files 0755 if executable and 0644 otherwise.
        let mode = if ft.is_dir() || meta.permissions().mode() & 0o111 != 0 {
            0o755
        } else {
            0o644
        };
        if ft.is_dir() {
            let exists = fs::symlink_metadata(root.join(&dst)).is_ok();
            place::make_dir(root, &dst, (!exists).then_some(mode)).map_err(place_err)?;
            if !exists {
                owners.remove(&dst);
            }
            copy_overlay(overlay, &src_rel, root, owners)?;
            continue;
        } else if ft.is_symlink() {
            let target = fs::read_link(&host).map_err(read_err(&host))?;
            place::make_symlink(root, &dst, &target).map_err(place_err)?;
        } else if ft.is_file() {
            let mut file = fs::File::open(&host).map_err(read_err(&host))?;
            place::write_file(root, &dst, mode, &mut file).map_err(place_err)?;
        } else {
            return Err(RootfsError::OverlayUnsupported {
                overlay: overlay.to_path_buf(),
                path: src_rel,
            });
        }
        owners.remove(&dst);
    }
    Ok(())
}
