//! Layer unpacking against hand-built tars, including every escape attempt.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use tar::{EntryType, Header};

use super::*;

/// A tar built entry by entry with raw names (the tar crate's own builder refuses `..`).
#[derive(Default)]
struct TarBuilder {
    out: Vec<u8>,
}

impl TarBuilder {
    fn raw(mut self, kind: EntryType, name: &[u8], link: &[u8], mode: u32, data: &[u8]) -> Self {
        let mut h = Header::new_ustar();
        h.set_entry_type(kind);
        h.as_old_mut().name[..name.len()].copy_from_slice(name);
        h.as_old_mut().linkname[..link.len()].copy_from_slice(link);
        h.set_mode(mode);
        h.set_uid(1234);
        h.set_gid(5678);
        h.set_mtime(1_000_000);
        h.set_size(data.len() as u64);
        h.set_cksum();
        self.out.extend_from_slice(h.as_bytes());
        self.out.extend_from_slice(data);
        self.out.resize(self.out.len().div_ceil(512) * 512, 0);
        self
    }
    fn file(self, name: &str, data: &[u8]) -> Self {
        self.raw(EntryType::Regular, name.as_bytes(), b"", 0o644, data)
    }
    fn dir(self, name: &str) -> Self {
        self.raw(EntryType::Directory, name.as_bytes(), b"", 0o755, b"")
    }
    fn symlink(self, name: &str, target: &str) -> Self {
        self.raw(
            EntryType::Symlink,
            name.as_bytes(),
            target.as_bytes(),
            0o777,
            b"",
        )
    }
    fn hardlink(self, name: &str, target: &str) -> Self {
        self.raw(
            EntryType::Link,
            name.as_bytes(),
            target.as_bytes(),
            0o644,
            b"",
        )
    }
    /// A PAX header applying `records` to the next entry.
    fn pax(self, records: &[(&str, &[u8])]) -> Self {
        let mut data = Vec::new();
        for (k, v) in records {
            let body = [b" ", k.as_bytes(), b"=", v, b"\n"].concat();
            let mut len = body.len() + 1;
            while format!("{len}").len() + body.len() != len {
                len += 1;
            }
            data.extend_from_slice(format!("{len}").as_bytes());
            data.extend_from_slice(&body);
        }
        self.raw(EntryType::XHeader, b"pax", b"", 0o644, &data)
    }
    fn build(mut self) -> Vec<u8> {
        self.out.extend_from_slice(&[0u8; 1024]);
        self.out
    }
}

fn root() -> bool {
    nix::unistd::geteuid().is_root()
}

fn opts() -> UnpackOptions {
    UnpackOptions::for_current_user()
}

fn unpack(tar: &[u8], opts: UnpackOptions) -> (tempfile::TempDir, Result<Digest, ImageError>) {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("layer")).unwrap();
    let result = unpack_layer(tar, &dir.path().join("layer"), "sha256:test", opts);
    (dir, result)
}

fn refused(tar: &[u8], opts: UnpackOptions, needle: &str) -> tempfile::TempDir {
    let (dir, result) = unpack(tar, opts);
    let err = result.unwrap_err();
    assert!(matches!(err, ImageError::UnsafeEntry { .. }), "{err}");
    assert!(err.to_string().contains(needle), "{err}");
    dir
}

fn sample() -> Vec<u8> {
    TarBuilder::default()
        .dir("./")
        .dir("bin/")
        .file("bin/busybox", b"#!fake busybox")
        .symlink("bin/sh", "busybox")
        .hardlink("bin/ash", "bin/busybox")
        .file("etc/hostname", b"box\n")
        .build()
}

fn check_sample(layer: &Path) {
    assert_eq!(
        fs::read(layer.join("bin/busybox")).unwrap(),
        b"#!fake busybox"
    );
    assert_eq!(
        fs::read_link(layer.join("bin/sh")).unwrap(),
        Path::new("busybox")
    );
    let a = fs::metadata(layer.join("bin/busybox")).unwrap();
    let b = fs::metadata(layer.join("bin/ash")).unwrap();
    assert_eq!(a.ino(), b.ino());
    assert_eq!(a.mode() & 0o7777, 0o644);
    assert_eq!(a.mtime(), 1_000_000);
    assert_eq!(fs::metadata(layer.join("bin")).unwrap().mtime(), 1_000_000);
    // etc/ is not in the tar: created 0755 whatever the umask.
    assert_eq!(
        fs::metadata(layer.join("etc")).unwrap().mode() & 0o7777,
        0o755
    );
    if root() {
        assert_eq!((a.uid(), a.gid()), (1234, 5678));
    }
}

