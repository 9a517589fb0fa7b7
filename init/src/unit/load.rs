//! Finding a unit's files as systemd 252 does (systemd.unit(5) "Unit File Load Path"):
//! the fragment from the first folder of the search path that has the name (`/etc` before
//! `/run` before `/usr/lib`), masks (a link to `/dev/null`), aliases (a link to another
//! unit's file), templates for instances, drop-ins `NAME.d/*.conf` from every folder and
//! every level (`service.d`, `foo-.service.d`, `foo@.service.d`, `foo@bar.service.d`),
//! and the `.wants/` and `.requires/` folders.
//!
//! The loader reads below a root folder, so the builder can load the image's tree and the
//! tests a temporary folder, with the same code PID 1 runs on `/`.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use thiserror::Error;

use super::name::{NameError, UnitName};
use super::syntax::{self, Diagnostic, Document};

/// The system manager's unit folders, highest precedence first.
pub const SYSTEM_UNIT_DIRS: [&str; 3] = [
    "/etc/systemd/system",
    "/run/systemd/system",
    "/usr/lib/systemd/system",
];

/// Largest unit file or drop-in read (systemd refuses files over 4 MiB as well).
pub const MAX_UNIT_FILE: u64 = 4 * 1024 * 1024;

/// A unit that could not be loaded at all.
#[derive(Debug, Error)]
pub enum LoadError {
    #[error(transparent)]
    Name(#[from] NameError),
    #[error("unit {0} not found in {1}")]
    NotFound(String, String),
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("{path}: larger than {MAX_UNIT_FILE} bytes")]
    TooLarge { path: PathBuf },
    #[error("{path}: alias target {target} is not a unit name of the same type")]
    BadAlias { path: PathBuf, target: String },
    #[error("{0}: too many levels of aliases")]
    AliasLoop(String),
}

/// Everything read for one unit, before its keys are interpreted.
#[derive(Debug, Clone)]
pub struct UnitFiles {
    /// The name the unit is known by (an alias resolves to its target's name; an instance
    /// keeps its instance name).
    pub name: UnitName,
    /// The unit file, `None` when masked.
    pub fragment: Option<PathBuf>,
    /// Drop-ins in the order they apply.
    pub dropins: Vec<PathBuf>,
    pub masked: bool,
    /// Fragment and drop-ins, merged in order.
    pub document: Document,
    /// Lines ignored while parsing, with file and line.
    pub diagnostics: Vec<Diagnostic>,
    /// Units named in `NAME.wants/` and `NAME.requires/` folders.
    pub wants: Vec<UnitName>,
    pub requires: Vec<UnitName>,
}

/// The unit folders below one root.
#[derive(Debug, Clone)]
pub struct Loader {
    root: PathBuf,
    dirs: Vec<PathBuf>,
}

impl Loader {
    /// The system search path below `root` (`/` on a running machine).
    pub fn system(root: &Path) -> Loader {
        Loader::with_dirs(root, SYSTEM_UNIT_DIRS.iter().map(PathBuf::from).collect())
    }

    /// A custom search path (absolute folders, highest precedence first) below `root`.
    pub fn with_dirs(root: &Path, dirs: Vec<PathBuf>) -> Loader {
        Loader {
            root: root.to_owned(),
            dirs,
        }
    }

    fn host_path(&self, dir: &Path) -> PathBuf {
        self.root.join(dir.strip_prefix("/").unwrap_or(dir))
    }

    /// The path as the booted machine sees it (for messages and `systemctl status`).
    fn machine_path(&self, path: &Path) -> PathBuf {
        match path.strip_prefix(&self.root) {
            Ok(rel) => Path::new("/").join(rel),
            Err(_) => path.to_owned(),
        }
    }

