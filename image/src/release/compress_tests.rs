use super::*;
use crate::release::testdisk;
use std::fs;
use std::process::Command;

#[test]
fn zstd_round_trips_and_does_not_depend_on_the_worker_count() {
    let dir = tempfile::tempdir().unwrap();
    let t = testdisk::make(dir.path());
    let disk = DiskImage::open(&t.path).unwrap();
    let mut artifacts = Vec::new();
    for workers in [1, 2, 4] {
        let out = dir.path().join(format!("w{workers}.raw.zst"));
        artifacts.push(write_zst(&disk, &out, workers, &|_| {}).unwrap());
    }
    assert_eq!(artifacts[0].sha256, artifacts[1].sha256);
    assert_eq!(artifacts[1].sha256, artifacts[2].sha256);
    assert!(artifacts[0].size < 1 << 20, "{}", artifacts[0].size);

    let back = dir.path().join("back.raw");
    let out = Command::new("zstd")
        .args(["-d", "-q"])
        .arg(dir.path().join("w2.raw.zst"))
        .arg("-o")
        .arg(&back)
        .output()
        .expect("zstd (install the Debian package zstd)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(fs::read(&back).unwrap() == fs::read(&t.path).unwrap());
    // The frame records the content size, so `zstd -l` knows the disk size.
    let list = Command::new("zstd")
        .args(["-lv"])
        .arg(dir.path().join("w2.raw.zst"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&list.stdout);
    assert!(
        text.contains(&format!("({} B)", t.plan.disk_size)),
        "{text}"
    );
}

#[test]
fn existing_outputs_are_not_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let t = testdisk::make(dir.path());
    let out = dir.path().join("taken.zst");
    fs::write(&out, b"mine").unwrap();
    let err = write_zst(&DiskImage::open(&t.path).unwrap(), &out, 1, &|_| {}).unwrap_err();
    assert!(err.to_string().contains("taken.zst"), "{err}");
    assert_eq!(fs::read(&out).unwrap(), b"mine");
}
