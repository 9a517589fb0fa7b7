//! The initramfs layout and compression: stage 1 as `/init`, `etc/initrd-release` (which
//! makes systemd-style tools treat it as an initrd), exactly the kernel modules stage 1
//! loads under `lib/modules/<version>/` with their `modules.dep` (and the kernel's
//! `modules.builtin` when it has one), as a deterministic newc cpio compressed with zstd,
//! which the kernel config requires (`CONFIG_RD_ZSTD`).
//!
//! Which modules go in is the caller's: it resolves them with the module index.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use crate::cpio::{self, CpioError};
use crate::tree::{Entry, EntryKind, Owner, Tree};

/// zstd level of the initramfs: 19 is the highest level that decompresses as fast as the
/// lower ones; the kernel unpacks it on every boot, the builder packs it once.
pub const ZSTD_LEVEL: i32 = 19;

/// `etc/initrd-release`.
pub const INITRD_RELEASE: &str = "NAME=\"Berth initramfs\"\nID=berth-initrd\n";

/// Folders every initramfs has: mount points of stage 1 and the parents of what it holds.
pub const DIRS: [&str; 8] = [
    "dev",
    "proc",
    "sys",
    "run",
    "sysroot",
    "etc",
    "lib",
    "lib/modules",
];

/// Errors making the initramfs; each names the file concerned.
#[derive(Debug, thiserror::Error)]
pub enum InitramfsError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("SOURCE_DATE_EPOCH {0} does not fit a cpio mtime (32 bits)")]
    Epoch(u64),
    #[error("cannot write the initramfs archive: {0}")]
    Cpio(#[from] CpioError),
    #[error("zstd compression of the initramfs failed: {0}")]
    Compress(#[source] std::io::Error),
}

/// What goes in.
pub struct Layout<'a> {
    /// Stage 1, installed as `/init`.
    pub init: &'a Path,
    /// The kernel release (`lib/modules/<version>`).
    pub kernel_version: &'a str,
    /// The kernel's `lib/modules/<version>` folder on the host.
    pub modules_dir: &'a Path,
    /// The modules to include, as paths relative to `modules_dir`, in load order.
    pub modules: &'a [PathBuf],
    /// The `modules.dep` text of exactly those modules.
    pub modules_dep: &'a str,
    /// The `modules.alias` text of those modules: stage 1 loads the drivers whose
    /// aliases match a present device's modalias.
    pub modules_alias: &'a str,
}

/// Sizes, for the manifest and the build's summary line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    pub cpio_bytes: u64,
    pub compressed_bytes: u64,
}

/// The tree of the initramfs. Small generated files are written into `scratch` (the tree
/// reads file contents from the host).
pub fn tree(layout: &Layout, scratch: &Path) -> Result<Tree, InitramfsError> {
    let base = Path::new("lib/modules").join(layout.kernel_version);
    let dir = |path: PathBuf| Entry {
        path,
        kind: EntryKind::Dir,
        mode: 0o755,
        owner: Owner::default(),
    };
    let mut entries: Vec<Entry> = DIRS.iter().map(|d| dir(PathBuf::from(d))).collect();
    entries.push(file("init".into(), layout.init.to_path_buf(), 0o755)?);
    let release = write(scratch.join("initrd-release"), INITRD_RELEASE)?;
    entries.push(file("etc/initrd-release".into(), release, 0o644)?);

    let mut dirs = BTreeSet::new();
    for rel in layout.modules {
        for ancestor in rel.ancestors().skip(1) {
            dirs.insert(base.join(ancestor));
        }
        entries.push(file(base.join(rel), layout.modules_dir.join(rel), 0o644)?);
    }
    entries.extend(dirs.into_iter().map(dir));
    let dep = write(scratch.join("modules.dep"), layout.modules_dep)?;
    entries.push(file(base.join("modules.dep"), dep, 0o644)?);
    let alias = write(scratch.join("modules.alias"), layout.modules_alias)?;
    entries.push(file(base.join("modules.alias"), alias, 0o644)?);
    let builtin = layout.modules_dir.join("modules.builtin");
    if builtin.exists() {
        entries.push(file(base.join("modules.builtin"), builtin, 0o644)?);
    }
    Ok(Tree::from_entries(entries))
}

/// Writes `tree` to `out` as a zstd-compressed newc cpio, every mtime `epoch`.
pub fn write_compressed(tree: &Tree, epoch: u64, out: &Path) -> Result<Written, InitramfsError> {
    let mtime = u32::try_from(epoch).map_err(|_| InitramfsError::Epoch(epoch))?;
    let mut archive = Vec::new();
    cpio::write_tree(tree, mtime, &mut archive)?;
    let compressed =
        zstd::bulk::compress(&archive, ZSTD_LEVEL).map_err(InitramfsError::Compress)?;
    fs::write(out, &compressed).map_err(|source| InitramfsError::Write {
        path: out.to_path_buf(),
        source,
    })?;
    Ok(Written {
        cpio_bytes: archive.len() as u64,
        compressed_bytes: compressed.len() as u64,
    })
}

