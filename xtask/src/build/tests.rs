//! The steps' code versions on a copy of this workspace's sources: an edit to `publish/`
//! (or anything else no step declares) changes no step, an edit to a format changes
//! exactly the steps made by it.

use std::fs;
use std::path::Path;

use super::{disk, esp, ext4, initramfs, kernel, rootfs, verity};
use crate::step::code::Versions;
use crate::step::{Code, Step};

/// Every step's name and code.
fn steps() -> Vec<(&'static str, Code)> {
    fn of<S: Step>() -> (&'static str, Code) {
        (S::NAME, S::CODE)
    }
    vec![
        of::<kernel::Kernel<'static>>(),
        of::<initramfs::Initramfs<'static>>(),
        of::<rootfs::Rootfs<'static>>(),
        of::<ext4::RootExt4<'static>>(),
        of::<verity::Verity<'static>>(),
        of::<esp::Esp<'static>>(),
        of::<ext4::StateExt4<'static>>(),
        of::<disk::Disk<'static>>(),
    ]
}

fn workspace() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

/// Copies what the steps declare, plus all of xtask and `Cargo.lock`, into `dest`.
fn copy_sources(dest: &Path) {
    let mut paths: Vec<&str> = vec!["xtask", "Cargo.lock"];
    for (_, code) in steps() {
        paths.extend(code.sources.iter().copied());
    }
    for rel in paths {
        copy(&workspace().join(rel), &dest.join(rel));
    }
}

fn copy(from: &Path, to: &Path) {
    let meta = fs::metadata(from).unwrap();
    if meta.is_dir() {
        for entry in fs::read_dir(from).unwrap() {
            let name = entry.unwrap().file_name();
            if name != "target" {
                copy(&from.join(&name), &to.join(&name));
            }
        }
    } else {
        fs::create_dir_all(to.parent().unwrap()).unwrap();
        fs::copy(from, to).unwrap();
    }
}

fn versions(root: &Path) -> Vec<(&'static str, String)> {
    let versions = Versions::new(root).unwrap();
    steps()
        .into_iter()
        .map(|(name, code)| (name, versions.version(&code).unwrap()))
        .collect()
}

fn append(path: &Path, text: &str) {
    let mut bytes = fs::read(path).unwrap();
    bytes.extend_from_slice(text.as_bytes());
    fs::write(path, bytes).unwrap();
}

/// The steps whose code version differs between `a` and `b`.
fn changed(a: &[(&'static str, String)], b: &[(&'static str, String)]) -> Vec<&'static str> {
    a.iter()
        .zip(b)
        .filter(|(x, y)| x.1 != y.1)
        .map(|(x, _)| x.0)
        .collect()
}

#[test]
fn editing_publish_rebuilds_no_step_and_a_format_edit_rebuilds_its_steps() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    copy_sources(root);
    let before = versions(root);
    assert_eq!(before, versions(root), "code versions are stable");

    append(&root.join("xtask/src/publish/gce.rs"), "\n// an edit\n");
    append(&root.join("xtask/src/main.rs"), "\n// an edit\n");
    append(&root.join("image/src/release/vhd.rs"), "\n// an edit\n");
    let after_publish = versions(root);
    assert_eq!(changed(&before, &after_publish), Vec::<&str>::new());

    append(&root.join("image/src/verity/tree.rs"), "\n// an edit\n");
    let after_format = versions(root);
    assert_eq!(
        changed(&after_publish, &after_format),
        [
            "kernel",
            "initramfs",
            "rootfs",
            "ext4",
            "verity",
            "esp",
            "state",
            "disk"
        ]
    );

    append(&root.join("rootfs/src/lib.rs"), "\n// an edit\n");
    let after_rootfs = versions(root);
    assert_eq!(changed(&after_format, &after_rootfs), ["kernel", "rootfs"]);

    append(&root.join("xtask/src/build/verity.rs"), "\n// an edit\n");
    assert_eq!(changed(&after_rootfs, &versions(root)), ["verity"]);
}

#[test]
fn a_dependency_update_changes_the_steps_that_link_it() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    copy_sources(root);
    let before = versions(root);
    let lock = root.join("Cargo.lock");
    let text = fs::read_to_string(&lock).unwrap();
    // ext4-view is only in berth-image's tree; ureq only in xtask's.
    let bumped = text.replace(
        "name = \"ureq\"\nversion = \"",
        "name = \"ureq\"\nversion = \"9",
    );
    assert_ne!(bumped, text, "Cargo.lock has no ureq");
    fs::write(&lock, bumped).unwrap();
    let after_ureq = versions(root);
    assert_eq!(changed(&before, &after_ureq), Vec::<&str>::new());
    let bumped = fs::read_to_string(&lock).unwrap().replace(
        "name = \"ext4-view\"\nversion = \"",
        "name = \"ext4-view\"\nversion = \"9",
    );
    fs::write(&lock, bumped).unwrap();
    assert_eq!(changed(&after_ureq, &versions(root)).len(), steps().len());
}

#[test]
fn every_declared_source_exists_and_none_is_publish_or_the_cli() {
    for (name, code) in steps() {
        for source in code.sources {
            assert!(
                workspace().join(source).exists(),
                "step {name} declares {source}, which does not exist"
            );
            assert!(
                !source.starts_with("xtask/src/publish") && *source != "xtask/src/main.rs",
                "step {name} declares {source}"
            );
        }
        for excluded in code.exclude {
            assert!(workspace().join(excluded).exists() || excluded.ends_with("tests"));
        }
    }
}
