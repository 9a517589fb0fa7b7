use super::*;
use crate::release::sign::{generate, SigningKey};
use crate::release::testdisk::{self, release};
use std::process::Command;

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn a_release_has_every_format_sums_and_a_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let t = testdisk::make(dir.path());
    let out = dir.path().join("out");
    let artifacts = release(&t, &out, &Format::ALL, None).unwrap();
    assert_eq!(
        names(&out),
        [
            "SHA256SUMS",
            "berth-0.1.0.tar.gz",
            "berth.qcow2",
            "berth.raw",
            "berth.raw.zst",
            "berth.spdx.json",
            "berth.vhd",
            "berth.vmdk",
            "manifest.json"
        ]
    );
    assert_eq!(artifacts.len(), 9 - 1, "all but SHA256SUMS");
    let check = Command::new("sha256sum")
        .args(["-c", "--strict", "SHA256SUMS"])
        .current_dir(&out)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );

    let m = ReleaseManifest::read(&out.join("manifest.json")).unwrap();
    assert_eq!(m.json["build_time"], "2023-11-14T22:13:20Z");
    assert_eq!(m.json["crates"][0]["name"], "sha2");
    assert_eq!(m.facts.artifacts.len(), 7, "{:?}", m.facts.artifacts);
    let raw = m.facts.artifact("berth.raw").unwrap();
    assert_eq!(raw.sha256, crate::manifest::sha256_file(&t.path).unwrap());
    let gce = m.facts.artifact("berth-0.1.0.tar.gz").unwrap();
    assert_eq!(gce.size, fs::metadata(out.join(&gce.name)).unwrap().len());
}

#[test]
fn two_releases_are_byte_identical() {
    let dir = tempfile::tempdir().unwrap();
    let t = testdisk::make(dir.path());
    let (private, _, _) = generate(&dir.path().join("key")).unwrap();
    let key = SigningKey::read(&private).unwrap();
    for run in ["a", "b"] {
        release(&t, &dir.path().join(run), &Format::ALL, Some(&key)).unwrap();
    }
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    assert_eq!(names(&a), names(&b));
    assert!(names(&a).contains(&"manifest.json.sig".to_string()));
    for name in names(&a) {
        assert!(
            fs::read(a.join(&name)).unwrap() == fs::read(b.join(&name)).unwrap(),
            "{name} differs"
        );
    }
}

#[test]
fn a_disk_changed_after_the_build_is_refused_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let t = testdisk::make(dir.path());
    let manifest = testdisk::build_manifest(&t);
    // Outside the root: the verity check passes, the sha256 does not.
    let state = t.plan.get(berth_layout::partition::Role::State).offset;
    let file = fs::OpenOptions::new().write(true).open(&t.path).unwrap();
    std::os::unix::fs::FileExt::write_all_at(&file, b"tampered", state + 4096).unwrap();
    let out = dir.path().join("out");
    fs::create_dir_all(&out).unwrap();
    let err = make(
        &Input {
            disk: &t.path,
            manifest: &manifest,
            out_dir: &out,
            formats: &Format::ALL,
            crates: &[],
            key: None,
            tool: "t",
            tools: &[],
            zstd_workers: 1,
        },
        &testdisk::Quiet,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("changed after the build"), "{err}");
    assert!(names(&out).is_empty(), "{:?}", names(&out));
}

#[test]
fn a_corrupt_root_or_wrong_size_is_found_before_writing() {
    let dir = tempfile::tempdir().unwrap();
    let t = testdisk::make(dir.path());
    let manifest = testdisk::build_manifest(&t);
    let root = t.plan.get(berth_layout::partition::Role::RootA).offset;
    let file = fs::OpenOptions::new().write(true).open(&t.path).unwrap();
    std::os::unix::fs::FileExt::write_all_at(&file, b"x", root + 5).unwrap();
    let err = check_disk(&t.path, &manifest, &testdisk::Quiet)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("berth.raw: ROOT-A: dm-verity check failed"),
        "{err}"
    );

    file.set_len(t.plan.disk_size - 512).unwrap();
    let err = check_disk(&t.path, &manifest, &testdisk::Quiet)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&format!(
            "is {} bytes, its manifest says {}",
            t.plan.disk_size - 512,
            t.plan.disk_size
        )),
        "{err}"
    );

    let err = check_disk(&dir.path().join("nope.raw"), &manifest, &testdisk::Quiet)
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("cannot open") && err.contains("nope.raw"),
        "{err}"
    );
}

#[test]
fn releasing_next_to_the_disk_keeps_it_and_refuses_another_disks_folder() {
    let dir = tempfile::tempdir().unwrap();
    let t = testdisk::make(dir.path());
    let before = fs::metadata(&t.path).unwrap();
    release(&t, dir.path(), &[Format::Raw, Format::Zst], None).unwrap();
    let after = fs::metadata(&t.path).unwrap();
    assert_eq!(
        std::os::unix::fs::MetadataExt::ino(&before),
        std::os::unix::fs::MetadataExt::ino(&after)
    );
    assert!(dir.path().join("berth.raw.zst").exists());
    assert!(!dir.path().join(".berth-release.partial").exists());

    // The same folder for a disk of another name: its manifest.json would be replaced.
    let other = dir.path().join("berth-debug.raw");
    fs::copy(&t.path, &other).unwrap();
    let manifest = testdisk::build_manifest(&t);
    let err = make(
        &Input {
            disk: &other,
            manifest: &manifest,
            out_dir: dir.path(),
            formats: &[Format::Raw],
            crates: &[],
            key: None,
            tool: "t",
            tools: &[],
            zstd_workers: 1,
        },
        &testdisk::Quiet,
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("describes another disk, not berth-debug.raw"),
        "{err}"
    );
}
