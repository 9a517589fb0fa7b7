//! ext4 filesystems from a [`Tree`], reproducibly, with e2fsprogs as the writer.
//!
//! `mke2fs -d` copies host inode times (ctime cannot be set) and host readdir order, so it
//! is not reproducible. Instead `mke2fs` makes an empty filesystem from a private
//! `mke2fs.conf` (the host's defaults differ between distributions), and a generated
//! `debugfs` script adds every entry in the tree's sorted order and sets mode, owner and
//! all four timestamps explicitly. UUID and directory hash seed are passed in; superblock
//! times come from `E2FSPROGS_FAKE_TIME`. The result is checked with `e2fsck -fn`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use uuid::Uuid;

use crate::tree::{EntryKind, Tree};

const BLOCK: u64 = 4096;
const INODE_SIZE: u64 = 256;

/// The filesystem's identity and options.
#[derive(Debug, Clone)]
pub struct Ext4Params {
    pub label: String,
    pub uuid: Uuid,
    pub hash_seed: Uuid,
    /// Every inode and superblock time (SOURCE_DATE_EPOCH).
    pub epoch: u64,
    /// A writable filesystem (STATE): a journal, room to grow in place (`resize_inode`)
    /// and mke2fs's one inode per 16 KiB for what the node will write. The read-only root
    /// has none of these and exactly the inodes its tree needs.
    pub writable: bool,
}

/// Errors making a filesystem.
#[derive(Debug, thiserror::Error)]
pub enum Ext4Error {
    #[error("cannot run {tool}: {source} (install the Debian package e2fsprogs)")]
    MissingTool {
        tool: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("{tool} failed on {image}: {stderr}")]
    ToolFailed {
        tool: &'static str,
        image: PathBuf,
        stderr: String,
    },
    #[error("cannot write {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: file names with '\"' or control characters cannot go into the image")]
    BadName { path: PathBuf },
    #[error("e2fsck -fn found problems in {image}:\n{report}")]
    NotClean { image: PathBuf, report: String },
}

/// A generous size for `tree`: data blocks, directories, long symlinks, inode tables and
/// fixed metadata, plus 10 %, rounded up to a MiB.
pub fn estimate_size(tree: &Tree) -> u64 {
    let mut blocks = 0u64;
    for entry in tree.entries() {
        blocks += match &entry.kind {
            EntryKind::File { size, .. } => size.div_ceil(BLOCK) + size / (128 * BLOCK * 1024) + 1,
            EntryKind::Dir => 2,
            EntryKind::Symlink { target } if target.as_os_str().len() >= 60 => 1,
            _ => 0,
        };
    }
    let inode_bytes = inode_count(tree) * INODE_SIZE;
    let total = (blocks * BLOCK + inode_bytes) * 11 / 10 + (4 << 20);
    total.div_ceil(1 << 20) << 20
}

fn inode_count(tree: &Tree) -> u64 {
    let n = tree.entries().len() as u64;
    (n + n / 10 + 64).div_ceil(16) * 16
}

/// Writes a filesystem of exactly `size` bytes holding `tree` to `image` (created or
/// truncated), then checks it with `e2fsck -fn`.
pub fn write(tree: &Tree, image: &Path, size: u64, params: &Ext4Params) -> Result<(), Ext4Error> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| Ext4Error::Io { path, source }
    };
    let file = File::create(image).map_err(io(image))?;
    file.set_len(size).map_err(io(image))?;
    drop(file);

    let conf = image.with_extension("mke2fs.conf");
    fs::write(&conf, MKE2FS_CONF).map_err(io(&conf))?;
    let mut features = String::from(if params.writable {
        "has_journal"
    } else {
        "^has_journal"
    });
    if !params.writable {
        // A read-only root is never resized in place; updates write the other slot.
        features.push_str(",^resize_inode");
    }
    let mut mke2fs = Command::new("mke2fs");
    mke2fs
        .env("MKE2FS_CONFIG", &conf)
        .env("E2FSPROGS_FAKE_TIME", params.epoch.to_string())
        .args([
            "-q", "-F", "-t", "ext4", "-T", "berth", "-b", "4096", "-I", "256", "-m", "0",
        ])
        .args([
            "-O",
            &features,
            "-L",
            &params.label,
            "-U",
            &params.uuid.to_string(),
        ])
        .arg("-E")
        .arg(format!(
            "hash_seed={},root_owner=0:0,lazy_itable_init=0,lazy_journal_init=0,nodiscard",
            params.hash_seed
        ));
    if !params.writable {
        mke2fs.arg("-N").arg(inode_count(tree).to_string());
    }
    mke2fs.arg(image);
    let result = run(&mut mke2fs, "mke2fs", image);
    let _ = fs::remove_file(&conf);
    result?;

    let script_path = image.with_extension("debugfs");
    fs::write(&script_path, debugfs_script(tree, params.epoch)?).map_err(io(&script_path))?;
    let mut debugfs = Command::new("debugfs");
    debugfs
        .env("E2FSPROGS_FAKE_TIME", params.epoch.to_string())
        .arg("-w")
        .arg("-f")
        .arg(&script_path)
        .arg(image);
    let out = run(&mut debugfs, "debugfs", image);
    let _ = fs::remove_file(&script_path);
    // debugfs exits 0 even when a command fails; its errors are on stderr.
    let stderr = String::from_utf8_lossy(&out?.stderr).into_owned();
    let problems: Vec<&str> = stderr
        .lines()
        .filter(|l| !l.starts_with("debugfs ") && !l.trim().is_empty())
        .collect();
    if !problems.is_empty() {
        return Err(Ext4Error::ToolFailed {
            tool: "debugfs",
            image: image.to_path_buf(),
            stderr: problems.join("\n"),
        });
    }
    check(image)
}

