//! The unit-file verbs of `systemctl`: `enable`, `disable`, `mask`, `unmask`, `is-enabled`
//! and `list-unit-files`, as systemd 252's install logic does them (systemctl(1) "Unit
//! File Commands"). Enabling makes the links [`super::install::plan`] names in
//! `/etc/systemd/system` (`/run/systemd/system` with `--runtime`); a mask is a link to
//! `/dev/null` there. On Berth `/etc` is a tmpfs seeded from the image, so both last until
//! the next boot, as on COS.
//!
//! The image builder bakes `image.toml`'s enabled units the same way into the verified
//! `/usr/lib/systemd/system` ([`Installer::bake`]).
//!
//! Everything reads and writes below a root folder (`/` on a node, `--root=DIR` or a test's
//! temporary folder otherwise); the changes are returned so that `systemctl` prints them
//! as systemd does ("Created symlink X → Y.", "Removed \"X\".").

use std::collections::BTreeSet;
use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use thiserror::Error;

use super::install;
use super::load::{LoadError, Loader, SYSTEM_UNIT_DIRS};
use super::model::Unit;
use super::name::UnitName;
use super::specifier::Host;

/// Where `enable` and `mask` write, persistent (until reboot on Berth) and runtime.
pub const CONFIG_DIR: &str = "/etc/systemd/system";
pub const RUNTIME_DIR: &str = "/run/systemd/system";
/// Where the image builder bakes the links of `image.toml`'s `[units] enable`.
pub const VENDOR_DIR: &str = "/usr/lib/systemd/system";

/// One change made to the unit folders; paths as seen below the root.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Change {
    Linked { link: PathBuf, target: PathBuf },
    Removed(PathBuf),
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Change::Linked { link, target } => write!(
                f,
                "Created symlink {} \u{2192} {}.",
                link.display(),
                target.display()
            ),
            Change::Removed(path) => write!(f, "Removed \"{}\".", path.display()),
        }
    }
}

/// `systemctl is-enabled`'s states (systemctl(1) table 1), those Berth can be in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileState {
    Enabled,
    EnabledRuntime,
    Alias,
    Masked,
    MaskedRuntime,
    /// Only `systemctl link`ed into the search path.
    Linked,
    LinkedRuntime,
    Static,
    Indirect,
    Disabled,
}

impl FileState {
    pub fn as_str(self) -> &'static str {
        match self {
            FileState::Enabled => "enabled",
            FileState::EnabledRuntime => "enabled-runtime",
            FileState::Alias => "alias",
            FileState::Masked => "masked",
            FileState::MaskedRuntime => "masked-runtime",
            FileState::Linked => "linked",
            FileState::LinkedRuntime => "linked-runtime",
            FileState::Static => "static",
            FileState::Indirect => "indirect",
            FileState::Disabled => "disabled",
        }
    }

    /// Whether `is-enabled` exits 0 for it.
    pub fn counts_as_enabled(self) -> bool {
        !matches!(
            self,
            FileState::Disabled
                | FileState::Masked
                | FileState::MaskedRuntime
                | FileState::Linked
                | FileState::LinkedRuntime
        )
    }

    /// Whether `list-unit-files` shows a preset for it (not for these, as systemd).
    pub fn has_preset(self) -> bool {
        !matches!(
            self,
            FileState::Static | FileState::Alias | FileState::Masked | FileState::MaskedRuntime
        )
    }
}

#[derive(Debug, Error)]
pub enum InstallError {
    #[error("unit {0} does not exist")]
    NotFound(UnitName),
    #[error("unit {} is masked", .0.display())]
    Masked(PathBuf),
    #[error("file \"{}\" already exists", .0.display())]
    Exists(PathBuf),
    #[error("cannot load {name}: {source}")]
    Load { name: UnitName, source: LoadError },
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("\"{}\" is not a valid unit name", .0.display())]
    BadName(PathBuf),
    #[error("unit {} does not exist", .0.display())]
    NoFile(PathBuf),
    #[error(
        "file \"{}\" already exists and is a symlink to \"{}\"",
        link.display(),
        target.display()
    )]
    LinkedElsewhere { link: PathBuf, target: PathBuf },
}

/// What `enable` did: the links made, and the units that have no `[Install]` rules (for
/// systemctl's "no installation config" explanation).
#[derive(Debug, Default)]
pub struct Enabled {
    pub changes: Vec<Change>,
    pub without_install: Vec<UnitName>,
}

/// What `disable` did: the links removed, and the masked units it left alone (said as
/// "Unit X is masked, ignoring.").
#[derive(Debug, Default)]
pub struct Disabled {
    pub changes: Vec<Change>,
    pub masked: Vec<PathBuf>,
}

/// The unit folders below one root.
pub struct Installer {
    root: PathBuf,
    loader: Loader,
}

impl Installer {
    pub fn new(root: &Path) -> Installer {
        Installer {
            root: root.to_owned(),
            loader: Loader::system(root),
        }
    }

    /// `/etc/...` below the root.
    fn host(&self, path: &Path) -> PathBuf {
        self.root.join(path.strip_prefix("/").unwrap_or(path))
    }

