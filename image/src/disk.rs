//! Disk assembly: partition images copied into a raw disk at the plan's offsets, the GPT
//! written around them, all into a temporary file renamed over the output only when
//! complete, so a failed or interrupted build never leaves a half-written disk behind.
//!
//! Copies are sparse: all-zero chunks are skipped, leaving holes in the output, so a disk
//! of mostly empty slots costs little space and time.

use std::fs::{self, File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use berth_layout::gpt;
use berth_layout::partition::{Plan, Role};

const CHUNK: usize = 1 << 20;

/// Errors assembling a disk.
#[derive(Debug, thiserror::Error)]
pub enum DiskError {
    #[error("{what} ({path}) is {size} bytes; partition {label} holds {capacity}: it does not fit by {over} bytes")]
    DoesNotFit {
        what: String,
        path: PathBuf,
        label: &'static str,
        size: u64,
        capacity: u64,
        over: u64,
    },
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Gpt(#[from] gpt::GptError),
}

/// What goes into one partition: a file copied to its first byte.
#[derive(Debug, Clone)]
pub struct Content {
    pub role: Role,
    pub source: PathBuf,
}

/// Checks that `size` bytes fit `role`'s partition.
pub fn check_fits(
    plan: &Plan,
    role: Role,
    what: &str,
    path: &Path,
    size: u64,
) -> Result<(), DiskError> {
    let capacity = plan.get(role).size;
    if size > capacity {
        return Err(DiskError::DoesNotFit {
            what: what.to_string(),
            path: path.to_path_buf(),
            label: role.label(),
            size,
            capacity,
            over: size - capacity,
        });
    }
    Ok(())
}

/// Writes the disk of `plan` with `contents` to `out` (via `out.partial` and a rename).
/// `progress` gets the bytes copied so far.
pub fn assemble(
    out: &Path,
    plan: &Plan,
    contents: &[Content],
    progress: &dyn Fn(u64),
) -> Result<(), DiskError> {
    let io = |op: &'static str, path: &Path| {
        let path = path.to_path_buf();
        move |source| DiskError::Io { op, path, source }
    };
    for content in contents {
        let size = fs::metadata(&content.source)
            .map_err(io("cannot read", &content.source))?
            .len();
        check_fits(plan, content.role, "partition image", &content.source, size)?;
    }
    let partial = out.with_extension("partial");
    let _ = fs::remove_file(&partial);
    let result = (|| {
        let mut disk = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&partial)
            .map_err(io("cannot create", &partial))?;
        disk.set_len(plan.disk_size)
            .map_err(io("cannot size", &partial))?;
        let mut copied = 0;
        for content in contents {
            let offset = plan.get(content.role).offset;
            copied += copy_sparse(&content.source, &disk, offset, &partial, &|n| {
                progress(copied + n)
            })?;
        }
        gpt::write(&mut disk, &partial, plan)?;
        disk.sync_all().map_err(io("cannot sync", &partial))?;
        fs::rename(&partial, out).map_err(io("cannot rename into place", out))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&partial);
    }
    result
}

/// Copies `source` into `disk` at `offset`, skipping all-zero chunks. Returns bytes read.
fn copy_sparse(
    source: &Path,
    disk: &File,
    offset: u64,
    disk_path: &Path,
    progress: &dyn Fn(u64),
) -> Result<u64, DiskError> {
    let mut input = File::open(source).map_err(|e| DiskError::Io {
        op: "cannot open",
        path: source.to_path_buf(),
        source: e,
    })?;
    let mut buf = vec![0u8; CHUNK];
    let mut done = 0u64;
    loop {
        let n = read_full(&mut input, &mut buf).map_err(|e| DiskError::Io {
            op: "cannot read",
            path: source.to_path_buf(),
            source: e,
        })?;
        if n == 0 {
            return Ok(done);
        }
        if buf[..n].iter().any(|b| *b != 0) {
            disk.write_all_at(&buf[..n], offset + done)
                .map_err(|e| DiskError::Io {
                    op: "cannot write",
                    path: disk_path.to_path_buf(),
                    source: e,
                })?;
        }
        done += n as u64;
        progress(done);
    }
}

fn read_full(input: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match input.read(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::MIB;
    use berth_layout::partition::Sizes;

    fn plan() -> Plan {
        let sizes = Sizes {
            esp: 34 * MIB,
            root: 8 * MIB,
            verity: MIB,
            state: 16 * MIB,
        };
        Plan::new(&sizes, "berth", &[3; 32])
    }

    #[test]
    fn contents_land_at_their_offsets() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root.img");
        let mut data = vec![0u8; 3 * MIB as usize];
        data[5] = 1;
        data[2 * MIB as usize + 7] = 2;
        fs::write(&root, &data).unwrap();
        let out = dir.path().join("disk.raw");
        let plan = plan();
        let contents = [Content {
            role: Role::RootA,
            source: root,
        }];
        assemble(&out, &plan, &contents, &|_| {}).unwrap();
        let disk = fs::read(&out).unwrap();
        assert_eq!(disk.len() as u64, plan.disk_size);
        let at = plan.get(Role::RootA).offset as usize;
        assert_eq!(&disk[at..at + data.len()], &data[..]);
        assert!(!out.with_extension("partial").exists());
        let table = gpt::read(&mut File::open(&out).unwrap(), &out).unwrap();
        assert_eq!(table.partitions.len(), 6);
    }

    #[test]
    fn too_big_content_names_the_overflow_and_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root.img");
        fs::write(&root, vec![1u8; (8 * MIB + 10) as usize]).unwrap();
        let out = dir.path().join("disk.raw");
        let contents = [Content {
            role: Role::RootA,
            source: root,
        }];
        let err = assemble(&out, &plan(), &contents, &|_| {})
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("ROOT-A") && err.contains("does not fit by 10 bytes"),
            "{err}"
        );
        assert!(!out.exists() && !out.with_extension("partial").exists());
    }
}
