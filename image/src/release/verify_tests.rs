use super::*;
use crate::release::make::Format;
use crate::release::sign::{generate, SigningKey};
use crate::release::testdisk::{self, release};
use std::fs;
use std::os::unix::fs::FileExt;

struct Fixture {
    _dir: tempfile::TempDir,
    out: PathBuf,
    public: PathBuf,
    t: testdisk::TestDisk,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let t = testdisk::make(dir.path());
    let (private, public, _) = generate(&dir.path().join("key")).unwrap();
    let out = dir.path().join("out");
    release(
        &t,
        &out,
        &[Format::Raw, Format::Vhd, Format::Zst],
        Some(&SigningKey::read(&private).unwrap()),
    )
    .unwrap();
    Fixture {
        _dir: dir,
        out,
        public,
        t,
    }
}

#[test]
fn a_good_release_verifies() {
    let f = fixture();
    let report = verify_release(&f.out, Some(&f.public), &|_| {}).unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert!(
        report.passed.iter().any(|p| p.contains("good signature")),
        "{:?}",
        report.passed
    );
    assert!(
        report
            .passed
            .iter()
            .any(|p| p.contains("ROOT-A verifies against root hash")),
        "{:?}",
        report.passed
    );
}

#[test]
fn each_mismatch_is_named() {
    let f = fixture();
    // A changed artifact, a missing one, and a root block changed in the raw disk.
    let vhd = fs::OpenOptions::new()
        .write(true)
        .open(f.out.join("berth.vhd"))
        .unwrap();
    vhd.write_all_at(b"!", 100).unwrap();
    fs::remove_file(f.out.join("berth.raw.zst")).unwrap();
    let raw = fs::OpenOptions::new()
        .write(true)
        .open(f.out.join("berth.raw"))
        .unwrap();
    let root = f.t.plan.get(berth_layout::partition::Role::RootA).offset;
    raw.write_all_at(b"!", root + 4096 * 2 + 7).unwrap();

    let report = verify_release(&f.out, Some(&f.public), &|_| {}).unwrap();
    let text = report.problems.join("\n");
    assert!(text.contains("berth.vhd: sha256 is"), "{text}");
    assert!(
        text.contains("berth.raw.zst: listed in manifest.json but missing"),
        "{text}"
    );
    assert!(text.contains("berth.raw: sha256 is"), "{text}");
    assert!(
        text.contains("berth.raw: ROOT-A: dm-verity check failed: data block 2"),
        "{text}"
    );
    assert!(!text.contains("signature"), "{text}");
}

#[test]
fn a_wrong_key_or_changed_manifest_fails_the_signature() {
    let f = fixture();
    let (_, other, _) = generate(&f.out.join("../other")).unwrap();
    let report = verify_release(&f.out, Some(&other), &|_| {}).unwrap();
    assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
    assert!(
        report.problems[0]
            .contains("manifest.json.sig: not a signature of manifest.json by key SHA256:"),
        "{:?}",
        report.problems
    );

    let path = f.out.join("manifest.json");
    let text = fs::read_to_string(&path).unwrap();
    let hash = hex::encode(f.t.root_hash);
    fs::write(&path, text.replace(&hash, &"ab".repeat(32))).unwrap();
    let report = verify_release(&f.out, Some(&f.public), &|_| {}).unwrap();
    let text = report.problems.join("\n");
    assert!(
        text.contains("manifest.json.sig: not a signature"),
        "{text}"
    );
    assert!(text.contains("manifest.json: sha256 is"), "{text}");
    assert!(
        text.contains(&format!(
            "ROOT-A has dm-verity root hash {hash}, manifest.json says abab"
        )),
        "{text}"
    );
}

#[test]
fn no_key_is_a_note_and_a_bad_key_file_an_error() {
    let f = fixture();
    let report = verify_release(&f.out, None, &|_| {}).unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert_eq!(report.notes.len(), 1);
    let err = verify_release(&f.out, Some(&f.out.join("SHA256SUMS")), &|_| {})
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("SHA256SUMS is not an Ed25519 public key"),
        "{err}"
    );
    let err = verify_release(&f.out.join("nowhere"), None, &|_| {})
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("cannot read") && err.contains("manifest.json"),
        "{err}"
    );
}

#[test]
fn without_a_raw_disk_the_zstd_one_is_checked() {
    let dir = tempfile::tempdir().unwrap();
    let t = testdisk::make(dir.path());
    let out = dir.path().join("out");
    release(&t, &out, &[Format::Zst, Format::Vhd], None).unwrap();
    let report = verify_release(&out, None, &|_| {}).unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert!(
        report
            .passed
            .iter()
            .any(|p| p.starts_with("berth.raw.zst: ROOT-A verifies")),
        "{:?}",
        report.passed
    );

    let only_vhd = dir.path().join("vhd");
    release(&t, &only_vhd, &[Format::Vhd], None).unwrap();
    let report = verify_release(&only_vhd, None, &|_| {}).unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert!(
        report
            .notes
            .iter()
            .any(|n| n.contains("root hash not checked")),
        "{:?}",
        report.notes
    );
}
