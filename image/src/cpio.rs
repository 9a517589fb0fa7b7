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
mod tests {
    use super::*;
    use crate::tree::{Entry, Owner};
    use proptest::prelude::*;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    use std::process::{Command, Stdio};

    const MTIME: u32 = 1_700_000_000; // 2023-11-14 22:13:20 UTC

    /// Runs `cpio` with `args` in `dir`, feeding `archive`; fails naming the package if absent.
    fn cpio(args: &[&str], dir: &Path, archive: &[u8]) -> (String, String) {
        let mut child = Command::new("cpio")
            .args(args)
            .current_dir(dir)
            .env("TZ", "UTC")
            .env("LC_ALL", "C")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run cpio (install the Debian package `cpio`): {e}"));
        child.stdin.take().unwrap().write_all(archive).unwrap();
        let out = child.wait_with_output().unwrap();
        let (stdout, stderr) = (
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8(out.stderr).unwrap(),
        );
        assert!(out.status.success(), "cpio {args:?} failed: {stderr}");
        (stdout, stderr)
    }

    fn entry(path: &str, kind: EntryKind, mode: u32) -> Entry {
        Entry {
            path: path.into(),
            kind,
            mode,
            owner: Owner::default(),
        }
    }

    fn file(dir: &Path, name: &str, content: &[u8]) -> EntryKind {
        let source = dir.join(name);
        fs::write(&source, content).unwrap();
        EntryKind::File {
            source,
            size: content.len() as u64,
        }
    }

    fn sample_tree(src: &Path) -> Tree {
        let mut entries = vec![
            entry("bin", EntryKind::Dir, 0o755),
            entry(
                "bin/init",
                file(src, "init", b"#!/bin/sh\necho hi\n"),
                0o755,
            ),
            entry("bin/empty", file(src, "empty", b""), 0o644),
            entry("bin/su", file(src, "su", b"setuid!"), 0o4755),
            entry(
                "bin/sh",
                EntryKind::Symlink {
                    target: "init".into(),
                },
                0o777,
            ),
            entry("etc", EntryKind::Dir, 0o755),
            entry("etc/odd", file(src, "odd", &[7u8; 4097]), 0o600),
            entry(
                "etc/link",
                EntryKind::Hardlink {
                    target: "etc/odd".into(),
                },
                0o600,
            ),
            entry(
                "etc/zlink",
                EntryKind::Hardlink {
                    target: "etc/odd".into(),
                },
                0o600,
            ),
            entry("dev", EntryKind::Dir, 0o755),
            entry(
                "dev/null",
                EntryKind::CharDevice { major: 1, minor: 3 },
                0o666,
            ),
            entry("dev/fifo", EntryKind::Fifo, 0o600),
            entry("home", EntryKind::Dir, 0o700),
        ];
        entries[2].owner = Owner {
            uid: 1000,
            gid: 100,
        };
        entries[12].owner = Owner {
            uid: 1000,
            gid: 1000,
        };
        Tree::from_entries(entries)
    }

    fn archive(tree: &Tree) -> Vec<u8> {
        let mut out = Vec::new();
        let n = write_tree(tree, MTIME, &mut out).unwrap();
        assert_eq!(n, out.len() as u64);
        assert_eq!(n % 4, 0);
        out
    }

    #[test]
    fn cpio_lists_names_in_order_and_is_deterministic() {
        let src = tempfile::tempdir().unwrap();
        let tree = sample_tree(src.path());
        let bytes = archive(&tree);
        assert_eq!(bytes, archive(&tree));
        assert!(bytes.starts_with(b"070701"));
        let (list, _) = cpio(&["-it"], src.path(), &bytes);
        let expect: Vec<String> = tree
            .entries()
            .iter()
            .map(|e| e.path.display().to_string())
            .collect();
        assert_eq!(list.lines().collect::<Vec<_>>(), expect);

        let (long, _) = cpio(&["-tv"], src.path(), &bytes);
        let init = long.lines().find(|l| l.ends_with(" bin/init")).unwrap();
        assert!(init.contains("Nov 14  2023"), "{init}");
        let su = long.lines().find(|l| l.ends_with(" bin/su")).unwrap();
        assert!(su.starts_with("-rwsr-xr-x"), "{su}");
    }

