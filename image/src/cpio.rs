//! A deterministic cpio "newc" (`070701`) writer, the archive format the kernel unpacks as
//! the initramfs.
//!
//! Nothing of the build host leaks into the archive: inode numbers are assigned from 1 in
//! the tree's order, every entry gets the same mtime (`SOURCE_DATE_EPOCH`), owners and
//! modes come from the [`Tree`], and the device of every entry is 0:0. The same tree and
//! mtime therefore always give the same bytes. Hard links follow the newc rule: all names
//! of an inode share its number and link count, and only the last name carries the data.

use std::collections::HashMap;
use std::fs;
use std::io::{self, BufWriter, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::tree::{EntryKind, Tree};

const MAGIC: &[u8] = b"070701";
const TRAILER: &str = "TRAILER!!!";

/// Errors while writing an archive; each names the entry it concerns.
#[derive(Debug, thiserror::Error)]
pub enum CpioError {
    #[error("cpio: cannot write the entry for {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cpio: cannot open {source_path}, the content of {path}: {source}")]
    Open {
        path: PathBuf,
        source_path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cpio: cannot read the content of {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cpio: {path} is {size} bytes; newc stores at most 4 GiB - 1")]
    TooLarge { path: PathBuf, size: u64 },
    #[error(
        "cpio: {path}: expected {expected} bytes of content, got {got} (changed while archiving?)"
    )]
    SizeMismatch {
        path: PathBuf,
        expected: u64,
        got: u64,
    },
    #[error("cpio: hard link {path} names {target}, which is not a regular file of the tree")]
    BadHardlink { path: PathBuf, target: PathBuf },
}

/// The header fields of one archive entry (the newc `dev` is always 0:0, `check` 0).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Name in the archive; a leading `/` is stripped.
    pub path: PathBuf,
    pub ino: u32,
    /// Full `st_mode` (type and permission bits).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub nlink: u32,
    pub mtime: u32,
    /// Number of data bytes that follow the header.
    pub size: u32,
    pub rdev_major: u32,
    pub rdev_minor: u32,
}

/// Writes newc entries to `out` and counts the bytes written.
pub struct CpioWriter<W: Write> {
    out: W,
    written: u64,
    buf: Vec<u8>,
}

impl<W: Write> CpioWriter<W> {
    /// Starts an archive. `out` is written in small pieces: pass a buffered writer.
    pub fn new(out: W) -> Self {
        CpioWriter {
            out,
            written: 0,
            buf: Vec::new(),
        }
    }

    /// Appends one entry: the header, the name, then exactly `header.size` bytes from `data`.
    pub fn append(&mut self, header: &Header, data: impl Read) -> Result<(), CpioError> {
        let name = header.path.as_os_str().as_bytes();
        let name = name.strip_prefix(b"/").unwrap_or(name);
        let fields = [
            header.ino,
            header.mode,
            header.uid,
            header.gid,
            header.nlink,
            header.mtime,
            header.size,
            0, // dev major
            0, // dev minor
            header.rdev_major,
            header.rdev_minor,
            len_u32(name.len() + 1), // name size, including the NUL
            0,                       // check
        ];
        let mut head = Vec::with_capacity(110 + name.len() + 4);
        head.extend_from_slice(MAGIC);
        for field in fields {
            head.extend_from_slice(format!("{field:08x}").as_bytes());
        }
        head.extend_from_slice(name);
        head.push(0);
        head.resize(head.len().next_multiple_of(4), 0);
        let write_err = |source| CpioError::Write {
            path: header.path.clone(),
            source,
        };
        self.out.write_all(&head).map_err(write_err)?;
        self.written += head.len() as u64;

        let expected = u64::from(header.size);
        let mut data = data.take(expected);
        if expected > 0 && self.buf.is_empty() {
            self.buf.resize(64 * 1024, 0);
        }
        let mut got = 0u64;
        while got < expected {
            let n = match data.read(&mut self.buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => {
                    return Err(CpioError::Read {
                        path: header.path.clone(),
                        source,
                    })
                }
            };
            self.out.write_all(&self.buf[..n]).map_err(write_err)?;
            got += n as u64;
        }
        if got != expected {
            return Err(CpioError::SizeMismatch {
                path: header.path.clone(),
                expected,
                got,
            });
        }
        let pad = [0u8; 3];
        let pad = &pad[..(got.next_multiple_of(4) - got) as usize];
        self.out.write_all(pad).map_err(write_err)?;
        self.written += got + pad.len() as u64;
        Ok(())
    }

