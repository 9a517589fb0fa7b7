//! The foundation end to end: `cargo xtask build` makes a disk that the reference tools
//! accept, that is byte-identical across clean builds, whose build steps are cached, and whose
//! bad inputs are reported clearly. These build whole images (minutes on two cores), so
//! they are `#[ignore]`d for a plain `cargo test` and run by `cargo xtask test`.

use std::fs;
use std::path::{Path, PathBuf};

use berth_image::manifest::BuildManifest;
use berth_layout::partition::Role;
use berth_tests::*;

const SLOW: &str = "builds whole images; run by `cargo xtask test`";

#[test]
#[ignore = "builds whole images; run by `cargo xtask test`"]
fn disk_passes_the_reference_tools() {
    let _ = SLOW;
    let (disk, manifest_path) = shared_image();
    let manifest = BuildManifest::read(manifest_path).unwrap();
    let disk_str = path_str(disk).unwrap();

    let out = tool("sgdisk", &["-v", disk_str], "gdisk").unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("No problems found"), "{text}");

    let out = tool("sfdisk", &["--json", disk_str], "fdisk").unwrap();
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let parts = json["partitiontable"]["partitions"].as_array().unwrap();
    let names: Vec<&str> = parts.iter().map(|p| p["name"].as_str().unwrap()).collect();
    // The plan's own labels (their spelling is checked in berth-layout's unit tests).
    assert_eq!(names, Role::ALL.map(Role::label));
    let root_hash = &manifest.root_hash;
    let root_uuid = parts[1]["uuid"]
        .as_str()
        .unwrap()
        .to_lowercase()
        .replace('-', "");
    let verity_uuid = parts[2]["uuid"]
        .as_str()
        .unwrap()
        .to_lowercase()
        .replace('-', "");
    assert_eq!(format!("{root_uuid}{verity_uuid}"), *root_hash);

    let dir = tempfile::tempdir().unwrap();
    let table = table(disk).unwrap();
    let part = |label: &str| table.by_label(label).unwrap().clone();
    let root = dir.path().join("root.ext4");
    let hash = dir.path().join("root.verity");
    let esp = dir.path().join("esp.fat");
    let state = dir.path().join("state.ext4");
    let data_len = manifest.verity.data_blocks * 4096;
    extract(disk, part("ROOT-A").offset(512), data_len, &root).unwrap();
    extract(
        disk,
        part("ROOT-A-VERITY").offset(512),
        manifest.verity.hash_size,
        &hash,
    )
    .unwrap();
    extract(
        disk,
        part("EFI-SYSTEM").offset(512),
        part("EFI-SYSTEM").size(512),
        &esp,
    )
    .unwrap();
    extract(
        disk,
        part("STATE").offset(512),
        part("STATE").size(512),
        &state,
    )
    .unwrap();

    let p = |path: &Path| path.to_str().unwrap().to_string();
    let out = tool(
        "veritysetup",
        &["verify", &p(&root), &p(&hash), root_hash],
        "cryptsetup-bin",
    )
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = tool("veritysetup", &["dump", &p(&hash)], "cryptsetup-bin").unwrap();
    let dump = String::from_utf8_lossy(&out.stdout);
    assert!(dump.contains(&manifest.verity.salt), "{dump}");
    assert!(
        dump.contains(&format!("{}", manifest.verity.data_blocks)),
        "{dump}"
    );

    for fs in [&root, &state] {
        let out = tool("e2fsck", &["-fn", &p(fs)], "e2fsprogs").unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
    let out = tool("fsck.vfat", &["-n", &p(&esp)], "dosfstools").unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    // The root holds the packages' programs, our binaries and the overlay.
    let out = tool(
        "debugfs",
        &["-R", "ls -l /usr/sbin", &p(&root)],
        "e2fsprogs",
    )
    .unwrap();
    let listing = String::from_utf8_lossy(&out.stdout);
    for name in ["init", "xtables-nft-multi", "iptables"] {
        assert!(
            listing.contains(name),
            "{name} missing from /usr/sbin:\n{listing}"
        );
    }
    assert!(manifest.packages.iter().any(|p| p.name == "crun"));
    assert_eq!(manifest.artifacts[0].name, "berth.raw");
}

