//! How anything is written into the staged root, in one place.
//!
//! Package archives, binaries and overlays all name paths that are meant for the image, not
//! the build host. Every writer goes through these functions so that the rules hold
//! everywhere: a path is relative and has no `..`, a write never goes through a symlink that
//! is already in the tree (that symlink points into the *image's* root, and following it on
//! the host could escape the staging folder), a later write replaces a file but never a
//! folder, and Debian's `/bin`, `/sbin`, `/lib`, `/lib64` land under `/usr` (merged `/usr`).
//! Modes are set explicitly, so the builder's umask never changes the image.

use std::ffi::OsString;
use std::fs::{self, OpenOptions, Permissions};
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{symlink, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

/// The merged-`/usr` symlinks at the top of the root: `(link, target)`.
pub const MERGED_USR: [(&str, &str); 4] = [
    ("bin", "usr/bin"),
    ("sbin", "usr/sbin"),
    ("lib", "usr/lib"),
    ("lib64", "usr/lib64"),
];

/// Why a path could not be placed in the tree; `path` is relative to the root.
#[derive(Debug, thiserror::Error)]
pub enum PlaceError {
    #[error("{path}: absolute path")]
    Absolute { path: PathBuf },
    #[error("{path}: path contains `..`")]
    ParentDir { path: PathBuf },
    #[error("{path}: {link} is a symlink in the tree; refusing to write through it")]
    SymlinkInPath { path: PathBuf, link: PathBuf },
    #[error("{path}: {component} is not a folder")]
    NotADir { path: PathBuf, component: PathBuf },
    #[error("{path}: cannot replace a {existing} with a {new}")]
    Conflict {
        path: PathBuf,
        existing: &'static str,
        new: &'static str,
    },
    #[error("{path}: hard link target {target} is not a regular file in the tree")]
    LinkTarget { path: PathBuf, target: PathBuf },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> PlaceError + '_ {
    move |source| PlaceError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Cleans a path from an archive or a caller: strips leading `./`, refuses absolute paths
/// and `..`. `Ok(None)` is the root itself (`./`).
pub fn clean_relative(raw: &Path) -> Result<Option<PathBuf>, PlaceError> {
    let mut bytes = raw.as_os_str().as_bytes();
    while let Some(rest) = bytes.strip_prefix(b"./") {
        bytes = rest;
    }
    if bytes.first() == Some(&b'/') {
        return Err(PlaceError::Absolute {
            path: raw.to_path_buf(),
        });
    }
    let mut out = PathBuf::new();
    for c in Path::new(std::ffi::OsStr::from_bytes(bytes)).components() {
        match c {
            Component::Normal(name) => out.push(name),
            Component::CurDir => {}
            Component::ParentDir => {
                return Err(PlaceError::ParentDir {
                    path: raw.to_path_buf(),
                })
            }
            Component::RootDir | Component::Prefix(_) => {
                return Err(PlaceError::Absolute {
                    path: raw.to_path_buf(),
                })
            }
        }
    }
    Ok((!out.as_os_str().is_empty()).then_some(out))
}

/// Maps `bin/..`, `sbin/..`, `lib/..`, `lib64/..` to their place under `usr/`.
pub fn merged_usr(rel: &Path) -> PathBuf {
    let mut comps = rel.components();
    if let Some(Component::Normal(first)) = comps.next() {
        if let Some((_, target)) = MERGED_USR.iter().find(|(link, _)| first == *link) {
            return Path::new(target).join(comps.as_path());
        }
    }
    rel.to_path_buf()
}

/// Checks every folder above `rel` (and creates missing ones with mode 0755 when `create`):
/// each must be a real folder, never a symlink.
fn walk_parents(root: &Path, rel: &Path, create: bool) -> Result<(), PlaceError> {
    let mut prefix = PathBuf::new();
    let parent = rel.parent().unwrap_or(Path::new(""));
    for c in parent.components() {
        prefix.push(c);
        let host = root.join(&prefix);
        match fs::symlink_metadata(&host) {
            Ok(m) if m.file_type().is_symlink() => {
                return Err(PlaceError::SymlinkInPath {
                    path: rel.to_path_buf(),
                    link: prefix,
                })
            }
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(PlaceError::NotADir {
                    path: rel.to_path_buf(),
                    component: prefix,
                })
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound && create => {
                fs::create_dir(&host).map_err(io_err(rel))?;
                fs::set_permissions(&host, Permissions::from_mode(0o755)).map_err(io_err(rel))?;
            }
            Err(e) => return Err(io_err(rel)(e)),
        }
    }
    Ok(())
}

fn kind_name(ft: fs::FileType) -> &'static str {
    if ft.is_dir() {
        "folder"
    } else if ft.is_symlink() {
        "symlink"
    } else if ft.is_file() {
        "file"
    } else {
        "special file"
    }
}

/// Makes room for a non-folder at `rel`: returns whether something was replaced.
fn clear_for(root: &Path, rel: &Path, new: &'static str) -> Result<bool, PlaceError> {
    let host = root.join(rel);
    match fs::symlink_metadata(&host) {
        Ok(m) if m.is_dir() => Err(PlaceError::Conflict {
            path: rel.to_path_buf(),
            existing: "folder",
            new,
        }),
        Ok(_) => {
            fs::remove_file(&host).map_err(io_err(rel))?;
            Ok(true)
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(io_err(rel)(e)),
    }
}

/// Creates the folder `rel` or, if it exists, sets its mode when `mode` is given.
pub fn make_dir(root: &Path, rel: &Path, mode: Option<u32>) -> Result<(), PlaceError> {
    walk_parents(root, rel, true)?;
    let host = root.join(rel);
    match fs::symlink_metadata(&host) {
        Ok(m) if m.is_dir() => {}
        Ok(m) => {
            return Err(PlaceError::Conflict {
                path: rel.to_path_buf(),
                existing: kind_name(m.file_type()),
                new: "folder",
            })
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            fs::create_dir(&host).map_err(io_err(rel))?;
            let mode = mode.unwrap_or(0o755);
            return fs::set_permissions(&host, Permissions::from_mode(mode & 0o7777))
                .map_err(io_err(rel));
        }
        Err(e) => return Err(io_err(rel)(e)),
    }
    match mode {
        Some(mode) => {
            fs::set_permissions(&host, Permissions::from_mode(mode & 0o7777)).map_err(io_err(rel))
        }
        None => Ok(()),
    }
}

/// What a non-folder write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    /// Bytes written (regular files only).
    pub bytes: u64,
    /// Whether an earlier file, symlink or link at the same path was replaced.
    pub replaced: bool,
}

/// Writes a regular file from `content` with `mode` (permission bits incl. setuid).
pub fn write_file(
    root: &Path,
    rel: &Path,
    mode: u32,
    content: &mut dyn Read,
) -> Result<Written, PlaceError> {
    walk_parents(root, rel, true)?;
    let replaced = clear_for(root, rel, "file")?;
    let host = root.join(rel);
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&host)
        .map_err(io_err(rel))?;
    let bytes = io::copy(content, &mut file).map_err(io_err(rel))?;
    file.set_permissions(Permissions::from_mode(mode & 0o7777))
        .map_err(io_err(rel))?;
    Ok(Written { bytes, replaced })
}

