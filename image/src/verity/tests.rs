//! Tests against the reference tool, `veritysetup` (Debian package `cryptsetup-bin`).

use std::fs::{self, File, OpenOptions};
use std::io::ErrorKind;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;

use super::*;

const UUID: [u8; 16] = *b"\x2b\x1f\x6e\x0a\x93\x44\x4c\x51\x8d\x02\x7e\x55\xc4\x10\xa9\xee";

fn params(salt: &[u8]) -> VerityParams {
    VerityParams {
        salt: salt.to_vec(),
        uuid: UUID,
    }
}

fn salt32() -> Vec<u8> {
    (0u8..32).map(|i| i.wrapping_mul(37) ^ 0x5a).collect()
}

/// Deterministic pseudo-random bytes (splitmix64).
fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed;
    let mut bytes = Vec::with_capacity(len + 8);
    while bytes.len() < len {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        bytes.extend_from_slice(&(z ^ (z >> 31)).to_le_bytes());
    }
    bytes.truncate(len);
    bytes
}

fn write_data(dir: &Path, blocks: u64, seed: u64) -> PathBuf {
    let path = dir.join(format!("data-{blocks}-{seed}"));
    fs::write(&path, random_bytes((blocks * BLOCK_SIZE) as usize, seed)).expect("write data");
    path
}

fn open_rw(path: &Path) -> File {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .expect("open")
}

fn veritysetup(args: &[&str]) -> Output {
    match Command::new("veritysetup").args(args).output() {
        Ok(output) => output,
        Err(e) if e.kind() == ErrorKind::NotFound => panic!(
            "veritysetup not found; the verity tests compare against it: \
             install the Debian package cryptsetup-bin"
        ),
        Err(e) => panic!("running veritysetup: {e}"),
    }
}

/// `veritysetup format` into a fresh `hash`; returns the root hash it prints.
fn reference_format(data: &Path, hash: &Path, salt: &[u8]) -> [u8; 32] {
    let _ = fs::remove_file(hash);
    let salt = if salt.is_empty() {
        "-".to_owned()
    } else {
        hex::encode(salt)
    };
    let uuid = uuid::Uuid::from_bytes(UUID).hyphenated().to_string();
    let output = veritysetup(&[
        "format",
        "--hash-offset",
        "0",
        "--salt",
        &salt,
        "--uuid",
        &uuid,
        "--data-block-size",
        "4096",
        "--hash-block-size",
        "4096",
        path_str(data),
        path_str(hash),
    ]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "veritysetup format: {output:?}");
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("Root hash:"))
        .unwrap_or_else(|| panic!("no root hash in {stdout}"));
    let mut root = [0; 32];
    hex::decode_to_slice(line.trim(), &mut root).expect("root hash hex");
    root
}

fn reference_verify(data: &Path, hash: &Path, root: &[u8; 32]) -> Output {
    veritysetup(&["verify", path_str(data), path_str(hash), &hex::encode(root)])
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("utf-8 temp path")
}

/// Our `format` of the whole of `data` into a fresh `hash`.
fn ours(data: &Path, hash: &Path, salt: &[u8]) -> VerityInfo {
    let _ = fs::remove_file(hash);
    let data = File::open(data).expect("open data");
    let len = data.metadata().expect("stat").len();
    format(&data, 0, len, &open_rw(hash), 0, &params(salt), &|_| {}).expect("format")
}

fn our_verify(data: &Path, hash: &Path) -> Result<VerityInfo, VerityError> {
    let data = File::open(data).expect("open data");
    verify(&data, 0, &File::open(hash).expect("open hash"), 0, &|_| {})
}

