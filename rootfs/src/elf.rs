//! Checks that every program in the root finds its shared libraries in the root.
//!
//! The root is assembled from a hand-picked package list without dpkg's dependency
//! resolution, so a missing library would only show up as a service failing at boot. This
//! check reads each dynamic ELF's interpreter and `DT_NEEDED` entries and resolves them the
//! way the image's dynamic loader will: in the tree's library folders and the object's own
//! `RUNPATH`/`RPATH`, following symlinks inside the tree, never on the host.

use crate::place::resolve_in_root;
use goblin::elf::{header, Elf};
use std::collections::BTreeSet;
use std::fmt;
use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// Library folders of the image, in the dynamic loader's order (no `ld.so.cache` is built).
pub const SEARCH_PATHS: [&str; 6] = [
    "usr/lib/x86_64-linux-gnu",
    "usr/lib",
    "usr/lib64",
    "lib/x86_64-linux-gnu",
    "lib",
    "lib64",
];

/// What the check saw.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ElfReport {
    /// Dynamically linked x86-64 objects checked (programs and libraries).
    pub dynamic: Vec<PathBuf>,
    /// Objects with neither interpreter nor `DT_NEEDED`: static programs, the loader itself.
    pub static_count: usize,
    /// ELF files that are not x86-64 executables or shared objects (relocatable objects,
    /// other machines), not checked.
    pub skipped: Vec<PathBuf>,
    /// Every library and interpreter some object resolved to, relative to the root.
    pub resolved: BTreeSet<PathBuf>,
}

/// One unmet dependency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Missing {
    /// The object, relative to the root.
    pub elf: PathBuf,
    /// The library name (or interpreter path) it needs.
    pub needs: String,
}

/// Every unmet dependency, one per line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingList(pub Vec<Missing>);

impl fmt::Display for MissingList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, m) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(
                f,
                "{} needs {}, not found in the root",
                m.elf.display(),
                m.needs
            )?;
        }
        Ok(())
    }
}

/// Errors of the check; each names the file.
#[derive(Debug, thiserror::Error)]
pub enum ElfError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path}: malformed ELF: {reason}")]
    Parse { path: PathBuf, reason: String },
    #[error("shared libraries missing from the root:\n{0}")]
    Missing(MissingList),
}

/// Checks every dynamic ELF under `root`; `Err(ElfError::Missing)` lists every
/// (object, missing library) pair at once.
pub fn check(root: &Path) -> Result<ElfReport, ElfError> {
    let mut files = Vec::new();
    walk(root, Path::new(""), &mut files)?;
    let mut report = ElfReport::default();
    let mut missing = Vec::new();
    for rel in files {
        if rel.extension().is_some_and(|e| e == "ko") {
            continue;
        }
        let host = root.join(&rel);
        let read_err = |source| ElfError::Read {
            path: host.clone(),
            source,
        };
        let mut magic = [0u8; 4];
        let mut file = File::open(&host).map_err(read_err)?;
        if file.read(&mut magic).map_err(read_err)? < 4 || magic != *b"\x7fELF" {
            continue;
        }
        let mut bytes = magic.to_vec();
        file.read_to_end(&mut bytes).map_err(read_err)?;
        let elf = Elf::parse(&bytes).map_err(|e| ElfError::Parse {
            path: rel.clone(),
            reason: e.to_string(),
        })?;
        let checkable = elf.is_64
            && elf.header.e_machine == header::EM_X86_64
            && matches!(elf.header.e_type, header::ET_EXEC | header::ET_DYN);
        if !checkable {
            report.skipped.push(rel);
            continue;
        }
        if elf.interpreter.is_none() && elf.libraries.is_empty() {
            report.static_count += 1;
            continue;
        }
        let origin = rel.parent().unwrap_or(Path::new("")).to_path_buf();
        if let Some(interp) = elf.interpreter {
            match resolve_file(root, Path::new(interp)) {
                Some(found) => {
                    report.resolved.insert(found);
                }
                None => missing.push(Missing {
                    elf: rel.clone(),
                    needs: interp.to_string(),
                }),
            }
        }
        // ld.so ignores DT_RPATH when DT_RUNPATH is present.
        let extra = if elf.runpaths.is_empty() {
            &elf.rpaths
        } else {
            &elf.runpaths
        };
        let extra: Vec<PathBuf> = extra
            .iter()
            .flat_map(|list| list.split(':'))
            .filter_map(|dir| expand_origin(dir, &origin))
            .collect();
        for lib in &elf.libraries {
            match find_library(root, lib, &extra) {
                Some(found) => {
                    report.resolved.insert(found);
                }
                None => missing.push(Missing {
                    elf: rel.clone(),
                    needs: lib.to_string(),
                }),
            }
        }
        report.dynamic.push(rel);
    }
    if missing.is_empty() {
        Ok(report)
    } else {
        Err(ElfError::Missing(MissingList(missing)))
    }
}

/// Regular files under `dir`, sorted, without following symlinks.
fn walk(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), ElfError> {
    let host = root.join(dir);
    let read_err = |source| ElfError::Read {
        path: host.clone(),
        source,
    };
    let mut names = Vec::new();
    for dirent in fs::read_dir(&host).map_err(read_err)? {
        let dirent = dirent.map_err(read_err)?;
        let ft = dirent.file_type().map_err(read_err)?;
        names.push((dirent.file_name(), ft));
    }
    names.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, ft) in names {
        let rel = dir.join(name);
        if ft.is_dir() {
            walk(root, &rel, out)?;
        } else if ft.is_file() {
            out.push(rel);
        }
    }
    Ok(())
}

/// `$ORIGIN` / `${ORIGIN}` expanded to the object's folder; other tokens are not supported
/// and the entry is skipped. The result is a path in the root.
fn expand_origin(dir: &str, origin: &Path) -> Option<PathBuf> {
    if dir.is_empty() {
        return None;
    }
    let origin = format!("/{}", origin.display());
    let expanded = dir
        .replace("${ORIGIN}", &origin)
        .replace("$ORIGIN", &origin);
    if expanded.contains('$') {
        return None;
    }
    Some(PathBuf::from(expanded))
}

/// Resolves `path` in the root and accepts it only if it ends at a regular file.
fn resolve_file(root: &Path, path: &Path) -> Option<PathBuf> {
    let found = resolve_in_root(root, path)?;
    fs::symlink_metadata(root.join(&found))
        .ok()
        .filter(|m| m.is_file())
        .map(|_| found)
}

fn find_library(root: &Path, name: &str, extra: &[PathBuf]) -> Option<PathBuf> {
    if name.contains('/') {
        return resolve_file(root, Path::new(name));
    }
    extra
        .iter()
        .map(PathBuf::as_path)
        .chain(SEARCH_PATHS.iter().map(Path::new))
        .find_map(|dir| resolve_file(root, &dir.join(name)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_expansion() {
        let o = Path::new("opt/app/bin");
        assert_eq!(
            expand_origin("$ORIGIN/../lib", o),
            Some(PathBuf::from("/opt/app/bin/../lib"))
        );
        assert_eq!(
            expand_origin("${ORIGIN}", o),
            Some(PathBuf::from("/opt/app/bin"))
        );
        assert_eq!(expand_origin("/usr/$LIB", o), None);
        assert_eq!(expand_origin("", o), None);
    }

    #[test]
    fn missing_list_wording() {
        let list = MissingList(vec![Missing {
            elf: "usr/bin/crun".into(),
            needs: "libyajl.so.2".into(),
        }]);
        assert_eq!(
            list.to_string(),
            "usr/bin/crun needs libyajl.so.2, not found in the root"
        );
    }
}
