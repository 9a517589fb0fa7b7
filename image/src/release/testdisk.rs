//! A small synthetic Berth disk for the release tests: the real partition plan with tiny
//! sizes, a patterned root with a real dm-verity tree, and a little data in the ESP and
//! STATE, so that every format has data regions and holes to deal with.

use std::fs::{self, OpenOptions};
use std::path::{Path, PathBuf};

use crate::disk::{self, Content};
use crate::spec::MIB;
use crate::verity::{self, VerityParams};
use berth_layout::partition::{Plan, Role, Sizes};

pub struct TestDisk {
    pub path: PathBuf,
    pub root_hash: [u8; 32],
    pub plan: Plan,
}

/// Writes `berth.raw` (26 MiB) into `dir`.
pub fn make(dir: &Path) -> TestDisk {
    let sizes = Sizes {
        esp: 2 * MIB,
        root: 8 * MIB,
        verity: MIB,
        state: 4 * MIB,
    };
    let root = dir.join("root.img");
    let mut data = vec![0u8; 3 * MIB as usize];
    for (i, block) in data.chunks_mut(4096).enumerate() {
        // Some blocks stay zero: holes inside the root too.
        if i % 5 != 3 {
            block.fill((i % 251) as u8 + 1);
        }
    }
    fs::write(&root, &data).unwrap();
    let hash_path = dir.join("root.verity");
    let hash = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&hash_path)
        .unwrap();
    let params = VerityParams {
        salt: vec![7; 32],
        uuid: [9; 16],
    };
    let data_file = fs::File::open(&root).unwrap();
    let info =
        verity::format(&data_file, 0, data.len() as u64, &hash, 0, &params, &|_| {}).unwrap();
    let esp = dir.join("esp.img");
    fs::write(&esp, b"not really FAT, but data").unwrap();
    let state = dir.join("state.img");
    let mut state_bytes = vec![0u8; 2 * MIB as usize];
    state_bytes[MIB as usize..MIB as usize + 10].fill(0xee);
    fs::write(&state, &state_bytes).unwrap();

    let plan = Plan::new(&sizes, "berth", &info.root_hash);
    let path = dir.join("berth.raw");
    let contents = [
        (Role::Esp, esp),
        (Role::RootA, root),
        (Role::VerityA, hash_path),
        (Role::State, state),
    ]
    .map(|(role, source)| Content { role, source });
    disk::assemble(&path, &plan, &contents, &|_| {}).unwrap();
    TestDisk {
        path,
        root_hash: info.root_hash,
        plan,
    }
}

/// The build manifest `cargo xtask build` would write for the test disk.
pub fn build_manifest(t: &TestDisk) -> crate::release::manifest::ReleaseManifest {
    let json = serde_json::json!({
        "name": "berth",
        "version": "0.1.0",
        "variant": "default",
        "source_date_epoch": 1_700_000_000u64,
        "root_hash": hex::encode(t.root_hash),
        "disk": {"size": t.plan.disk_size, "sector_size": 512},
        "packages": [{"name": "libc6", "version": "2.36-9+deb12u9", "architecture": "amd64",
                      "sha256": "e55d6b0b2a0e9a2a8e0f0a6d8d43e1d5a23c9a8f0a1b2c3d4e5f60718293a4b5"}],
        "tools": ["e2fsprogs 1.47.0"],
        "artifacts": [{"name": "berth.raw", "size": t.plan.disk_size,
                       "sha256": crate::manifest::sha256_file(&t.path).unwrap()}],
    });
    let bytes = serde_json::to_vec(&json).unwrap();
    crate::release::manifest::ReleaseManifest::parse(&bytes, Path::new("manifest.json")).unwrap()
}

/// Progress that goes nowhere.
pub struct Quiet;

impl crate::release::make::Progress for Quiet {
    fn begin(&self, _: &str, _: u64) {}
    fn advance(&self, _: u64) {}
    fn end(&self, _: &str) {}
}

/// Releases the test disk into `out` in `formats`, signed with `key` if given.
pub fn release(
    t: &TestDisk,
    out: &Path,
    formats: &[crate::release::make::Format],
    key: Option<&crate::release::sign::SigningKey>,
) -> Result<Vec<crate::manifest::Artifact>, crate::release::ReleaseError> {
    use crate::release::make;
    fs::create_dir_all(out).unwrap();
    let manifest = build_manifest(t);
    let crates = vec![crate::release::crates::Crate {
        name: "sha2".into(),
        version: "0.10.9".into(),
        source: Some("registry+https://github.com/rust-lang/crates.io-index".into()),
        checksum: None,
    }];
    make::check_disk(&t.path, &manifest, &Quiet)?;
    make::make(
        &make::Input {
            disk: &t.path,
            manifest: &manifest,
            out_dir: out,
            formats,
            crates: &crates,
            key,
            tool: "berth-xtask-0.1.0",
            tools: &["qemu-img version 7.2.0".to_string()],
            zstd_workers: 2,
        },
        &Quiet,
    )
}
