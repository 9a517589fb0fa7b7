//! Releases end to end: `cargo xtask release` on a built image makes every artifact in the
//! form its cloud's tools accept, byte-identical across runs; `cargo xtask verify` accepts
//! it and names what was tampered with; bad inputs are reported before anything is
//! written; `cargo xtask publish gce --dry-run` shows the requests. These build a whole
//! image (shared with build.rs's tests through the same work folder), so they are
//! `#[ignore]`d for a plain `cargo test` and run by `cargo xtask test`.

use std::fs;
use std::path::{Path, PathBuf};

use berth_tests::*;

/// The README's image, which the VM tests use too. Releases never go into its `out/`:
/// other tests read the build manifest there.
fn shared_disk() -> &'static PathBuf {
    &shared_image().0
}

/// `cargo xtask release --quiet --image DISK --out-dir OUT EXTRA…`.
fn release(disk: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["--quiet", "release", "--image", path_str(disk).unwrap()];
    args.extend(["--out-dir", path_str(out).unwrap()]);
    args.extend_from_slice(extra);
    xtask(&args).output().unwrap()
}

fn keygen(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let prefix = dir.join(name);
    run_ok(&mut xtask(&[
        "--quiet",
        "keygen",
        "--out",
        path_str(&prefix).unwrap(),
    ]))
    .unwrap();
    (prefix.with_extension("pk8"), prefix.with_extension("pub"))
}

