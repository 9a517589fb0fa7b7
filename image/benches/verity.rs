//! Our dm-verity `format` against `veritysetup format`, on the same data, salt and UUID.
//!
//! `cargo bench -p berth-image --bench verity`; `BERTH_BENCH_MIB` sets the data size
//! (default 1024). The data file is written first and stays in the page cache, so both
//! tools are timed on hashing and tree writing, not on the disk. Runs alternate, three
//! each; the medians are reported. No assertions on timing; the root hashes must agree.

use std::error::Error;
use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use berth_image::verity::{self, VerityParams};

const RUNS: usize = 3;
const UUID: [u8; 16] = *b"\x2b\x1f\x6e\x0a\x93\x44\x4c\x51\x8d\x02\x7e\x55\xc4\x10\xa9\xee";

fn main() -> Result<(), Box<dyn Error>> {
    let mib: u64 = match std::env::var("BERTH_BENCH_MIB") {
        Ok(value) => value
            .parse()
            .map_err(|e| format!("BERTH_BENCH_MIB={value}: {e}"))?,
        Err(_) => 1024,
    };
    if mib == 0 {
        return Err("BERTH_BENCH_MIB must be at least 1".into());
    }
    let len = mib << 20;
    let dir = tempfile::tempdir()?;
    let data_path = dir.path().join("data");
    write_random(&data_path, len)?;
    let params = VerityParams {
        salt: (0u8..32).map(|i| i.wrapping_mul(37) ^ 0x5a).collect(),
        uuid: UUID,
    };
    println!(
        "verity format of {mib} MiB, {} threads available",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );

    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for run in 1..=RUNS {
        let (time, root) = time_ours(&data_path, &dir.path().join("ours"), len, &params)?;
        println!("  run {run}: berth       {:>8.1} MB/s", mb_per_s(len, time));
        ours.push(time);
        let (time, reference) = time_theirs(&data_path, &dir.path().join("theirs"), &params)?;
        println!("  run {run}: veritysetup {:>8.1} MB/s", mb_per_s(len, time));
        theirs.push(time);
        if root != reference {
            return Err(format!(
                "root hashes differ: berth {} veritysetup {}",
                hex::encode(root),
                hex::encode(reference)
            )
            .into());
        }
    }
    let (ours, theirs) = (mb_per_s(len, median(ours)), mb_per_s(len, median(theirs)));
    println!("median: berth {ours:.1} MB/s, veritysetup {theirs:.1} MB/s");
    println!(
        "ratio berth / veritysetup: {:.2}x (root hashes agree)",
        ours / theirs
    );
    Ok(())
}

/// `len` bytes of splitmix64 output.
fn write_random(path: &Path, len: u64) -> std::io::Result<()> {
    let mut file = File::create(path)?;
    let mut state = 0x0123_4567_89ab_cdefu64;
    let mut chunk = vec![0u8; 8 << 20];
    let mut left = len;
    while left > 0 {
        for word in chunk.chunks_exact_mut(8) {
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            word.copy_from_slice(&(z ^ (z >> 31)).to_le_bytes());
        }
        let n = left.min(chunk.len() as u64) as usize;
        file.write_all(&chunk[..n])?;
        left -= n as u64;
    }
    Ok(())
}

fn time_ours(
    data: &Path,
    hash: &Path,
    len: u64,
    params: &VerityParams,
) -> Result<(Duration, [u8; 32]), Box<dyn Error>> {
    remove(hash)?;
    let start = Instant::now();
    let data = File::open(data)?;
    let hash = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(hash)?;
    let info = verity::format(&data, 0, len, &hash, 0, params, &|_| {})?;
    Ok((start.elapsed(), info.root_hash))
}

fn time_theirs(
    data: &Path,
    hash: &Path,
    params: &VerityParams,
) -> Result<(Duration, [u8; 32]), Box<dyn Error>> {
    remove(hash)?;
    let start = Instant::now();
    let output = Command::new("veritysetup")
        .args([
            "format",
            "--hash-offset",
            "0",
            "--salt",
            &hex::encode(&params.salt),
        ])
        .args([
            "--uuid",
            &uuid::Uuid::from_bytes(params.uuid).hyphenated().to_string(),
        ])
        .args(["--data-block-size", "4096", "--hash-block-size", "4096"])
        .arg(data)
        .arg(hash)
        .output()
        .map_err(|e| match e.kind() {
            ErrorKind::NotFound => {
                "veritysetup not found: install the Debian package cryptsetup-bin".into()
            }
            _ => format!("running veritysetup: {e}"),
        })?;
    let elapsed = start.elapsed();
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(format!("veritysetup format failed: {output:?}").into());
    }
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("Root hash:"))
        .ok_or_else(|| format!("no root hash in veritysetup output: {stdout}"))?;
    let mut root = [0; 32];
    hex::decode_to_slice(line.trim(), &mut root)?;
    Ok((elapsed, root))
}

fn remove(path: &Path) -> std::io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn mb_per_s(bytes: u64, time: Duration) -> f64 {
    bytes as f64 / time.as_secs_f64() / 1e6
}
