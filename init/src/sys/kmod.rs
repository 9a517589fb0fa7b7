//! Module files into the kernel: one at a time, or a chain of them on a thread of its own.
//!
//! Under emulation a module's insertion (its expansion, signature check, relocation and
//! init) takes tens of milliseconds, and stage 1's module sets are chains that do not need
//! each other: the disk drivers, whose loads wait on the devices' probes, and the
//! device-mapper modules. Loaded side by side they overlap, and stage 1's modules take
//! about 50 ms less under TCG (0.26 s to 0.21 s, medians of A/B boots). Stage 2's
//! modules-load stays one at a time: there PID 1's own steps already keep the second CPU
//! busy (`stage2::confd`). Concurrent loads are the
//! kernel's to order: a module that is still coming makes a second `finit_module` of it
//! wait until it is live before saying `EEXIST`, so a chain never runs ahead of a shared
//! dependency that another chain is inserting.

use std::fs::File;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;

use nix::kmod::{finit_module, init_module, ModuleInitFlags};

/// `MODULE_INIT_COMPRESSED_FILE` (Linux 5.17): the kernel decompresses the module.
const MODULE_INIT_COMPRESSED_FILE: u32 = 4;

/// Inserts one module file: `.ko.zst` expanded here (Debian's kernel has no
/// `CONFIG_MODULE_DECOMPRESS`), `.ko.xz`/`.ko.gz` left to the kernel, `.ko` as it is.
pub(super) fn load_file(path: &Path) -> io::Result<()> {
    let name = path.as_os_str().as_bytes();
    if name.ends_with(b".zst") {
        let file = File::open(path)?;
        let mut compressed = Vec::new();
        io::Read::read_to_end(
            &mut io::Read::take(file, crate::module_loader::MAX_MODULE_BYTES),
            &mut compressed,
        )?;
        let module = crate::module_loader::decompress(&compressed)?;
        return Ok(init_module(&module, c"")?);
    }
    let file = File::open(path)?;
    let compressed = [".xz", ".gz"].iter().any(|s| name.ends_with(s.as_bytes()));
    let flags = if compressed {
        ModuleInitFlags::from_bits_retain(MODULE_INIT_COMPRESSED_FILE)
    } else {
        ModuleInitFlags::empty()
    };
    Ok(finit_module(&file, c"", flags)?)
}

/// Loads `files` in order, stopping at the first failure other than `EEXIST`.
pub fn load_chain(files: &[PathBuf], load: &dyn Fn(&Path) -> io::Result<()>) -> ChainResults {
    let mut results = Vec::with_capacity(files.len());
    for file in files {
        let result = load(file);
        let stop = matches!(&result, Err(e) if e.kind() != io::ErrorKind::AlreadyExists);
        results.push(result);
        if stop {
            break;
        }
    }
    results
}

/// What became of each file of a chain, in its order; shorter than the chain when a
/// failure stopped it (the last result is that failure).
pub type ChainResults = Vec<io::Result<()>>;

/// A chain of module loads under way ([`super::Syscalls::start_module_chain`]).
pub struct ModuleChain(Pending);

enum Pending {
    Thread(JoinHandle<ChainResults>),
    Done(ChainResults),
}

impl ModuleChain {
    /// A chain whose loads already happened.
    pub fn done(results: ChainResults) -> ModuleChain {
        ModuleChain(Pending::Done(results))
    }

    /// Loads `files` on a new thread; on this one when no thread can be started.
    pub(super) fn spawn(files: Vec<PathBuf>) -> ModuleChain {
        let chain = files.clone();
        match std::thread::Builder::new()
            .name("modules".into())
            .spawn(move || load_chain(&chain, &load_file))
        {
            Ok(handle) => ModuleChain(Pending::Thread(handle)),
            Err(_) => ModuleChain::done(load_chain(&files, &load_file)),
        }
    }

    /// Waits for the chain's loads to end.
    pub fn wait(self) -> ChainResults {
        match self.0 {
            Pending::Done(results) => results,
            Pending::Thread(handle) => handle.join().unwrap_or_else(|_| {
                vec![Err(io::Error::other(
                    "the thread loading the modules panicked",
                ))]
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    #[test]
    fn a_chain_stops_at_its_first_failure_but_not_at_an_already_loaded_module() {
        let tried = RefCell::new(Vec::new());
        let files: Vec<PathBuf> = ["a.ko", "b.ko", "c.ko", "d.ko"].map(PathBuf::from).into();
        let results = load_chain(&files, &|path| {
            tried.borrow_mut().push(path.to_path_buf());
            match path.to_str() {
                Some("a.ko") => Err(io::Error::from_raw_os_error(nix::libc::EEXIST)),
                Some("c.ko") => Err(io::Error::from_raw_os_error(nix::libc::ENOEXEC)),
                _ => Ok(()),
            }
        });
        assert_eq!(tried.into_inner(), files[..3]);
        assert_eq!(results.len(), 3);
        assert_eq!(
            results[0].as_ref().unwrap_err().kind(),
            io::ErrorKind::AlreadyExists
        );
        assert!(results[1].is_ok());
        assert_eq!(
            results[2].as_ref().unwrap_err().raw_os_error(),
            Some(nix::libc::ENOEXEC)
        );
    }

    #[test]
    fn a_spawned_chain_reports_each_file_it_tried() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.ko");
        let results = ModuleChain::spawn(vec![missing.clone(), dir.path().join("next.ko")]).wait();
        assert_eq!(results.len(), 1, "the chain stops at the missing file");
        assert_eq!(
            results[0].as_ref().unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
    }
}
