//! Loading kernel modules by name in the running root, as `modprobe` would: the
//! dependency index the image ships (`/usr/lib/modules/<release>/modules.dep`, generated
//! at build time) gives the files and their order; `finit_module` loads them. Used for
//! the `/etc` overlay (overlayfs is a module) and for `modules-load.d`.

use std::io;
use std::path::{Path, PathBuf};

use crate::modules::{parse_builtin, ModulesDep, ModulesError};
use crate::sys::Syscalls;

#[derive(Debug, thiserror::Error)]
pub enum ModuleLoadError {
    #[error("cannot read {path}")]
    Index {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("in the module index of {release}")]
    Resolve {
        release: String,
        #[source]
        source: ModulesError,
    },
    #[error("cannot load {path}")]
    Load {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// The running kernel's module index.
pub struct ModuleLoader {
    base: PathBuf,
    release: String,
    dep: ModulesDep,
    builtin: std::collections::BTreeSet<String>,
}

impl ModuleLoader {
    pub fn new(sys: &dyn Syscalls) -> Result<ModuleLoader, ModuleLoadError> {
        let release_path = Path::new("/proc/sys/kernel/osrelease");
        let release = sys
            .read_to_string(release_path)
            .map_err(|source| ModuleLoadError::Index {
                path: release_path.into(),
                source,
            })?
            .trim()
            .to_owned();
        let base = Path::new("/usr/lib/modules").join(&release);
        let dep_path = base.join("modules.dep");
        let text = sys
            .read_to_string(&dep_path)
            .map_err(|source| ModuleLoadError::Index {
                path: dep_path,
                source,
            })?;
        let dep = ModulesDep::parse(&text).map_err(|source| ModuleLoadError::Resolve {
            release: release.clone(),
            source,
        })?;
        let builtin = sys
            .read_to_string(&base.join("modules.builtin"))
            .map(|text| parse_builtin(&text))
            .unwrap_or_default();
        Ok(ModuleLoader {
            base,
            release,
            dep,
            builtin,
        })
    }

    /// Loads `name` and what it depends on; returns how many files were inserted (0 when
    /// it is built in or already loaded).
    pub fn load(&self, sys: &dyn Syscalls, name: &str) -> Result<usize, ModuleLoadError> {
        let present = |n: &str| sys.exists(&Path::new("/sys/module").join(n));
        let plan = self
            .dep
            .resolve(&[name], &self.builtin, &present)
            .map_err(|source| ModuleLoadError::Resolve {
                release: self.release.clone(),
                source,
            })?;
        let mut loaded = 0;
        for entry in &plan.load {
            if present(&entry.name) {
                continue;
            }
            let path = self.base.join(&entry.path);
            match sys.load_module(&path) {
                Ok(()) => loaded += 1,
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(source) => return Err(ModuleLoadError::Load { path, source }),
            }
        }
        Ok(loaded)
    }
}