/// `e2fsck -fn`: a full, read-only check.
pub fn check(image: &Path) -> Result<(), Ext4Error> {
    let out = Command::new("e2fsck")
        .arg("-fn")
        .arg(image)
        .output()
        .map_err(|source| Ext4Error::MissingTool {
            tool: "e2fsck",
            source,
        })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(Ext4Error::NotClean {
            image: image.to_path_buf(),
            report: String::from_utf8_lossy(&out.stdout).into_owned(),
        })
    }
}

/// The version line of the e2fsprogs in use; part of the build's cache key.
pub fn tool_version() -> Result<String, Ext4Error> {
    let out = Command::new("mke2fs")
        .arg("-V")
        .output()
        .map_err(|source| Ext4Error::MissingTool {
            tool: "mke2fs",
            source,
        })?;
    let text = String::from_utf8_lossy(&out.stderr);
    Ok(text.lines().next().unwrap_or_default().trim().to_string())
}

fn run(cmd: &mut Command, tool: &'static str, image: &Path) -> Result<Output, Ext4Error> {
    let out = cmd
        .output()
        .map_err(|source| Ext4Error::MissingTool { tool, source })?;
    if out.status.success() {
        Ok(out)
    } else {
        Err(Ext4Error::ToolFailed {
            tool,
            image: image.to_path_buf(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}

/// A debugfs argument: quoted, after refusing what debugfs's parser cannot carry.
fn quote(text: &str, path: &Path) -> Result<String, Ext4Error> {
    if text.contains('"') || text.chars().any(char::is_control) {
        return Err(Ext4Error::BadName {
            path: path.to_path_buf(),
        });
    }
    Ok(format!("\"{text}\""))
}

fn debugfs_script(tree: &Tree, epoch: u64) -> Result<String, Ext4Error> {
    let mut s = String::new();
    let mut cwd = PathBuf::from("/");
    let mut links: BTreeMap<PathBuf, u32> = BTreeMap::new();
    let times = |s: &mut String, name: &str| {
        for field in ["atime", "mtime", "ctime", "crtime"] {
            let _ = writeln!(s, "sif {name} {field} @{epoch}");
        }
    };
    times(&mut s, "/");
    times(&mut s, "/lost+found");
    for entry in tree.entries() {
        let parent = Path::new("/").join(entry.path.parent().unwrap_or(Path::new("")));
        if parent != cwd {
            let _ = writeln!(s, "cd {}", quote(&parent.to_string_lossy(), &entry.path)?);
            cwd = parent;
        }
        let name_os = entry.path.file_name().unwrap_or_default();
        let name = quote(&name_os.to_string_lossy(), &entry.path)?;
        match &entry.kind {
            EntryKind::Dir => writeln!(s, "mkdir {name}"),
            EntryKind::File { source, .. } => {
                let src = quote(&source.to_string_lossy(), &entry.path)?;
                writeln!(s, "write {src} {name}")
            }
            EntryKind::Symlink { target } => {
                let target = quote(&target.to_string_lossy(), &entry.path)?;
                writeln!(s, "symlink {name} {target}")
            }
            EntryKind::Hardlink { target } => {
                *links.entry(target.clone()).or_insert(1) += 1;
                let target = quote(&format!("/{}", target.to_string_lossy()), &entry.path)?;
                let _ = writeln!(s, "ln {target} {name}");
                continue; // the inode's metadata is the first name's
            }
            EntryKind::CharDevice { major, minor } => {
                writeln!(s, "mknod {name} c {major} {minor}")
            }
            EntryKind::BlockDevice { major, minor } => {
                writeln!(s, "mknod {name} b {major} {minor}")
            }
            EntryKind::Fifo => writeln!(s, "mknod {name} p"),
        }
        .ok();
        let _ = writeln!(s, "sif {name} mode 0{:o}", entry.st_mode());
        let _ = writeln!(s, "sif {name} uid {}", entry.owner.uid);
        let _ = writeln!(s, "sif {name} gid {}", entry.owner.gid);
        times(&mut s, &name);
    }
    for (path, count) in links {
        let path = quote(&format!("/{}", path.to_string_lossy()), &path)?;
        let _ = writeln!(s, "sif {path} links_count {count}");
    }
    Ok(s)
}

/// Our own mke2fs.conf, so that the host's defaults never change the output.
const MKE2FS_CONF: &str = "\
[defaults]
\tbase_features = sparse_super,large_file,filetype,resize_inode,dir_index,ext_attr
\tdefault_mntopts = acl,user_xattr
\tenable_periodic_fsck = 0
\tblocksize = 4096
\tinode_size = 256
\tinode_ratio = 16384

[fs_types]
\text4 = {
\t\tfeatures = has_journal,extent,huge_file,flex_bg,metadata_csum,64bit,dir_nlink,extra_isize
\t}
\tberth = {
\t\tinode_ratio = 16384
\t}
";

#[cfg(test)]
mod tests;