fn assert_same_as_reference(dir: &Path, blocks: u64, salt: &[u8]) {
    let data = write_data(dir, blocks, blocks);
    let (theirs, mine) = (dir.join("theirs"), dir.join("mine"));
    let root = reference_format(&data, &theirs, salt);
    let info = ours(&data, &mine, salt);
    let (theirs, mine) = (
        fs::read(&theirs).expect("read"),
        fs::read(&mine).expect("read"),
    );
    assert_eq!(
        mine.len(),
        theirs.len(),
        "hash device length, {blocks} blocks"
    );
    assert!(
        mine == theirs,
        "hash device differs, {blocks} blocks, salt {salt:02x?}"
    );
    assert_eq!(info.root_hash, root, "root hash, {blocks} blocks");
    assert_eq!(info.hash_size, mine.len() as u64);
    assert_eq!(info.hash_size, hash_device_size(blocks));
    assert_eq!((info.data_blocks, info.uuid), (blocks, UUID));
    assert_eq!(info.salt, salt);
    fs::remove_file(data).expect("remove data");
}

#[test]
fn verity_byte_identical_to_veritysetup() {
    let dir = tempfile::tempdir().expect("tempdir");
    // 1 block: no tree; 128/129 and 128*128 (+1): one more level; 1283: a few MiB.
    for blocks in [1, 2, 127, 128, 129, 1283, 128 * 128, 128 * 128 + 1] {
        assert_same_as_reference(dir.path(), blocks, &salt32());
    }
}

#[test]
fn verity_byte_identical_with_any_salt_length() {
    let dir = tempfile::tempdir().expect("tempdir");
    for len in [0, 1, 55, 64, 65, 200, 256] {
        assert_same_as_reference(dir.path(), 129, &random_bytes(len, len as u64));
    }
}

#[test]
fn verity_veritysetup_verify_accepts_ours() {
    let dir = tempfile::tempdir().expect("tempdir");
    for blocks in [1, 129, 1000] {
        let data = write_data(dir.path(), blocks, 7);
        let hash = dir.path().join("hash");
        let info = ours(&data, &hash, &salt32());
        let output = reference_verify(&data, &hash, &info.root_hash);
        assert!(output.status.success(), "{blocks} blocks: {output:?}");
        assert_eq!(our_verify(&data, &hash).expect("our verify"), info);
    }
}

#[test]
fn verity_flipped_data_byte_fails_verification() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = write_data(dir.path(), 300, 1);
    let hash = dir.path().join("hash");
    let info = ours(&data, &hash, &salt32());
    let offset = 200 * BLOCK_SIZE + 1234;
    let file = open_rw(&data);
    let mut byte = [0];
    file.read_exact_at(&mut byte, offset).expect("read");
    file.write_all_at(&[byte[0] ^ 0x10], offset).expect("write");

    assert!(!reference_verify(&data, &hash, &info.root_hash)
        .status
        .success());
    match our_verify(&data, &hash) {
        Err(VerityError::DataBlockMismatch { block: 200, offset }) => {
            assert_eq!(offset, 200 * BLOCK_SIZE)
        }
        other => panic!("expected data block 200 mismatch, got {other:?}"),
    }
}

#[test]
fn verity_single_block_corruption_changes_root() {
    // One data block has no tree: nothing to contradict, only the root hash differs.
    let dir = tempfile::tempdir().expect("tempdir");
    let data = write_data(dir.path(), 1, 2);
    let hash = dir.path().join("hash");
    let info = ours(&data, &hash, &salt32());
    open_rw(&data).write_all_at(&[0xff, 0], 10).expect("write");
    let after = our_verify(&data, &hash).expect("verify");
    assert_ne!(after.root_hash, info.root_hash);
}