    fn dir(runtime: bool) -> &'static Path {
        Path::new(if runtime { RUNTIME_DIR } else { CONFIG_DIR })
    }

    /// Loads `name` as a unit that has a file of its own (not an alias, not masked).
    fn unit(&self, name: &UnitName) -> Result<(Unit, PathBuf), InstallError> {
        let files = match self.loader.load(name.as_str()) {
            Ok(f) => f,
            Err(LoadError::NotFound(..)) => return Err(InstallError::NotFound(name.clone())),
            Err(source) => {
                return Err(InstallError::Load {
                    name: name.clone(),
                    source,
                })
            }
        };
        if files.masked {
            return Err(InstallError::Masked(self.entry(name).unwrap_or_default().0));
        }
        let fragment = match &files.fragment {
            Some(f) if files.name == *name => f.clone(),
            _ => return Err(InstallError::NotFound(name.clone())),
        };
        Ok((Unit::from_files(files, &Host::default()), fragment))
    }

    /// `systemctl enable NAME...`: the links of each unit's `[Install]`, and of its `Also=`.
    pub fn enable(&self, names: &[UnitName], runtime: bool) -> Result<Enabled, InstallError> {
        self.enable_in(names, Self::dir(runtime))
    }

    fn enable_in(&self, names: &[UnitName], dir: &Path) -> Result<Enabled, InstallError> {
        let mut done = Enabled::default();
        // A stack, so that `Also=` units come right after theirs, as systemd says them.
        let mut queue: Vec<UnitName> = names.iter().rev().cloned().collect();
        let mut seen = BTreeSet::new();
        while let Some(name) = queue.pop() {
            if !seen.insert(name.clone()) {
                continue;
            }
            let (unit, fragment) = self.unit(&name)?;
            let (links, also) = install::plan(&unit, &fragment, dir);
            if links.is_empty() && also.is_empty() {
                done.without_install.push(name.clone());
            }
            for l in links {
                let host = self.host(&l.link);
                match fs::read_link(&host) {
                    Ok(t) if t == l.target => continue,
                    Ok(_) => return Err(InstallError::Exists(host)),
                    Err(_) if fs::symlink_metadata(&host).is_ok() => {
                        return Err(InstallError::Exists(host))
                    }
                    Err(_) => {}
                }
                let io = |source| InstallError::Io {
                    path: host.clone(),
                    source,
                };
                if let Some(parent) = host.parent() {
                    fs::create_dir_all(parent).map_err(io)?;
                }
                std::os::unix::fs::symlink(&l.target, &host).map_err(io)?;
                done.changes.push(Change::Linked {
                    link: host.clone(),
                    target: l.target,
                });
            }
            queue.extend(also.iter().rev().filter_map(|a| UnitName::parse(a).ok()));
        }
        Ok(done)
    }

    /// The image builder's enable: `image.toml`'s units linked in the verified
    /// `/usr/lib/systemd/system` of the tree being built, by the same plan as `enable`
    /// (a pure function of the unit files and the list).
    pub fn bake(&self, names: &[UnitName]) -> Result<Enabled, InstallError> {
        self.enable_in(names, Path::new(VENDOR_DIR))
    }

    /// `systemctl disable NAME...`: removes every link in the folder that enables the unit
    /// (or its `Also=` units), whatever made it.
    pub fn disable(&self, names: &[UnitName], runtime: bool) -> Result<Disabled, InstallError> {
        let mut done = Disabled::default();
        let mut queue: Vec<UnitName> = names.to_vec();
        let mut seen = BTreeSet::new();
        while let Some(name) = queue.pop() {
            if !seen.insert(name.clone()) {
                continue;
            }
            let (unit, fragment) = match self.unit(&name) {
                Ok(u) => u,
                Err(InstallError::Masked(path)) => {
                    done.masked.push(path);
                    continue;
                }
                Err(e) => return Err(e),
            };
            // Its links, then its own `systemctl link`, as systemd removes them.
            let mut paths = self.links_of(Self::dir(runtime), &name, &fragment);
            paths.extend(self.linked_file(Self::dir(runtime), &name));
            done.changes.extend(self.remove(paths)?);
            queue.extend(unit.install.also.iter().cloned());
        }
        Ok(done)
    }

    /// `systemctl mask NAME...`: a link to `/dev/null` in the folder; any name may be masked.
    pub fn mask(&self, names: &[UnitName], runtime: bool) -> Result<Vec<Change>, InstallError> {
        let mut changes = Vec::new();
        for name in names {
            let host = self.host(&Self::dir(runtime).join(name.as_str()));
            match fs::read_link(&host) {
                Ok(t) if t == Path::new("/dev/null") => continue,
                _ if fs::symlink_metadata(&host).is_ok() => return Err(InstallError::Exists(host)),
                _ => {}
            }
            let io = |source| InstallError::Io {
                path: host.clone(),
                source,
            };
            if let Some(parent) = host.parent() {
                fs::create_dir_all(parent).map_err(io)?;
            }
            std::os::unix::fs::symlink("/dev/null", &host).map_err(io)?;
            changes.push(Change::Linked {
                link: host.clone(),
                target: "/dev/null".into(),
            });
        }
        Ok(changes)
    }

    /// `systemctl unmask NAME...`: removes the `/dev/null` links of the folder.
    pub fn unmask(&self, names: &[UnitName], runtime: bool) -> Result<Vec<Change>, InstallError> {
        let mut changes = Vec::new();
        for name in names {
            let host = self.host(&Self::dir(runtime).join(name.as_str()));
            if fs::read_link(&host).is_ok_and(|t| t == Path::new("/dev/null")) {
                fs::remove_file(&host).map_err(|source| InstallError::Io {
                    path: host.clone(),
                    source,
                })?;
                changes.push(Change::Removed(host));
            }
        }
        Ok(changes)
    }

    /// The first entry named `name` (or its template) in the search path: (host path,
    /// the folder it is in).
    fn entry(&self, name: &UnitName) -> Option<(PathBuf, &'static str)> {
        let mut names = vec![name.clone()];
        names.extend(name.template());
        names.iter().find_map(|n| {
            SYSTEM_UNIT_DIRS.iter().find_map(|dir| {
                let p = self.host(&Path::new(dir).join(n.as_str()));
                fs::symlink_metadata(&p).is_ok().then_some((p, *dir))
            })
        })
    }

    /// `systemctl is-enabled NAME`.
    pub fn state(&self, name: &UnitName) -> Result<FileState, InstallError> {
        let (path, dir) = self
            .entry(name)
            .ok_or_else(|| InstallError::NotFound(name.clone()))?;
        let in_config = dir == CONFIG_DIR || dir == RUNTIME_DIR;
        if let Ok(target) = fs::read_link(&path) {
            if target == Path::new("/dev/null") {
                return Ok(if dir == RUNTIME_DIR {
                    FileState::MaskedRuntime
                } else {
                    FileState::Masked
                });
            }
            let own = path.file_name() == target.file_name();
            if in_config && !own {
                return Ok(FileState::Alias);
            }
        }
        let (unit, fragment) = self.unit(name)?;
        if !self
            .links_of(Path::new(CONFIG_DIR), name, &fragment)
            .is_empty()
        {
            return Ok(FileState::Enabled);
        }
        if !self
            .links_of(Path::new(RUNTIME_DIR), name, &fragment)
            .is_empty()
        {
            return Ok(FileState::EnabledRuntime);
        }
        if let Some(linked) = self.linked_state(name) {
            return Ok(linked);
        }
        let i = &unit.install;
        Ok(
            if !i.wanted_by.is_empty() || !i.required_by.is_empty() || !i.alias.is_empty() {
                FileState::Disabled
            } else if !i.also.is_empty() {
                FileState::Indirect
            } else {
                FileState::Static
            },
        )
    }

    /// Every unit file of the search path with its state, as `list-unit-files` sorts them:
    /// by type suffix, then by name.
    pub fn list(&self) -> Vec<(UnitName, FileState)> {
        let mut rows: Vec<(UnitName, FileState)> = self
            .loader
            .names()
            .into_iter()
            .filter_map(|n| Some((n.clone(), self.state(&n).ok()?)))
            .collect();
        rows.sort_by(|(a, _), (b, _)| {
            (a.unit_type().suffix(), a.as_str()).cmp(&(b.unit_type().suffix(), b.as_str()))
        });
        rows
    }

    /// The links in `dir` (below the root) that enable `name`: in `*.wants/`,
    /// `*.requires/` and `*.upholds/` folders by its name (any instance for a template),
    /// and at the top by another name pointing at its file (an alias).
    fn links_of(&self, dir: &Path, name: &UnitName, fragment: &Path) -> Vec<PathBuf> {
        let top = self.host(dir);
        let Ok(entries) = fs::read_dir(&top) else {
            return Vec::new();
        };
        let fragment_name = fragment.file_name();
        let matches_name = |file: &str| {
            file == name.as_str()
                || (name.is_template()
                    && UnitName::parse(file).is_ok_and(|f| f.template().as_ref() == Some(name)))
        };
        let mut found = Vec::new();
        for entry in entries.flatten() {
            let path = entry.path();
            let file = entry.file_name().to_string_lossy().into_owned();
            let is_dep_dir = [".wants", ".requires", ".upholds"]
                .iter()
                .any(|s| file.ends_with(s));
            if is_dep_dir {
                let Ok(inner) = fs::read_dir(&path) else {
                    continue;
                };
                for link in inner.flatten() {
                    let f = link.file_name().to_string_lossy().into_owned();
                    if matches_name(&f) && fs::read_link(link.path()).is_ok() {
                        found.push(link.path());
                    }
                }
            } else if file != name.as_str() {
                let alias_of_it = fs::read_link(&path)
                    .is_ok_and(|t| t != Path::new("/dev/null") && t.file_name() == fragment_name);
                if alias_of_it && name.instance().is_none_or(str::is_empty) {
                    found.push(path);
                }
            }
        }
        found.sort();
        found
    }
}

#[path = "enable_link.rs"]
mod link;
pub use link::PresetMode;

#[cfg(test)]
#[path = "enable_tests.rs"]
mod tests;