#[test]
fn plain_gzip_and_zstd_layers_unpack_alike_and_hash_the_tar() {
    let tar = sample();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&tar).unwrap();
    let gz = gz.finish().unwrap();
    let zst = zstd::encode_all(&tar[..], 3).unwrap();
    for blob in [&tar, &gz, &zst] {
        let (dir, result) = unpack(blob, opts());
        assert_eq!(result.unwrap(), Digest::of(&tar));
        check_sample(&dir.path().join("layer"));
    }
}

#[test]
fn later_entries_replace_earlier_ones_without_following_links() {
    let tar = TarBuilder::default()
        .symlink("x", "/etc/passwd")
        .file("x", b"mine")
        .file("d/f", b"1")
        .symlink("d", "elsewhere")
        .build();
    let (dir, result) = unpack(&tar, opts());
    result.unwrap();
    let layer = dir.path().join("layer");
    assert_eq!(fs::read(layer.join("x")).unwrap(), b"mine");
    assert!(fs::symlink_metadata(layer.join("d"))
        .unwrap()
        .file_type()
        .is_symlink());
}

#[test]
fn dotdot_paths_are_refused() {
    let dir = refused(
        &TarBuilder::default().file("../x", b"evil").build(),
        opts(),
        "'..'",
    );
    assert!(!dir.path().join("x").exists());
    refused(
        &TarBuilder::default().file("a/../../x", b"evil").build(),
        opts(),
        "'..'",
    );
}

#[test]
fn absolute_paths_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("abs-target");
    refused(
        &TarBuilder::default()
            .file(target.to_str().unwrap(), b"evil")
            .build(),
        opts(),
        "absolute",
    );
    assert!(!target.exists());
}

#[test]
fn writing_through_a_symlinked_parent_is_refused() {
    let outside = tempfile::tempdir().unwrap();
    let tar = TarBuilder::default()
        .symlink("evil", outside.path().to_str().unwrap())
        .file("evil/pwned", b"evil")
        .build();
    refused(&tar, opts(), "symlink");
    assert!(!outside.path().join("pwned").exists());
    // A relative link climbing out is caught the same way.
    let tar = TarBuilder::default()
        .symlink("up", "../../..")
        .dir("up/etc/")
        .build();
    refused(&tar, opts(), "symlink");
}

#[test]
fn hardlinks_must_point_inside_the_layer() {
    refused(
        &TarBuilder::default()
            .hardlink("passwd", "../../etc/passwd")
            .build(),
        opts(),
        "'..'",
    );
    refused(
        &TarBuilder::default()
            .hardlink("passwd", "/etc/passwd")
            .build(),
        opts(),
        "absolute",
    );
    let tar = TarBuilder::default()
        .symlink("etc", "/etc")
        .hardlink("passwd", "etc/passwd")
        .build();
    refused(&tar, opts(), "symlink");
    refused(
        &TarBuilder::default().hardlink("ghost", "not/here").build(),
        opts(),
        "not in this layer",
    );
}

#[test]
fn device_nodes_are_refused_when_not_root() {
    let tar = TarBuilder::default()
        .raw(EntryType::Char, b"dev/null", b"", 0o666, b"")
        .build();
    let not_root = UnpackOptions {
        allow_devices: false,
        set_owner: false,
    };
    refused(&tar, not_root, "only created when the runtime runs as root");
    // Fifos need no privilege.
    let fifo = TarBuilder::default()
        .raw(EntryType::Fifo, b"run/fifo", b"", 0o600, b"")
        .build();
    let (dir, result) = unpack(&fifo, not_root);
    result.unwrap();
    assert!(fs::symlink_metadata(dir.path().join("layer/run/fifo"))
        .unwrap()
        .file_type()
        .is_fifo());
}

#[test]
fn device_nodes_are_created_as_root() {
    if !root() {
        berth_testkit::skip("needs root (CAP_MKNOD)");
        return;
    }
    let mut tar = TarBuilder::default().raw(EntryType::Char, b"dev/null", b"", 0o666, b"");
    // Patch the device numbers into the entry just written.
    let start = tar.out.len() - 512;
    let mut header = Header::from_byte_slice(&tar.out[start..]).clone();
    header.set_device_major(1).unwrap();
    header.set_device_minor(3).unwrap();
    header.set_cksum();
    tar.out[start..].copy_from_slice(header.as_bytes());
    let (dir, result) = unpack(&tar.build(), opts());
    result.unwrap();
    let m = fs::symlink_metadata(dir.path().join("layer/dev/null")).unwrap();
    assert!(m.file_type().is_char_device());
    assert_eq!(m.rdev(), nix::sys::stat::makedev(1, 3));
    assert_eq!(m.mode() & 0o7777, 0o666);
}

