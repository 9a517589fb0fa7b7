//! The debuginfo step: the image's programs' debug files (their symbols, split off by the
//! compile step) packed as `<disk>-debuginfo.tar.zst` beside the disk, laid out as
//! `usr/lib/debug/.build-id/xx/rest.debug` so that extracting it into a sysroot (or
//! serving it to a debuginfod client) lets gdb and eu-stack find each crash's build-id.
//! The root ships the stripped programs.
//!
//! Inputs: each debug file's path and sha256, and SOURCE_DATE_EPOCH (the entries' mtime).

use std::fs::{self, File};
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::compile::{debug_root, Built};
use crate::step::{Code, Key, Step};
use crate::ui::Ui;

/// zstd level: 19 took 6.8 s for 9 files here (2 cores), level 9 a fraction of that for
/// an archive a few percent larger; it is remade whenever a program changes.
const LEVEL: i32 = 9;

/// The debuginfo step.
pub struct Debuginfo<'a> {
    pub binaries: &'a [Built],
    /// cargo's target folder for the image's binaries (the debug files are under it).
    pub target_dir: &'a Path,
    pub epoch: u64,
    /// The archive, beside the disk.
    pub archive: PathBuf,
}

impl Step for Debuginfo<'_> {
    const NAME: &'static str = "debuginfo";
    const CODE: Code = Code {
        sources: &["xtask/src/build/debuginfo.rs"],
        exclude: &[],
        crates: &["tar", "zstd"],
    };
    type Meta = ();

    fn inputs(&self, mut key: Key) -> Result<Key> {
        for bin in self.binaries {
            let path = debug_root(self.target_dir).join(&bin.debug_rel);
            key = key.add(&bin.debug_rel.to_string_lossy(), super::file_sha256(&path)?);
        }
        Ok(key
            .add("epoch", self.epoch.to_string())
            .add("archive", self.archive.to_string_lossy().as_bytes()))
    }

    fn outputs(&self) -> Vec<PathBuf> {
        vec![self.archive.clone()]
    }

    fn run(&self, _dir: &Path, ui: &Ui) -> Result<()> {
        let step = ui.step(Self::NAME);
        let mut entries: Vec<&Path> = self
            .binaries
            .iter()
            .map(|b| b.debug_rel.as_path())
            .collect();
        entries.sort();
        entries.dedup();
        let partial = self.archive.with_extension("zst.partial");
        let file = File::create(&partial)
            .with_context(|| format!("cannot create {}", partial.display()))?;
        let zstd = zstd::Encoder::new(BufWriter::new(file), LEVEL)?;
        let mut tar = tar::Builder::new(zstd);
        for rel in &entries {
            let path = debug_root(self.target_dir).join(rel);
            let bytes =
                fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
            let mut header = tar::Header::new_gnu();
            header.set_path(rel)?;
            header.set_size(bytes.len() as u64);
            header.set_mode(0o644);
            header.set_mtime(self.epoch);
            header.set_uid(0);
            header.set_gid(0);
            header.set_entry_type(tar::EntryType::Regular);
            header.set_cksum();
            tar.append(&header, bytes.as_slice())?;
        }
        let zstd = tar.into_inner()?;
        let mut writer = zstd.finish()?;
        std::io::Write::flush(&mut writer)?;
        let file = writer.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        fs::rename(&partial, &self.archive)
            .with_context(|| format!("cannot rename {} into place", partial.display()))?;
        step.finish(&format!(
            "{} ({} debug files)",
            self.archive.display(),
            entries.len()
        ));
        Ok(())
    }
}
