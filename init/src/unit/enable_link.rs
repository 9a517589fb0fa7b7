//! `systemctl link`, `reenable` and the unit side of `preset` (systemctl(1) "Unit File
//! Commands", systemd.preset(5)), as systemd 252's install logic does them: `link` puts a
//! unit file that lies outside the search path into it with a link of its own name in
//! `/etc/systemd/system`; `disable` (and a preset that says disable) removes that link
//! too. Kept apart from `enable.rs` so each file reads in one sitting; a child module,
//! so it shares the installer's private helpers.

use std::fs;
use std::path::{Path, PathBuf};

use super::{Change, Disabled, Enabled, FileState, InstallError, Installer, CONFIG_DIR};
use crate::unit::load::SYSTEM_UNIT_DIRS;
use crate::unit::name::UnitName;

/// `preset --preset-mode=`: which way presets may change a unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PresetMode {
    #[default]
    Full,
    EnableOnly,
    DisableOnly,
}

impl PresetMode {
    pub fn parse(s: &str) -> Option<PresetMode> {
        Some(match s {
            "full" => PresetMode::Full,
            "enable-only" => PresetMode::EnableOnly,
            "disable-only" => PresetMode::DisableOnly,
            _ => return None,
        })
    }
}

impl Installer {
    /// `systemctl link PATH...`: `PATH` (absolute, below the root) linked by its file name
    /// into `/etc/systemd/system` (`/run/...` with `--runtime`).
    pub fn link(&self, paths: &[PathBuf], runtime: bool) -> Result<Vec<Change>, InstallError> {
        let mut changes = Vec::new();
        for path in paths {
            let file = path
                .file_name()
                .and_then(|f| f.to_str())
                .and_then(|f| UnitName::parse(f).ok())
                .ok_or_else(|| InstallError::BadName(path.clone()))?;
            let source = self.host(path);
            if !source.is_file() {
                return Err(InstallError::NoFile(path.clone()));
            }
            let link = self.host(&Self::dir(runtime).join(file.as_str()));
            match fs::read_link(&link) {
                Ok(t) if t == *path => continue,
                Ok(t) => return Err(InstallError::LinkedElsewhere { link, target: t }),
                Err(_) if fs::symlink_metadata(&link).is_ok() => {
                    return Err(InstallError::Exists(link))
                }
                Err(_) => {}
            }
            let io = |source| InstallError::Io {
                path: link.clone(),
                source,
            };
            if let Some(parent) = link.parent() {
                fs::create_dir_all(parent).map_err(io)?;
            }
            std::os::unix::fs::symlink(path, &link).map_err(io)?;
            changes.push(Change::Linked {
                link,
                target: path.clone(),
            });
        }
        Ok(changes)
    }

    /// The `systemctl link` of `name` in `dir`: a link of its own name to a file of the
    /// same name outside the search path (host path).
    pub(super) fn linked_file(&self, dir: &Path, name: &UnitName) -> Option<PathBuf> {
        let host = self.host(&dir.join(name.as_str()));
        let target = fs::read_link(&host).ok()?;
        let outside = !SYSTEM_UNIT_DIRS
            .iter()
            .any(|d| target.parent() == Some(Path::new(d)));
        (target.file_name() == Some(name.as_str().as_ref()) && outside).then_some(host)
    }

    /// `linked` or `linked-runtime` when `name` has only its `link`.
    pub(super) fn linked_state(&self, name: &UnitName) -> Option<FileState> {
        if self.linked_file(Path::new(CONFIG_DIR), name).is_some() {
            return Some(FileState::Linked);
        }
        self.linked_file(Path::new(super::RUNTIME_DIR), name)
            .map(|_| FileState::LinkedRuntime)
    }

    /// `systemctl reenable NAME...`: `disable`, then `enable`, their changes in that order;
    /// a `link`ed unit is linked again in between (disable removes the link, enable needs
    /// it to find the file).
    pub fn reenable(
        &self,
        names: &[UnitName],
        runtime: bool,
    ) -> Result<(Disabled, Enabled), InstallError> {
        let dir = Self::dir(runtime);
        let linked: Vec<PathBuf> = names
            .iter()
            .filter_map(|n| fs::read_link(self.linked_file(dir, n)?).ok())
            .collect();
        let disabled = self.disable(names, runtime)?;
        let relinked = self.link(&linked, runtime)?;
        let mut enabled = self.enable(names, runtime)?;
        enabled.changes.splice(0..0, relinked);
        Ok((disabled, enabled))
    }

    /// One unit's preset: `enable` as `systemctl enable` does (its `Also=` included), or
    /// disable it alone (its links and its `link`, not its `Also=` units), as systemd 252
    /// applies a preset. Static, masked and alias units are left as they are.
    pub fn preset(
        &self,
        name: &UnitName,
        enable: bool,
        mode: PresetMode,
        runtime: bool,
    ) -> Result<Vec<Change>, InstallError> {
        let state = self.state(name)?;
        if !state.has_preset() {
            return Ok(Vec::new());
        }
        match (enable, mode) {
            (true, PresetMode::Full | PresetMode::EnableOnly) => {
                Ok(self.enable(std::slice::from_ref(name), runtime)?.changes)
            }
            (false, PresetMode::Full | PresetMode::DisableOnly) => {
                let (_, fragment) = self.unit(name)?;
                let dir = Self::dir(runtime);
                let mut paths = self.links_of(dir, name, &fragment);
                paths.extend(self.linked_file(dir, name));
                self.remove(paths)
            }
            _ => Ok(Vec::new()),
        }
    }

    pub(super) fn remove(&self, paths: Vec<PathBuf>) -> Result<Vec<Change>, InstallError> {
        let mut changes = Vec::new();
        for path in paths {
            fs::remove_file(&path).map_err(|source| InstallError::Io {
                path: path.clone(),
                source,
            })?;
            changes.push(Change::Removed(path));
        }
        Ok(changes)
    }
}