#[test]
#[ignore = "builds whole images; run by `cargo xtask test`"]
fn inspect_verifies_and_catches_a_flipped_byte() {
    let (disk, manifest_path) = shared_image();
    let manifest = BuildManifest::read(manifest_path).unwrap();
    let out = run_ok(&mut xtask(&["inspect", path_str(disk).unwrap()])).unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!(
            "ROOT-A: verity OK, root hash {}",
            manifest.root_hash
        )),
        "{text}"
    );
    assert!(text.contains("ROOT-B: not verified: empty slot"), "{text}");
    assert!(text.contains(" /usr/sbin/init"), "{text}");
    assert!(
        text.contains("/usr/sbin/iptables -> xtables-nft-multi"),
        "{text}"
    );

    // Flip one byte in the middle of the root's data (file data or free space: verity
    // covers both) of a copy of the disk.
    let dir = tempfile::tempdir().unwrap();
    let copy = sparse_copy(disk, dir.path());
    let root = table(&copy)
        .unwrap()
        .by_label("ROOT-A")
        .unwrap()
        .offset(512);
    let at = root + manifest.verity.data_blocks * 4096 / 2 + 123;
    flip_byte(&copy, at, 0x01).unwrap();
    let out = xtask(&["inspect", "--no-files", path_str(&copy).unwrap()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("ROOT-A: VERITY FAILURE"), "{text}");
    assert!(text.contains("data block"), "{text}");
}

#[test]
#[ignore = "builds whole images; run by `cargo xtask test`"]
fn inspect_gives_one_line_for_a_file_that_is_not_gpt() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.img");
    fs::write(&junk, vec![0x42; 4 << 20]).unwrap();
    let out = xtask(&["inspect", path_str(&junk).unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("not a GPT disk"), "{err}");
}

#[test]
#[ignore = "builds whole images; run by `cargo xtask test`"]
fn two_clean_builds_are_byte_identical() {
    // Both from empty work folders; the second also compiles the image's binaries from
    // nothing, in a target folder of its own, so compiled code is held to it too.
    let dir = tempfile::tempdir().unwrap();
    let (a, _) = build_into(&dir.path().join("a"), &["--quiet"]).unwrap();
    let (b, _) = clean_build_into(&dir.path().join("b"), &["--quiet"]).unwrap();
    assert!(same_bytes(&a, &b).unwrap(), "two clean builds differ");
    for name in ["manifest.json", "berth-debuginfo.tar.zst"] {
        let ma = fs::read(a.with_file_name(name)).unwrap();
        let mb = fs::read(b.with_file_name(name)).unwrap();
        assert!(ma == mb, "{name} differs between two clean builds");
    }
}

#[test]
#[ignore = "builds whole images; run by `cargo xtask test`"]
fn build_steps_are_cached_and_an_overlay_change_rebuilds_from_rootfs() {
    let dir = tempfile::tempdir().unwrap();
    let overlay = dir.path().join("overlay");
    fs::create_dir_all(overlay.join("etc")).unwrap();
    fs::write(overlay.join("etc/motd"), "one\n").unwrap();
    let config = dir.path().join("image.toml");
    let base = fs::read_to_string(workspace().join("image.toml")).unwrap();
    let extra = format!(
        "overlays = [\"rootfs/overlay\", {:?}]",
        overlay.display().to_string()
    );
    fs::write(
        &config,
        base.replace("overlays = [\"rootfs/overlay\"]", &extra),
    )
    .unwrap();
    let args = ["--config", path_str(&config).unwrap()];

    let (disk, _) = build_into(dir.path(), &args).unwrap();
    let first = fs::read(disk.with_file_name("manifest.json")).unwrap();
    let (_, again) = build_into(dir.path(), &args).unwrap();
    let log = String::from_utf8_lossy(&again.stderr);
    for step in [
        "kernel",
        "initramfs",
        "rootfs",
        "ext4",
        "verity",
        "esp",
        "state",
        "disk",
        "debuginfo",
    ] {
        assert!(
            log.contains(&format!("{step:>10} cached")),
            "{step} not cached:\n{log}"
        );
    }

    fs::write(overlay.join("etc/motd"), "two\n").unwrap();
    let (_, changed) = build_into(dir.path(), &args).unwrap();
    let log = String::from_utf8_lossy(&changed.stderr);
    assert!(
        log.lines()
            .any(|l| l.contains("compile") && l.contains(" binaries")),
        "{log}"
    );
    for step in ["rootfs", "ext4", "verity", "esp"] {
        assert!(
            !log.contains(&format!("{step:>10} cached")),
            "{step} was not rebuilt:\n{log}"
        );
    }
    for step in ["kernel", "initramfs", "state", "debuginfo"] {
        assert!(
            log.contains(&format!("{step:>10} cached")),
            "{step} does not depend on the root:\n{log}"
        );
    }
    let second = fs::read(disk.with_file_name("manifest.json")).unwrap();
    assert_ne!(first, second);
}

