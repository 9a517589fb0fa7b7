//! A journal directory as journald keeps it: `ROOT/<machine-id>/system.journal` is written,
//! rotated to `system@<seqnum-id>-<head-seqnum>-<head-realtime>.journal` when it reaches
//! the file size limit, and old archives are deleted to keep the directory within its
//! budget and the file system above its free-space floor (journald.conf's
//! `SystemMaxUse=`, `SystemKeepFree=`, `SystemMaxFileSize=`).
//!
//! On open, a `system.journal` that was not closed (state ONLINE after a power loss) or
//! cannot be appended to is renamed aside as `system@<realtime>-<random>.journal~`, the
//! name journald gives damaged files, and a new file continues its sequence numbers;
//! `journalctl` and [`crate::Reader`] still read the old one up to its damage.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::JournalError;
use crate::files;
use crate::format::Header;
use crate::id128::Id128;
use crate::reader::Reader;
use crate::writer::{EntryTime, Writer, WriterOptions};

/// journald's caps on its percentage defaults.
const MAX_USE_CAP: u64 = 1 << 30;
const KEEP_FREE_CAP: u64 = 4 << 30;
const MAX_FILE_SIZE_CAP: u64 = 128 << 20;
/// The writer keeps files under 4 GiB; a larger setting is lowered to this.
const MAX_FILE_SIZE_LIMIT: u64 = 2 << 30;
/// journald's smallest journal file (`JOURNAL_FILE_SIZE_MIN`).
const MIN_FILE_SIZE: u64 = 512 << 10;

/// Budget settings; `None` means journald's default for the file system.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DirConfig {
    /// Most bytes all files may take: default the smaller of 10% of the file system and 1 GiB.
    pub max_use: Option<u64>,
    /// Free space to leave on the file system: default the smaller of 15% and 4 GiB.
    pub keep_free: Option<u64>,
    /// Size at which the active file is rotated: default 1/8 of `max_use`, at most 128 MiB.
    pub max_file_size: Option<u64>,
    /// Most archived and damaged files kept (`SystemMaxFiles=`): default 100.
    pub max_files: Option<usize>,
}

/// The budget in bytes, resolved against the file system.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_use: u64,
    pub keep_free: u64,
    pub max_file_size: u64,
    pub max_files: usize,
}

impl DirConfig {
    /// Resolves the defaults for a file system of `fs_bytes`.
    pub fn limits(&self, fs_bytes: u64) -> Limits {
        let max_use = self.max_use.unwrap_or((fs_bytes / 10).min(MAX_USE_CAP));
        let keep_free = self
            .keep_free
            .unwrap_or((fs_bytes / 100 * 15).min(KEEP_FREE_CAP));
        let max_file_size = self
            .max_file_size
            .unwrap_or((max_use / 8).min(MAX_FILE_SIZE_CAP))
            .clamp(MIN_FILE_SIZE, MAX_FILE_SIZE_LIMIT);
        Limits {
            max_use,
            keep_free,
            max_file_size,
            max_files: self.max_files.unwrap_or(100),
        }
    }
}

/// Total and available bytes of the file system holding `path`.
fn fs_space(path: &Path) -> Result<(u64, u64), JournalError> {
    let s = nix::sys::statvfs::statvfs(path).map_err(|source| JournalError::Statvfs {
        path: path.to_path_buf(),
        source,
    })?;
    let frag = s.fragment_size();
    Ok((
        s.blocks().saturating_mul(frag),
        s.blocks_available().saturating_mul(frag),
    ))
}

/// The highest sequence number among the entries of `path` that can be read (0 if none).
fn last_readable_seqnum(path: &Path) -> u64 {
    Reader::open(path)
        .map(|r| {
            r.entry_headers()
                .map_while(Result::ok)
                .map(|e| e.seqnum)
                .max()
                .unwrap_or(0)
        })
        .unwrap_or(0)
}

