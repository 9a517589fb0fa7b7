use super::*;
use crate::release::compress::{write_gce_tar_gz, GCE_MEMBER};
use crate::release::{testdisk, GIB};
use std::fs;
use std::path::Path;
use std::process::Command;

fn run(cmd: &mut Command, package: &str) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e} (install the Debian package {package})"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Writes the view `disk` to a sparse file.
fn materialize(disk: &DiskImage, path: &Path) {
    use std::os::unix::fs::FileExt;
    let file = fs::File::create(path).unwrap();
    file.set_len(disk.size()).unwrap();
    disk.for_each_chunk(&|_| {}, |offset, bytes| {
        if !crate::release::disk_image::is_zero(bytes) {
            file.write_all_at(bytes, offset).unwrap();
        }
        Ok::<(), ReleaseError>(())
    })
    .unwrap();
}

#[test]
fn gnu_tar_lists_and_extracts_the_grown_disk() {
    let dir = tempfile::tempdir().unwrap();
    let t = testdisk::make(dir.path());
    let disk = DiskImage::open(&t.path).unwrap().rounded_up(GIB).unwrap();
    assert_eq!(disk.size(), GIB);
    let archive = dir.path().join("berth.tar.gz");
    let artifact = write_gce_tar_gz(&disk, &archive, 1_700_000_000, &|_| {}).unwrap();
    assert_eq!(
        artifact.sha256,
        crate::manifest::sha256_file(&archive).unwrap()
    );
    assert!(
        artifact.size < 1 << 20,
        "holes are not stored: {}",
        artifact.size
    );

    let listing = run(Command::new("tar").arg("-tvzf").arg(&archive), "tar");
    assert_eq!(
        listing.trim(),
        format!("-rw-r--r-- root/root {GIB} 2023-11-14 22:13 {GCE_MEMBER}"),
        "{listing}"
    );
    // GNU tar names the format of what it reads.
    let out = dir.path().join("x");
    fs::create_dir(&out).unwrap();
    let verbose = run(
        Command::new("tar")
            .args(["--format=oldgnu", "-xvvzf"])
            .arg(&archive)
            .arg("-C")
            .arg(&out),
        "tar",
    );
    assert!(verbose.contains(GCE_MEMBER), "{verbose}");
    let extracted = out.join(GCE_MEMBER);
    let padded = dir.path().join("padded.raw");
    materialize(&disk, &padded);
    assert_eq!(fs::metadata(&extracted).unwrap().len(), GIB);
    assert!(
        fs::read(&extracted).unwrap() == fs::read(&padded).unwrap(),
        "extracted disk differs from the padded source"
    );

    let check = run(Command::new("sgdisk").arg("-v").arg(&extracted), "gdisk");
    assert!(check.contains("No problems found"), "{check}");
    let table =
        berth_layout::gpt::read(&mut fs::File::open(&extracted).unwrap(), &extracted).unwrap();
    assert!(table.warnings.is_empty(), "{:?}", table.warnings);
    assert_eq!(table.partitions.len(), t.plan.partitions.len());
    // Everything but the GPT areas is the original disk.
    let original = fs::read(&t.path).unwrap();
    let grown = fs::read(&padded).unwrap();
    let end = original.len() - 33 * 512;
    assert!(original[1024..end] == grown[1024..end]);
}

#[test]
fn growing_matches_sgdisk_move_second_header() {
    let dir = tempfile::tempdir().unwrap();
    let t = testdisk::make(dir.path());
    let theirs = dir.path().join("theirs.raw");
    fs::copy(&t.path, &theirs).unwrap();
    fs::OpenOptions::new()
        .write(true)
        .open(&theirs)
        .unwrap()
        .set_len(GIB)
        .unwrap();
    run(Command::new("sgdisk").arg("-e").arg(&theirs), "gdisk");
    let ours = dir.path().join("ours.raw");
    materialize(
        &DiskImage::open(&t.path).unwrap().rounded_up(GIB).unwrap(),
        &ours,
    );
    let (a, b) = (fs::read(&ours).unwrap(), fs::read(&theirs).unwrap());
    let diffs: Vec<usize> = (0..a.len()).filter(|i| a[*i] != b[*i]).collect();
    // sgdisk leaves the old backup header where it was; we zero it. sgdisk writes the
    // protective record's ending CHS of the real geometry; the gpt crate (and so the
    // builder and we) writes 0xffffff, "not representable", which the UEFI spec allows.
    let old_backup = t.plan.disk_size as usize - 33 * 512;
    assert!(
        diffs
            .iter()
            .all(|i| (old_backup..t.plan.disk_size as usize).contains(i) || (451..454).contains(i)),
        "differences outside the old backup area: {:?}",
        &diffs[..diffs.len().min(16)]
    );
}

#[test]
fn many_regions_use_extension_blocks_and_tar_agrees() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("striped.raw");
    let mut bytes = vec![0u8; 1 << 20];
    for i in 0..60 {
        bytes[i * 8192..i * 8192 + 4096].fill(i as u8 + 1);
    }
    fs::write(&path, &bytes).unwrap();
    let disk = DiskImage::open(&path).unwrap();
    let regions = disk.data_regions(4096, &|_| {}).unwrap();
    assert_eq!(regions.len(), 60);
    let archive = dir.path().join("s.tar");
    let mut file = fs::File::create(&archive).unwrap();
    let len = write_sparse(&mut file, "disk.raw", 0, &disk, &regions, &|_| {}).unwrap();
    assert_eq!(len % 10240, 0);
    assert_eq!(fs::metadata(&archive).unwrap().len(), len);
    let out = dir.path().join("x");
    fs::create_dir(&out).unwrap();
    run(
        Command::new("tar")
            .arg("-xf")
            .arg(&archive)
            .arg("-C")
            .arg(&out),
        "tar",
    );
    assert!(fs::read(out.join("disk.raw")).unwrap() == bytes);
}

#[test]
fn numbers_switch_to_base_256_past_eight_gib() {
    let mut field = [0u8; 12];
    put_number(&mut field, 0o777);
    assert_eq!(&field, b"00000000777\0");
    put_number(&mut field, 1 << 33);
    assert_eq!(field, [0x80, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0]);
}

#[test]
fn archives_are_identical_across_runs() {
    let dir = tempfile::tempdir().unwrap();
    let t = testdisk::make(dir.path());
    let sums: Vec<_> = ["a.tar.gz", "b.tar.gz"]
        .iter()
        .map(|name| {
            let disk = DiskImage::open(&t.path).unwrap().rounded_up(GIB).unwrap();
            write_gce_tar_gz(&disk, &dir.path().join(name), 5, &|_| {})
                .unwrap()
                .sha256
        })
        .collect();
    assert_eq!(sums[0], sums[1]);
    // gzip header as `gzip -n` writes it: no name, mtime 0, OS Unix.
    let gz = fs::read(dir.path().join("a.tar.gz")).unwrap();
    assert_eq!(&gz[..4], &[0x1f, 0x8b, 8, 0]);
    assert_eq!(&gz[4..8], &[0, 0, 0, 0]);
    assert_eq!(gz[9], 3);
}
