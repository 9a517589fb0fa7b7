//! Builders for test packages: real ones with `dpkg-deb`, hostile ones with the tar crate.
#![allow(dead_code)]

use berth_rootfs::LockedPackage;
use sha2::{Digest, Sha256};
use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

pub fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    fs::metadata("/proc/self").unwrap().uid() == 0
}

pub fn write(root: &Path, rel: &str, content: &str, mode: u32) {
    let path = root.join(rel);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(&path, content).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
}

/// A package source folder with every kind of entry the extractor must handle.
pub fn sample_tree(dir: &Path, name: &str, version: &str) {
    let control = format!(
        "Package: {name}\nVersion: {version}\nArchitecture: amd64\n\
         Maintainer: Berth <berth@example.org>\nDescription: test package\n"
    );
    write(dir, "DEBIAN/control", &control, 0o644);
    fs::set_permissions(dir.join("DEBIAN"), fs::Permissions::from_mode(0o755)).unwrap();
    write(dir, "usr/bin/tool", "#!/bin/sh\necho tool\n", 0o755);
    write(dir, "usr/bin/suid", "setuid program", 0o4755);
    symlink("tool", dir.join("usr/bin/tool-link")).unwrap();
    fs::hard_link(dir.join("usr/bin/tool"), dir.join("usr/bin/tool-hard")).unwrap();
    write(dir, "lib/x86_64-linux-gnu/libtest.so.1", "lib", 0o644);
    write(dir, "bin/legacy", "legacy", 0o755);
    write(
        dir,
        &format!("usr/share/doc/{name}/copyright"),
        "GPL",
        0o644,
    );
    write(
        dir,
        &format!("usr/share/doc/{name}/changelog.gz"),
        "x",
        0o644,
    );
    write(dir, "usr/share/man/man1/tool.1.gz", "man", 0o644);
    write(dir, "usr/share/locale/de/LC_MESSAGES/tool.mo", "mo", 0o644);
    write(dir, "var/lib/owned/data", "owned", 0o640);
    fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).unwrap();
}

/// Builds `src` into `<out>/<name>.deb` with `dpkg-deb -Z<compression>`. As root, the
/// files keep their owners (all root but `var/lib/owned`, made 1000:42); otherwise
/// `--root-owner-group` makes them all root.
pub fn dpkg_deb(src: &Path, out: &Path, compression: &str) -> PathBuf {
    let deb = out.join(format!("pkg-{compression}.deb"));
    let mut cmd = Command::new("dpkg-deb");
    cmd.arg(format!("-Z{compression}")).arg("--build");
    if is_root() {
        chown_tree(src, 0, 0);
        let owned = src.join("var/lib/owned");
        if owned.exists() {
            std::os::unix::fs::lchown(&owned, Some(1000), Some(42)).unwrap();
            std::os::unix::fs::lchown(owned.join("data"), Some(1000), Some(42)).unwrap();
        }
    } else {
        cmd.arg("--root-owner-group");
    }
    let status = cmd.arg(src).arg(&deb).output().unwrap();
    assert!(status.status.success(), "dpkg-deb: {status:?}");
    deb
}

/// chown clears setuid bits: the mode is put back afterwards.
fn chown_tree(path: &Path, uid: u32, gid: u32) {
    let meta = fs::symlink_metadata(path).unwrap();
    std::os::unix::fs::lchown(path, Some(uid), Some(gid)).unwrap();
    if !meta.is_symlink() {
        fs::set_permissions(path, meta.permissions()).unwrap();
    }
    if meta.is_dir() {
        for e in fs::read_dir(path).unwrap() {
            chown_tree(&e.unwrap().path(), uid, gid);
        }
    }
}

/// The lock entry for a built `.deb`.
pub fn locked(deb: &Path, name: &str, version: &str) -> LockedPackage {
    let bytes = fs::read(deb).unwrap();
    LockedPackage {
        name: name.into(),
        version: version.into(),
        architecture: "amd64".into(),
        filename: format!("pool/main/t/{name}/{name}_{version}_amd64.deb"),
        size: bytes.len() as u64,
        sha256: hex::encode(Sha256::digest(&bytes)),
    }
}

/// One entry of a hand-made data tarball; the path is written raw (no sanitising).
pub struct RawEntry {
    pub path: &'static str,
    pub kind: tar::EntryType,
    pub link: Option<&'static str>,
    pub data: &'static [u8],
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
}

impl RawEntry {
    pub fn file(path: &'static str, data: &'static [u8]) -> RawEntry {
        RawEntry {
            path,
            kind: tar::EntryType::Regular,
            link: None,
            data,
            mode: 0o644,
            uid: 0,
            gid: 0,
        }
    }

    pub fn dir(path: &'static str) -> RawEntry {
        RawEntry {
            kind: tar::EntryType::Directory,
            mode: 0o755,
            ..RawEntry::file(path, b"")
        }
    }

    pub fn symlink(path: &'static str, target: &'static str) -> RawEntry {
        RawEntry {
            kind: tar::EntryType::Symlink,
            link: Some(target),
            mode: 0o777,
            ..RawEntry::file(path, b"")
        }
    }
}

fn tarball(entries: &[RawEntry]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for e in entries {
        let mut header = tar::Header::new_old();
        let name = &mut header.as_old_mut().name;
        name[..e.path.len()].copy_from_slice(e.path.as_bytes());
        if let Some(link) = e.link {
            let field = &mut header.as_old_mut().linkname;
            field[..link.len()].copy_from_slice(link.as_bytes());
        }
        header.set_entry_type(e.kind);
        header.set_size(e.data.len() as u64);
        header.set_mode(e.mode);
        header.set_uid(e.uid);
        header.set_gid(e.gid);
        header.set_mtime(0);
        header.set_cksum();
        builder.append(&header, e.data).unwrap();
    }
    builder.into_inner().unwrap()
}

/// A `.deb` whose data tarball (uncompressed) holds exactly `entries`.
pub fn raw_deb(path: &Path, entries: &[RawEntry]) -> PathBuf {
    let control = [RawEntry::file(
        "./control",
        b"Package: evil\nVersion: 1\nArchitecture: amd64\n",
    )];
    let members: [(&str, Vec<u8>); 3] = [
        ("debian-binary", b"2.0\n".to_vec()),
        ("control.tar", tarball(&control)),
        ("data.tar", tarball(entries)),
    ];
    let mut ar = ar::Builder::new(fs::File::create(path).unwrap());
    for (name, data) in members {
        let header = ar::Header::new(name.as_bytes().to_vec(), data.len() as u64);
        ar.append(&header, data.as_slice()).unwrap();
    }
    path.to_path_buf()
}
