use super::*;
use std::process::Command;

const EPOCH: i64 = 1_700_000_000; // 2023-11-14 22:13:20 UTC
const SIZE: u64 = 64 * MIB;

fn params() -> EspParams {
    let label = "BERTH-ESP".to_string();
    EspParams {
        size_bytes: SIZE,
        volume_id: 0x1234_abcd,
        label,
        epoch: EPOCH,
    }
}

/// Runs a tool; fails naming the Debian package if it is missing.
fn run(tool: &str, package: &str, args: &[&str]) -> (bool, Vec<u8>, String) {
    let mut cmd = Command::new(tool);
    cmd.args(args)
        .env("LC_ALL", "C")
        .env("MTOOLS_SKIP_CHECK", "1");
    let out = cmd.output().unwrap_or_else(|e| {
        panic!("cannot run {tool} (install the Debian package `{package}`): {e}")
    });
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), out.stdout, text)
}

/// Deterministic pseudo-random bytes.
fn noise(len: usize, mut x: u32) -> Vec<u8> {
    let mut next = || {
        x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        (x >> 24) as u8
    };
    (0..len).map(|_| next()).collect()
}

fn bytes(path: &str, content: &[u8]) -> EspFile {
    EspFile {
        path: path.into(),
        source: EspSource::Bytes(content.to_vec()),
    }
}

/// Nested folders, a 3 MiB file, an empty one, a host file, a long name with spaces
/// and a folder of 40 entries (several clusters, a subfolder in a later one).
fn sample_files(host: &std::path::Path) -> Vec<EspFile> {
    std::fs::write(host, noise(100_001, 7)).unwrap();
    let mut files = vec![
        bytes("loader/loader.conf", b"timeout 3\ndefault berth-a.conf\n"),
        bytes("EFI/BOOT/BOOTX64.EFI", &noise(3 * MIB as usize, 1)),
        bytes(
            "loader/entries/berth-a.conf",
            b"title Berth A\nlinux /berth/a/vmlinuz\n",
        ),
        EspFile {
            path: "berth/a/vmlinuz".into(),
            source: EspSource::Host(host.into()),
        },
        bytes("berth/a/empty", b""),
        bytes("deep/er/and/deeper/a long name, with spaces.txt", b"x"),
        bytes("many/zz/sub/last", b"last"),
    ];
    files.extend((0..40).map(|i| bytes(&format!("many/file-{i:02}.conf"), &[i as u8; 700])));
    files
}

fn content(f: &EspFile) -> Vec<u8> {
    match &f.source {
        EspSource::Bytes(b) => b.clone(),
        EspSource::Host(h) => std::fs::read(h).unwrap(),
    }
}

fn image(len: u64) -> (tempfile::NamedTempFile, File) {
    let tmp = tempfile::NamedTempFile::new().unwrap();
    let file = tmp.reopen().unwrap();
    file.set_len(len).unwrap();
    (tmp, file)
}

#[test]
fn fat_passes_fsck_and_mtools_reads_it_back() {
    let (tmp, file) = image(SIZE);
    let host = tempfile::NamedTempFile::new().unwrap();
    let files = sample_files(host.path());
    write_esp(&file, 0, &params(), &files).unwrap();
    let img = tmp.path().to_str().unwrap();

    let (ok, _, out) = run("fsck.vfat", "dosfstools", &["-n", "-v", img]);
    let lower = out.to_lowercase();
    assert!(
        ok && !lower.contains("differences") && !lower.contains("error"),
        "{out}"
    );
    assert!(out.contains("512 bytes per cluster"), "{out}");
    let (ok, _, out) = run("file", "file", &["-s", img]);
    assert!(ok && out.contains("FAT (32 bit)"), "{out}");
    for f in &files {
        let (ok, got, out) = run(
            "mcopy",
            "mtools",
            &["-n", "-i", img, &format!("::/{}", f.path), "-"],
        );
        assert!(ok && got == content(f), "{}: {out}", f.path);
    }
    let (ok, _, out) = run("mdir", "mtools", &["-i", img, "::/"]);
    assert!(
        ok && out.contains("Volume in drive : is BERTH-ESP"),
        "{out}"
    );
    assert!(out.contains("Volume Serial Number is 1234-ABCD"), "{out}");
    assert!(out.contains("2023-11-14  22:13"), "{out}");
}

#[test]
fn fat_is_deterministic_at_any_offset() {
    let host = tempfile::NamedTempFile::new().unwrap();
    let files = sample_files(host.path());
    let (tmp_a, a) = image(SIZE);
    let (_tmp_b, b) = image(SIZE + 2 * MIB);
    // Garbage around and inside the region must not matter, nor the order of the files.
    b.write_all_at(&vec![0xaa; (SIZE + 2 * MIB) as usize], 0)
        .unwrap();
    write_esp(&a, 0, &params(), &files).unwrap();
    let reversed: Vec<EspFile> = files.iter().rev().cloned().collect();
    write_esp(&b, MIB, &params(), &reversed).unwrap();
    let mut region = vec![0u8; SIZE as usize];
    b.read_exact_at(&mut region, MIB).unwrap();
    assert!(
        std::fs::read(tmp_a.path()).unwrap() == region,
        "the two volumes differ"
    );
    let mut edge = vec![0u8; MIB as usize];
    for at in [0, MIB + SIZE] {
        b.read_exact_at(&mut edge, at).unwrap();
        assert!(edge.iter().all(|&x| x == 0xaa));
    }

    let listing = read_esp(&b, MIB, SIZE).unwrap();
    let paths: Vec<&str> = listing.iter().map(|(p, _)| p.as_str()).take(17).collect();
    let want = "EFI EFI/BOOT EFI/BOOT/BOOTX64.EFI berth berth/a berth/a/empty berth/a/vmlinuz \
        deep deep/er deep/er/and deep/er/and/deeper loader loader/entries \
        loader/entries/berth-a.conf loader/loader.conf many many/file-00.conf";
    let mut want: Vec<&str> = want.split_whitespace().collect();
    want.insert(11, "deep/er/and/deeper/a long name, with spaces.txt");
    assert_eq!(paths, want[..17]);
    assert_eq!(listing.len(), files.len() + 13);
    for f in &files {
        let (_, got) = listing.iter().find(|(p, _)| *p == f.path).unwrap();
        assert!(got.as_deref() == Some(&content(f)[..]), "{}", f.path);
    }
}

