//! Reading a disk back: its partition table, every root/verity pair with a full dm-verity
//! check in Rust, and the file list of each verified root. Works on any GPT disk as far as
//! its data allows: a disk without Berth's partitions still gets its table listed.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use ext4_view::{Ext4, Ext4Read};

use crate::verity::{self, VerityInfo};
use berth_layout::gpt::{self, GptPartition, GptTable};
use berth_layout::partition::{uuids_from_root_hash, ROOT_VERITY_X86_64_TYPE, ROOT_X86_64_TYPE};

/// Errors that stop an inspection altogether (anything after the table is reported
/// per partition instead).
#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    #[error("cannot open {path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Gpt(#[from] gpt::GptError),
}

/// What was found about one root slot.
#[derive(Debug)]
pub struct RootReport {
    pub root: GptPartition,
    pub verity: Option<GptPartition>,
    pub state: RootState,
}

/// The verity state of a root slot.
#[derive(Debug)]
pub enum RootState {
    /// No verity partition next to it, or no verity superblock in it (an empty slot).
    Unverified(String),
    /// The tree does not match the data (or the superblock is bad).
    Corrupt(String),
    Verified {
        info: VerityInfo,
        /// Problems with the partition UUIDs that should be derived from the root hash.
        uuid_problems: Vec<String>,
    },
}

/// One file of a root filesystem, as `ls -l` would summarize it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileLine {
    pub path: String,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    pub link: Option<String>,
}

/// Reads the partition table and checks every root slot.
pub fn inspect(
    path: &Path,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<(GptTable, Vec<RootReport>), InspectError> {
    let mut file = File::open(path).map_err(|source| InspectError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    let table = gpt::read(&mut file, path)?;
    let sector = table.sector_size;
    let mut roots = Vec::new();
    for (i, part) in table.partitions.iter().enumerate() {
        if part.type_guid != ROOT_X86_64_TYPE {
            continue;
        }
        // The verity partition is the one labelled "<root>-VERITY", else the next one.
        let verity = table
            .partitions
            .iter()
            .find(|p| {
                p.type_guid == ROOT_VERITY_X86_64_TYPE
                    && p.label == format!("{}-VERITY", part.label)
            })
            .or_else(|| {
                table
                    .partitions
                    .get(i + 1)
                    .filter(|p| p.type_guid == ROOT_VERITY_X86_64_TYPE)
            })
            .cloned();
        let state = match &verity {
            None => RootState::Unverified("no verity partition".into()),
            Some(v) => check_root(&file, part, v, sector, progress),
        };
        roots.push(RootReport {
            root: part.clone(),
            verity,
            state,
        });
    }
    Ok((table, roots))
}

fn check_root(
    file: &File,
    root: &GptPartition,
    verity_part: &GptPartition,
    sector: u64,
    progress: &(dyn Fn(u64) + Sync),
) -> RootState {
    let hash_offset = verity_part.offset(sector);
    let sb = match verity::read_superblock(file, hash_offset) {
        Ok(sb) => sb,
        Err(e) => {
            let mut head = [0u8; 8];
            let empty = file.read_exact_at(&mut head, hash_offset).is_ok() && head == [0; 8];
            return if empty {
                RootState::Unverified("empty slot (no verity superblock)".into())
            } else {
                RootState::Corrupt(e.to_string())
            };
        }
    };
    if sb.data_blocks * verity::BLOCK_SIZE > root.size(sector) {
        return RootState::Corrupt(format!(
            "verity superblock covers {} blocks, more than partition {} holds",
            sb.data_blocks, root.label
        ));
    }
    match verity::verify(file, root.offset(sector), file, hash_offset, progress) {
        Err(e) => RootState::Corrupt(e.to_string()),
        Ok(info) => {
            let (want_root, want_verity) = uuids_from_root_hash(&info.root_hash);
            let mut uuid_problems = Vec::new();
            if root.uuid != want_root {
                uuid_problems.push(format!(
                    "{} UUID {} is not the root hash's first half {want_root}",
                    root.label, root.uuid
                ));
            }
            if verity_part.uuid != want_verity {
                uuid_problems.push(format!(
                    "{} UUID {} is not the root hash's second half {want_verity}",
                    verity_part.label, verity_part.uuid
                ));
            }
            RootState::Verified {
                info,
                uuid_problems,
            }
        }
    }
}

/// A window of a file: one partition, as ext4-view reads it.
struct PartitionReader {
    file: File,
    offset: u64,
    len: u64,
}

impl Ext4Read for PartitionReader {
    fn read(
        &mut self,
        start_byte: u64,
        dst: &mut [u8],
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync + 'static>> {
        let end = start_byte
            .checked_add(dst.len() as u64)
            .ok_or("read past the end")?;
        if end > self.len {
            return Err(format!(
                "read of {} bytes at {start_byte} runs past the partition",
                dst.len()
            )
            .into());
        }
        self.file.read_exact_at(dst, self.offset + start_byte)?;
        Ok(())
    }
}

/// Lists every file of the ext4 filesystem in `part`, depth first, sorted by name.
pub fn list_files(path: &Path, part: &GptPartition, sector: u64) -> Result<Vec<FileLine>, String> {
    let file = File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    let reader = PartitionReader {
        file,
        offset: part.offset(sector),
        len: part.size(sector),
    };
    let fs = Ext4::load(Box::new(reader))
        .map_err(|e| format!("{}: not a readable ext4 filesystem: {e}", part.label))?;
    let mut out = Vec::new();
    walk(&fs, "/", &mut out).map_err(|e| format!("{}: {e}", part.label))?;
    Ok(out)
}

fn walk(fs: &Ext4, dir: &str, out: &mut Vec<FileLine>) -> Result<(), ext4_view::Ext4Error> {
    let mut children = Vec::new();
    for entry in fs.read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().display().to_string();
        if name != "." && name != ".." {
            children.push(name);
        }
    }
    children.sort();
    for name in children {
        let path = if dir == "/" {
            format!("/{name}")
        } else {
            format!("{dir}/{name}")
        };
        let meta = fs.symlink_metadata(path.as_str())?;
        let link = if meta.is_symlink() {
            Some(fs.read_link(path.as_str())?.display().to_string())
        } else {
            None
        };
        out.push(FileLine {
            path: path.clone(),
            mode: u32::from(meta.mode()),
            uid: meta.uid(),
            gid: meta.gid(),
            size: meta.len(),
            link,
        });
        if meta.is_dir() {
            walk(fs, &path, out)?;
        }
    }
    Ok(())
}