fn file(path: PathBuf, source: PathBuf, mode: u32) -> Result<Entry, InitramfsError> {
    let size = fs::metadata(&source)
        .map_err(|e| InitramfsError::Read {
            path: source.clone(),
            source: e,
        })?
        .len();
    Ok(Entry {
        path,
        kind: EntryKind::File { source, size },
        mode,
        owner: Owner::default(),
    })
}

fn write(path: PathBuf, text: &str) -> Result<PathBuf, InitramfsError> {
    fs::write(&path, text).map_err(|source| InitramfsError::Write {
        path: path.clone(),
        source,
    })?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(dir: &Path) -> (PathBuf, PathBuf) {
        let init = dir.join("init-binary");
        fs::write(&init, b"\x7fELF stage 1").unwrap();
        let modules = dir.join("modules/6.1.0-test");
        fs::create_dir_all(modules.join("kernel/drivers/md")).unwrap();
        fs::write(modules.join("kernel/drivers/md/dm-mod.ko"), b"dm-mod").unwrap();
        fs::write(modules.join("kernel/drivers/md/dm-verity.ko"), b"dm-verity").unwrap();
        fs::write(modules.join("modules.builtin"), b"kernel/fs/ext4/ext4.ko\n").unwrap();
        (init, modules)
    }

    #[test]
    fn layout_holds_init_the_modules_and_their_index() {
        let dir = tempfile::tempdir().unwrap();
        let (init, modules_dir) = fixture(dir.path());
        let modules = [
            PathBuf::from("kernel/drivers/md/dm-mod.ko"),
            PathBuf::from("kernel/drivers/md/dm-verity.ko"),
        ];
        let scratch = dir.path().join("scratch");
        fs::create_dir_all(&scratch).unwrap();
        let layout = Layout {
            init: &init,
            kernel_version: "6.1.0-test",
            modules_dir: &modules_dir,
            modules: &modules,
            modules_dep: "kernel/drivers/md/dm-verity.ko: kernel/drivers/md/dm-mod.ko\n",
            modules_alias: "alias devname:mapper/control dm_mod\n",
        };
        let tree = tree(&layout, &scratch).unwrap();
        let paths: Vec<String> = tree
            .entries()
            .iter()
            .map(|e| e.path.display().to_string())
            .collect();
        for want in [
            "init",
            "etc/initrd-release",
            "sysroot",
            "lib/modules/6.1.0-test/kernel/drivers/md",
            "lib/modules/6.1.0-test/kernel/drivers/md/dm-verity.ko",
            "lib/modules/6.1.0-test/modules.dep",
            "lib/modules/6.1.0-test/modules.alias",
            "lib/modules/6.1.0-test/modules.builtin",
        ] {
            assert!(paths.iter().any(|p| p == want), "{want} missing: {paths:?}");
        }
        let init_entry = tree.entries().iter().find(|e| e.path == Path::new("init"));
        assert_eq!(init_entry.map(|e| e.mode), Some(0o755));

        // The archive is a zstd frame of a newc cpio that cpio(1) would list.
        let out = dir.path().join("initrd.img");
        let written = write_compressed(&tree, 1_700_000_000, &out).unwrap();
        let bytes = fs::read(&out).unwrap();
        assert_eq!(bytes.len() as u64, written.compressed_bytes);
        assert_eq!(&bytes[..4], &[0x28, 0xb5, 0x2f, 0xfd]);
        let archive = zstd::bulk::decompress(&bytes, 1 << 20).unwrap();
        assert_eq!(archive.len() as u64, written.cpio_bytes);
        assert_eq!(&archive[..6], b"070701");
        let text = String::from_utf8_lossy(&archive);
        assert!(text.contains("dm-verity.ko: kernel/drivers/md/dm-mod.ko"));
        assert!(text.contains("alias devname:mapper/control dm_mod"));
        assert!(text.contains("ID=berth-initrd"));

        // Deterministic: the same tree gives the same bytes.
        let again = dir.path().join("again.img");
        write_compressed(&tree, 1_700_000_000, &again).unwrap();
        assert_eq!(bytes, fs::read(&again).unwrap());
    }

    #[test]
    fn an_epoch_past_2106_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let err = write_compressed(&Tree::default(), 1 << 33, &dir.path().join("x")).unwrap_err();
        assert!(matches!(err, InitramfsError::Epoch(_)), "{err}");
    }

    #[test]
    fn a_missing_module_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let (init, modules_dir) = fixture(dir.path());
        let modules = [PathBuf::from("kernel/missing.ko")];
        let layout = Layout {
            init: &init,
            kernel_version: "6.1.0-test",
            modules_dir: &modules_dir,
            modules: &modules,
            modules_dep: "",
            modules_alias: "",
        };
        let err = tree(&layout, dir.path()).unwrap_err();
        assert!(err.to_string().contains("missing.ko"), "{err}");
    }
}
