//! Shared helpers for the integration tests in `tests/tests/`: running `cargo xtask` as a
//! user would, reading partitions out of a built disk, and running the reference tools.

pub mod shell;

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use anyhow::{bail, Context, Result};
use berth_layout::gpt::{self, GptTable};
use berth_testkit::cargo_env::clean_cargo_env;

/// A fixed SOURCE_DATE_EPOCH for every test build (2023-11-14T22:13:20Z).
pub const EPOCH: &str = "1700000000";

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// `cargo xtask ARGS` from the workspace root, with SOURCE_DATE_EPOCH fixed, in the
/// environment a shell would give it.
pub fn xtask(args: &[&str]) -> Command {
    // A flag, not the environment: build scripts of xtask's dependencies rerun when
    // SOURCE_DATE_EPOCH changes, so the user's next `cargo xtask` would rebuild xtask.
    let mut with_epoch = vec!["--source-date-epoch", EPOCH];
    with_epoch.extend_from_slice(args);
    xtask_as_typed(&with_epoch)
}

/// `cargo xtask ARGS` as a user types it in the workspace, in the environment a shell
/// would give it: the epoch is the last commit's, as for the README's build.
pub fn xtask_as_typed(args: &[&str]) -> Command {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.arg("xtask").args(args).current_dir(workspace());
    clean_cargo_env(&mut cmd);
    cmd
}

/// cargo's target folder for the image binaries, shared by the test builds and the
/// user's own `cargo xtask build` (its default): the binaries are compiled once, not once
/// per test. [`clean_build_into`] does not use it.
pub fn shared_binaries_target_dir() -> PathBuf {
    workspace().join("target/berth/cargo")
}

/// Waits for `pattern` on the console and returns its whole line (the harness may match
/// before the rest of the line has arrived). `None`-free: a timeout is an error.
pub fn whole_line(
    vm: &mut berth_qemu::Vm,
    pattern: &str,
    timeout: std::time::Duration,
) -> Result<String> {
    vm.wait_for(pattern, timeout)?;
    complete_line(vm, pattern, timeout)
}

/// The whole line of the `pattern` the last wait matched, once it has arrived.
pub fn complete_line(
    vm: &mut berth_qemu::Vm,
    pattern: &str,
    timeout: std::time::Duration,
) -> Result<String> {
    vm.wait_for("\n", timeout)?;
    let console = vm.console();
    let line = console
        .lines()
        .rfind(|l| l.contains(pattern))
        .context("matched line vanished")?;
    Ok(line.trim_end_matches('\r').to_string())
}

/// True (after skipping the calling test with `berth_testkit::skip`: stated, counted,
/// refused under CI) when this host cannot run VM tests: QEMU or OVMF missing.
pub fn vm_tests_skipped() -> bool {
    match berth_qemu::skip_reason() {
        Some(reason) => {
            berth_testkit::skip(&reason);
            true
        }
        None => false,
    }
}

/// A sparse copy of `disk` in `dir` that a test may damage or write to.
pub fn sparse_copy(disk: &Path, dir: &Path) -> PathBuf {
    let copy = dir.join("disk.raw");
    if let Err(err) = run_ok(
        Command::new("cp")
            .arg("--sparse=always")
            .arg(disk)
            .arg(&copy),
    ) {
        panic!("cannot copy {}: {err:#}", disk.display());
    }
    copy
}

/// The SPDX validator `pyspdxtools` (PyPI spdx-tools): $BERTH_PYSPDXTOOLS, else the venv
/// `.ci/install-deps` makes in Berth's cache folder ($BERTH_CACHE_DIR, else
/// $XDG_CACHE_HOME/berth, else ~/.cache/berth), else PATH.
pub fn pyspdxtools() -> String {
    if let Ok(tool) = std::env::var("BERTH_PYSPDXTOOLS") {
        return tool;
    }
    let cache = std::env::var_os("BERTH_CACHE_DIR")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("XDG_CACHE_HOME").map(|d| Path::new(&d).join("berth")))
        .or_else(|| std::env::var_os("HOME").map(|d| Path::new(&d).join(".cache/berth")));
    match cache.map(|c| c.join("tools/spdx/bin/pyspdxtools")) {
        Some(venv) if venv.exists() => venv.to_string_lossy().into_owned(),
        _ => "pyspdxtools".into(),
    }
}

