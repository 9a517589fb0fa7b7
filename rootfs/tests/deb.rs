//! Extraction of real (`dpkg-deb`) and hostile (hand-made) packages.

mod common;

use berth_rootfs::deb::{self, DebError};
use berth_rootfs::{Owner, Prune};
use common::{dpkg_deb, is_root, raw_deb, sample_tree, RawEntry};
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

fn mode(path: &Path) -> u32 {
    fs::symlink_metadata(path).unwrap().permissions().mode() & 0o7777
}

#[test]
fn extracts_every_compression() {
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    sample_tree(&src, "berth-test", "1.0-1");
    for compression in ["xz", "zstd", "gzip", "none"] {
        let deb = dpkg_deb(&src, work.path(), compression);
        let control = deb::control(&deb).unwrap();
        assert_eq!(
            (control.package.as_str(), control.version.as_str()),
            ("berth-test", "1.0-1")
        );
        assert_eq!(control.architecture, "amd64");

        let root = work.path().join(format!("root-{compression}"));
        fs::create_dir(&root).unwrap();
        let out = deb::extract(&deb, &root, &Prune::default()).unwrap();

        let tool = root.join("usr/bin/tool");
        assert_eq!(fs::read_to_string(&tool).unwrap(), "#!/bin/sh\necho tool\n");
        assert_eq!(mode(&tool), 0o755);
        assert_eq!(mode(&root.join("usr/bin/suid")), 0o4755, "setuid kept");
        assert_eq!(
            fs::read_link(root.join("usr/bin/tool-link")).unwrap(),
            PathBuf::from("tool")
        );
        let hard = fs::metadata(root.join("usr/bin/tool-hard")).unwrap();
        assert_eq!(hard.ino(), fs::metadata(&tool).unwrap().ino(), "hard link");
        // Merged /usr: /lib and /bin content lands under usr/.
        assert!(root.join("usr/lib/x86_64-linux-gnu/libtest.so.1").is_file());
        assert!(root.join("usr/bin/legacy").is_file());
        assert!(!root.join("lib").exists() && !root.join("bin").exists());
        // Pruning keeps only the copyright of the docs.
        assert!(root.join("usr/share/doc/berth-test/copyright").is_file());
        assert!(!root.join("usr/share/doc/berth-test/changelog.gz").exists());
        assert!(!root.join("usr/share/man").exists());
        assert!(!root.join("usr/share/locale").exists());
        assert_eq!(out.pruned, 8, "{compression}");
        assert!(out.paths.contains(&PathBuf::from("usr/bin/tool-hard")));
        assert!(out.replaced.is_empty());

        if is_root() {
            let owner = Owner { uid: 1000, gid: 42 };
            let expected = [
                (PathBuf::from("var/lib/owned"), owner),
                (PathBuf::from("var/lib/owned/data"), owner),
            ];
            assert_eq!(out.owners, expected.into_iter().collect());
            // Owners are recorded, not applied: the host file stays the builder's.
            assert_eq!(
                fs::metadata(root.join("var/lib/owned/data")).unwrap().uid(),
                0
            );
        } else {
            assert!(out.owners.is_empty());
        }
    }
}

#[test]
fn later_package_wins() {
    let work = tempfile::tempdir().unwrap();
    let root = work.path().join("root");
    fs::create_dir(&root).unwrap();
    let first = raw_deb(
        &work.path().join("a.deb"),
        &[
            RawEntry::file("./usr/bin/x", b"first"),
            RawEntry {
                kind: tar::EntryType::Link,
                link: Some("./usr/bin/x"),
                ..RawEntry::file("./usr/bin/x-hard", b"")
            },
            RawEntry {
                uid: 7,
                gid: 7,
                ..RawEntry::file("./usr/bin/y", b"y")
            },
        ],
    );
    let second = raw_deb(
        &work.path().join("b.deb"),
        &[
            RawEntry::file("./usr/bin/x", b"second"),
            RawEntry::symlink("./usr/bin/y", "x"),
        ],
    );
    let a = deb::extract(&first, &root, &Prune::default()).unwrap();
    assert_eq!(
        a.owners.get(Path::new("usr/bin/y")),
        Some(&Owner { uid: 7, gid: 7 })
    );
    let b = deb::extract(&second, &root, &Prune::default()).unwrap();
    assert_eq!(
        b.replaced,
        vec![PathBuf::from("usr/bin/x"), PathBuf::from("usr/bin/y")]
    );
    assert_eq!(fs::read(root.join("usr/bin/x")).unwrap(), b"second");
    // The replaced file is unlinked, not rewritten: the old hard link keeps its bytes.
    assert_eq!(fs::read(root.join("usr/bin/x-hard")).unwrap(), b"first");
    assert!(fs::symlink_metadata(root.join("usr/bin/y"))
        .unwrap()
        .is_symlink());
}