#[test]
fn fat_timestamps_are_the_epoch() {
    let (_tmp, file) = image(SIZE);
    let host = tempfile::NamedTempFile::new().unwrap();
    write_esp(&file, 0, &params(), &sample_files(host.path())).unwrap();
    let want = fat_time(EPOCH);
    let fs = FileSystem::new(Window::new(&file, 0, SIZE, false), FsOptions::new()).unwrap();
    fn check(dir: &Dir, want: fatfs::DateTime, seen: &mut usize) {
        for e in dir.iter().map(Result::unwrap) {
            let times = (e.created(), e.modified(), e.accessed());
            assert_eq!(times, (want, want, want.date), "{}", e.file_name());
            *seen += 1;
            if e.is_dir() && e.file_name() != "." && e.file_name() != ".." {
                check(&e.to_dir(), want, seen);
            }
        }
    }
    let mut seen = 0;
    check(&fs.root_dir(), want, &mut seen);
    assert!(seen > 60);
    assert_eq!(fs.volume_id(), 0x1234_abcd);
    drop(fs);
    // The label entry, which fatfs does not show.
    let disk = Window::new(&file, 0, SIZE, false);
    let raw = Raw::open(&disk).unwrap();
    let mut label = [0u8; 32];
    disk.read_exact_at(&mut label, raw.pos(raw.root)).unwrap();
    assert_eq!(&label[..12], b"BERTH-ESP  \x08");
    let (date, time, tenths) = dos_fields(want);
    let le = |i: usize| u16::from_le_bytes([label[i], label[i + 1]]);
    let stamps = (label[13], le(14), le(16), le(18), le(22), le(24));
    assert_eq!(stamps, (tenths, time, date, date, time, date));
}

#[test]
fn fat_civil_time_and_clamping() {
    let civil = |e| {
        let (d, t) = (fat_time(e).date, fat_time(e).time);
        (d.year, d.month, d.day, t.hour, t.min, t.sec)
    };
    assert_eq!(civil(EPOCH), (2023, 11, 14, 22, 13, 20));
    assert_eq!(civil(315_532_800), (1980, 1, 1, 0, 0, 0));
    assert_eq!(civil(951_782_399), (2000, 2, 28, 23, 59, 59));
    assert_eq!(civil(951_782_400), (2000, 2, 29, 0, 0, 0));
    assert_eq!(civil(4_354_819_199), (2107, 12, 31, 23, 59, 59));
    for low in [0, 315_532_799, -86_400 * 365 * 3000, i64::MIN] {
        assert_eq!(civil(low), (1980, 1, 1, 0, 0, 0));
    }
    for high in [4_354_819_200, i64::MAX] {
        assert_eq!(civil(high), (2107, 12, 31, 23, 59, 59));
    }
}

#[test]
fn fat_rejects_bad_input_cleanly() {
    let (_tmp, file) = image(SIZE);
    let write = |files: Vec<EspFile>| write_esp(&file, 0, &params(), &files).unwrap_err();
    let f = |path: &str, len: usize| bytes(path, &vec![1; len]);

    let err = write(vec![f("small", 10), f("EFI/huge.img", 70 * MIB as usize)]);
    assert!(
        matches!(&err, FatError::NoSpace { path, .. } if path == "EFI/huge.img"),
        "{err}"
    );
    let err = write(vec![f("EFI/a", 1), f("efi/A", 1)]);
    assert!(matches!(err, FatError::Duplicate { .. }), "{err}");
    let err = write(vec![f("EFI", 1), f("efi/A", 1)]);
    assert!(matches!(err, FatError::FileAndFolder { .. }), "{err}");
    let err = write(vec![f(&format!("EFI/{}", "n".repeat(256)), 1)]);
    assert!(matches!(err, FatError::InvalidPath { .. }) && err.to_string().contains("255"));
    for bad in ["/abs", "a//b", "a/../b", "a:b", ""] {
        assert!(
            matches!(write(vec![f(bad, 1)]), FatError::InvalidPath { .. }),
            "{bad}"
        );
    }
    let missing = EspSource::Host("/nonexistent/berth".into());
    let err = write(vec![EspFile {
        path: "x".into(),
        source: missing,
    }]);
    assert!(matches!(err, FatError::ReadSource { .. }), "{err}");

    let bad_params = [
        EspParams {
            label: "lower".into(),
            ..params()
        },
        EspParams {
            label: "TWELVE-CHARS".into(),
            ..params()
        },
        EspParams {
            label: "A/B".into(),
            ..params()
        },
        EspParams {
            size_bytes: 16 * MIB,
            ..params()
        }, // would be FAT16
        EspParams {
            size_bytes: SIZE + 512,
            ..params()
        }, // past the end of the file
        EspParams {
            size_bytes: SIZE - 1,
            ..params()
        },
    ];
    for p in bad_params {
        let err = write_esp(&file, 0, &p, &[]);
        assert!(
            matches!(err, Err(FatError::InvalidParams(_))),
            "{p:?}: {err:?}"
        );
    }
}