#[test]
#[ignore = "builds whole images; run by `cargo xtask test`"]
fn a_root_that_does_not_fit_says_by_how_much() {
    let dir = tempfile::tempdir().unwrap();
    let config = image_toml_with("root = \"1GiB\"", "root = \"8MiB\"");
    let err = failed_build(dir.path(), &config).unwrap();
    assert!(
        err.contains("partition ROOT-A holds 8388608: it does not fit by"),
        "{err}"
    );
    assert!(!dir.path().join("out/berth.raw").exists());
}

#[test]
#[ignore = "builds whole images; run by `cargo xtask test`"]
fn bad_config_and_missing_tools_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("image.toml");
    let base = fs::read_to_string(workspace().join("image.toml")).unwrap();
    fs::write(
        &config,
        base.replace("[image]\n", "[image]\ncolour = \"blue\"\n"),
    )
    .unwrap();
    let out = xtask(&["build", "--config", path_str(&config).unwrap()])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("image.toml")
            && err.contains("line 5, column 1")
            && err.contains("unknown field `colour`"),
        "{err}"
    );

    // Only cargo's own folder on PATH: no e2fsprogs.
    let cargo = PathBuf::from(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    let cargo_dir = cargo.parent().map(Path::to_path_buf).unwrap_or_default();
    let out = xtask(&[
        "build",
        "--work-dir",
        path_str(&dir.path().join("w")).unwrap(),
    ])
    .env("PATH", cargo_dir)
    .output()
    .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("install the Debian package e2fsprogs"),
        "{err}"
    );
}

#[test]
#[ignore = "builds whole images; run by `cargo xtask test`"]
fn a_kernel_without_required_options_is_refused_naming_them() {
    let dir = tempfile::tempdir().unwrap();
    let modules = dir.path().join("modules/6.1.0-custom");
    fs::create_dir_all(&modules).unwrap();
    fs::write(dir.path().join("vmlinuz"), b"not really a kernel").unwrap();
    let config = "CONFIG_EFI=y\nCONFIG_EFI_STUB=y\nCONFIG_EXT4_FS=y\nCONFIG_DM_VERITY=m\n";
    fs::write(dir.path().join("config"), config).unwrap();
    let custom = format!(
        "custom = {{ vmlinuz = {:?}, modules = {:?}, config = {:?} }}",
        dir.path().join("vmlinuz").display().to_string(),
        modules.display().to_string(),
        dir.path().join("config").display().to_string()
    );
    let config = image_toml_with("package = \"linux-image-cloud-amd64\"", &custom);
    let err = failed_build(dir.path(), &config).unwrap();
    assert!(
        err.contains("kernel 6.1.0-custom does not have what Berth needs"),
        "{err}"
    );
    assert!(
        err.contains("CONFIG_BLK_DEV_DM must be built in or a module"),
        "{err}"
    );
    assert!(
        !err.contains("CONFIG_DM_VERITY"),
        "a module satisfies =m: {err}"
    );
    assert!(!dir.path().join("out/berth.raw").exists());
}

#[test]
#[ignore = "builds whole images; run by `cargo xtask test`"]
fn run_refuses_a_disk_that_is_not_berths_before_starting_qemu() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.img");
    fs::write(&junk, vec![0u8; 2 << 20]).unwrap();
    let out = xtask(&["run", "--image", path_str(&junk).unwrap()])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("not a GPT disk"), "{err}");
    assert!(!err.contains("booting"), "{err}");

    // A GPT disk, but not Berth's: a table with one Linux partition.
    let other = dir.path().join("other.img");
    fs::write(&other, vec![0u8; 8 << 20]).unwrap();
    let sfdisk = std::process::Command::new("sfdisk")
        .arg(path_str(&other).unwrap())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child
                .stdin
                .take()
                .unwrap()
                .write_all(b"label: gpt\n,,L\n")?;
            child.wait()
        })
        .unwrap();
    assert!(sfdisk.success());
    let out = xtask(&["run", "--image", path_str(&other).unwrap()])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("is not a Berth disk: it has no EFI-SYSTEM partition"),
        "{err}"
    );
}