fn refused(entries: &[RawEntry]) -> (DebError, tempfile::TempDir) {
    let work = tempfile::tempdir().unwrap();
    let root = work.path().join("root");
    fs::create_dir(&root).unwrap();
    let deb = raw_deb(&work.path().join("evil.deb"), entries);
    let err = deb::extract(&deb, &root, &Prune::nothing()).unwrap_err();
    assert!(err.to_string().contains("evil.deb"), "{err}");
    (err, work)
}

#[test]
fn escaping_paths_are_refused() {
    let (err, work) = refused(&[RawEntry::file("./../escape", b"x")]);
    assert!(matches!(err, DebError::UnsafePath { .. }), "{err}");
    assert!(err.to_string().contains("./../escape"), "{err}");
    assert!(!work.path().join("escape").exists());

    let (err, _) = refused(&[RawEntry::file("/etc/berth-test-absolute", b"x")]);
    assert!(
        err.to_string()
            .contains("/etc/berth-test-absolute: absolute path"),
        "{err}"
    );
    assert!(!Path::new("/etc/berth-test-absolute").exists());

    let (err, _) = refused(&[RawEntry::file("usr/../../escape", b"x")]);
    assert!(matches!(err, DebError::UnsafePath { .. }), "{err}");

    let (err, _) = refused(&[
        RawEntry::file("./usr/bin/x", b"x"),
        RawEntry {
            kind: tar::EntryType::Link,
            link: Some("../../etc/shadow"),
            ..RawEntry::file("./usr/bin/y", b"")
        },
    ]);
    assert!(err.to_string().contains("../../etc/shadow"), "{err}");
}

#[test]
fn writes_through_symlinks_are_refused() {
    let (err, work) = refused(&[
        RawEntry::symlink("./evil", "/tmp"),
        RawEntry::file("./evil/planted", b"x"),
    ]);
    let msg = err.to_string();
    assert!(
        msg.contains("evil/planted") && msg.contains("symlink"),
        "{msg}"
    );
    assert!(!Path::new("/tmp/planted").exists());

    drop(work);
    let (err, _) = refused(&[
        RawEntry::symlink("./up", "../../../../../../../.."),
        RawEntry::dir("./up/tmp"),
    ]);
    assert!(err.to_string().contains("up/tmp"), "{err}");
    // A symlink then a file of the same name: the symlink is replaced, never followed.
    let work = tempfile::tempdir().unwrap();
    let root = work.path().join("root");
    fs::create_dir(&root).unwrap();
    let target = work.path().join("victim");
    fs::write(&target, "untouched").unwrap();
    let deb = raw_deb(
        &work.path().join("a.deb"),
        &[
            RawEntry::symlink("./x", "../victim"),
            RawEntry::file("./x", b"replaced"),
        ],
    );
    deb::extract(&deb, &root, &Prune::nothing()).unwrap();
    assert_eq!(fs::read_to_string(&target).unwrap(), "untouched");
    assert_eq!(fs::read_to_string(root.join("x")).unwrap(), "replaced");
}

#[test]
fn device_nodes_are_refused() {
    let (err, _) = refused(&[RawEntry {
        kind: tar::EntryType::Char,
        ..RawEntry::file("./dev/console", b"")
    }]);
    assert!(
        err.to_string()
            .contains("./dev/console is a character device"),
        "{err}"
    );
}

#[test]
fn truncated_and_garbage_debs_name_the_file() {
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    sample_tree(&src, "berth-test", "1.0-1");
    for compression in ["xz", "none"] {
        let deb = dpkg_deb(&src, work.path(), compression);
        let bytes = fs::read(&deb).unwrap();
        for cut in [
            4,
            70,
            200,
            bytes.len() / 2,
            bytes.len() - 600,
            bytes.len() - 1,
        ] {
            let bad = work.path().join(format!("cut-{compression}-{cut}.deb"));
            fs::write(&bad, &bytes[..cut]).unwrap();
            let root = work.path().join(format!("root-{compression}-{cut}"));
            fs::create_dir(&root).unwrap();
            let err = deb::extract(&bad, &root, &Prune::default()).unwrap_err();
            let name = bad.file_name().unwrap().to_str().unwrap();
            assert!(err.to_string().contains(name), "{cut}: {err}");
        }
    }
    let garbage = work.path().join("garbage.deb");
    fs::write(
        &garbage,
        b"this is not an ar archive at all, just some bytes\n",
    )
    .unwrap();
    let err = deb::extract(&garbage, work.path(), &Prune::default()).unwrap_err();
    assert!(err.to_string().contains("garbage.deb"), "{err}");
    let err = deb::control(&garbage).unwrap_err();
    assert!(err.to_string().contains("garbage.deb"), "{err}");
    let err = deb::control(&work.path().join("missing.deb")).unwrap_err();
    assert!(err.to_string().contains("missing.deb"), "{err}");
}