/// Creates a symlink at `rel` pointing to `target` (kept verbatim: it is the image's path).
pub fn make_symlink(root: &Path, rel: &Path, target: &Path) -> Result<Written, PlaceError> {
    walk_parents(root, rel, true)?;
    let replaced = clear_for(root, rel, "symlink")?;
    symlink(target, root.join(rel)).map_err(io_err(rel))?;
    Ok(Written { bytes: 0, replaced })
}

/// Makes `rel` a second name of the regular file `target` (both relative to the root).
pub fn make_hardlink(root: &Path, rel: &Path, target: &Path) -> Result<Written, PlaceError> {
    walk_parents(root, target, false).map_err(|_| PlaceError::LinkTarget {
        path: rel.to_path_buf(),
        target: target.to_path_buf(),
    })?;
    match fs::symlink_metadata(root.join(target)) {
        Ok(m) if m.is_file() => {}
        _ => {
            return Err(PlaceError::LinkTarget {
                path: rel.to_path_buf(),
                target: target.to_path_buf(),
            })
        }
    }
    walk_parents(root, rel, true)?;
    let replaced = clear_for(root, rel, "hard link")?;
    fs::hard_link(root.join(target), root.join(rel)).map_err(io_err(rel))?;
    Ok(Written { bytes: 0, replaced })
}

