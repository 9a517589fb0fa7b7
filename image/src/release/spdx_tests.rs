use super::*;
use crate::release::manifest::ReleaseManifest;
use std::path::Path;
use std::process::Command;

fn sample() -> Vec<u8> {
    let json = r#"{
  "name": "berth", "version": "0.1.0", "variant": "default",
  "source_date_epoch": 1700000000,
  "root_hash": "35fee47e75efb4de9596020b1dad609931b24b2835fb74ac96220bcf7d0f9023",
  "disk": {"size": 27262976},
  "kernel": {"version": "6.1.0-28-cloud-amd64", "cmdline": "console=ttyS0"},
  "packages": [
    {"name": "libc6", "version": "2.36-9+deb12u9", "architecture": "amd64",
     "sha256": "e55d6b0b2a0e9a2a8e0f0a6d8d43e1d5a23c9a8f0a1b2c3d4e5f60718293a4b5"},
    {"name": "libstdc++6", "version": "1:12.2.0-14~x", "architecture": "amd64", "sha256": ""}
  ],
  "artifacts": []
}"#;
    let m = ReleaseManifest::parse(json.as_bytes(), Path::new("m.json")).unwrap();
    let crates = crate::release::crates::from_lock(
        &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.lock")).unwrap(),
        &["berth-image"],
    )
    .unwrap();
    render(&SbomInput {
        facts: &m.facts,
        crates: &crates,
        disk_sha256: "10a6f471b8fbf2c8a2518b54907bae8f1d7a5a3df10b2d2a3e17d08e27ca3169",
        tool: "berth-xtask-0.1.0",
    })
}

#[test]
fn document_has_the_packages_and_crates() {
    let doc: serde_json::Value = serde_json::from_slice(&sample()).unwrap();
    assert_eq!(doc["spdxVersion"], "SPDX-2.3");
    assert_eq!(doc["creationInfo"]["created"], "2023-11-14T22:13:20Z");
    let packages = doc["packages"].as_array().unwrap();
    let libstdcxx = packages.iter().find(|p| p["name"] == "libstdc++6").unwrap();
    assert_eq!(libstdcxx["SPDXID"], "SPDXRef-deb-1-libstdc--6");
    assert_eq!(
        libstdcxx["externalRefs"][0]["referenceLocator"],
        "pkg:deb/debian/libstdc%2B%2B6@1%3A12.2.0-14~x?arch=amd64".replace('~', "%7E")
    );
    assert!(libstdcxx.get("checksums").is_none());
    let sha2 = packages.iter().find(|p| p["name"] == "sha2").unwrap();
    assert!(sha2["downloadLocation"]
        .as_str()
        .unwrap()
        .starts_with("https://crates.io/api/v1/crates/sha2/"));
    assert_eq!(
        doc["relationships"].as_array().unwrap().len(),
        packages.len()
    );
    assert_eq!(sample(), sample(), "deterministic");
}

/// The SPDX project's validator, `pyspdxtools` from PyPI's spdx-tools: $BERTH_PYSPDXTOOLS,
/// else the virtualenv `tools/spdx` in Berth's cache folder (where .ci/install-deps puts
/// it: $BERTH_CACHE_DIR, else $XDG_CACHE_HOME/berth, else ~/.cache/berth), else PATH.
fn pyspdxtools() -> String {
    if let Ok(tool) = std::env::var("BERTH_PYSPDXTOOLS") {
        return tool;
    }
    let cache = std::env::var_os("BERTH_CACHE_DIR")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("XDG_CACHE_HOME").map(|d| Path::new(&d).join("berth")))
        .or_else(|| std::env::var_os("HOME").map(|d| Path::new(&d).join(".cache/berth")));
    if let Some(venv) = cache.map(|c| c.join("tools/spdx/bin/pyspdxtools")) {
        if venv.exists() {
            return venv.to_string_lossy().into_owned();
        }
    }
    "pyspdxtools".into()
}

#[test]
fn spdx_tools_validator_accepts_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("berth.spdx.json");
    std::fs::write(&path, sample()).unwrap();
    let tool = pyspdxtools();
    let out = Command::new(&tool)
        .arg("-i")
        .arg(&path)
        .output()
        .unwrap_or_else(|e| {
            panic!("{tool}: {e} (run .ci/install-deps, or pip install spdx-tools==0.8.5)")
        });
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(!text.to_lowercase().contains("invalid"), "{text}");
}