    #[test]
    fn cpio_extracts_identically() {
        let src = tempfile::tempdir().unwrap();
        let tree = sample_tree(src.path());
        let bytes = archive(&tree);
        let probe = src.path().join("init");
        if fs::metadata(&probe).unwrap().uid() != 0 {
            eprintln!("not root: skipping the extraction test");
            return;
        }
        let dest = tempfile::tempdir().unwrap();
        cpio(&["-idm", "--no-absolute-filenames"], dest.path(), &bytes);
        let d = dest.path();
        let meta = |p: &str| fs::symlink_metadata(d.join(p)).unwrap();
        for e in tree.entries() {
            let m = meta(e.path.to_str().unwrap());
            assert_eq!(m.mode(), e.st_mode(), "{}", e.path.display());
            assert_eq!(
                (m.uid(), m.gid()),
                (e.owner.uid, e.owner.gid),
                "{}",
                e.path.display()
            );
            if let EntryKind::File { source, .. } = &e.kind {
                assert_eq!(
                    fs::read(d.join(&e.path)).unwrap(),
                    fs::read(source).unwrap()
                );
                assert_eq!(m.mtime(), i64::from(MTIME));
            }
        }
        assert_eq!(fs::read_link(d.join("bin/sh")).unwrap(), Path::new("init"));
        assert_eq!(meta("etc/odd").ino(), meta("etc/link").ino());
        assert_eq!(meta("etc/odd").ino(), meta("etc/zlink").ino());
        assert_eq!(meta("etc/odd").nlink(), 3);
        assert_eq!(fs::read(d.join("etc/link")).unwrap(), vec![7u8; 4097]);
        assert_eq!(meta("dev/null").rdev(), (1 << 8) | 3);
        assert_eq!(meta("bin/su").permissions().mode() & 0o7777, 0o4755);
    }

    #[test]
    fn cpio_header_layout() {
        let tree = Tree::from_entries(vec![entry("a", EntryKind::Dir, 0o755)]);
        let bytes = archive(&tree);
        // 110-byte header + "a\0" padded to 112, then the trailer: 110 + 11 padded to 124.
        assert_eq!(bytes.len(), 112 + 124);
        let head = std::str::from_utf8(&bytes[..110]).unwrap();
        assert_eq!(&head[6..14], "00000001"); // ino
        assert_eq!(&head[14..22], "000041ed"); // mode
        assert_eq!(&head[38..46], "00000002"); // nlink
        assert_eq!(&head[46..54], format!("{MTIME:08x}"));
        assert_eq!(&head[94..102], "00000002"); // namesize
        assert!(bytes[112..].starts_with(b"070701"));
        assert_eq!(&bytes[112 + 110..112 + 121], b"TRAILER!!!\0");
    }

    #[test]
    fn cpio_rejects_bad_input() {
        let huge = Tree::from_entries(vec![entry(
            "big",
            EntryKind::File {
                source: "/nonexistent".into(),
                size: 1 << 32,
            },
            0o644,
        )]);
        let err = write_tree(&huge, 0, io::sink()).unwrap_err();
        assert!(matches!(err, CpioError::TooLarge { .. }), "{err}");
        assert!(err.to_string().contains("big"));

        let dangling = Tree::from_entries(vec![entry(
            "l",
            EntryKind::Hardlink { target: "x".into() },
            0o644,
        )]);
        let err = write_tree(&dangling, 0, io::sink()).unwrap_err();
        assert!(matches!(err, CpioError::BadHardlink { .. }), "{err}");

        let src = tempfile::tempdir().unwrap();
        let short = Tree::from_entries(vec![entry(
            "f",
            EntryKind::File {
                source: src.path().join("f"),
                size: 10,
            },
            0o644,
        )]);
        fs::write(src.path().join("f"), b"abc").unwrap();
        let err = write_tree(&short, 0, io::sink()).unwrap_err();
        assert!(
            matches!(err, CpioError::SizeMismatch { got: 3, .. }),
            "{err}"
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(8))]
        #[test]
        fn cpio_random_trees_list_back(paths in prop::collection::vec("[a-z]{1,6}(/[a-z][a-z.]{0,5}){0,3}", 1..20)) {
            let src = tempfile::tempdir().unwrap();
            let kind = file(src.path(), "content", b"12345");
            let mut all = std::collections::BTreeSet::new();
            for p in &paths {
                let p = Path::new(p);
                for a in p.ancestors().filter(|a| !a.as_os_str().is_empty()) {
                    all.insert(a.to_path_buf());
                }
            }
            let dirs: std::collections::BTreeSet<_> =
                all.iter().filter_map(|p| p.parent()).map(Path::to_path_buf).collect();
            let entries = all
                .iter()
                .enumerate()
                .map(|(i, p)| Entry {
                    path: p.clone(),
                    kind: if dirs.contains(p) {
                        EntryKind::Dir
                    } else if i % 2 == 0 {
                        kind.clone()
                    } else {
                        EntryKind::Symlink { target: "content".into() }
                    },
                    mode: 0o755,
                    owner: Owner::default(),
                })
                .collect();
            let tree = Tree::from_entries(entries);
            let bytes = archive(&tree);
            let (list, _) = cpio(&["-it"], src.path(), &bytes);
            let expect: Vec<String> =
                tree.entries().iter().map(|e| e.path.display().to_string()).collect();
            prop_assert_eq!(list.lines().map(String::from).collect::<Vec<_>>(), expect);
        }
    }
}