fn now_usec() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// Gives a file cut short (by a crash before its growth reached the disk, or by a
/// truncation) back the length its header claims, as zeros: `journalctl` refuses a file
/// shorter than its header's arena outright, but reads one that ends in zeros up to them.
fn restore_length(path: &Path) -> Result<(), JournalError> {
    let open_err = |source| JournalError::Open {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(open_err)?;
    let len = file.metadata().map_err(open_err)?.len();
    let mut b = [0u8; crate::format::HEADER_SIZE as usize];
    let io = crate::objects::Io::new(file, path.to_path_buf());
    let n = io.read_prefix(0, &mut b)?;
    if n < 104 || b[..8] != crate::format::SIGNATURE {
        return Ok(());
    }
    let h = Header::parse(&b[..n]);
    let claimed = h.header_size.saturating_add(h.arena_size);
    if claimed > len && claimed <= u64::from(u32::MAX) {
        io.set_len(claimed)?;
    }
    Ok(())
}

/// The journal directory of one machine, with its active file open.
#[derive(Debug)]
pub struct JournalDir {
    root: PathBuf,
    dir: PathBuf,
    machine_id: Id128,
    limits: Limits,
    writer: Option<Writer>,
    set_aside: Vec<PathBuf>,
    /// Header of a file given up after a write error, whose seqnums the next file continues.
    template: Option<Header>,
}

impl JournalDir {
    /// Opens (creating if needed) `root/<machine_id>/system.journal`, setting aside a file
    /// that was not closed cleanly, and applies the budget.
    pub fn open(
        root: &Path,
        machine_id: Id128,
        config: &DirConfig,
    ) -> Result<JournalDir, JournalError> {
        let dir = root.join(machine_id.to_string());
        std::fs::create_dir_all(&dir).map_err(|source| JournalError::CreateDir {
            path: dir.clone(),
            source,
        })?;
        let (fs_bytes, _) = fs_space(&dir)?;
        let mut jd = JournalDir {
            root: root.to_path_buf(),
            dir,
            machine_id,
            limits: config.limits(fs_bytes),
            writer: None,
            set_aside: Vec::new(),
            template: None,
        };
        let active = jd.active_path();
        let writer = if active.exists() {
            match Writer::open_append(&active) {
                Ok(w) => w,
                Err(
                    e @ (JournalError::Open { .. }
                    | JournalError::Read { .. }
                    | JournalError::Write { .. }),
                ) => return Err(e),
                Err(e) => {
                    restore_length(&active)?;
                    let header = Reader::open(&active).ok().map(|r| r.header().clone());
                    match (e, header) {
                        // Sound but not ours to append to (journald's own, or archived):
                        // archived under its proper name, as journald rotates such a file.
                        (JournalError::Incompatible { .. }, Some(h)) => {
                            jd.archive_name(&active, &h)?;
                            jd.create(Some(&h))?
                        }
                        // Damaged or not closed: set aside; the new file continues its
                        // sequence numbers if its header still says them, after the last
                        // entry that can be read (a power loss leaves entries written
                        // after the header's last update, whose numbers must not repeat:
                        // readers take two entries with one number for one).
                        (_, template) => {
                            let aside = jd.dispose(&active)?;
                            let template = template.map(|mut h| {
                                let readable = last_readable_seqnum(&aside);
                                h.tail_entry_seqnum = h.tail_entry_seqnum.max(readable);
                                h
                            });
                            jd.set_aside.push(aside);
                            jd.create(template.as_ref())?
                        }
                    }
                }
            }
        } else {
            jd.create(None)?
        };
        jd.writer = Some(writer);
        jd.enforce_budget()?;
        Ok(jd)
    }

    /// `ROOT/<machine-id>`.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn active_path(&self) -> PathBuf {
        self.dir.join("system.journal")
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Files renamed aside as damaged when this directory was opened.
    pub fn set_aside(&self) -> &[PathBuf] {
        &self.set_aside
    }

    fn create(&self, template: Option<&Header>) -> Result<Writer, JournalError> {
        let mut opts = WriterOptions::new(self.machine_id).sized_for(self.limits.max_file_size);
        if let Some(h) = template.filter(|h| !h.seqnum_id.is_null()) {
            opts.seqnum_id = Some(h.seqnum_id);
            opts.first_seqnum = h.tail_entry_seqnum.saturating_add(1);
        }
        Writer::create(&self.active_path(), &opts)
    }

    /// Renames `path` to journald's archive name, from its header.
    fn archive_name(&self, path: &Path, h: &Header) -> Result<PathBuf, JournalError> {
        let to = self.dir.join(format!(
            "system@{}-{:016x}-{:016x}.journal",
            h.seqnum_id, h.head_entry_seqnum, h.head_entry_realtime
        ));
        std::fs::rename(path, &to).map_err(|source| JournalError::Rename {
            from: path.to_path_buf(),
            to: to.clone(),
            source,
        })?;
        Ok(to)
    }

    /// Renames `path` to journald's name for a damaged file; returns the new name.
    fn dispose(&self, path: &Path) -> Result<PathBuf, JournalError> {
        let random = u64::from_le_bytes(Id128::random()?.0[..8].try_into().unwrap_or([0; 8]));
        let to = self
            .dir
            .join(format!("system@{:016x}-{random:016x}.journal~", now_usec()));
        std::fs::rename(path, &to).map_err(|source| JournalError::Rename {
            from: path.to_path_buf(),
            to: to.clone(),
            source,
        })?;
        Ok(to)
    }

    /// The active file, started anew if the last one was given up.
    fn writer(&mut self) -> Result<&mut Writer, JournalError> {
        if self.writer.is_none() {
            let active = self.active_path();
            // Left by a write or rotation that failed: set aside, readable to its damage.
            if active.exists() {
                let aside = self.dispose(&active)?;
                self.set_aside.push(aside);
            }
            let w = self.create(self.template.as_ref())?;
            self.template = None;
            self.writer = Some(w);
        }
        self.writer
            .as_mut()
            .ok_or_else(|| JournalError::NotAppendable {
                path: self.dir.join("system.journal"),
                reason: "no active file".into(),
            })
    }

    /// Appends an entry, rotating first when the active file has reached its size limit
    /// or its hash tables are three quarters full.
    pub fn append<N: AsRef<str>, V: AsRef<[u8]>>(
        &mut self,
        time: EntryTime,
        fields: &[(N, V)],
    ) -> Result<u64, JournalError> {
        let max = self.limits.max_file_size;
        let w = self.writer()?;
        if w.size() >= max || w.rotate_suggested() {
            self.rotate()?;
        }
        let r = self.writer()?.append(time, fields);
        r.map_err(|e| self.give_up_on_write_error(e))
    }

    /// After a failed write or sync (a full disk, an I/O error) the active file's state is
    /// unknown: it is dropped, old archives are deleted to make room, and the next append
    /// sets the file aside and starts a new one that continues its seqnums.
    fn give_up_on_write_error(&mut self, e: JournalError) -> JournalError {
        if matches!(e, JournalError::Write { .. } | JournalError::Sync { .. }) {
            if let Some(w) = self.writer.take() {
                self.template = Some(w.header().clone());
            }
            // Best effort: the error that matters is `e`.
            let _ = self.enforce_budget();
        }
        e
    }

    /// Makes every appended entry visible to readers (see [`Writer::flush`]).
    pub fn flush(&mut self) -> Result<(), JournalError> {
        let r = self.writer()?.flush();
        r.map_err(|e| self.give_up_on_write_error(e))
    }

    /// Flushes the active file to disk and marks it OFFLINE (see [`Writer::sync`]).
    pub fn sync(&mut self) -> Result<(), JournalError> {
        let r = self.writer()?.sync();
        r.map_err(|e| self.give_up_on_write_error(e))
    }

    /// Archives the active file under journald's archive name and starts a new one that
    /// continues its sequence numbers, then applies the budget. An empty file is kept.
    pub fn rotate(&mut self) -> Result<(), JournalError> {
        let Some(w) = self.writer.take() else {
            return Ok(());
        };
        if w.header().n_entries == 0 {
            self.writer = Some(w);
            return Ok(());
        }
        let before = w.header().clone();
        let h = match w.archive() {
            Ok(h) => h,
            Err(e) => {
                self.template = Some(before);
                return Err(self.give_up_on_write_error(e));
            }
        };
        self.archive_name(&self.active_path(), &h)?;
        self.writer = Some(self.create(Some(&h))?);
        self.enforce_budget()?;
        Ok(())
    }

    /// Deletes the oldest archived and damaged files while the directory exceeds
    /// `max_use` or `max_files`, or the file system has less than `keep_free` available.
    pub fn enforce_budget(&mut self) -> Result<Vec<PathBuf>, JournalError> {
        let (_, avail) = fs_space(&self.dir)?;
        let start = files::disk_usage(&self.root)?;
        let limits = self.limits;
        files::vacuum_until(&self.root, |usage, files| {
            let freed = start.saturating_sub(usage);
            usage <= limits.max_use
                && avail.saturating_add(freed) >= limits.keep_free
                && files <= limits.max_files
        })
    }

    /// Syncs and closes the active file (OFFLINE), so the next open appends to it.
    pub fn close(mut self) -> Result<(), JournalError> {
        match self.writer.take() {
            Some(w) => w.close(),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_journald_conf_with_a_1_gib_cap() {
        let gib = 1u64 << 30;
        let big = DirConfig::default().limits(100 * gib);
        assert_eq!(
            big,
            Limits {
                max_use: gib,
                keep_free: 4 * gib,
                max_file_size: 128 << 20,
                max_files: 100,
            }
        );
        let small = DirConfig::default().limits(1000 << 20);
        assert_eq!(small.max_use, 100 << 20);
        assert_eq!(small.keep_free, 150 << 20);
        assert_eq!(small.max_file_size, (100 << 20) / 8);
        let tiny = DirConfig::default().limits(1 << 20);
        assert_eq!(tiny.max_file_size, MIN_FILE_SIZE);
        let set = DirConfig {
            max_use: Some(5),
            keep_free: Some(6),
            max_file_size: Some(1 << 20),
            max_files: Some(3),
        }
        .limits(gib);
        assert_eq!(
            set,
            Limits {
                max_use: 5,
                keep_free: 6,
                max_file_size: 1 << 20,
                max_files: 3,
            }
        );
    }
}