enum Step {
    Up,
    Name(OsString),
}

fn push_steps(pending: &mut Vec<Step>, path: &Path) {
    for c in path.components().rev() {
        match c {
            Component::Normal(n) => pending.push(Step::Name(n.to_os_string())),
            Component::ParentDir => pending.push(Step::Up),
            Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
        }
    }
}

/// Resolves `path` (relative to the root, or absolute meaning "in the root") the way the
/// image's kernel would: symlinks are followed inside the tree, an absolute target starts
/// again at the tree's root and `..` stops at it. Returns the resolved path relative to the
/// root, or `None` if it does not exist (or loops).
pub fn resolve_in_root(root: &Path, path: &Path) -> Option<PathBuf> {
    let mut pending = Vec::new();
    push_steps(&mut pending, path);
    let mut cur = PathBuf::new();
    let mut links = 0;
    while let Some(step) = pending.pop() {
        let name = match step {
            Step::Up => {
                cur.pop();
                continue;
            }
            Step::Name(name) => name,
        };
        let candidate = cur.join(&name);
        let meta = fs::symlink_metadata(root.join(&candidate)).ok()?;
        if meta.file_type().is_symlink() {
            links += 1;
            if links > 40 {
                return None;
            }
            let target = fs::read_link(root.join(&candidate)).ok()?;
            if target.is_absolute() {
                cur = PathBuf::new();
            }
            push_steps(&mut pending, &target);
        } else {
            if !pending.is_empty() && !meta.is_dir() {
                return None;
            }
            cur = candidate;
        }
    }
    Some(cur)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cleaning_refuses_escapes() {
        let ok = |s: &str| clean_relative(Path::new(s)).unwrap();
        assert_eq!(ok("./usr/bin/x"), Some(PathBuf::from("usr/bin/x")));
        assert_eq!(ok("./"), None);
        assert_eq!(ok("a/./b/"), Some(PathBuf::from("a/b")));
        for bad in ["/etc/passwd", ".//etc/passwd", "./../x", "a/../../x"] {
            assert!(clean_relative(Path::new(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn merged_usr_maps_top_folders_only() {
        let m = |s: &str| merged_usr(Path::new(s));
        assert_eq!(m("bin/sh"), PathBuf::from("usr/bin/sh"));
        assert_eq!(m("lib64"), PathBuf::from("usr/lib64"));
        assert_eq!(
            m("lib/x86_64-linux-gnu/libc.so.6"),
            PathBuf::from("usr/lib/x86_64-linux-gnu/libc.so.6")
        );
        assert_eq!(m("usr/lib/x"), PathBuf::from("usr/lib/x"));
        assert_eq!(m("libexec/x"), PathBuf::from("libexec/x"));
    }

    #[test]
    fn resolution_stays_in_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        make_dir(root, Path::new("usr/lib"), None).unwrap();
        make_symlink(root, Path::new("lib"), Path::new("usr/lib")).unwrap();
        write_file(root, Path::new("usr/lib/libx.so.1"), 0o644, &mut &b"x"[..]).unwrap();
        make_symlink(
            root,
            Path::new("usr/lib/libx.so"),
            Path::new("/lib/libx.so.1"),
        )
        .unwrap();
        make_symlink(root, Path::new("up"), Path::new("../../../../usr")).unwrap();
        make_symlink(root, Path::new("loop"), Path::new("loop")).unwrap();
        let r = |s: &str| resolve_in_root(root, Path::new(s));
        assert_eq!(r("lib/libx.so"), Some(PathBuf::from("usr/lib/libx.so.1")));
        assert_eq!(
            r("/up/lib/libx.so.1"),
            Some(PathBuf::from("usr/lib/libx.so.1"))
        );
        assert_eq!(r("loop"), None);
        assert_eq!(r("usr/lib/libx.so.1/x"), None);
        // Writing through the top-level symlink is refused, not followed.
        let err = write_file(root, Path::new("lib/evil"), 0o644, &mut &b""[..]).unwrap_err();
        assert!(matches!(err, PlaceError::SymlinkInPath { .. }), "{err}");
    }
}
