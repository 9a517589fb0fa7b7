//! Splitting a program into what the root ships and what a debugger needs: the stripped
//! file (no symbol table, no debug sections) and its debug file under
//! `usr/lib/debug/.build-id/xx/rest.debug`, where gdb, eu-stack and debuginfod clients
//! look a crash's build-id up. The split is binutils' `objcopy` (`--only-keep-debug`,
//! then `--strip-all`), the tool Debian's dh_strip uses; the same input gives the same
//! bytes, so the image stays reproducible.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;

use goblin::elf::Elf;

/// Where debug files live, relative to a root (`/usr/lib/debug/.build-id`).
pub const BUILD_ID_DIR: &str = "usr/lib/debug/.build-id";

/// A split that could not be made.
#[derive(Debug, thiserror::Error)]
pub enum SplitError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path}: no GNU build-id note (link with --build-id)")]
    NoBuildId { path: PathBuf },
    #[error("{path}: malformed ELF: {reason}")]
    Parse { path: PathBuf, reason: String },
    #[error("cannot run objcopy (install the Debian package binutils): {0}")]
    Spawn(#[source] io::Error),
    #[error("objcopy {args} failed: {stderr}")]
    Objcopy { args: String, stderr: String },
}

/// One program, split.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split {
    /// The stripped program.
    pub stripped: PathBuf,
    /// Its debug file's path relative to the debug root: `usr/lib/debug/.build-id/ab/cdef….debug`.
    pub debug_rel: PathBuf,
    /// The build-id, lower-case hex.
    pub build_id: String,
}

/// The GNU build-id of the ELF `bytes`, as hex.
pub fn build_id(bytes: &[u8]) -> Result<Option<String>, String> {
    let elf = Elf::parse(bytes).map_err(|e| e.to_string())?;
    for note in elf
        .iter_note_sections(bytes, Some(".note.gnu.build-id"))
        .into_iter()
        .flatten()
    {
        let note = note.map_err(|e| e.to_string())?;
        if note.n_type == goblin::elf::note::NT_GNU_BUILD_ID && note.name == "GNU" {
            return Ok(Some(hex::encode(note.desc)));
        }
    }
    Ok(None)
}

/// Splits `program` into `stripped_dir/<name>` and `debug_root/usr/lib/debug/.build-id/…`.
/// Skips the work when both exist and are newer than `program`.
pub fn split(program: &Path, stripped_dir: &Path, debug_root: &Path) -> Result<Split, SplitError> {
    let read_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| SplitError::Read { path, source }
    };
    let bytes = fs::read(program).map_err(read_err(program))?;
    let id = build_id(&bytes)
        .map_err(|reason| SplitError::Parse {
            path: program.to_path_buf(),
            reason,
        })?
        .filter(|id| id.len() > 2)
        .ok_or_else(|| SplitError::NoBuildId {
            path: program.to_path_buf(),
        })?;
    let debug_rel = Path::new(BUILD_ID_DIR)
        .join(&id[..2])
        .join(format!("{}.debug", &id[2..]));
    let name = program.file_name().unwrap_or_default();
    let stripped = stripped_dir.join(name);
    let debug = debug_root.join(&debug_rel);
    let made = fs::metadata(program)
        .and_then(|m| m.modified())
        .map_err(read_err(program))?;
    let fresh = |p: &Path| {
        fs::metadata(p)
            .and_then(|m| m.modified())
            .is_ok_and(|t| t >= made)
    };
    if !(fresh(&stripped) && fresh(&debug)) {
        for dir in [stripped_dir, debug.parent().unwrap_or(debug_root)] {
            fs::create_dir_all(dir).map_err(read_err(dir))?;
        }
        // Written beside and renamed into place: two builds sharing the target folder may
        // split the same program at once, and a reader must never see half a file.
        for (flag, out) in [("--only-keep-debug", &debug), ("--strip-all", &stripped)] {
            let partial = out.with_extension(format!("partial.{}", std::process::id()));
            objcopy(&[flag.as_ref(), program.as_os_str(), partial.as_os_str()])?;
            fs::rename(&partial, out).map_err(read_err(out))?;
        }
    }
    Ok(Split {
        stripped,
        debug_rel,
        build_id: id,
    })
}

fn objcopy(args: &[&std::ffi::OsStr]) -> Result<(), SplitError> {
    let out = Command::new("objcopy")
        .args(args)
        .output()
        .map_err(SplitError::Spawn)?;
    if out.status.success() {
        Ok(())
    } else {
        Err(SplitError::Objcopy {
            args: args
                .iter()
                .map(|a| a.to_string_lossy())
                .collect::<Vec<_>>()
                .join(" "),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_program_splits_into_a_stripped_file_and_a_debug_file_by_build_id() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("hello.c");
        fs::write(&src, "int main(void) { return 0; }\n").unwrap();
        let program = dir.path().join("hello");
        let cc = Command::new("cc")
            .args(["-g", "-Wl,--build-id=sha1", "-o"])
            .arg(&program)
            .arg(&src)
            .status()
            .expect("cc (gcc) is on every machine of this kind");
        assert!(cc.success());
        let split = split(&program, &dir.path().join("s"), &dir.path().join("d")).unwrap();
        assert_eq!(split.build_id.len(), 40);
        let debug = dir.path().join("d").join(&split.debug_rel);
        let rel = split.debug_rel.to_string_lossy().into_owned();
        assert!(
            rel.starts_with(&format!(
                "usr/lib/debug/.build-id/{}/",
                &split.build_id[..2]
            )),
            "{rel}"
        );
        // The stripped file keeps the build-id and loses the symbols; the debug file has them.
        let stripped = fs::read(&split.stripped).unwrap();
        assert_eq!(
            build_id(&stripped).unwrap().as_deref(),
            Some(split.build_id.as_str())
        );
        let elf = Elf::parse(&stripped).unwrap();
        assert!(elf.syms.is_empty());
        let kept = fs::read(&debug).unwrap();
        assert!(!Elf::parse(&kept).unwrap().syms.is_empty());
        assert!(
            fs::metadata(&split.stripped).unwrap().len() < fs::metadata(&program).unwrap().len()
        );
        // Garbage is an error naming the file.
        let junk = dir.path().join("junk");
        fs::write(&junk, b"not an elf").unwrap();
        let err = super::split(&junk, dir.path(), dir.path())
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with(&format!("{}: malformed ELF", junk.display())),
            "{err}"
        );
    }
}
