//! The one way a Berth test skips. A test that cannot run here (no root, a tool missing,
//! no QEMU) calls [`skip`] (or the [`skip_if!`] macro) and returns. The skip is:
//!
//! - stated: `SKIPPED <test>: <reason>` on stderr, past the harness's output capture;
//! - counted: the same line appended to `<target>/berth-skips.txt`, which `cargo xtask
//!   test` empties before the run and prints and counts at the end;
//! - refused under CI: when `CI` is `true` (as `.ci/run` sets it), a skip fails the test
//!   unless the test is on the allow-list `.ci/skips-allowed`, where every entry says why.
//!
//! No dependencies, so every test crate can use it; `cargo xtask test` uses it too, for the
//! record's name and for the environment of the cargo it starts ([`cargo_env`]).

pub mod cargo_env;

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The file of recorded skips, under cargo's target folder.
pub const RECORD: &str = "berth-skips.txt";

/// The allow-list, relative to the workspace root.
pub const ALLOW_LIST: &str = ".ci/skips-allowed";

/// Skips the calling test with `reason`, as the module docs say; under CI this panics
/// (failing the test) unless the test is allowed to skip. Call it, then return.
pub fn skip(reason: &str) {
    let test = test_name();
    let record_file = target_dir().map(|dir| dir.join(RECORD));
    let allow_list =
        workspace().and_then(|root| std::fs::read_to_string(root.join(ALLOW_LIST)).ok());
    if let Err(refusal) = skip_as(
        &test,
        reason,
        record_file.as_deref(),
        on_ci(),
        allow_list.as_deref(),
    ) {
        panic!("{refusal}");
    }
}

/// [`skip`] with its surroundings given: states and records the skip, and under CI refuses
/// it unless `allow_list` names `test`.
fn skip_as(
    test: &str,
    reason: &str,
    record_file: Option<&Path>,
    ci: bool,
    allow_list: Option<&str>,
) -> Result<(), String> {
    let line = format!("SKIPPED {test}: {reason}");
    // The harness captures `print!` output only, so stderr writes are always seen.
    let _ = writeln!(std::io::stderr(), "{line}");
    if let Some(path) = record_file {
        record(path, &line);
    }
    if ci && !allow_list.is_some_and(|text| is_allowed(text, test)) {
        return Err(format!(
            "{line}\nCI=true: a test that cannot run here fails; fix the machine, or add \
             `{test}  # why` to {ALLOW_LIST}"
        ));
    }
    Ok(())
}

/// Returns from the calling test after [`skip`] when `$reason` (an `Option<String>` or
/// `Option<&str>`) is `Some`.
#[macro_export]
macro_rules! skip_if {
    ($reason:expr) => {
        if let Some(reason) = $reason {
            $crate::skip(::std::convert::AsRef::<str>::as_ref(&reason));
            return;
        }
    };
}

/// True under CI (`CI=true` or `CI=1`, as GitHub Actions, GitLab and `.ci/run` set it).
pub fn on_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// `<test binary>::<test>`: the binary's name without cargo's hash, and the harness's
/// name of the test (the name of the thread it runs on).
pub fn test_name() -> String {
    let binary = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.file_name().map(|n| n.to_string_lossy().into_owned()))
        .map(|name| strip_hash(&name).to_string())
        .unwrap_or_else(|| "unknown".into());
    let thread = std::thread::current();
    match thread.name() {
        Some(name) if name != "main" => format!("{binary}::{name}"),
        _ => binary,
    }
}

/// `pod-0123456789abcdef` → `pod`.
fn strip_hash(name: &str) -> &str {
    match name.rsplit_once('-') {
        Some((base, hash)) if hash.len() == 16 && hash.bytes().all(|b| b.is_ascii_hexdigit()) => {
            base
        }
        _ => name,
    }
}

/// Whether `test` is on the allow-list `text`: one entry per line, `#` starts a comment
/// (which each entry must have: the reason it may skip). An entry is a full test name or
/// a prefix ending in `*`.
pub fn is_allowed(text: &str, test: &str) -> bool {
    text.lines().any(|line| {
        let (entry, comment) = match line.split_once('#') {
            Some((entry, comment)) => (entry.trim(), comment.trim()),
            None => (line.trim(), ""),
        };
        if entry.is_empty() || comment.is_empty() {
            return false;
        }
        match entry.strip_suffix('*') {
            Some(prefix) => test.starts_with(prefix),
            None => test == entry,
        }
    })
}

fn record(path: &Path, line: &str) {
    // One `write` of a short line in append mode: concurrent tests do not interleave.
    if let Ok(mut file) = OpenOptions::new().create(true).append(true).open(path) {
        let _ = file.write_all(format!("{line}\n").as_bytes());
    }
}

/// Cargo's target folder: `CARGO_TARGET_DIR` when absolute, else the nearest ancestor of
/// the running test binary that holds cargo's `CACHEDIR.TAG`.
pub fn target_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from) {
        if dir.is_absolute() {
            return Some(dir);
        }
    }
    let exe = std::env::current_exe().ok()?;
    exe.ancestors()
        .find(|dir| dir.join("CACHEDIR.TAG").is_file())
        .map(Path::to_path_buf)
}

/// The workspace root: the nearest ancestor of the test's package (`CARGO_MANIFEST_DIR`,
/// set by cargo when it runs tests) that holds `Cargo.lock`.
fn workspace() -> Option<PathBuf> {
    let start = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR")?);
    start
        .ancestors()
        .find(|dir| dir.join("Cargo.lock").is_file())
        .map(Path::to_path_buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_list_entries_need_a_reason() {
        let text = "# header\npod::a  # needs a bridge\npod::b\nqemu::*  # no QEMU on arm\n";
        assert!(is_allowed(text, "pod::a"));
        assert!(
            !is_allowed(text, "pod::b"),
            "an entry without a reason counts for nothing"
        );
        assert!(is_allowed(text, "qemu::boots"));
        assert!(!is_allowed(text, "pod::c"));
        assert!(!is_allowed("", "pod::a"));
    }

    #[test]
    fn binary_names_lose_cargos_hash() {
        assert_eq!(strip_hash("pod-0123456789abcdef"), "pod");
        assert_eq!(strip_hash("early_boot-fedcba9876543210"), "early_boot");
        assert_eq!(strip_hash("berth-testkit"), "berth-testkit");
    }

    #[test]
    fn the_test_name_is_the_harness_thread_name() {
        let name = test_name();
        assert!(
            name.ends_with("::tests::the_test_name_is_the_harness_thread_name"),
            "{name}"
        );
    }

    #[test]
    fn a_skip_is_recorded_and_fails_only_under_ci_unless_allowed() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join(RECORD);
        assert_eq!(
            skip_as("pod::a", "no root", Some(&file), false, None),
            Ok(())
        );
        let list = "pod::b  # needs a bridge the CI runner has not\n";
        assert_eq!(
            skip_as("pod::b", "no bridge", Some(&file), true, Some(list)),
            Ok(())
        );
        let refused = skip_as("pod::c", "no crun", Some(&file), true, Some(list)).unwrap_err();
        assert!(
            refused.starts_with("SKIPPED pod::c: no crun\nCI=true"),
            "{refused}"
        );
        assert!(skip_as("pod::a", "no root", None, true, None).is_err());
        let text = std::fs::read_to_string(&file).unwrap();
        assert_eq!(
            text,
            "SKIPPED pod::a: no root\nSKIPPED pod::b: no bridge\nSKIPPED pod::c: no crun\n"
        );
    }
}