    /// Writes the `TRAILER!!!` entry and flushes; returns the writer and the bytes written.
    pub fn finish(mut self) -> Result<(W, u64), CpioError> {
        let trailer = Header {
            path: PathBuf::from(TRAILER),
            ino: 0,
            mode: 0,
            uid: 0,
            gid: 0,
            nlink: 1,
            mtime: 0,
            size: 0,
            rdev_major: 0,
            rdev_minor: 0,
        };
        self.append(&trailer, io::empty())?;
        self.out.flush().map_err(|source| CpioError::Write {
            path: PathBuf::from(TRAILER),
            source,
        })?;
        Ok((self.out, self.written))
    }
}

/// Archive names are paths; a name longer than 4 GiB cannot exist, so saturating is moot.
fn len_u32(len: usize) -> u32 {
    u32::try_from(len).unwrap_or(u32::MAX)
}

/// Writes `tree` as a complete newc archive with every mtime set to `mtime`; returns the
/// number of bytes written (a multiple of 4, not padded to a block size).
pub fn write_tree<W: Write>(tree: &Tree, mtime: u32, out: W) -> Result<u64, CpioError> {
    let entries = tree.entries();
    // Inode numbers in entry order; a hard link shares the number and the attributes of the
    // file it names (`inode_of`: index of that file). Per inode: link count and the index of
    // its last name, which carries the data.
    let mut ino_of = vec![0u32; entries.len()];
    let mut inode_of: Vec<usize> = (0..entries.len()).collect();
    let mut file_index: HashMap<&Path, usize> = HashMap::new();
    let mut next_ino = 1u32;
    for (i, entry) in entries.iter().enumerate() {
        if !matches!(entry.kind, EntryKind::Hardlink { .. }) {
            ino_of[i] = next_ino;
            next_ino += 1;
        }
        if matches!(entry.kind, EntryKind::File { .. }) {
            file_index.insert(entry.path.as_path(), i);
        }
    }
    let mut links: HashMap<u32, (u32, usize)> = HashMap::new();
    for (i, entry) in entries.iter().enumerate() {
        if let EntryKind::Hardlink { target } = &entry.kind {
            let file = file_index.get(target.as_path()).copied();
            let file = file.ok_or_else(|| CpioError::BadHardlink {
                path: entry.path.clone(),
                target: target.clone(),
            })?;
            (ino_of[i], inode_of[i]) = (ino_of[file], file);
        }
        let link = links.entry(ino_of[i]).or_insert((0, i));
        *link = (link.0 + 1, i);
    }

    let mut writer = CpioWriter::new(BufWriter::new(out));
    for (i, entry) in entries.iter().enumerate() {
        let ino = ino_of[i];
        let (nlink, last) = links.get(&ino).copied().unwrap_or((1, i));
        // A hard link takes the inode's attributes from the file it names.
        let inode = &entries[inode_of[i]];
        let mut header = Header {
            path: entry.path.clone(),
            ino,
            mode: inode.st_mode(),
            uid: inode.owner.uid,
            gid: inode.owner.gid,
            nlink: if inode.kind == EntryKind::Dir {
                2
            } else {
                nlink
            },
            mtime,
            size: 0,
            rdev_major: 0,
            rdev_minor: 0,
        };
        match &inode.kind {
            EntryKind::File { source, size } => {
                if i == last {
                    header.size = u32::try_from(*size).map_err(|_| CpioError::TooLarge {
                        path: entry.path.clone(),
                        size: *size,
                    })?;
                    let file = fs::File::open(source).map_err(|e| CpioError::Open {
                        path: entry.path.clone(),
                        source_path: source.clone(),
                        source: e,
                    })?;
                    writer.append(&header, file)?;
                } else {
                    writer.append(&header, io::empty())?;
                }
            }
            EntryKind::Symlink { target } => {
                let bytes = target.as_os_str().as_bytes();
                header.size = len_u32(bytes.len());
                writer.append(&header, bytes)?;
            }
            EntryKind::CharDevice { major, minor } | EntryKind::BlockDevice { major, minor } => {
                (header.rdev_major, header.rdev_minor) = (*major, *minor);
                writer.append(&header, io::empty())?;
            }
            EntryKind::Dir | EntryKind::Fifo | EntryKind::Hardlink { .. } => {
                writer.append(&header, io::empty())?;
            }
        }
    }
    let (_, written) = writer.finish()?;
    Ok(written)
}

#[cfg(test)]
mod tests;
