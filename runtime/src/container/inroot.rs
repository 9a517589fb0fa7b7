//! Files of an image or container root, opened the way the container would see them.
//!
//! Every lookup inside a root goes through [`open_in_root`]: `openat2` with
//! `RESOLVE_IN_ROOT` makes the kernel resolve the path, every symlink in it and every `..`
//! as if the root were `/`, so nothing resolves outside it (an absolute link, `../..`,
//! a 40-link chain ends in `ELOOP` instead of a host path), and `RESOLVE_NO_MAGICLINKS`
//! refuses `/proc/<pid>/fd/*`-style links. [`read_in_root`] then insists on a regular file
//! and reads at most a given number of bytes, so a link to `/dev/zero`, a FIFO or a huge
//! file cannot make the daemon block or grow without bound. There is no path-walking code
//! of our own to get wrong.

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use rustix::fs::{openat2, FileType, Mode, OFlags, ResolveFlags};

/// Why a file in a root could not be read.
#[derive(Debug, thiserror::Error)]
pub enum InRootError {
    /// The root folder itself cannot be opened.
    #[error("opening the root {root}")]
    Root {
        root: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// `openat2` refused or failed (too many links, a magic link, a missing folder ...).
    #[error("opening {path} inside {root}")]
    Open {
        root: PathBuf,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The path names something other than a regular file (a device, FIFO, socket,
    /// folder).
    #[error("{path} inside {root} is not a regular file")]
    NotRegular { root: PathBuf, path: PathBuf },
    /// The file is larger than the caller allows.
    #[error("{path} inside {root} is larger than {limit} bytes")]
    TooLarge {
        root: PathBuf,
        path: PathBuf,
        limit: u64,
    },
    /// Reading failed.
    #[error("reading {path} inside {root}")]
    Read {
        root: PathBuf,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Opens `path` (as the container sees it; absolute or relative to the root) read-only
/// below `root`, resolving every component inside `root`. `O_NONBLOCK` keeps a FIFO from
/// blocking the open; `O_NOCTTY` keeps a terminal from becoming ours.
pub fn open_in_root(root: &Path, path: &Path) -> Result<File, InRootError> {
    let dir = File::options()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_DIRECTORY)
        .open(root)
        .map_err(|source| InRootError::Root {
            root: root.to_path_buf(),
            source,
        })?;
    let relative = path.strip_prefix("/").unwrap_or(path);
    let relative = if relative.as_os_str().is_empty() {
        Path::new(".")
    } else {
        relative
    };
    let fd = openat2(
        &dir,
        relative,
        OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOCTTY | OFlags::NONBLOCK,
        Mode::empty(),
        ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
    )
    .map_err(|e| InRootError::Open {
        root: root.to_path_buf(),
        path: path.to_path_buf(),
        source: e.into(),
    })?;
    Ok(File::from(fd))
}

/// Reads the regular file `path` inside `root`, at most `limit` bytes. `Ok(None)` if it
/// (or a folder on its way) does not exist.
pub fn read_in_root(root: &Path, path: &Path, limit: u64) -> Result<Option<Vec<u8>>, InRootError> {
    let file = match open_in_root(root, path) {
        Ok(file) => file,
        Err(InRootError::Open { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            return Ok(None)
        }
        Err(e) => return Err(e),
    };
    let read_error = |source| InRootError::Read {
        root: root.to_path_buf(),
        path: path.to_path_buf(),
        source,
    };
    let meta = file.metadata().map_err(read_error)?;
    if FileType::from_raw_mode(std::os::unix::fs::MetadataExt::mode(&meta)) != FileType::RegularFile
    {
        return Err(InRootError::NotRegular {
            root: root.to_path_buf(),
            path: path.to_path_buf(),
        });
    }
    let mut data = Vec::new();
    // One byte past the limit tells a file of exactly `limit` bytes from a larger one
    // (or one that grows while we read).
    file.take(limit.saturating_add(1))
        .read_to_end(&mut data)
        .map_err(read_error)?;
    if data.len() as u64 > limit {
        return Err(InRootError::TooLarge {
            root: root.to_path_buf(),
            path: path.to_path_buf(),
            limit,
        });
    }
    Ok(Some(data))
}

/// What [`create_in_root`] makes when the path is missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetKind {
    Dir,
    File,
}

/// Makes `path` (as the container sees it) inside `root` if it is missing, with the
/// folders on its way: mount targets the OCI runtime cannot make itself (in a user
/// namespace its root is not the owner of the image's folders). Every existing component
/// is resolved by `openat2` inside `root`; each missing one is made with `mkdirat` or an
/// exclusive `openat` of a single name in its already-resolved parent, so no symlink is
/// followed out of the root.
pub fn create_in_root(root: &Path, path: &Path, kind: TargetKind) -> Result<(), InRootError> {
    use rustix::fs::{mkdirat, openat};
    let open_error = |p: &Path, e: rustix::io::Errno| InRootError::Open {
        root: root.to_path_buf(),
        path: p.to_path_buf(),
        source: e.into(),
    };
    let dir_flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
    let resolve = ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS;
    let base = File::options()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_DIRECTORY)
        .open(root)
        .map_err(|source| InRootError::Root {
            root: root.to_path_buf(),
            source,
        })?;
    let names: Vec<&std::ffi::OsStr> = path
        .components()
        .filter_map(|c| match c {
            std::path::Component::Normal(n) => Some(n),
            _ => None,
        })
        .collect();
    let Some((last, parents)) = names.split_last() else {
        return Ok(());
    };
    let mut prefix = PathBuf::new();
    let mut parent = openat2(&base, ".", dir_flags, Mode::empty(), resolve)
        .map_err(|e| open_error(Path::new("/"), e))?;
    for name in parents {
        prefix.push(name);
        let dir = match openat2(&base, &prefix, dir_flags, Mode::empty(), resolve) {
            Ok(fd) => fd,
            Err(rustix::io::Errno::NOENT) => {
                match mkdirat(&parent, *name, Mode::from_raw_mode(0o755)) {
                    Ok(()) | Err(rustix::io::Errno::EXIST) => {}
                    Err(e) => return Err(open_error(&prefix, e)),
                }
                openat2(&base, &prefix, dir_flags, Mode::empty(), resolve)
                    .map_err(|e| open_error(&prefix, e))?
            }
            Err(e) => return Err(open_error(&prefix, e)),
        };
        parent = dir;
    }
    prefix.push(last);
    match openat2(
        &base,
        &prefix,
        OFlags::PATH | OFlags::CLOEXEC,
        Mode::empty(),
        resolve,
    ) {
        Ok(_) => return Ok(()),
        Err(rustix::io::Errno::NOENT) => {}
        Err(e) => return Err(open_error(&prefix, e)),
    }
    let made = match kind {
        TargetKind::Dir => mkdirat(&parent, *last, Mode::from_raw_mode(0o755)),
        // O_EXCL|O_NOFOLLOW: a name that appeared meanwhile is never followed.
        TargetKind::File => openat(
            &parent,
            *last,
            OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::WRONLY | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o644),
        )
        .map(drop),
    };
    match made {
        Ok(()) | Err(rustix::io::Errno::EXIST) => Ok(()),
        Err(e) => Err(open_error(&prefix, e)),
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;

    const LIMIT: u64 = 1 << 20;

    /// A hostile image root: links out by absolute path and by `..`, a long chain, links
    /// to devices and /proc, a FIFO, a huge file.
    fn hostile_root() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for d in ["etc", "real", "chain", "proc/self"] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        std::fs::write(root.join("real/passwd"), "root:x:0:0::/root:/bin/sh\n").unwrap();
        symlink("/real/passwd", root.join("etc/passwd")).unwrap();
        symlink("../../../../../../etc/hostname", root.join("etc/up")).unwrap();
        symlink("/etc/hostname", root.join("etc/abs")).unwrap();
        symlink("/dev/zero", root.join("etc/zero")).unwrap();
        symlink("/proc/self/root/etc/hostname", root.join("etc/proc")).unwrap();
        symlink("loop", root.join("etc/loop")).unwrap();
        // A chain of 45 links, the last pointing at the host's /etc/hostname.
        for n in 0..45 {
            symlink(format!("/chain/{}", n + 1), root.join(format!("chain/{n}"))).unwrap();
        }
        symlink("/etc/hostname", root.join("chain/45")).unwrap();
        symlink("/chain/0", root.join("etc/group")).unwrap();
        nix::unistd::mkfifo(&root.join("etc/fifo"), nix::sys::stat::Mode::S_IRWXU).unwrap();
        std::fs::write(root.join("etc/big"), vec![b'x'; LIMIT as usize + 1]).unwrap();
        dir
    }

    #[test]
    fn links_resolve_inside_the_root() {
        let dir = hostile_root();
        let root = dir.path();
        let got = read_in_root(root, Path::new("/etc/passwd"), LIMIT).unwrap();
        assert_eq!(got.unwrap(), b"root:x:0:0::/root:/bin/sh\n");
        // `..` and absolute links to the host's /etc/hostname find the root's, which does
        // not exist: never the host's file.
        for path in ["/etc/up", "/etc/abs", "/../../etc/hostname", "etc/abs"] {
            assert!(
                read_in_root(root, Path::new(path), LIMIT)
                    .unwrap()
                    .is_none(),
                "{path}"
            );
        }
        std::fs::write(root.join("etc/hostname"), "inside").unwrap();
        let got = read_in_root(root, Path::new("/etc/up"), LIMIT).unwrap();
        assert_eq!(got.unwrap(), b"inside");
    }

    #[test]
    fn hostile_files_are_errors_not_host_files() {
        let dir = hostile_root();
        let root = dir.path();
        let read = |p: &str| read_in_root(root, Path::new(p), LIMIT);
        // The 46-link chain: ELOOP, not the last link's target on the host.
        match read("/etc/group") {
            Err(InRootError::Open { source, .. }) => {
                assert_eq!(source.raw_os_error(), Some(libc::ELOOP))
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(read("/etc/loop"), Err(InRootError::Open { .. })));
        // /dev/zero and /proc inside the root do not exist: the host's are never reached.
        assert!(read("/etc/zero").unwrap().is_none());
        assert!(read("/etc/proc").unwrap().is_none());
        // A FIFO would block a read forever; a folder is no file.
        assert!(matches!(
            read("/etc/fifo"),
            Err(InRootError::NotRegular { .. })
        ));
        assert!(matches!(read("/etc"), Err(InRootError::NotRegular { .. })));
        assert!(matches!(
            read("/etc/big"),
            Err(InRootError::TooLarge { .. })
        ));
    }

    #[test]
    fn a_device_inside_the_root_is_refused_and_a_read_never_runs_away() {
        // An image whose /dev is a link to "/dev" points at itself inside the root: a
        // loop, never the host's /dev.
        let dir = tempfile::tempdir().unwrap();
        symlink("/dev", dir.path().join("dev")).unwrap();
        match read_in_root(dir.path(), Path::new("/dev/zero"), LIMIT) {
            Err(InRootError::Open { source, .. }) => {
                assert_eq!(source.raw_os_error(), Some(libc::ELOOP))
            }
            other => panic!("{other:?}"),
        }
        // With the host's / as the root, /dev/zero is a device: refused, and the bounded
        // read is never started.
        assert!(matches!(
            read_in_root(Path::new("/"), Path::new("/dev/zero"), LIMIT),
            Err(InRootError::NotRegular { .. })
        ));
        // A generated file whose stat size is 0 (procfs) is read only up to the limit.
        assert!(matches!(
            read_in_root(Path::new("/"), Path::new("/proc/self/status"), 16),
            Err(InRootError::TooLarge { limit: 16, .. })
        ));
        // A magic link (/proc/self/root) is refused, even with the host's / as the root.
        assert!(matches!(
            read_in_root(
                Path::new("/"),
                Path::new("/proc/self/root/etc/hostname"),
                LIMIT
            ),
            Err(InRootError::Open { .. })
        ));
    }

    #[test]
    fn mount_targets_are_made_inside_the_root_only() {
        let dir = hostile_root();
        let root = dir.path();
        let outside = tempfile::tempdir().unwrap();
        // A link to a folder outside by absolute path and by `..`: the targets are made
        // inside the root, never in the outside folder.
        symlink(outside.path(), root.join("out")).unwrap();
        symlink("../../../../../../../..", root.join("up")).unwrap();
        create_in_root(root, Path::new("/etc/hosts"), TargetKind::File).unwrap();
        assert!(root.join("etc/hosts").is_file());
        // `/out` resolves to the root's own (missing) copy of the outside path: an error.
        assert!(create_in_root(root, Path::new("/out/x/y"), TargetKind::Dir).is_err());
        create_in_root(root, Path::new("/up/tmp/z"), TargetKind::File).unwrap();
        assert!(root.join("tmp/z").is_file(), "`..` stops at the root");
        assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0);
        // An existing entry, even a link, is left as it is.
        create_in_root(root, Path::new("/etc/passwd"), TargetKind::File).unwrap();
        assert!(root.join("etc/passwd").is_symlink());
        // The long link chain on the way is an error, not a host path.
        assert!(create_in_root(root, Path::new("/etc/group/x"), TargetKind::File).is_err());
    }
}