/// XORs the byte at `offset` of `path` with `mask`: tampering for the verity tests.
pub fn flip_byte(path: &Path, offset: u64, mask: u8) -> Result<()> {
    use std::os::unix::fs::FileExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)?;
    let mut byte = [0u8; 1];
    file.read_exact_at(&mut byte, offset)?;
    file.write_all_at(&[byte[0] ^ mask], offset)?;
    Ok(())
}

/// Writes `len` zero bytes at `offset` of `path`: destroying a filesystem for a test.
pub fn zero_range(path: &Path, offset: u64, len: u64) -> Result<()> {
    use std::os::unix::fs::FileExt;
    let file = std::fs::OpenOptions::new().write(true).open(path)?;
    let chunk = vec![0u8; 1 << 20];
    let mut done = 0;
    while done < len {
        let n = (len - done).min(chunk.len() as u64);
        let n_usize = usize::try_from(n)?;
        file.write_all_at(&chunk[..n_usize], offset + done)?;
        done += n;
    }
    file.sync_all()?;
    Ok(())
}

/// The loader entry of slot A on a freshly built disk (boot counting: 3 tries left).
pub const SLOT_A_ENTRY: &str = "loader/entries/berth-a+3.conf";

/// Rewrites slot A's loader entry on the ESP of `disk` with `edit` (through mtools, as a
/// user would on a mounted ESP); returns the new entry.
pub fn edit_loader_entry(disk: &Path, edit: impl FnOnce(&str) -> String) -> Result<String> {
    let esp = table(disk)?
        .by_label("EFI-SYSTEM")
        .context("no EFI-SYSTEM partition")?
        .offset(512);
    let image = format!("{}@@{esp}", path_str(disk)?);
    let entry = format!("::{SLOT_A_ENTRY}");
    let out = run_ok(Command::new("mcopy").args(["-n", "-i", &image, &entry, "-"]))
        .context("mcopy (install the Debian package mtools)")?;
    let text = String::from_utf8(out.stdout)?;
    let edited = edit(&text);
    let dir = tempfile::tempdir()?;
    let local = dir.path().join("entry.conf");
    std::fs::write(&local, &edited)?;
    run_ok(Command::new("mcopy").args(["-o", "-n", "-i", &image, path_str(&local)?, &entry]))?;
    Ok(edited)
}

/// A loader entry with `words` added to its kernel command line (`options`).
pub fn with_kernel_args(entry: &str, words: &str) -> String {
    entry
        .lines()
        .map(|line| match line.starts_with("options ") {
            true => format!("{line} {words}\n"),
            false => format!("{line}\n"),
        })
        .collect()
}

/// Runs a command, failing with its output unless it succeeds.
pub fn run_ok(cmd: &mut Command) -> Result<Output> {
    let out = cmd
        .output()
        .with_context(|| format!("cannot run {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed ({}):\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(out)
}

/// Runs a reference tool; a missing tool fails naming its Debian package.
pub fn tool(name: &str, args: &[&str], package: &str) -> Result<Output> {
    Command::new(name)
        .args(args)
        .output()
        .with_context(|| format!("cannot run {name} (install the Debian package {package})"))
}

/// The default image as the README's `cargo xtask build` makes it (its work folder,
/// `out/`, the last commit's epoch), found up to date or built once per test process
/// (test binaries run one after another, so they share its step cache): (disk,
/// manifest). Being the user's own build, the user's next `cargo xtask build` after
/// `cargo xtask test` has nothing left to do.
pub fn shared_image() -> &'static (PathBuf, PathBuf) {
    static IMAGE: std::sync::OnceLock<(PathBuf, PathBuf)> = std::sync::OnceLock::new();
    IMAGE.get_or_init(|| {
        let out = workspace().join("out");
        match run_ok(&mut xtask_as_typed(&["--quiet", "build"])) {
            Ok(_) => (out.join("berth.raw"), out.join("manifest.json")),
            Err(err) => panic!("cannot build the shared test image: {err:#}"),
        }
    })
}

/// The debug variant (`berth.debug`, a busybox root shell on the serial console) as
/// `cargo xtask build --variant debug` makes it, once per test process: (disk, manifest).
pub fn shared_debug_image() -> &'static (PathBuf, PathBuf) {
    static IMAGE: std::sync::OnceLock<(PathBuf, PathBuf)> = std::sync::OnceLock::new();
    IMAGE.get_or_init(|| variant_image("debug"))
}

/// The test variant (the debug one plus `image.toml`'s `[packages] test`: Debian's
/// containerd and runc) as `cargo xtask build --variant test` makes it, once per test
/// process and found up to date in the step cache after that: (disk, manifest).
pub fn shared_test_image() -> &'static (PathBuf, PathBuf) {
    static IMAGE: std::sync::OnceLock<(PathBuf, PathBuf)> = std::sync::OnceLock::new();
    IMAGE.get_or_init(|| variant_image("test"))
}

