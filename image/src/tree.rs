//! A file tree as the image formats see it: a sorted list of entries with the owner and
//! mode they must have in the image, independent of who owns the staging folder on the host.
//!
//! The root tree is staged in a host folder by an unprivileged build, so host owners mean
//! nothing; owners come from the packages' tar headers (passed in as overrides) and default
//! to root. Entries are in depth-first order with each folder's children sorted by name, so
//! every writer (ext4, cpio) that walks the list emits the same bytes on every host.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

/// Owner overrides by path relative to the tree's root (`usr/bin/foo`); absent means 0:0.
pub type Owners = BTreeMap<PathBuf, Owner>;

/// A user and group id pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct Owner {
    pub uid: u32,
    pub gid: u32,
}

/// What an entry is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    Dir,
    /// A regular file whose bytes are read from `source` on the host.
    File {
        source: PathBuf,
        size: u64,
    },
    Symlink {
        target: PathBuf,
    },
    /// A second name for an earlier regular file entry (its path in the tree).
    Hardlink {
        target: PathBuf,
    },
    CharDevice {
        major: u32,
        minor: u32,
    },
    BlockDevice {
        major: u32,
        minor: u32,
    },
    Fifo,
}

/// One entry of the tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Path relative to the root, without a leading `/`; never empty.
    pub path: PathBuf,
    pub kind: EntryKind,
    /// Permission bits including setuid, setgid and sticky (`0o7777` mask).
    pub mode: u32,
    pub owner: Owner,
}

impl Entry {
    /// The full `st_mode`: file type bits plus permission bits.
    pub fn st_mode(&self) -> u32 {
        let type_bits = match self.kind {
            EntryKind::Dir => 0o040000,
            EntryKind::File { .. } | EntryKind::Hardlink { .. } => 0o100000,
            EntryKind::Symlink { .. } => 0o120000,
            EntryKind::CharDevice { .. } => 0o020000,
            EntryKind::BlockDevice { .. } => 0o060000,
            EntryKind::Fifo => 0o010000,
        };
        type_bits | (self.mode & 0o7777)
    }
}

/// Errors while scanning a staged tree.
#[derive(Debug, thiserror::Error)]
pub enum TreeError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: file type is not supported in an image (socket?)")]
    Unsupported { path: PathBuf },
    #[error("{path}: file name is not valid UTF-8")]
    NotUtf8 { path: PathBuf },
}

/// A sorted, validated tree.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tree {
    entries: Vec<Entry>,
}

impl Tree {
    /// Scans `root` on the host. Owners come from `owners` (default root), modes and
    /// content from the host. Hard links within the tree are kept as [`EntryKind::Hardlink`].
    pub fn scan(root: &Path, owners: &Owners) -> Result<Tree, TreeError> {
        let mut tree = Tree::default();
        let mut inodes = HashMap::new();
        scan_dir(root, Path::new(""), owners, &mut inodes, &mut tree.entries)?;
        Ok(tree)
    }

    /// Builds a tree from entries in any order; they are sorted depth-first by name.
    pub fn from_entries(mut entries: Vec<Entry>) -> Tree {
        entries.sort_by(|a, b| a.path.components().cmp(b.path.components()));
        Tree { entries }
    }

    /// Entries in depth-first order, children of a folder sorted by name.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// A digest of everything an image writer takes from the tree: paths, kinds, modes,
    /// owners, link targets and file contents. Equal digests mean equal filesystems.
    pub fn digest(&self) -> Result<[u8; 32], TreeError> {
        use sha2::{Digest, Sha256};
        let mut hasher = Sha256::new();
        let mut field = |bytes: &[u8]| {
            hasher.update((bytes.len() as u64).to_le_bytes());
            hasher.update(bytes);
        };
        for entry in &self.entries {
            field(entry.path.as_os_str().as_encoded_bytes());
            field(&entry.st_mode().to_le_bytes());
            field(&entry.owner.uid.to_le_bytes());
            field(&entry.owner.gid.to_le_bytes());
            match &entry.kind {
                EntryKind::File { source, .. } => {
                    let bytes = fs::read(source).map_err(|e| TreeError::Read {
                        path: source.clone(),
                        source: e,
                    })?;
                    field(&Sha256::digest(&bytes));
                }
                EntryKind::Symlink { target } | EntryKind::Hardlink { target } => {
                    field(target.as_os_str().as_encoded_bytes())
                }
                EntryKind::CharDevice { major, minor }
                | EntryKind::BlockDevice { major, minor } => {
                    field(&major.to_le_bytes());
                    field(&minor.to_le_bytes());
                }
                EntryKind::Dir | EntryKind::Fifo => {}
            }
        }
        Ok(hasher.finalize().into())
    }

    /// Sum of the sizes of regular files (hard links counted once).
    pub fn content_bytes(&self) -> u64 {
        self.entries
            .iter()
            .map(|e| match e.kind {
                EntryKind::File { size, .. } => size,
                _ => 0,
            })
            .sum()
    }
}