#[test]
fn verity_corrupt_hash_blocks_are_reported() {
    let dir = tempfile::tempdir().expect("tempdir");
    // 300 blocks: level 1 (top) is hash block 1, level 0 is hash blocks 2..=4.
    let data = write_data(dir.path(), 300, 3);
    let pristine = dir.path().join("pristine");
    let info = ours(&data, &pristine, &salt32());
    assert_eq!(info.hash_size, 5 * BLOCK_SIZE);
    let hash = dir.path().join("hash");
    let corrupt = |at: u64| {
        fs::copy(&pristine, &hash).expect("copy");
        let file = open_rw(&hash);
        let mut byte = [0];
        file.read_exact_at(&mut byte, at).expect("read");
        file.write_all_at(&[byte[0] ^ 1], at).expect("write");
        assert!(
            !reference_verify(&data, &hash, &info.root_hash)
                .status
                .success(),
            "veritysetup accepted a corrupt byte at {at}"
        );
        our_verify(&data, &hash)
    };

    // An entry of level 0's second block.
    match corrupt(3 * BLOCK_SIZE + 100) {
        Err(VerityError::HashBlockMismatch {
            level: 0,
            block: 1,
            offset,
        }) => assert_eq!(offset, 3 * BLOCK_SIZE),
        other => panic!("expected level 0 block 1 mismatch, got {other:?}"),
    }
    // Padding after the 300 - 256 = 44 entries of level 0's last block.
    match corrupt(4 * BLOCK_SIZE + 44 * 32) {
        Err(VerityError::HashPadding {
            level: 0,
            block: 2,
            offset,
        }) => assert_eq!(offset, 4 * BLOCK_SIZE),
        other => panic!("expected level 0 block 2 padding, got {other:?}"),
    }
    // Padding after the 3 entries of the top block.
    match corrupt(BLOCK_SIZE + 3 * 32) {
        Err(VerityError::HashPadding {
            level: 1, block: 0, ..
        }) => {}
        other => panic!("expected level 1 padding, got {other:?}"),
    }
    // An entry of the top block: consistent with nothing above it but the root hash.
    let forged = corrupt(BLOCK_SIZE + 5);
    match forged {
        Err(VerityError::HashBlockMismatch {
            level: 0, block: 0, ..
        }) => {}
        other => panic!("expected level 0 block 0 mismatch, got {other:?}"),
    }
}

#[test]
fn verity_three_level_tree_corruption_names_level() {
    let dir = tempfile::tempdir().expect("tempdir");
    // 128 * 128 + 1 blocks: levels of 129, 2 and 1 blocks; level 1 is hash blocks 2..=3.
    let blocks = 128 * 128 + 1;
    let data = write_data(dir.path(), blocks, 4);
    let hash = dir.path().join("hash");
    ours(&data, &hash, &salt32());
    open_rw(&hash)
        .write_all_at(&[0x42], 3 * BLOCK_SIZE + 7)
        .expect("write");
    match our_verify(&data, &hash) {
        Err(VerityError::HashBlockMismatch {
            level: 1,
            block: 1,
            offset,
        }) => assert_eq!(offset, 3 * BLOCK_SIZE),
        other => panic!("expected level 1 block 1 mismatch, got {other:?}"),
    }
}

#[test]
fn verity_format_at_offsets_in_a_bigger_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let disk_path = dir.path().join("disk");
    let (data_offset, blocks, hash_offset) = ((1 << 20) + 3 * 4096, 700u64, 5 << 20);
    let filler = vec![0xa5; 8 << 20];
    fs::write(&disk_path, &filler).expect("write disk");
    let contents = random_bytes((blocks * BLOCK_SIZE) as usize, 5);
    let disk = open_rw(&disk_path);
    disk.write_all_at(&contents, data_offset)
        .expect("write data");

    let calls = Mutex::new(Vec::new());
    let progress = |done| calls.lock().expect("lock").push(done);
    let len = blocks * BLOCK_SIZE;
    let info = format(
        &disk,
        data_offset,
        len,
        &disk,
        hash_offset,
        &params(&salt32()),
        &progress,
    )
    .expect("format");
    let calls = calls.into_inner().expect("lock");
    assert!(calls.windows(2).all(|w| w[0] < w[1]), "progress {calls:?}");
    assert_eq!(calls.last(), Some(&len));

    // The hash device is what veritysetup writes for the data alone.
    let data_path = dir.path().join("data");
    fs::write(&data_path, &contents).expect("write");
    let reference = dir.path().join("reference");
    assert_eq!(
        reference_format(&data_path, &reference, &salt32()),
        info.root_hash
    );
    let expected = fs::read(&reference).expect("read");
    let written = fs::read(&disk_path).expect("read disk");
    let hash_range = hash_offset as usize..hash_offset as usize + expected.len();
    assert!(written[hash_range.clone()] == expected[..]);
    // Nothing else was touched.
    let data_range = data_offset as usize..(data_offset + len) as usize;
    for (at, (&now, &before)) in written.iter().zip(&filler).enumerate() {
        if !hash_range.contains(&at) && !data_range.contains(&at) {
            assert_eq!(now, before, "byte {at} changed");
        }
    }
    // veritysetup reads it at the hash offset, and so do we.
    let output = veritysetup(&[
        "verify",
        "--hash-offset",
        &hash_offset.to_string(),
        path_str(&data_path),
        path_str(&disk_path),
        &hex::encode(info.root_hash),
    ]);
    assert!(output.status.success(), "{output:?}");
    let checked = verify(&disk, data_offset, &disk, hash_offset, &|_| {}).expect("verify");
    assert_eq!(checked, info);
    let superblock = read_superblock(&disk, hash_offset).expect("superblock");
    assert_eq!(superblock.data_blocks, blocks);
    assert_eq!(superblock.salt, salt32());
    assert_eq!(superblock.uuid, UUID);
    assert_eq!(superblock.algorithm, "sha256");
    assert_eq!(
        (superblock.data_block_size, superblock.hash_block_size),
        (4096, 4096)
    );
}