#[test]
fn whiteouts_become_overlay_whiteout_devices() {
    if !root() {
        berth_testkit::skip("creating a 0/0 char device needs root");
        return;
    }
    let tar = TarBuilder::default()
        .dir("etc/")
        .file("etc/.wh.motd", b"")
        .file(".wh.tmp", b"")
        .build();
    let (dir, result) = unpack(&tar, opts());
    result.unwrap();
    for path in ["layer/etc/motd", "layer/tmp"] {
        let m = fs::symlink_metadata(dir.path().join(path)).unwrap();
        assert!(m.file_type().is_char_device(), "{path}");
        assert_eq!(m.rdev(), 0, "{path}");
    }
    assert!(!dir.path().join("layer/etc/.wh.motd").exists());
    refused(
        &TarBuilder::default().file(".wh..", b"").build(),
        opts(),
        "whiteout",
    );
}

#[test]
fn opaque_markers_set_the_overlay_xattr() {
    if !root() {
        berth_testkit::skip("trusted.* xattrs need CAP_SYS_ADMIN");
        return;
    }
    let tar = TarBuilder::default()
        .dir("var/")
        .dir("var/cache/")
        .file("var/cache/.wh..wh..opq", b"")
        .build();
    let (dir, result) = unpack(&tar, opts());
    result.unwrap();
    let cache = dir.path().join("layer/var/cache");
    assert_eq!(
        sys::lgetxattr(&cache, OPAQUE_XATTR).unwrap().as_deref(),
        Some(&b"y"[..])
    );
    assert!(!cache.join(".wh..wh..opq").exists());
    assert_eq!(
        sys::lgetxattr(&dir.path().join("layer/var"), OPAQUE_XATTR).unwrap(),
        None
    );
}

#[test]
fn pax_xattrs_and_ids_are_kept_but_overlay_xattrs_from_the_tar_are_not() {
    let tar = TarBuilder::default()
        .pax(&[
            ("SCHILY.xattr.user.note", b"hello"),
            ("SCHILY.xattr.trusted.overlay.opaque", b"y"),
            ("uid", b"4000000"),
        ])
        .dir("d/")
        .build();
    let (dir, result) = unpack(&tar, opts());
    result.unwrap();
    let d = dir.path().join("layer/d");
    match sys::lgetxattr(&d, "user.note") {
        Ok(v) => assert_eq!(v.as_deref(), Some(&b"hello"[..])),
        Err(e) => eprintln!("user xattrs unsupported here ({e}); skipping that check"),
    }
    if root() {
        assert_eq!(sys::lgetxattr(&d, OPAQUE_XATTR).unwrap(), None);
        assert_eq!(fs::metadata(&d).unwrap().uid(), 4_000_000);
    }
}

#[test]
fn setuid_bits_survive_chown() {
    let tar = TarBuilder::default()
        .raw(EntryType::Regular, b"bin/su", b"", 0o4755, b"x")
        .build();
    let (dir, result) = unpack(&tar, opts());
    result.unwrap();
    assert_eq!(
        fs::metadata(dir.path().join("layer/bin/su"))
            .unwrap()
            .mode()
            & 0o7777,
        0o4755
    );
}

#[test]
fn garbage_is_a_bad_layer_not_a_panic() {
    let (_dir, result) = unpack(&[0x1f, 0x8b, 1, 2, 3], opts());
    assert!(matches!(result.unwrap_err(), ImageError::BadLayer { .. }));
    let (_dir, result) = unpack(&[7u8; 700], opts());
    assert!(result.is_err());
}

mod fuzz {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// Random names and link targets never write outside the layer folder.
        #[test]
        fn nothing_escapes(entries in proptest::collection::vec(
            (0u8..4, "[a-c./]{1,12}", "[a-c./]{0,12}"), 1..8)
        ) {
            let outer = tempfile::tempdir().unwrap();
            let layer = outer.path().join("layer");
            fs::create_dir(&layer).unwrap();
            let mut tar = TarBuilder::default();
            for (kind, name, link) in &entries {
                tar = match kind {
                    0 => tar.file(name, b"data"),
                    1 => tar.dir(name),
                    2 => tar.symlink(name, if link.is_empty() { "a" } else { link }),
                    _ => tar.hardlink(name, link),
                };
            }
            let _ = unpack_layer(&tar.build()[..], &layer, "sha256:fuzz", UnpackOptions { allow_devices: false, set_owner: false });
            let outside: Vec<_> = fs::read_dir(outer.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
            prop_assert_eq!(outside, vec![std::ffi::OsString::from("layer")]);
        }
    }
}