fn scan_dir(
    host_dir: &Path,
    rel_dir: &Path,
    owners: &Owners,
    inodes: &mut HashMap<(u64, u64), PathBuf>,
    out: &mut Vec<Entry>,
) -> Result<(), TreeError> {
    let read_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| TreeError::Read { path, source }
    };
    let mut names = Vec::new();
    for dirent in fs::read_dir(host_dir).map_err(read_err(host_dir))? {
        let dirent = dirent.map_err(read_err(host_dir))?;
        names.push(dirent.file_name());
    }
    names.sort();
    for name in names {
        let host = host_dir.join(&name);
        let rel = rel_dir.join(&name);
        if name.to_str().is_none() {
            return Err(TreeError::NotUtf8 { path: host });
        }
        let meta = fs::symlink_metadata(&host).map_err(read_err(&host))?;
        let ft = meta.file_type();
        let (major, minor) = (dev_major(meta.rdev()), dev_minor(meta.rdev()));
        let kind = if ft.is_dir() {
            EntryKind::Dir
        } else if ft.is_symlink() {
            let target = fs::read_link(&host).map_err(read_err(&host))?;
            EntryKind::Symlink { target }
        } else if ft.is_file() {
            let key = (meta.dev(), meta.ino());
            match inodes.get(&key) {
                Some(first) if meta.nlink() > 1 => EntryKind::Hardlink {
                    target: first.clone(),
                },
                _ => {
                    if meta.nlink() > 1 {
                        inodes.insert(key, rel.clone());
                    }
                    EntryKind::File {
                        source: host.clone(),
                        size: meta.len(),
                    }
                }
            }
        } else if ft.is_char_device() {
            EntryKind::CharDevice { major, minor }
        } else if ft.is_block_device() {
            EntryKind::BlockDevice { major, minor }
        } else if ft.is_fifo() {
            EntryKind::Fifo
        } else {
            return Err(TreeError::Unsupported { path: host });
        };
        let is_dir = kind == EntryKind::Dir;
        out.push(Entry {
            owner: owners.get(&rel).copied().unwrap_or_default(),
            mode: meta.mode() & 0o7777,
            path: rel.clone(),
            kind,
        });
        if is_dir {
            scan_dir(&host, &rel, owners, inodes, out)?;
        }
    }
    Ok(())
}

/// Major number of a Linux `dev_t` (glibc's encoding).
fn dev_major(dev: u64) -> u32 {
    (((dev >> 32) & 0xffff_f000) | ((dev >> 8) & 0x0000_0fff)) as u32
}

/// Minor number of a Linux `dev_t` (glibc's encoding).
fn dev_minor(dev: u64) -> u32 {
    (((dev >> 12) & 0xffff_ff00) | (dev & 0x0000_00ff)) as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{symlink, PermissionsExt};

    #[test]
    fn scan_sorts_depth_first_and_applies_owners() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("usr/bin")).unwrap();
        fs::write(root.join("usr/bin/b"), b"bb").unwrap();
        fs::write(root.join("usr/bin/a"), b"a").unwrap();
        fs::set_permissions(root.join("usr/bin/a"), fs::Permissions::from_mode(0o4755)).unwrap();
        fs::hard_link(root.join("usr/bin/b"), root.join("usr/bin/c")).unwrap();
        symlink("usr/bin", root.join("bin")).unwrap();
        fs::create_dir(root.join("etc")).unwrap();

        let mut owners = Owners::new();
        owners.insert("usr/bin/b".into(), Owner { uid: 7, gid: 8 });
        let tree = Tree::scan(root, &owners).unwrap();
        let paths: Vec<_> = tree.entries().iter().map(|e| e.path.clone()).collect();
        let expect: Vec<PathBuf> = [
            "bin",
            "etc",
            "usr",
            "usr/bin",
            "usr/bin/a",
            "usr/bin/b",
            "usr/bin/c",
        ]
        .iter()
        .map(PathBuf::from)
        .collect();
        assert_eq!(paths, expect);
        let e = &tree.entries()[4];
        assert_eq!(e.st_mode(), 0o104755);
        assert_eq!(tree.entries()[5].owner, Owner { uid: 7, gid: 8 });
        assert_eq!(
            tree.entries()[6].kind,
            EntryKind::Hardlink {
                target: "usr/bin/b".into()
            }
        );
        assert_eq!(tree.entries()[0].st_mode() & 0o170000, 0o120000);
        assert_eq!(tree.content_bytes(), 3);
    }

    #[test]
    fn dev_numbers_decode() {
        // makedev(0x12345, 70000) in glibc's encoding: both numbers need the high bits.
        let (major, minor) = (0x12345u64, 70000u64);
        let dev = ((major & 0xfff) << 8)
            | ((major & !0xfff) << 32)
            | (minor & 0xff)
            | ((minor & !0xff) << 12);
        assert_eq!((dev_major(dev), dev_minor(dev)), (0x12345, 70000));
    }
}