#[test]
fn verity_format_rejects_bad_arguments() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = File::open(write_data(dir.path(), 4, 6)).expect("open");
    let hash = open_rw(&dir.path().join("hash"));
    let run = |len, salt: &[u8]| format(&data, 0, len, &hash, 0, &params(salt), &|_| {});
    assert!(matches!(
        run(0, b""),
        Err(VerityError::DataLength { len: 0 })
    ));
    assert!(matches!(
        run(4095, b""),
        Err(VerityError::DataLength { len: 4095 })
    ));
    assert!(matches!(
        run(4096, &[0; 257]),
        Err(VerityError::SaltTooLong { len: 257 })
    ));
    // Past the end of the data file.
    assert!(matches!(
        run(5 * BLOCK_SIZE, b""),
        Err(VerityError::ReadData { .. })
    ));
    let far = format(
        &data,
        u64::MAX - 4095,
        4096,
        &hash,
        0,
        &params(b""),
        &|_| {},
    );
    assert!(matches!(far, Err(VerityError::RangeOverflow { .. })));
}

#[test]
fn verity_verify_rejects_hostile_superblocks() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = write_data(dir.path(), 129, 8);
    let hash = dir.path().join("hash");
    let info = ours(&data, &hash, &salt32());
    let pristine = fs::read(&hash).expect("read");
    let with_blocks = |data_blocks: u64| {
        let mut bytes = pristine.clone();
        bytes[72..80].copy_from_slice(&data_blocks.to_le_bytes());
        fs::write(&hash, &bytes).expect("write");
        our_verify(&data, &hash)
    };
    assert!(matches!(
        with_blocks(u64::MAX),
        Err(VerityError::TooManyBlocks { .. })
    ));
    // A tree far larger than the hash device is refused before anything is allocated.
    assert!(matches!(
        with_blocks(1 << 50),
        Err(VerityError::ReadHash { .. })
    ));
    // Same tree size, more data than there is.
    assert!(matches!(
        with_blocks(130),
        Err(VerityError::ReadData { .. })
    ));
    // Fewer blocks: the stored tree has the wrong shape.
    assert!(with_blocks(128).is_err());
    // Every bit of the data block count and salt size flipped: an error, or (1 data block:
    // no tree to contradict) another root hash; never a panic.
    for at in (72..82).flat_map(|byte| (0..8).map(move |bit| (byte, bit))) {
        let mut bytes = pristine.clone();
        bytes[at.0] ^= 1 << at.1;
        fs::write(&hash, &bytes).expect("write");
        let result = our_verify(&data, &hash);
        assert!(
            result
                .as_ref()
                .map_or(true, |i| i.root_hash != info.root_hash),
            "flipped bit {at:?}: {result:?}"
        );
    }
    // A hash device shorter than a superblock.
    fs::write(&hash, &pristine[..100]).expect("write");
    assert!(matches!(
        our_verify(&data, &hash),
        Err(VerityError::Superblock(SuperblockError::Read { .. }))
    ));
}