    /// Every unit name that has a file, link or `.d` folder in the search path.
    pub fn names(&self) -> Vec<UnitName> {
        let mut names = BTreeMap::new();
        for dir in &self.dirs {
            let Ok(entries) = fs::read_dir(self.host_path(dir)) else {
                continue;
            };
            for entry in entries.flatten() {
                let file = entry.file_name();
                let Some(file) = file.to_str() else { continue };
                if let Ok(name) = UnitName::parse(file) {
                    names.insert(name.as_str().to_owned(), name);
                }
            }
        }
        names.into_values().collect()
    }

    /// The first entry named `name` in the search path: (host path, machine path).
    fn find(&self, name: &str) -> Option<(PathBuf, PathBuf)> {
        self.dirs.iter().find_map(|dir| {
            let path = self.host_path(dir).join(name);
            fs::symlink_metadata(&path)
                .is_ok()
                .then(|| (path, dir.join(name)))
        })
    }

    /// Loads `name` with its drop-ins and dependency folders.
    pub fn load(&self, name: &str) -> Result<UnitFiles, LoadError> {
        let requested = UnitName::parse(name)?;
        let (name, fragment, masked) = self.resolve(&requested)?;
        let mut diagnostics = Vec::new();
        let mut document = Document::default();
        let mut dropins = Vec::new();
        if !masked {
            if let Some(path) = &fragment {
                let (doc, diags) = self.parse_file(path)?;
                document = doc;
                diagnostics.extend(diags);
            }
            let mut names = vec![name.clone()];
            if requested != name {
                names.push(requested.clone());
            }
            for path in self.dropin_paths(&names) {
                let (doc, diags) = self.parse_file(&path)?;
                document.extend(doc);
                diagnostics.extend(diags);
                dropins.push(self.machine_path(&path));
            }
        }
        let mut wants = Vec::new();
        let mut requires = Vec::new();
        self.dependency_dir(&name, "wants", &mut wants, &mut diagnostics);
        self.dependency_dir(&name, "requires", &mut requires, &mut diagnostics);
        Ok(UnitFiles {
            name,
            fragment: fragment.map(|p| self.machine_path(&p)),
            dropins,
            masked,
            document,
            diagnostics,
            wants,
            requires,
        })
    }

    /// Follows aliases and templates: the unit's own name, its file, and whether masked.
    fn resolve(
        &self,
        requested: &UnitName,
    ) -> Result<(UnitName, Option<PathBuf>, bool), LoadError> {
        let mut name = requested.clone();
        for _ in 0..16 {
            let found = self
                .find(name.as_str())
                .or_else(|| name.template().and_then(|t| self.find(t.as_str())));
            let Some((path, _)) = found else {
                return Err(LoadError::NotFound(name.to_string(), self.search_path()));
            };
            let Ok(target) = fs::read_link(&path) else {
                return Ok((name, Some(path), false));
            };
            if target == Path::new("/dev/null") {
                return Ok((name, None, true));
            }
            let target_name = target.file_name().and_then(|f| f.to_str()).unwrap_or("");
            let file_name = path.file_name().and_then(|f| f.to_str()).unwrap_or("");
            if target_name == file_name {
                // A link to a file of the same name elsewhere (`systemctl link`): not an alias.
                let real = if target.is_absolute() {
                    self.host_path(&target)
                } else {
                    path.parent()
                        .map(|p| p.join(&target))
                        .unwrap_or(target.clone())
                };
                return Ok((name, Some(real), false));
            }
            let mut alias = UnitName::parse(target_name).map_err(|_| LoadError::BadAlias {
                path: self.machine_path(&path),
                target: target_name.into(),
            })?;
            if alias.unit_type() != name.unit_type() {
                return Err(LoadError::BadAlias {
                    path: self.machine_path(&path),
                    target: target_name.into(),
                });
            }
            // An instance aliased through its template keeps its instance.
            if alias.is_template() {
                if let Some(i) = name.instance().filter(|i| !i.is_empty()) {
                    alias = alias.with_instance(i)?;
                }
            }
            name = alias;
        }
        Err(LoadError::AliasLoop(requested.to_string()))
    }

