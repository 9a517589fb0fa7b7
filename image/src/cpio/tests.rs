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
