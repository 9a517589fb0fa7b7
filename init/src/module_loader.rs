//! Loading kernel modules by name, as `modprobe` would, for both stages: stage 1 loads
//! [`STAGE1_MODULES`](berth_layout::module_index::STAGE1_MODULES) from the initramfs,
//! stage 2 loads `overlay` and the `modules-load.d` names from the root. The index the
//! builder ships (`modules.dep`, `modules.builtin`) and the one resolver both sides share
//! ([`berth_layout::module_index`]) give the files and their order; `finit_module` loads
//! them, and `init_module` the `.ko.zst` files that [`decompress`] has expanded (the
//! builder compresses the root's modules; not every kernel can decompress them itself).
//! [`ModuleLoader::start_load`] loads a set beside the caller, so that sets which do not
//! need each other overlap ([`crate::sys::kmod`] says why that is safe).

use std::cell::OnceCell;
use std::io;
use std::path::{Path, PathBuf};

use berth_layout::module_alias::ModuleAliases;
use berth_layout::module_index::{normalize, LoadPlan, ModuleIndex, ModuleIndexError};
use berth_layout::paths::{MODULES_ALIAS, MODULES_BUILTIN, MODULES_DEP};

use crate::sys::{ModuleChain, Syscalls};

/// The largest module PID 1 expands (Debian's largest, amdgpu, is 15 MiB): a damaged
/// or hostile file cannot make it allocate without bound.
pub const MAX_MODULE_BYTES: u64 = 64 << 20;

/// Expands one zstd-compressed module file (`.ko.zst`) for `init_module`, with the
/// reference decoder (libzstd): under emulation a module's expansion is on boot's
/// critical path, and libzstd expands the node's modules (1.2 MB of bridge, overlay,
/// br_netfilter, virtio_net) in a fifth of the time of the pure-Rust `ruzstd` PID 1 used
/// before (2.2 vs 10-12 ms on the build host).
pub fn decompress(compressed: &[u8]) -> io::Result<Vec<u8>> {
    use std::io::Read;
    let bad = |what: &str, e: io::Error| {
        io::Error::new(io::ErrorKind::InvalidData, format!("{what}: {e}"))
    };
    if !compressed.starts_with(&ZSTD_MAGIC) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "not zstd: no zstd frame magic",
        ));
    }
    let beyond = || {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("expands beyond {MAX_MODULE_BYTES} bytes"),
        )
    };
    // The builder's frames say how large the module is: expanded in one call straight
    // into a buffer of that size, with no window buffer beside it.
    if let Ok(Some(size)) = zstd::zstd_safe::get_frame_content_size(compressed) {
        if size > MAX_MODULE_BYTES {
            return Err(beyond());
        }
        let capacity = usize::try_from(size).map_err(|_| beyond())?;
        return zstd::bulk::decompress(compressed, capacity).map_err(|e| bad("bad zstd data", e));
    }
    let decoder =
        zstd::stream::read::Decoder::with_buffer(compressed).map_err(|e| bad("not zstd", e))?;
    let mut module = Vec::new();
    decoder
        .take(MAX_MODULE_BYTES + 1)
        .read_to_end(&mut module)
        .map_err(|e| bad("bad zstd data", e))?;
    if module.len() as u64 > MAX_MODULE_BYTES {
        return Err(beyond());
    }
    Ok(module)
}

