//! A whole root from packages, binaries and an overlay.

mod common;

use berth_rootfs::{assemble, Binary, Owner, RootfsError, RootfsInput};
use common::{dpkg_deb, is_root, locked, sample_tree, write};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

struct Fixture {
    work: tempfile::TempDir,
    input: RootfsInput,
}

fn fixture() -> Fixture {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let src = w.join("src");
    sample_tree(&src, "berth-test", "1.0-1");
    let deb_a = dpkg_deb(&src, w, "xz");

    let certs = w.join("certs");
    write(&certs, "DEBIAN/control", "Package: ca-certificates\nVersion: 2\nArchitecture: all\nMaintainer: x <x@example.org>\nDescription: certs\n", 0o644);
    fs::set_permissions(certs.join("DEBIAN"), fs::Permissions::from_mode(0o755)).unwrap();
    write(
        &certs,
        "usr/share/ca-certificates/mozilla/B.crt",
        "-----B-----\n",
        0o644,
    );
    write(
        &certs,
        "usr/share/ca-certificates/mozilla/A.crt",
        "-----A-----\n",
        0o644,
    );
    write(&certs, "usr/bin/tool", "replaced by a later package", 0o755);
    fs::set_permissions(&certs, fs::Permissions::from_mode(0o755)).unwrap();
    let deb_b = w.join("certs.deb");
    fs::rename(dpkg_deb(&certs, w, "zstd"), &deb_b).unwrap();

    let mut pkg_b = locked(&deb_b, "ca-certificates", "2");
    pkg_b.architecture = "all".into();
    write(w, "init", "#!/bin/sh\nexec true\n", 0o644);
    let overlay = w.join("overlay");
    write(&overlay, "etc/hostname", "berth\n", 0o644);
    write(
        &overlay,
        "usr/lib/systemd/system/x.service",
        "[Service]\n",
        0o644,
    );
    write(&overlay, "sbin/overlaid", "mapped to usr/sbin", 0o755);
    write(
        &overlay,
        "var/lib/owned/data",
        "overlay wins, root owns",
        0o600,
    );
    Fixture {
        input: RootfsInput {
            packages: vec![
                (locked(&deb_a, "berth-test", "1.0-1"), deb_a),
                (pkg_b, deb_b),
            ],
            binaries: vec![Binary {
                source: w.join("init"),
                dest: PathBuf::from("sbin/init"),
                mode: 0o755,
            }],
            overlays: vec![overlay],
            cni: None,
        },
        work,
    }
}

#[test]
fn assembles_a_root() {
    let f = fixture();
    let dest = f.work.path().join("root");
    let lines = std::cell::RefCell::new(Vec::new());
    let out = assemble(&f.input, &dest, &|l| lines.borrow_mut().push(l.to_string())).unwrap();

    for (link, target) in [
        ("bin", "usr/bin"),
        ("sbin", "usr/sbin"),
        ("lib", "usr/lib"),
        ("lib64", "usr/lib64"),
    ] {
        assert_eq!(
            fs::read_link(dest.join(link)).unwrap(),
            PathBuf::from(target)
        );
    }
    assert_eq!(
        fs::read_to_string(dest.join("usr/bin/tool")).unwrap(),
        "replaced by a later package"
    );
    let init = dest.join("usr/sbin/init");
    assert_eq!(
        fs::metadata(&init).unwrap().permissions().mode() & 0o7777,
        0o755
    );
    assert_eq!(
        fs::read_to_string(dest.join("etc/hostname")).unwrap(),
        "berth\n"
    );
    assert!(dest.join("usr/lib/systemd/system/x.service").is_file());
    assert!(dest.join("usr/sbin/overlaid").is_file());
    assert_eq!(
        fs::read_to_string(dest.join("etc/ssl/certs/ca-certificates.crt")).unwrap(),
        "-----A-----\n-----B-----\n"
    );
    let names: Vec<_> = out.packages.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["berth-test", "ca-certificates"]);
    if is_root() {
        // The folder keeps its package owner; the overlay's file is root's.
        let expected = [(PathBuf::from("var/lib/owned"), Owner { uid: 1000, gid: 42 })];
        assert_eq!(out.owners, expected.into_iter().collect());
    }
    let lines = lines.into_inner();
    assert!(
        lines
            .iter()
            .any(|l| l == "ca-certificates: replaces usr/bin/tool"),
        "{lines:?}"
    );

    // The destination must be empty.
    let err = assemble(&f.input, &dest, &|_| {}).unwrap_err();
    assert!(matches!(err, RootfsError::DestNotEmpty { .. }), "{err}");
}

#[test]
fn a_deb_that_is_not_the_locked_one_stops_the_build() {
    let mut f = fixture();
    f.input.packages[0].0.sha256 = "0".repeat(64);
    let err = assemble(&f.input, &f.work.path().join("r1"), &|_| {}).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("package berth-test=1.0-1") && msg.contains(&"0".repeat(64)),
        "{msg}"
    );

    let mut f = fixture();
    f.input.packages[0].0.version = "1.0-2".into();
    let digest = f.input.packages[0].0.clone();
    let err = assemble(&f.input, &f.work.path().join("r2"), &|_| {}).unwrap_err();
    assert!(
        matches!(
            err,
            RootfsError::ControlMismatch {
                field: "Version",
                ..
            }
        ),
        "{err} {digest:?}"
    );
}

#[test]
fn a_binary_without_its_libraries_fails_the_elf_check() {
    let mut f = fixture();
    f.input.binaries.push(Binary {
        source: PathBuf::from("/bin/true"),
        dest: PathBuf::from("/usr/bin/true"),
        mode: 0o755,
    });
    let err = assemble(&f.input, &f.work.path().join("r"), &|_| {}).unwrap_err();
    assert!(matches!(err, RootfsError::Elf(_)), "{err}");
    assert!(
        err.to_string()
            .contains("usr/bin/true needs libc.so.6, not found in the root"),
        "{err}"
    );
    assert!(!Path::new(&f.work.path().join("r/usr/bin/true")).is_symlink());
}