fn ok(out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[test]
#[ignore = "builds whole images; run by `cargo xtask test`"]
fn every_artifact_passes_its_reference_tool_and_verify_accepts_the_release() {
    let disk = shared_disk();
    let dir = tempfile::tempdir().unwrap();
    let (private, public) = keygen(dir.path(), "key");
    let out = dir.path().join("release");
    ok(&release(
        disk,
        &out,
        &["--sign", path_str(&private).unwrap()],
    ));
    assert_eq!(
        names(&out),
        [
            "SHA256SUMS",
            "berth-0.1.0.tar.gz",
            "berth-debuginfo.tar.zst",
            "berth.qcow2",
            "berth.raw",
            "berth.raw.zst",
            "berth.spdx.json",
            "berth.vhd",
            "berth.vmdk",
            "manifest.json",
            "manifest.json.sig"
        ]
    );
    let p = |name: &str| out.join(name).to_string_lossy().into_owned();
    // Compare with the release's own copy: other tests may rebuild the shared disk meanwhile.
    let disk = &out.join("berth.raw");
    let sums = tool(
        "sh",
        &[
            "-c",
            &format!("cd {} && sha256sum -c --strict SHA256SUMS", p("")),
        ],
        "coreutils",
    )
    .unwrap();
    assert!(
        sums.status.success(),
        "{}",
        String::from_utf8_lossy(&sums.stdout)
    );

    // GCE: GNU tar lists one disk.raw, a whole number of GiB, whose partitions are the disk's.
    let list = tool("tar", &["-tvzf", &p("berth-0.1.0.tar.gz")], "tar").unwrap();
    let listing = String::from_utf8_lossy(&list.stdout).into_owned();
    let fields: Vec<&str> = listing.split_whitespace().collect();
    assert_eq!(
        (fields[1], *fields.last().unwrap()),
        ("root/root", "disk.raw"),
        "{listing}"
    );
    let size: u64 = fields[2].parse().unwrap();
    assert_eq!(size % (1 << 30), 0, "{listing}");
    let x = dir.path().join("x");
    fs::create_dir(&x).unwrap();
    ok(&tool(
        "tar",
        &[
            "-xzf",
            &p("berth-0.1.0.tar.gz"),
            "-C",
            path_str(&x).unwrap(),
        ],
        "tar",
    )
    .unwrap());
    let extracted = x.join("disk.raw");
    let check = tool("sgdisk", &["-v", path_str(&extracted).unwrap()], "gdisk").unwrap();
    assert!(String::from_utf8_lossy(&check.stdout).contains("No problems found"));
    let raw_len = fs::metadata(disk).unwrap().len();
    // Partitions (1 MiB to the end of the last one) are the built disk's bytes.
    let span = (raw_len - 2 * (1 << 20)).to_string();
    ok(&tool(
        "cmp",
        &[
            "-i",
            "1048576",
            "-n",
            &span,
            path_str(&extracted).unwrap(),
            path_str(disk).unwrap(),
        ],
        "diffutils",
    )
    .unwrap());
    fs::remove_file(&extracted).unwrap();

    // Azure, VMDK, qcow2, zstd.
    let info = ok(&tool(
        "qemu-img",
        &["info", "-f", "vpc", "--output=json", &p("berth.vhd")],
        "qemu-utils",
    )
    .unwrap());
    let info: serde_json::Value = serde_json::from_str(&info).unwrap();
    assert_eq!(info["virtual-size"], raw_len);
    assert_eq!(raw_len % (1 << 20), 0);
    ok(&tool(
        "qemu-img",
        &[
            "compare",
            "-f",
            "raw",
            "-F",
            "vpc",
            path_str(disk).unwrap(),
            &p("berth.vhd"),
        ],
        "qemu-utils",
    )
    .unwrap());
    for image in ["berth.vmdk", "berth.qcow2"] {
        ok(&tool("qemu-img", &["check", &p(image)], "qemu-utils").unwrap());
    }
    let vmdk = fs::read(out.join("berth.vmdk")).unwrap();
    assert!(String::from_utf8_lossy(&vmdk[..2048]).contains("createType=\"streamOptimized\""));
    ok(&tool("zstd", &["-t", "-q", &p("berth.raw.zst")], "zstd").unwrap());
    // The debug files of the root's stripped programs, one per program, by build-id.
    let list = ok(&tool(
        "tar",
        &["--zstd", "-tvf", &p("berth-debuginfo.tar.zst")],
        "tar",
    )
    .unwrap());
    let debug: Vec<&str> = list.lines().collect();
    assert_eq!(debug.len(), 9, "{list}");
    assert!(
        debug.iter().all(|l| l.starts_with("-rw-r--r-- 0/0 ")
            && l.contains(" usr/lib/debug/.build-id/")
            && l.ends_with(".debug")),
        "{list}"
    );

    // The manifest carries what the issue lists; the SBOM is valid SPDX.
    let manifest: serde_json::Value =
        serde_json::from_slice(&fs::read(out.join("manifest.json")).unwrap()).unwrap();
    for field in [
        "name",
        "version",
        "build_time",
        "root_hash",
        "verity",
        "disk",
        "packages",
        "crates",
        "artifacts",
    ] {
        assert!(!manifest[field].is_null(), "manifest lacks {field}");
    }
    assert!(manifest["verity"]["salt"].is_string());
    let crates = manifest["crates"].as_array().unwrap();
    assert!(
        crates.iter().any(|c| c["name"] == "berth-init"),
        "image crates"
    );
    assert!(crates.iter().all(|c| c["version"].is_string()));
    assert_eq!(manifest["artifacts"].as_array().unwrap().len(), 8);
    let spdx = pyspdxtools();
    ok(&tool(
        &spdx,
        &["-i", &p("berth.spdx.json")],
        "PyPI spdx-tools (see .ci/install-deps)",
    )
    .unwrap());

    let verified = ok(&xtask(&[
        "verify",
        path_str(&out).unwrap(),
        "--key",
        path_str(&public).unwrap(),
    ])
    .output()
    .unwrap());
    assert!(
        verified.contains("good signature") && verified.contains("verifies against root hash"),
        "{verified}"
    );
    assert!(!verified.contains("MISMATCH"), "{verified}");
}

#[test]
#[ignore = "builds whole images; run by `cargo xtask test`"]
fn two_releases_are_byte_identical() {
    let disk = shared_disk();
    let dir = tempfile::tempdir().unwrap();
    let (private, _) = keygen(dir.path(), "key");
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    for out in [&a, &b] {
        ok(&release(
            disk,
            out,
            &["--sign", path_str(&private).unwrap()],
        ));
    }
    assert_eq!(names(&a), names(&b));
    for name in names(&a) {
        assert!(
            same_bytes(&a.join(&name), &b.join(&name)).unwrap(),
            "{name} differs between releases"
        );
    }
}

#[test]
#[ignore = "builds whole images; run by `cargo xtask test`"]
fn verify_names_a_tampered_artifact_and_a_wrong_key() {
    let disk = shared_disk();
    let dir = tempfile::tempdir().unwrap();
    let (private, public) = keygen(dir.path(), "key");
    let (_, other) = keygen(dir.path(), "other");
    let out = dir.path().join("release");
    ok(&release(
        disk,
        &out,
        &[
            "--sign",
            path_str(&private).unwrap(),
            "--format",
            "raw",
            "--format",
            "zst",
        ],
    ));
    let verify = |key: &Path| {
        xtask(&[
            "verify",
            path_str(&out).unwrap(),
            "--key",
            path_str(key).unwrap(),
        ])
        .output()
        .unwrap()
    };

    let wrong = verify(&other);
    assert!(!wrong.status.success());
    let text = String::from_utf8_lossy(&wrong.stdout);
    assert!(
        text.contains("MISMATCH manifest.json.sig: not a signature of manifest.json by key"),
        "{text}"
    );

    let zst = out.join("berth.raw.zst");
    let mut bytes = fs::read(&zst).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x40;
    fs::write(&zst, bytes).unwrap();
    let tampered = verify(&public);
    assert!(!tampered.status.success());
    let text = String::from_utf8_lossy(&tampered.stdout);
    assert!(text.contains("MISMATCH berth.raw.zst: sha256 is"), "{text}");
    assert!(
        text.contains("MISMATCH berth.raw.zst: sha256 is")
            && !text.contains("MISMATCH manifest.json.sig"),
        "{text}"
    );
    assert!(String::from_utf8_lossy(&tampered.stderr).contains("problem(s) found"));
}

#[test]
#[ignore = "builds whole images; run by `cargo xtask test`"]
fn bad_inputs_are_named_before_anything_is_written() {
    let disk = shared_disk();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("release");
    let err = |o: &std::process::Output| {
        assert!(!o.status.success());
        String::from_utf8_lossy(&o.stderr).into_owned()
    };

    let e = err(&release(&dir.path().join("nope.raw"), &out, &[]));
    assert!(e.contains("nope.raw does not exist: build it first"), "{e}");

    let (_, public) = keygen(dir.path(), "key");
    let e = err(&release(
        disk,
        &out,
        &["--sign", path_str(&public).unwrap()],
    ));
    assert!(e.contains("key.pub is not an Ed25519 private key"), "{e}");

    // A copy of the disk with one byte of the root changed, next to its manifest.
    let bad = dir.path().join("bad");
    fs::create_dir(&bad).unwrap();
    let copy = bad.join("berth.raw");
    ok(&tool(
        "cp",
        &[
            "--sparse=always",
            path_str(disk).unwrap(),
            path_str(&copy).unwrap(),
        ],
        "coreutils",
    )
    .unwrap());
    fs::copy(
        disk.with_file_name("manifest.json"),
        bad.join("manifest.json"),
    )
    .unwrap();
    let table = table(&copy).unwrap();
    let root = table.by_label("ROOT-A").unwrap().offset(512);
    let file = fs::OpenOptions::new().write(true).open(&copy).unwrap();
    std::os::unix::fs::FileExt::write_all_at(&file, b"\xff", root + 1024).unwrap();
    let e = err(&release(&copy, &out, &[]));
    assert!(e.contains("ROOT-A: dm-verity check failed"), "{e}");
    assert!(names(&out).is_empty(), "{:?}", names(&out));
}

#[test]
#[ignore = "builds whole images; run by `cargo xtask test`"]
fn publish_dry_run_prints_the_requests_it_would_make() {
    let disk = shared_disk();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("release");
    ok(&release(disk, &out, &["--format", "gce"]));
    let printed = ok(&xtask(&[
        "publish",
        "gce",
        "--project",
        "my-project",
        "--bucket",
        "my-bucket",
        "--family",
        "berth",
        "--dir",
        path_str(&out).unwrap(),
        "--dry-run",
    ])
    .env_remove("GOOGLE_APPLICATION_CREDENTIALS")
    .env("HOME", dir.path())
    .output()
    .unwrap());
    for needle in [
        "POST https://storage.googleapis.com/upload/storage/v1/b/my-bucket/o?uploadType=resumable&name=berth-0-1-0-",
        "PUT https://storage.googleapis.com/upload/storage/v1/b/my-bucket/o?uploadType=resumable",
        "POST https://compute.googleapis.com/compute/v1/projects/my-project/global/images?requestId=",
        "\"UEFI_COMPATIBLE\"",
        "would run: gcloud auth print-access-token",
    ] {
        assert!(printed.contains(needle), "missing {needle:?} in\n{printed}");
    }
}
