use super::*;
use crate::tree::{Entry, Owner, Owners};
use ext4_view::Ext4;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::process::Command;

const EPOCH: u64 = 1_700_000_000;

fn params(writable: bool) -> Ext4Params {
    Ext4Params {
        label: "ROOT".into(),
        uuid: Uuid::from_u128(0x1111_2222_3333_4444_5555_6666_7777_8888),
        hash_seed: Uuid::from_u128(0x9999_aaaa_bbbb_cccc_dddd_eeee_ffff_0000),
        epoch: EPOCH,
        writable,
    }
}

/// A staged tree; `reverse` creates entries in the opposite order to vary host readdir order.
fn stage(root: &Path, reverse: bool) {
    fs::create_dir_all(root.join("usr/bin")).unwrap();
    fs::create_dir_all(root.join("etc/big")).unwrap();
    let mut names: Vec<u32> = (0..400).collect();
    if reverse {
        names.reverse();
    }
    for i in names {
        fs::write(root.join(format!("etc/big/file-{i}")), format!("{i}\n")).unwrap();
    }
    fs::write(root.join("usr/bin/tool"), vec![7u8; 3 * 4096 + 5]).unwrap();
    fs::set_permissions(
        root.join("usr/bin/tool"),
        fs::Permissions::from_mode(0o4755),
    )
    .unwrap();
    fs::write(root.join("etc/empty"), b"").unwrap();
    fs::write(root.join("etc/with space"), b"x").unwrap();
    fs::hard_link(root.join("usr/bin/tool"), root.join("usr/bin/tool2")).unwrap();
    symlink("usr/bin", root.join("bin")).unwrap();
    symlink("/".to_string() + &"a".repeat(100), root.join("etc/long")).unwrap();
}

fn tree_of(root: &Path) -> Tree {
    let mut owners = Owners::new();
    owners.insert("etc/empty".into(), Owner { uid: 100, gid: 101 });
    Tree::scan(root, &owners).unwrap()
}

#[test]
fn tree_reads_back_with_modes_owners_links_and_times() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    stage(&root, false);
    let tree = tree_of(&root);
    let image = dir.path().join("root.ext4");
    write(&tree, &image, estimate_size(&tree), &params(false)).unwrap();

    let fs = Ext4::load(Box::new(fs::read(&image).unwrap())).unwrap();
    assert_eq!(fs.uuid().to_string(), params(false).uuid.to_string());
    for entry in tree.entries() {
        let path = format!("/{}", entry.path.display());
        let meta = fs.symlink_metadata(path.as_str()).unwrap();
        assert_eq!(u32::from(meta.mode()), entry.mode, "{path}");
        assert_eq!(
            (meta.uid(), meta.gid()),
            (entry.owner.uid, entry.owner.gid),
            "{path}"
        );
        assert_eq!(meta.modified().seconds(), EPOCH as i64, "{path}");
        assert_eq!(meta.accessed().seconds(), EPOCH as i64, "{path}");
        match &entry.kind {
            EntryKind::File { source, .. } => {
                assert_eq!(
                    fs.read(path.as_str()).unwrap(),
                    fs::read(source).unwrap(),
                    "{path}"
                )
            }
            EntryKind::Hardlink { target } => {
                let first = format!("/{}", target.display());
                assert_eq!(
                    fs.read(path.as_str()).unwrap(),
                    fs.read(first.as_str()).unwrap()
                );
            }
            EntryKind::Symlink { target } => {
                assert_eq!(
                    fs.read_link(path.as_str()).unwrap().to_str().unwrap(),
                    target.to_str().unwrap()
                )
            }
            EntryKind::Dir => assert!(meta.is_dir()),
            _ => {}
        }
    }
    let stat = Command::new("debugfs")
        .args(["-R", "stat /usr/bin/tool"])
        .arg(&image)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&stat.stdout);
    assert!(text.contains("Links: 2"), "{text}");
    let dump = Command::new("dumpe2fs")
        .arg("-h")
        .arg(&image)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&dump.stdout);
    assert!(!text.contains("has_journal"), "{text}");
    assert!(
        text.contains("Directory Hash Seed:      9999aaaa-bbbb-cccc-dddd-eeeeffff0000"),
        "{text}"
    );
}

#[test]
fn same_tree_staged_differently_gives_identical_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let mut images = Vec::new();
    for (n, reverse) in [(0, false), (1, true)] {
        let root = dir.path().join(format!("root{n}"));
        stage(&root, reverse);
        let tree = tree_of(&root);
        let image = dir.path().join(format!("root{n}.ext4"));
        write(&tree, &image, 16 << 20, &params(false)).unwrap();
        images.push(fs::read(&image).unwrap());
        std::thread::sleep(std::time::Duration::from_millis(1100));
    }
    assert!(images[0] == images[1], "two builds of the same tree differ");
}

#[test]
fn empty_state_filesystem_has_a_journal_and_inodes_for_what_the_node_writes() {
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("state.ext4");
    write(&Tree::default(), &image, 32 << 20, &params(true)).unwrap();
    let dump = Command::new("dumpe2fs")
        .arg("-h")
        .arg(&image)
        .output()
        .unwrap();
    let dump = String::from_utf8_lossy(&dump.stdout);
    assert!(dump.contains("has_journal"), "{dump}");
    // One inode per 16 KiB, not the empty tree's 64 (a pull of one image ran out of them).
    let inodes: u64 = dump
        .lines()
        .find_map(|l| l.strip_prefix("Inode count:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no inode count in {dump}"));
    assert_eq!(inodes, (32 << 20) / 16384, "{dump}");
}

#[test]
fn a_tree_that_does_not_fit_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    fs::create_dir(&root).unwrap();
    fs::write(root.join("big"), vec![1u8; 6 << 20]).unwrap();
    let tree = Tree::scan(&root, &Owners::new()).unwrap();
    let err = write(&tree, &dir.path().join("x.ext4"), 4 << 20, &params(false)).unwrap_err();
    assert!(
        matches!(
            err,
            Ext4Error::ToolFailed {
                tool: "debugfs",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn quote_refuses_what_debugfs_cannot_parse() {
    let entries = vec![Entry {
        path: "etc/bad\"name".into(),
        kind: EntryKind::Dir,
        mode: 0o755,
        owner: Owner::default(),
    }];
    let err = debugfs_script(&Tree::from_entries(entries), EPOCH).unwrap_err();
    assert!(err.to_string().contains("bad\"name"), "{err}");
}
