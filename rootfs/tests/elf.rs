//! The shared-library check against real host binaries.

use berth_rootfs::elf::{self, ElfError};
use berth_rootfs::place::{self, MERGED_USR};
use std::fs;
use std::path::Path;

fn copy_in(root: &Path, host: &str, rel: &str) {
    let mut file = fs::File::open(fs::canonicalize(host).unwrap()).unwrap();
    place::write_file(root, Path::new(rel), 0o755, &mut file).unwrap();
}

#[test]
fn true_needs_libc_and_the_loader_from_the_tree() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    for (link, target) in MERGED_USR {
        place::make_dir(root, Path::new(target), None).unwrap();
        place::make_symlink(root, Path::new(link), Path::new(target)).unwrap();
    }
    copy_in(root, "/bin/true", "usr/bin/true");

    let err = elf::check(root).unwrap_err();
    let ElfError::Missing(list) = &err else {
        panic!("unexpected error {err}");
    };
    let msg = err.to_string();
    assert!(
        msg.contains("usr/bin/true needs libc.so.6, not found in the root"),
        "{msg}"
    );
    assert!(
        msg.contains("usr/bin/true needs /lib64/ld-linux-x86-64.so.2"),
        "{msg}"
    );
    assert_eq!(list.0.len(), 2, "{msg}");

    // The host's libc next to the binary's tree is not enough: it must be in the tree.
    copy_in(
        root,
        "/lib/x86_64-linux-gnu/libc.so.6",
        "usr/lib/x86_64-linux-gnu/libc.so.6",
    );
    copy_in(
        root,
        "/lib64/ld-linux-x86-64.so.2",
        "usr/lib64/ld-linux-x86-64.so.2",
    );
    let report = elf::check(root).unwrap();
    assert!(report
        .dynamic
        .iter()
        .any(|p| p == Path::new("usr/bin/true")));
    assert!(report
        .resolved
        .contains(Path::new("usr/lib/x86_64-linux-gnu/libc.so.6")));
    assert!(report
        .resolved
        .contains(Path::new("usr/lib64/ld-linux-x86-64.so.2")));
}

#[test]
fn symlinks_resolve_inside_the_tree_and_modules_are_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    copy_in(root, "/bin/true", "usr/bin/true");
    copy_in(
        root,
        "/lib/x86_64-linux-gnu/libc.so.6",
        "usr/lib/x86_64-linux-gnu/libc.so.6",
    );
    // An absolute symlink means the tree's /usr/..., which exists; on the host the same
    // absolute path would also exist, so a host lookup would wrongly pass the next case.
    copy_in(
        root,
        "/lib64/ld-linux-x86-64.so.2",
        "usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
    );
    place::make_dir(root, Path::new("lib64"), None).unwrap();
    place::make_symlink(
        root,
        Path::new("lib64/ld-linux-x86-64.so.2"),
        Path::new("/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"),
    )
    .unwrap();
    place::write_file(
        root,
        Path::new("usr/lib/modules/6.1/kernel/x.ko"),
        0o644,
        &mut &b"\x7fELF garbage, but a module"[..],
    )
    .unwrap();
    elf::check(root).unwrap();

    // Pointing the loader link at a path that exists only on the host fails.
    fs::remove_file(root.join("lib64/ld-linux-x86-64.so.2")).unwrap();
    place::make_symlink(
        root,
        Path::new("lib64/ld-linux-x86-64.so.2"),
        Path::new("/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"),
    )
    .unwrap();
    let err = elf::check(root).unwrap_err();
    assert!(err.to_string().contains("ld-linux-x86-64.so.2"), "{err}");
}

#[test]
fn malformed_elf_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    place::write_file(
        dir.path(),
        Path::new("usr/bin/broken"),
        0o755,
        &mut &b"\x7fELF\x02\x01\x01 truncated"[..],
    )
    .unwrap();
    let err = elf::check(dir.path()).unwrap_err();
    assert!(err.to_string().contains("usr/bin/broken"), "{err}");
}