/// The first bytes of a zstd frame (RFC 8878, 3.1.1).
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

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
    /// `modules.alias`, read and parsed on first use, once per loader: coldplug asks for
    /// every device's modalias, and parsing the file for each cost PID 1 a third of a
    /// second of early boot under TCG. `None`: the file is missing.
    aliases: OnceCell<Option<ModuleAliases>>,
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
            aliases: OnceCell::new(),
        })
    }

    /// `modules.alias` of the running kernel, `None` when the folder has none.
    pub fn aliases(&self, sys: &dyn Syscalls) -> Result<Option<&ModuleAliases>, ModuleLoadError> {
        if let Some(aliases) = self.aliases.get() {
            return Ok(aliases.as_ref());
        }
        let path = self.base.join(MODULES_ALIAS);
        let parsed = match sys.read_to_string(&path) {
            Ok(text) => Some(
                ModuleAliases::parse(&text).map_err(|e| ModuleLoadError::Index {
                    path: path.clone(),
                    source: io::Error::new(io::ErrorKind::InvalidData, e),
                })?,
            ),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(source) => return Err(ModuleLoadError::Index { path, source }),
        };
        Ok(self.aliases.get_or_init(|| parsed).as_ref())
    }

    /// The modules `name` stands for: itself when it is a module or built in, else the
    /// modules whose `modules.alias` patterns match it (none when the file is missing).
    pub fn names_for(
        &self,
        sys: &dyn Syscalls,
        name: &str,
    ) -> Result<Vec<String>, ModuleLoadError> {
        if self.index.get(name).is_some() || self.index.is_builtin(name) {
            return Ok(vec![normalize(name)]);
        }
        Ok(self
            .aliases(sys)?
            .map(|aliases| {
                aliases
                    .lookup(name)
                    .into_iter()
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default())
    }

    /// The folder of the running kernel's modules.
    pub fn base(&self) -> &Path {
        &self.base
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
        let plan = self.plan(sys, wanted)?;
        for name in &plan.builtin {
            report(name, Loaded::BuiltIn);
        }
        let mut loaded = 0;
        for module in &plan.load {
            let state = if is_present(sys, &module.name) {
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

    /// [`ModuleLoader::load`] beside the caller: the files of `wanted` that are not yet
    /// loaded go to [`Syscalls::start_module_chain`], and [`PendingLoad::finish`] says
    /// what became of them. An unknown module or a broken index fails here, before any
    /// load.
    pub fn start_load(
        &self,
        sys: &dyn Syscalls,
        wanted: &[&str],
    ) -> Result<PendingLoad, ModuleLoadError> {
        let plan = self.plan(sys, wanted)?;
        let modules: Vec<(String, Option<PathBuf>)> = plan
            .load
            .iter()
            .map(|module| {
                let absent = !is_present(sys, &module.name);
                (
                    module.name.clone(),
                    absent.then(|| self.base.join(&module.path)),
                )
            })
            .collect();
        let files = modules
            .iter()
            .filter_map(|(_, path)| path.clone())
            .collect();
        Ok(PendingLoad {
            builtin: plan.builtin,
            modules,
            chain: sys.start_module_chain(files),
        })
    }

    fn plan(&self, sys: &dyn Syscalls, wanted: &[&str]) -> Result<LoadPlan, ModuleLoadError> {
        self.index
            .resolve(wanted, &|name: &str| is_present(sys, name))
            .map_err(|source| ModuleLoadError::Resolve {
                release: self.release.clone(),
                source,
            })
    }
}

/// Whether the kernel has module `name` (loaded, or built in with parameters).
fn is_present(sys: &dyn Syscalls, name: &str) -> bool {
    sys.exists(&Path::new("/sys/module").join(name))
}

/// A [`ModuleLoader::start_load`] under way.
pub struct PendingLoad {
    builtin: Vec<String>,
    /// In load order; the file when it was absent at the start (and so is being loaded).
    modules: Vec<(String, Option<PathBuf>)>,
    chain: ModuleChain,
}

impl PendingLoad {
    /// Waits for the loads, then tells `report` what became of each module, in the order
    /// [`ModuleLoader::load`] would have; returns how many files were inserted, or the
    /// first failure (the modules after it were not tried).
    pub fn finish(self, report: &mut dyn FnMut(&str, Loaded)) -> Result<usize, ModuleLoadError> {
        let mut results = self.chain.wait().into_iter();
        for name in &self.builtin {
            report(name, Loaded::BuiltIn);
        }
        let mut loaded = 0;
        for (name, path) in self.modules {
            let state = match path {
                None => Loaded::AlreadyLoaded,
                Some(path) => match results.next() {
                    Some(Ok(())) => {
                        loaded += 1;
                        Loaded::Loaded
                    }
                    Some(Err(e)) if e.kind() == io::ErrorKind::AlreadyExists => {
                        Loaded::AlreadyLoaded
                    }
                    Some(Err(source)) => return Err(ModuleLoadError::Load { path, source }),
                    // The chain ended early only at a failure, which came first.
                    None => return Ok(loaded),
                },
            };
            report(&name, state);
        }
        Ok(loaded)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A zstd frame holding `data`, as the builder makes them (with the content size).
    fn zstd(data: &[u8]) -> Vec<u8> {
        zstd::bulk::compress(data, 3).unwrap()
    }

    #[test]
    fn a_compressed_module_expands_to_its_bytes() {
        let module: Vec<u8> = (0..200_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        assert_eq!(decompress(&zstd(&module)).unwrap(), module);
    }

    #[test]
    fn a_frame_without_its_size_expands_too() {
        let module = vec![42u8; 300_000];
        let mut encoder = zstd::stream::write::Encoder::new(Vec::new(), 3).unwrap();
        std::io::Write::write_all(&mut encoder, &module).unwrap();
        let frame = encoder.finish().unwrap();
        assert_eq!(
            zstd::zstd_safe::get_frame_content_size(&frame).unwrap(),
            None
        );
        assert_eq!(decompress(&frame).unwrap(), module);
    }

    #[test]
    fn damaged_or_oversized_files_are_refused() {
        let err = decompress(b"\x7fELF not zstd").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert!(err.to_string().contains("not zstd"), "{err}");
        let mut cut = zstd(&[7u8; 100_000]);
        cut.truncate(cut.len() / 2);
        assert_eq!(
            decompress(&cut).unwrap_err().kind(),
            io::ErrorKind::InvalidData
        );
        // A tiny file that expands past the bound (a zip bomb) stops at the bound.
        let bomb = zstd(&vec![0u8; (MAX_MODULE_BYTES + 1) as usize]);
        assert!(bomb.len() < 1 << 20, "{}", bomb.len());
        let err = decompress(&bomb).unwrap_err();
        assert!(err.to_string().contains("beyond"), "{err}");
    }
}
