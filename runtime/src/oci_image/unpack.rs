//! Unpacks one layer tar into an empty directory that overlayfs will use as a lowerdir.
//!
//! The tar crate only parses; every filesystem write is made here, because a layer is
//! untrusted input and `unpack_in` is not built for that. An entry is refused, failing
//! the whole layer, when its path is absolute or has a `..` component, when a parent
//! of it is a symlink or not a directory (so no write ever follows a link out of the
//! layer), when a hardlink's target is outside the layer, and for device nodes unless we
//! run as root. OCI whiteouts become what overlayfs reads: `.wh.<name>` a 0/0 character
//! device, `.wh..wh..opq` the `trusted.overlay.opaque=y` xattr on its directory.
//! Ownership, modes, mtimes and xattrs are kept (`trusted.overlay.*` from the tar is
//! dropped: only we decide overlay semantics). The uncompressed stream is hashed on the
//! way through; the caller compares it to the config's diff id.

use std::ffi::OsStr;
use std::fs::{self, OpenOptions};
use std::io::{self, BufRead, BufReader, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::fcntl::AT_FDCWD;
use nix::sys::stat::{makedev, mknodat, utimensat, Mode, SFlag, UtimensatFlags};
use nix::sys::time::TimeSpec;
use nix::unistd::{fchownat, Gid, Uid};
use tar::EntryType;

use super::digest::{Digest, HashingReader};
use super::error::ImageError;
use super::sys;

/// The xattr overlayfs reads to hide a lower directory's content.
pub const OPAQUE_XATTR: &str = "trusted.overlay.opaque";
const WHITEOUT_PREFIX: &str = ".wh.";
const OPAQUE_MARKER: &str = ".wh..wh..opq";

/// What the unpacker may do, decided by who we run as.
#[derive(Debug, Clone, Copy)]
pub struct UnpackOptions {
    /// Create character and block devices (needs CAP_MKNOD).
    pub allow_devices: bool,
    /// Apply the tar's uid/gid (needs CAP_CHOWN); otherwise files belong to us.
    pub set_owner: bool,
}

impl UnpackOptions {
    /// Devices and ownership when running as root, neither otherwise.
    pub fn for_current_user() -> Self {
        let root = nix::unistd::geteuid().is_root();
        UnpackOptions {
            allow_devices: root,
            set_owner: root,
        }
    }
}

/// Unpacks the tar (plain, gzip or zstd, detected from its first bytes) read from
/// `blob` into `dest`, an existing empty directory. `layer` names the layer in errors.
/// Returns the diff id: the sha256 of the uncompressed tar.
pub fn unpack_layer(
    blob: impl Read,
    dest: &Path,
    layer: &str,
    opts: UnpackOptions,
) -> Result<Digest, ImageError> {
    let bad = |source: io::Error| ImageError::BadLayer {
        layer: layer.to_string(),
        source,
    };
    let mut buffered = BufReader::new(blob);
    let magic = buffered.fill_buf().map_err(bad)?.to_vec();
    let decompressed: Box<dyn Read> = if magic.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::read::MultiGzDecoder::new(buffered))
    } else if magic.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Box::new(zstd::stream::read::Decoder::with_buffer(buffered).map_err(bad)?)
    } else {
        Box::new(buffered)
    };
    let mut hashing = HashingReader::new(decompressed);
    let mut unpacker = Unpacker {
        dest,
        layer,
        opts,
        dirs: Vec::new(),
    };
    {
        let mut archive = tar::Archive::new(&mut hashing);
        for entry in archive.entries().map_err(bad)? {
            let entry = entry.map_err(bad)?;
            unpacker.entry(entry)?;
        }
    }
    unpacker.finish_dirs()?;
    let (diff_id, _) = hashing.finish().map_err(bad)?;
    Ok(diff_id)
}

/// Directory metadata applied after all entries, since creating entries changes it.
struct DirMeta {
    path: PathBuf,
    mode: u32,
    mtime: i64,
}

struct Unpacker<'a> {
    dest: &'a Path,
    layer: &'a str,
    opts: UnpackOptions,
    dirs: Vec<DirMeta>,
}