    /// Drop-in files for all `names` of one unit, in the order they apply: by file name;
    /// for one file name, the folder earliest in the search path wins, and within one
    /// folder the most specific level (`foo.service.d` over `service.d`).
    fn dropin_paths(&self, names: &[UnitName]) -> Vec<PathBuf> {
        let mut chosen: BTreeMap<String, (usize, usize, PathBuf)> = BTreeMap::new();
        for name in names {
            let levels = name.dropin_dirs();
            for (dir_rank, dir) in self.dirs.iter().enumerate() {
                for (level, sub) in levels.iter().enumerate() {
                    let folder = self.host_path(dir).join(sub);
                    let Ok(entries) = fs::read_dir(&folder) else {
                        continue;
                    };
                    for entry in entries.flatten() {
                        let file = entry.file_name();
                        let Some(file) = file.to_str() else { continue };
                        if !file.ends_with(".conf") {
                            continue;
                        }
                        let rank = (dir_rank, usize::MAX - level);
                        let better = chosen.get(file).is_none_or(|(d, l, _)| rank < (*d, *l));
                        if better {
                            chosen.insert(file.to_owned(), (rank.0, rank.1, folder.join(file)));
                        }
                    }
                }
            }
        }
        chosen
            .into_values()
            .map(|(_, _, path)| path)
            .filter(|path| !is_masked_file(path))
            .collect()
    }

    /// Units linked in `NAME.wants/` (or `.requires/`), also of the template for an instance.
    fn dependency_dir(
        &self,
        name: &UnitName,
        kind: &str,
        out: &mut Vec<UnitName>,
        diagnostics: &mut Vec<Diagnostic>,
    ) {
        let mut owners = vec![name.clone()];
        owners.extend(name.template());
        for owner in owners {
            for dir in &self.dirs {
                let folder = self.host_path(dir).join(format!("{owner}.{kind}"));
                let Ok(entries) = fs::read_dir(&folder) else {
                    continue;
                };
                let mut files: Vec<String> = entries
                    .flatten()
                    .filter_map(|e| e.file_name().into_string().ok())
                    .collect();
                files.sort();
                for file in files {
                    match UnitName::parse(&file) {
                        Ok(mut dep) => {
                            // `foo@.service` in an instance's folder means the same instance.
                            if dep.is_template() {
                                if let Some(i) = name.instance().filter(|i| !i.is_empty()) {
                                    let Ok(inst) = dep.with_instance(i) else {
                                        continue;
                                    };
                                    dep = inst;
                                }
                            }
                            if !out.contains(&dep) {
                                out.push(dep);
                            }
                        }
                        Err(e) => diagnostics.push(Diagnostic {
                            at: syntax::Location {
                                file: self.machine_path(&folder.join(&file)).into(),
                                line: 0,
                            },
                            message: format!("ignored: {e}"),
                        }),
                    }
                }
            }
        }
    }

    fn parse_file(&self, path: &Path) -> Result<(Document, Vec<Diagnostic>), LoadError> {
        let shown = self.machine_path(path);
        let meta = fs::metadata(path).map_err(|source| LoadError::Read {
            path: shown.clone(),
            source,
        })?;
        if meta.len() > MAX_UNIT_FILE {
            return Err(LoadError::TooLarge { path: shown });
        }
        let bytes = fs::read(path).map_err(|source| LoadError::Read {
            path: shown.clone(),
            source,
        })?;
        let text = String::from_utf8_lossy(&bytes);
        Ok(syntax::parse(&shown, &text))
    }

    fn search_path(&self) -> String {
        self.dirs
            .iter()
            .map(|d| d.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// A drop-in that is a link to `/dev/null` or empty masks the one of the same name.
fn is_masked_file(path: &Path) -> bool {
    if fs::read_link(path).is_ok_and(|t| t == Path::new("/dev/null")) {
        return true;
    }
    fs::metadata(path).is_ok_and(|m| m.len() == 0)
}

#[cfg(test)]
#[path = "load_tests.rs"]
mod tests;