/// `cargo xtask build --variant VARIANT` in the user's work and out folders: the disk
/// `out/berth-VARIANT.raw` and its `out/manifest-VARIANT.json`.
fn variant_image(variant: &str) -> (PathBuf, PathBuf) {
    let out = workspace().join("out");
    match run_ok(&mut xtask_as_typed(&[
        "--quiet",
        "build",
        "--variant",
        variant,
    ])) {
        Ok(_) => (
            out.join(format!("berth-{variant}.raw")),
            out.join(format!("manifest-{variant}.json")),
        ),
        Err(err) => panic!("cannot build the shared {variant} test image: {err:#}"),
    }
}

/// Builds the default image into `work`/`out` (both under `dir`), its binaries compiled
/// in the shared target folder; returns the disk path.
pub fn build_into(dir: &Path, extra: &[&str]) -> Result<(PathBuf, Output)> {
    let shared = shared_binaries_target_dir();
    let mut args = vec!["--binaries-target-dir", path_str(&shared)?];
    args.extend_from_slice(extra);
    build_with(dir, &args)
}

/// Builds from nothing: empty work folder, the binaries compiled in a target folder of
/// its own (under `dir`).
pub fn clean_build_into(dir: &Path, extra: &[&str]) -> Result<(PathBuf, Output)> {
    build_with(dir, extra)
}

fn build_with(dir: &Path, extra: &[&str]) -> Result<(PathBuf, Output)> {
    let work = dir.join("work");
    let out = dir.join("out");
    let mut args = vec![
        "build",
        "--work-dir",
        path_str(&work)?,
        "--out-dir",
        path_str(&out)?,
    ];
    args.extend_from_slice(extra);
    let output = run_ok(&mut xtask(&args))?;
    Ok((out.join("berth.raw"), output))
}

/// Builds with `config_text` as `dir/image.toml` (work and out folders in `dir` too),
/// expecting the build to fail; returns its stderr.
pub fn failed_build(dir: &Path, config_text: &str) -> Result<String> {
    let config = dir.join("image.toml");
    std::fs::write(&config, config_text)?;
    let (work, out) = (dir.join("work"), dir.join("out"));
    let shared = shared_binaries_target_dir();
    let output = xtask(&[
        "build",
        "--quiet",
        "--config",
        path_str(&config)?,
        "--work-dir",
        path_str(&work)?,
        "--out-dir",
        path_str(&out)?,
        "--binaries-target-dir",
        path_str(&shared)?,
    ])
    .output()?;
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    if output.status.success() {
        bail!("the build succeeded; expected it to fail:\n{stderr}");
    }
    Ok(stderr)
}

/// `image.toml` of the workspace with `from` replaced by `to`.
pub fn image_toml_with(from: &str, to: &str) -> String {
    let base = std::fs::read_to_string(workspace().join("image.toml")).unwrap_or_default();
    assert!(base.contains(from), "image.toml has no {from:?}");
    base.replace(from, to)
}

pub fn path_str(path: &Path) -> Result<&str> {
    path.to_str().context("test paths must be UTF-8")
}

pub fn table(disk: &Path) -> Result<GptTable> {
    Ok(gpt::read(&mut File::open(disk)?, disk)?)
}

/// Copies `len` bytes of `disk` from `offset` into a new file `dest`.
pub fn extract(disk: &Path, offset: u64, len: u64, dest: &Path) -> Result<()> {
    let mut input = File::open(disk)?;
    input.seek(SeekFrom::Start(offset))?;
    let mut output = File::create(dest)?;
    std::io::copy(&mut input.take(len), &mut output)?;
    output.flush()?;
    Ok(())
}

/// True when two files have the same bytes (streamed).
pub fn same_bytes(a: &Path, b: &Path) -> Result<bool> {
    let (mut fa, mut fb) = (File::open(a)?, File::open(b)?);
    if fa.metadata()?.len() != fb.metadata()?.len() {
        return Ok(false);
    }
    let (mut ba, mut bb) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
    loop {
        let n = read_full(&mut fa, &mut ba)?;
        let m = read_full(&mut fb, &mut bb)?;
        if n != m || ba[..n] != bb[..m] {
            return Ok(false);
        }
        if n == 0 {
            return Ok(true);
        }
    }
}

fn read_full(file: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}