/// Splits a tar path into normal components, refusing absolute paths and `..`.
fn clean(raw: &[u8]) -> Result<Vec<&OsStr>, String> {
    if raw.starts_with(b"/") {
        return Err("absolute paths are not allowed in a layer".into());
    }
    let mut out = Vec::new();
    for comp in raw.split(|&b| b == b'/') {
        match comp {
            b"" | b"." => {}
            b".." => return Err("'..' components are not allowed in a layer".into()),
            c => out.push(OsStr::from_bytes(c)),
        }
    }
    Ok(out)
}

impl Unpacker<'_> {
    fn refuse(&self, entry: &[u8], reason: impl Into<String>) -> ImageError {
        ImageError::UnsafeEntry {
            layer: self.layer.to_string(),
            entry: String::from_utf8_lossy(entry).into_owned(),
            reason: reason.into(),
        }
    }

    fn io(&self, op: &'static str, path: &Path, e: io::Error) -> ImageError {
        ImageError::io(op, path, e)
    }

    /// Walks `parents` below `dest`, creating missing directories; every existing one
    /// must be a real directory, never a symlink.
    fn parent_dir(
        &self,
        raw: &[u8],
        parents: &[&OsStr],
        create: bool,
    ) -> Result<PathBuf, ImageError> {
        let mut path = self.dest.to_path_buf();
        for comp in parents {
            path.push(comp);
            match fs::symlink_metadata(&path) {
                Ok(m) if m.is_dir() => {}
                Ok(m) if m.file_type().is_symlink() => {
                    return Err(self.refuse(
                        raw,
                        format!(
                            "its parent {comp:?} is a symlink; following it could leave the layer"
                        ),
                    ));
                }
                Ok(_) => {
                    return Err(self.refuse(raw, format!("its parent {comp:?} is not a directory")))
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound && !create => {
                    return Err(self.refuse(raw, "hardlink target is not in this layer"));
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    // Directories the tar does not list get 0755 whatever our umask is.
                    fs::create_dir(&path).map_err(|e| self.io("create directory", &path, e))?;
                    self.chmod(&path, 0o755)?;
                }
                Err(e) => return Err(self.io("inspect", &path, e)),
            }
        }
        Ok(path)
    }

    fn entry<R: Read>(&mut self, mut entry: tar::Entry<'_, R>) -> Result<(), ImageError> {
        let raw = entry.path_bytes().into_owned();
        let kind = entry.header().entry_type();
        if matches!(kind, EntryType::XGlobalHeader) {
            return Ok(());
        }
        let comps = clean(&raw).map_err(|r| self.refuse(&raw, r))?;
        let Some((name, parents)) = comps.split_last() else {
            // The layer root itself ("./"): only its metadata matters.
            if kind.is_dir() {
                let meta = self.meta(&mut entry, &raw)?;
                self.apply_owner_xattrs(self.dest, &meta)?;
                self.dirs.push(DirMeta {
                    path: self.dest.to_path_buf(),
                    mode: meta.mode,
                    mtime: meta.mtime,
                });
            }
            return Ok(());
        };
        let parent = self.parent_dir(&raw, parents, true)?;
        let name_bytes = name.as_bytes();
        if name_bytes == OPAQUE_MARKER.as_bytes() {
            return sys::lsetxattr(&parent, OPAQUE_XATTR, b"y")
                .map_err(|e| self.io("mark opaque (trusted.overlay.opaque)", &parent, e));
        }
        if let Some(hidden) = name_bytes.strip_prefix(WHITEOUT_PREFIX.as_bytes()) {
            if hidden.starts_with(WHITEOUT_PREFIX.as_bytes()) {
                return Ok(()); // other AUFS metadata (.wh..wh.plnk, ...): meaningless here
            }
            if hidden.is_empty() || hidden == b"." || hidden == b".." {
                return Err(self.refuse(&raw, "whiteout of an invalid name"));
            }
            let target = parent.join(OsStr::from_bytes(hidden));
            super::fsutil::remove_any(&target)?;
            mknodat(
                AT_FDCWD,
                &target,
                SFlag::S_IFCHR,
                Mode::empty(),
                makedev(0, 0),
            )
            .map_err(|e| self.io("create whiteout", &target, e.into()))?;
            let meta = self.meta(&mut entry, &raw)?;
            return self.chown(&target, &meta);
        }
        let path = parent.join(name);
        let meta = self.meta(&mut entry, &raw)?;
        match kind {
            EntryType::Directory => {
                let is_dir = matches!(fs::symlink_metadata(&path), Ok(m) if m.is_dir());
                if !is_dir {
                    self.replace(&path)?;
                    fs::create_dir(&path).map_err(|e| self.io("create directory", &path, e))?;
                }
                self.apply_owner_xattrs(&path, &meta)?;
                self.dirs.push(DirMeta {
                    path,
                    mode: meta.mode,
                    mtime: meta.mtime,
                });
            }
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                self.replace(&path)?;
                let mut file = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
                    .open(&path)
                    .map_err(|e| self.io("create", &path, e))?;
                io::copy(&mut entry, &mut file).map_err(|e| ImageError::BadLayer {
                    layer: self.layer.to_string(),
                    source: io::Error::new(
                        e.kind(),
                        format!("{}: {e}", String::from_utf8_lossy(&raw)),
                    ),
                })?;
                drop(file);
                self.apply_owner_xattrs(&path, &meta)?;
                self.chmod(&path, meta.mode)?;
                self.set_mtime(&path, meta.mtime)?;
            }
            EntryType::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .map(|t| t.into_owned())
                    .unwrap_or_default();
                if target.is_empty() {
                    return Err(self.refuse(&raw, "symlink with an empty target"));
                }
                self.replace(&path)?;
                std::os::unix::fs::symlink(OsStr::from_bytes(&target), &path)
                    .map_err(|e| self.io("create symlink", &path, e))?;
                self.apply_owner_xattrs(&path, &meta)?;
                self.set_mtime(&path, meta.mtime)?;
            }
            EntryType::Link => {
                let target_raw = entry
                    .link_name_bytes()
                    .map(|t| t.into_owned())
                    .unwrap_or_default();
                let target_comps = clean(&target_raw).map_err(|r| {
                    self.refuse(
                        &raw,
                        format!(
                            "hardlink target {:?}: {r}",
                            String::from_utf8_lossy(&target_raw)
                        ),
                    )
                })?;
                let Some((target_name, target_parents)) = target_comps.split_last() else {
                    return Err(self.refuse(&raw, "hardlink to the layer root"));
                };
                let target = self
                    .parent_dir(&raw, target_parents, false)?
                    .join(target_name);
                match fs::symlink_metadata(&target) {
                    Ok(m) if !m.is_dir() => {}
                    Ok(_) => return Err(self.refuse(&raw, "hardlink to a directory")),
                    Err(_) => return Err(self.refuse(&raw, "hardlink target is not in this layer")),
                }
                if target == path {
                    return Ok(());
                }
                self.replace(&path)?;
                // link(2) does not follow a symlink target: the link names the symlink itself.
                fs::hard_link(&target, &path).map_err(|e| self.io("create hardlink", &path, e))?;
            }
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                let (flag, what) = match kind {
                    EntryType::Char => (SFlag::S_IFCHR, "character device"),
                    EntryType::Block => (SFlag::S_IFBLK, "block device"),
                    _ => (SFlag::S_IFIFO, "fifo"),
                };
                let major = entry.header().device_major().ok().flatten().unwrap_or(0);
                let minor = entry.header().device_minor().ok().flatten().unwrap_or(0);
                if flag != SFlag::S_IFIFO && !self.opts.allow_devices {
                    return Err(self.refuse(
                        &raw,
                        format!("{what} {major}:{minor}: device nodes are only created when the runtime runs as root"),
                    ));
                }
                self.replace(&path)?;
                let dev = if flag == SFlag::S_IFIFO {
                    0
                } else {
                    makedev(major.into(), minor.into())
                };
                mknodat(AT_FDCWD, &path, flag, Mode::from_bits_truncate(0o600), dev)
                    .map_err(|e| self.io("create device node", &path, e.into()))?;
                self.apply_owner_xattrs(&path, &meta)?;
                self.chmod(&path, meta.mode)?;
                self.set_mtime(&path, meta.mtime)?;
            }
            other => {
                return Err(self.refuse(
                    &raw,
                    format!("unsupported tar entry type {:?}", other.as_byte() as char),
                ));
            }
        }
        Ok(())
    }

    /// Removes whatever an entry replaces (a later entry wins, as with tar); a directory
    /// replaced by a non-directory goes with its content. Never follows a symlink.
    fn replace(&self, path: &Path) -> Result<(), ImageError> {
        super::fsutil::remove_any(path)
    }

    fn meta<R: Read>(&self, entry: &mut tar::Entry<'_, R>, raw: &[u8]) -> Result<Meta, ImageError> {
        // An empty or garbled numeric field reads as 0, as Go's archive/tar (and so
        // containerd and Docker) reads it: such layers exist and must unpack the same.
        let h = entry.header();
        let mut meta = Meta {
            mode: h.mode().unwrap_or(0),
            uid: h.uid().unwrap_or(0),
            gid: h.gid().unwrap_or(0),
            mtime: h
                .mtime()
                .ok()
                .and_then(|t| i64::try_from(t).ok())
                .unwrap_or(0),
            xattrs: Vec::new(),
        };
        if let Some(pax) = entry
            .pax_extensions()
            .map_err(|e| self.bad_header(raw, e))?
        {
            for ext in pax {
                let ext = ext.map_err(|e| self.bad_header(raw, e))?;
                let Ok(key) = ext.key() else { continue };
                let number = || {
                    std::str::from_utf8(ext.value_bytes())
                        .ok()?
                        .split('.')
                        .next()?
                        .parse::<u64>()
                        .ok()
                };
                match key {
                    "uid" => meta.uid = number().unwrap_or(meta.uid),
                    "gid" => meta.gid = number().unwrap_or(meta.gid),
                    "mtime" => {
                        meta.mtime = number()
                            .and_then(|n| i64::try_from(n).ok())
                            .unwrap_or(meta.mtime)
                    }
                    k => {
                        if let Some(name) = k.strip_prefix("SCHILY.xattr.") {
                            meta.xattrs
                                .push((name.to_string(), ext.value_bytes().to_vec()));
                        }
                    }
                }
            }
        }
        Ok(meta)
    }

    fn bad_header(&self, raw: &[u8], e: io::Error) -> ImageError {
        ImageError::BadLayer {
            layer: self.layer.to_string(),
            source: io::Error::new(
                e.kind(),
                format!("header of {}: {e}", String::from_utf8_lossy(raw)),
            ),
        }
    }

    fn chown(&self, path: &Path, meta: &Meta) -> Result<(), ImageError> {
        if !self.opts.set_owner {
            return Ok(());
        }
        let (Ok(uid), Ok(gid)) = (u32::try_from(meta.uid), u32::try_from(meta.gid)) else {
            return Err(ImageError::io(
                "chown",
                path,
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("uid/gid {}:{} out of range", meta.uid, meta.gid),
                ),
            ));
        };
        fchownat(
            AT_FDCWD,
            path,
            Some(Uid::from_raw(uid)),
            Some(Gid::from_raw(gid)),
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .map_err(|e| self.io("chown", path, e.into()))
    }

    fn apply_owner_xattrs(&self, path: &Path, meta: &Meta) -> Result<(), ImageError> {
        self.chown(path, meta)?;
        for (name, value) in &meta.xattrs {
            if name.starts_with("trusted.overlay.") {
                continue;
            }
            if let Err(e) = sys::lsetxattr(path, name, value) {
                let ignorable = e.raw_os_error() == Some(libc::ENOTSUP)
                    || (!self.opts.set_owner && e.raw_os_error() == Some(libc::EPERM));
                if !ignorable {
                    return Err(self.io("set xattr", path, e));
                }
            }
        }
        Ok(())
    }

    /// Sets permission bits (after chown, which clears setuid/setgid).
    fn chmod(&self, path: &Path, mode: u32) -> Result<(), ImageError> {
        fs::set_permissions(path, fs::Permissions::from_mode(mode & 0o7777))
            .map_err(|e| self.io("chmod", path, e))
    }

    fn set_mtime(&self, path: &Path, mtime: i64) -> Result<(), ImageError> {
        let t = TimeSpec::new(mtime, 0);
        utimensat(AT_FDCWD, path, &t, &t, UtimensatFlags::NoFollowSymlink)
            .map_err(|e| self.io("set mtime", path, e.into()))
    }

    /// Directory modes and mtimes, deepest first, once nothing more is created in them.
    fn finish_dirs(&mut self) -> Result<(), ImageError> {
        let dirs = std::mem::take(&mut self.dirs);
        for d in dirs.iter().rev() {
            self.chmod(&d.path, d.mode)?;
            self.set_mtime(&d.path, d.mtime)?;
        }
        Ok(())
    }
}

struct Meta {
    mode: u32,
    uid: u64,
    gid: u64,
    mtime: i64,
    xattrs: Vec<(String, Vec<u8>)>,
}

#[cfg(test)]
#[path = "unpack_tests.rs"]
mod tests;
