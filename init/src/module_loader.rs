//! Loading kernel modules by name, as `modprobe` would, for both stages: stage 1 loads
//! [`STAGE1_MODULES`](berth_layout::module_index::STAGE1_MODULES) from the initramfs,
//! stage 2 loads `overlay` and the `modules-load.d` names from the root. The index the
//! builder ships (`modules.dep`, `modules.builtin`) and the one resolver both sides share
//! ([`berth_layout::module_index`]) give the files and their order; `finit_module` loads
//! them.

use std::io;
use std::path::{Path, PathBuf};

use berth_layout::module_index::{ModuleIndex, ModuleIndexError};
use berth_layout::paths::{MODULES_BUILTIN, MODULES_DEP};

use crate::sys::Syscalls;

/// Where the running kernel's release is.
const OSRELEASE: &str = "/proc/sys/kernel/osrelease";

#[derive(Debug, thiserror::Error)]
pub enum ModuleLoadError {
    #[error("cannot read {path} (does the image have the modules of this kernel?)")]
    Index {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("kernel {release}")]
    Resolve {
        release: String,
        #[source]
        source: ModuleIndexError,
    },
    #[error("cannot load module {path}")]
    Load {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// What happened to one requested module or dependency, for the console.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Loaded {
    BuiltIn,
    Loaded,
    AlreadyLoaded,
}

impl Loaded {
    pub fn as_str(self) -> &'static str {
        match self {
            Loaded::BuiltIn => "built in",
            Loaded::Loaded => "loaded",
            Loaded::AlreadyLoaded => "already loaded",
        }
    }
}

/// The running kernel's module index.
pub struct ModuleLoader {
    base: PathBuf,
    release: String,
    index: ModuleIndex,
}

impl ModuleLoader {
    /// Reads the index of the running kernel's release under `modules_dir`
    /// (`/lib/modules` in the initramfs, `/usr/lib/modules` in the root). A missing
    /// `modules.builtin` means nothing is built in.
    pub fn open(sys: &dyn Syscalls, modules_dir: &Path) -> Result<ModuleLoader, ModuleLoadError> {
        let read = |path: &Path| {
            sys.read_to_string(path)
                .map_err(|source| ModuleLoadError::Index {
                    path: path.to_owned(),
                    source,
                })
        };
        let release = read(Path::new(OSRELEASE))?.trim().to_owned();
        let base = modules_dir.join(&release);
        let dep = read(&base.join(MODULES_DEP))?;
        let builtin_path = base.join(MODULES_BUILTIN);
        let builtin = match sys.read_to_string(&builtin_path) {
            Ok(text) => Some(text),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(source) => {
                return Err(ModuleLoadError::Index {
                    path: builtin_path,
                    source,
                })
            }
        };
        let index = ModuleIndex::parse(&dep, builtin.as_deref()).map_err(|source| {
            ModuleLoadError::Resolve {
                release: release.clone(),
                source,
            }
        })?;
        Ok(ModuleLoader {
            base,
            release,
            index,
        })
    }

    /// Loads `wanted` and what they depend on, telling `report` what became of each
    /// module; returns how many files were inserted (built-in and already loaded ones are
    /// not counted).
    pub fn load(
        &self,
        sys: &dyn Syscalls,
        wanted: &[&str],
        report: &mut dyn FnMut(&str, Loaded),
    ) -> Result<usize, ModuleLoadError> {
        let present = |name: &str| sys.exists(&Path::new("/sys/module").join(name));
        let plan =
            self.index
                .resolve(wanted, &present)
                .map_err(|source| ModuleLoadError::Resolve {
                    release: self.release.clone(),
                    source,
                })?;
        for name in &plan.builtin {
            report(name, Loaded::BuiltIn);
        }
        let mut loaded = 0;
        for module in &plan.load {
            let state = if present(&module.name) {
                Loaded::AlreadyLoaded
            } else {
                let path = self.base.join(&module.path);
                match sys.load_module(&path) {
                    Ok(()) => {
                        loaded += 1;
                        Loaded::Loaded
                    }
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Loaded::AlreadyLoaded,
                    Err(source) => return Err(ModuleLoadError::Load { path, source }),
                }
            };
            report(&module.name, state);
        }
        Ok(loaded)
    }
}
