//! The FAT32 EFI system partition: systemd-boot, its loader entries, kernels and initrds.
//!
//! The UEFI spec asks for FAT32 on the ESP, so the volume is always FAT32 (512-byte clusters
//! up to 260 MiB, 4 KiB above; 64 MiB gives ~130k clusters, well above FAT32's minimum of
//! 65525). The image must be reproducible, so nothing comes from the build host: the region
//! is zeroed first, files are written in path order, and every timestamp (created, modified,
//! accessed of files and folders, and the volume label entry) is `SOURCE_DATE_EPOCH`.
//! FAT stores local civil time without a zone; we store UTC. FAT dates cover 1980-01-01
//! through 2107-12-31: earlier epochs are clamped to 1980-01-01 00:00:00, later ones to
//! 2107-12-31 23:59:59, and modification times have a 2-second resolution.

use std::borrow::Cow;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::{Mutex, PoisonError};

use fatfs::{FatType, FileSystem, FormatVolumeOptions, FsOptions, TimeProvider};

/// One file to put on the ESP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EspFile {
    /// Path inside the ESP, `/`-separated, e.g. `EFI/BOOT/BOOTX64.EFI`.
    pub path: String,
    pub source: EspSource,
}

/// Where an [`EspFile`]'s content comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EspSource {
    Bytes(Vec<u8>),
    /// A file on the build host, read when the ESP is written.
    Host(PathBuf),
}

/// Parameters of the volume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EspParams {
    /// Size of the volume, a multiple of 512 (e.g. 64 MiB).
    pub size_bytes: u64,
    pub volume_id: u32,
    /// Volume label: at most 11 characters, upper-case ASCII; empty means `NO NAME`.
    pub label: String,
    /// `SOURCE_DATE_EPOCH`: every timestamp in the volume.
    pub epoch: i64,
}

/// What [`read_esp`] finds: every path (folders too) with its content (`None` for folders).
pub type EspListing = Vec<(String, Option<Vec<u8>>)>;

/// Errors while writing or reading an ESP; paths are inside the ESP.
#[derive(Debug, thiserror::Error)]
pub enum FatError {
    #[error("ESP: {0}")]
    InvalidParams(String),
    #[error("ESP: invalid path {path:?}: {why}")]
    InvalidPath { path: String, why: &'static str },
    #[error("ESP: {path} is given twice (FAT names ignore case)")]
    Duplicate { path: String },
    #[error("ESP: {path} would be both a file and a folder")]
    FileAndFolder { path: String },
    #[error("ESP: {path} is {size} bytes; a FAT file holds at most 4 GiB - 1")]
    FileTooLarge { path: String, size: u64 },
    #[error("ESP: {path} ({size} bytes) does not fit: {free} bytes free on the volume")]
    NoSpace { path: String, size: u64, free: u64 },
    #[error("ESP: cannot read {host} for {path}: {source}")]
    ReadSource {
        path: String,
        host: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("ESP: cannot {op} {path}: {source}")]
    Io {
        op: &'static str,
        path: String,
        #[source]
        source: io::Error,
    },
}

fn io_err(op: &'static str, path: &str) -> impl FnOnce(io::Error) -> FatError {
    let path = path.to_string();
    move |source| FatError::Io { op, path, source }
}

/// Longest FAT long file name, in UTF-16 units (fatfs also limits it to 255 UTF-8 bytes).
const MAX_NAME: usize = 255;
const MIB: u64 = 1024 * 1024;

/// Formats a FAT32 volume of exactly `params.size_bytes` at `offset` of `file` (which must
/// already be large enough; it is not truncated) and writes `files`, creating parent
/// folders. The same inputs give the same bytes.
pub fn write_esp(
    file: &File,
    offset: u64,
    params: &EspParams,
    files: &[EspFile],
) -> Result<(), FatError> {
    let size = params.size_bytes;
    if size == 0 || !size.is_multiple_of(512) || size / 512 > u64::from(u32::MAX) {
        return Err(FatError::InvalidParams(format!(
            "volume size {size} is not a positive multiple of 512 below 2 TiB"
        )));
    }
    let label = label_bytes(&params.label)?;
    let files = check_paths(files)?;
    let file_len = file
        .metadata()
        .map_err(io_err("stat the image for", "/"))?
        .len();
    if offset.checked_add(size).is_none_or(|end| end > file_len) {
        return Err(FatError::InvalidParams(format!(
            "the volume ({size} bytes at offset {offset}) ends past the image ({file_len} bytes)"
        )));
    }
    let window = || Window::new(file, offset, size, true);
    clear(file, offset, size)?;

    let cluster = if size <= 260 * MIB { 512 } else { 4096 };
    let mut options = FormatVolumeOptions::new()
        .fat_type(FatType::Fat32)
        .bytes_per_cluster(cluster)
        .total_sectors((size / 512) as u32)
        .volume_id(params.volume_id);
    if let Some(label) = label {
        options = options.volume_label(label);
    }
    fatfs::format_volume(window(), options).map_err(|e| {
        FatError::InvalidParams(format!("cannot format {size} bytes as FAT32: {e}"))
    })?;

    let when = fat_time(params.epoch);
    let fs_options = FsOptions::new().time_provider(time_provider(when));
    let fs = FileSystem::new(window(), fs_options).map_err(io_err("mount", "/"))?;
    // fatfs 0.3.6 only uses the requested type to pick a cluster size; check what it made.
    if fs.fat_type() != FatType::Fat32 {
        return Err(FatError::InvalidParams(format!(
            "{size} bytes are too few for FAT32 (at least 65525 clusters of 512 bytes, ~33 MiB)"
        )));
    }
    for esp_file in files {
        add_file(&fs, esp_file)?;
    }
    fs.unmount().map_err(io_err("unmount", "/"))?;
    let disk = window();
    let raw = Raw::open(&disk).map_err(io_err("read back", "/"))?;
    raw.fix_dot_entries(raw.root, 0)
        .map_err(io_err("fix the `.` and `..` entries in", "/"))?;
    if let Some(label) = label {
        raw.stamp_label(&label, when)
            .map_err(io_err("stamp", "the volume label"))?;
    }
    Ok(())
}

/// Lists every folder (with `None`) and file (with its content) of the FAT volume at
/// `offset..offset + len` of `file`, depth-first in directory order.
pub fn read_esp(file: &File, offset: u64, len: u64) -> Result<EspListing, FatError> {
    let fs = FileSystem::new(Window::new(file, offset, len, false), FsOptions::new())
        .map_err(io_err("mount", "/"))?;
    let mut out = Vec::new();
    walk(&fs.root_dir(), "", 0, &mut out)?;
    Ok(out)
}

type Dir<'a, 'f> = fatfs::Dir<'a, Window<'f>>;

fn walk(dir: &Dir, prefix: &str, depth: usize, out: &mut EspListing) -> Result<(), FatError> {
    if depth > 64 {
        let loops = io::Error::other("folders nested more than 64 deep (a loop?)");
        return Err(io_err("list", prefix)(loops));
    }
    for entry in dir.iter() {
        let entry = entry.map_err(io_err("list", if prefix.is_empty() { "/" } else { prefix }))?;
        let name = entry.file_name();
        if name == "." || name == ".." {
            continue;
        }
        let path = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}/{name}")
        };
        if entry.is_dir() {
            out.push((path.clone(), None));
            walk(&entry.to_dir(), &path, depth + 1, out)?;
        } else {
            let mut content = Vec::new();
            entry
                .to_file()
                .read_to_end(&mut content)
                .map_err(io_err("read", &path))?;
            out.push((path, Some(content)));
        }
    }
    Ok(())
}

/// Validates every path and returns the files sorted by path.
fn check_paths(files: &[EspFile]) -> Result<Vec<&EspFile>, FatError> {
    use std::collections::BTreeSet;
    let (mut file_keys, mut folder_keys) = (BTreeSet::new(), BTreeSet::new());
    for f in files {
        let path = || f.path.clone();
        let bad = |why| FatError::InvalidPath { path: path(), why };
        let parts: Vec<&str> = f.path.split('/').collect();
        for part in &parts {
            if part.is_empty() || *part == "." || *part == ".." {
                return Err(bad(
                    "empty, `.` or `..` component (paths are relative, `/`-separated)",
                ));
            }
            if part.len() > MAX_NAME || part.encode_utf16().count() > MAX_NAME {
                return Err(bad("a name is longer than the 255 characters FAT allows"));
            }
            if !part.chars().all(valid_name_char) {
                return Err(bad(
                    "a name has a character FAT does not allow (control, \"*/:<>?\\|)",
                ));
            }
        }
        let key = f.path.to_uppercase();
        if !file_keys.insert(key) {
            return Err(FatError::Duplicate { path: path() });
        }
        for n in 1..parts.len() {
            folder_keys.insert(parts[..n].join("/").to_uppercase());
        }
    }
    if let Some(both) = file_keys.intersection(&folder_keys).next() {
        let path = files.iter().find(|f| f.path.to_uppercase() == *both);
        let path = path.map(|f| f.path.clone()).unwrap_or_default();
        return Err(FatError::FileAndFolder { path });
    }
    let mut sorted: Vec<&EspFile> = files.iter().collect();
    sorted.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(sorted)
}

/// Characters fatfs accepts in a long name (the LFN set minus what it does not encode).
fn valid_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric()
        || ('\u{80}'..='\u{FFFF}').contains(&c)
        || "$%'-_@~`!(){}. +,;=[]^#&".contains(c)
}

/// The 11 label bytes (space-padded), or `None` for an empty label.
fn label_bytes(label: &str) -> Result<Option<[u8; 11]>, FatError> {
    if label.is_empty() {
        return Ok(None);
    }
    let ok = label.len() <= 11
        && !label.starts_with(' ')
        && label.bytes().all(|b| {
            b.is_ascii_uppercase() || b.is_ascii_digit() || b" !#$%&'()-@^_`{}~".contains(&b)
        });
    if !ok {
        return Err(FatError::InvalidParams(format!(
            "volume label {label:?} must be at most 11 upper-case ASCII letters, digits or !#$%&'()-@^_`{{}}~"
        )));
    }
    let mut bytes = [b' '; 11];
    bytes[..label.len()].copy_from_slice(label.as_bytes());
    Ok(Some(bytes))
}

/// Writes one file, creating its parent folders.
fn add_file(fs: &FileSystem<Window>, esp_file: &EspFile) -> Result<(), FatError> {
    let path = esp_file.path.as_str();
    let (parents, name) = path.rsplit_once('/').unwrap_or(("", path));
    let mut dir = fs.root_dir();
    let mut done = 0;
    for part in parents.split('/').filter(|p| !p.is_empty()) {
        done += part.len() + 1;
        dir = dir
            .create_dir(part)
            .map_err(io_err("create folder", &path[..done - 1]))?;
    }
    let content = match &esp_file.source {
        EspSource::Bytes(bytes) => Cow::Borrowed(bytes.as_slice()),
        EspSource::Host(host) => Cow::Owned(std::fs::read(host).map_err(|source| {
            let (path, host) = (path.to_string(), host.clone());
            FatError::ReadSource { path, host, source }
        })?),
    };
    let (size, path) = (content.len() as u64, path.to_string());
    if size > u64::from(u32::MAX) {
        return Err(FatError::FileTooLarge { path, size });
    }
    let stats = fs.stats().map_err(io_err("count free space for", &path))?;
    let cluster = u64::from(stats.cluster_size());
    let free = u64::from(stats.free_clusters()) * cluster;
    if size.div_ceil(cluster) * cluster > free {
        return Err(FatError::NoSpace { path, size, free });
    }
    let mut out = dir.create_file(name).map_err(io_err("create", &path))?;
    out.write_all(&content).map_err(io_err("write", &path))?;
    out.flush().map_err(io_err("write", &path))
}

/// Zeroes `offset..offset + len` of `file`, skipping chunks that are already zero so a
/// sparse image stays sparse.
fn clear(file: &File, offset: u64, len: u64) -> Result<(), FatError> {
    let zeros = vec![0u8; MIB as usize];
    let mut buf = vec![0u8; MIB as usize];
    let mut at = 0;
    while at < len {
        let n = (len - at).min(MIB) as usize;
        file.read_exact_at(&mut buf[..n], offset + at)
            .map_err(io_err("clear", "/"))?;
        if buf[..n].iter().any(|&b| b != 0) {
            file.write_all_at(&zeros[..n], offset + at)
                .map_err(io_err("clear", "/"))?;
        }
        at += n as u64;
    }
    Ok(())
}

/// Fix-ups applied to the raw volume after fatfs unmounts it.
struct Raw<'w, 'f> {
    disk: &'w Window<'f>,
    cluster: u64,
    fat_start: u64,
    data_start: u64,
    clusters: u64,
    root: u32,
}

/// A directory entry's name for `.` and `..`, and its attribute bytes.
const DOT: &[u8; 11] = b".          ";
const DOTDOT: &[u8; 11] = b"..         ";
const ATTR_LFN: u8 = 0x0f;
const ATTR_DIR: u8 = 0x10;
const ATTR_VOLUME: u8 = 0x08;

impl<'w, 'f> Raw<'w, 'f> {
    fn open(disk: &'w Window<'f>) -> io::Result<Self> {
        let mut b = [0u8; 512];
        disk.read_exact_at(&mut b, 0)?;
        let u16_at = |i: usize| u64::from(u16::from_le_bytes([b[i], b[i + 1]]));
        let u32_at = |i: usize| u64::from(u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]));
        let sector = u16_at(11);
        let fat_start = u16_at(14) * sector;
        let data_start = fat_start + u64::from(b[16]) * u32_at(36) * sector;
        let cluster = u64::from(b[13]) * sector;
        let sectors = if u16_at(19) != 0 {
            u16_at(19)
        } else {
            u32_at(32)
        };
        let clusters = (sectors * sector).saturating_sub(data_start) / cluster.max(1);
        let root = u32::from_le_bytes([b[44], b[45], b[46], b[47]]);
        Ok(Raw {
            disk,
            cluster,
            fat_start,
            data_start,
            clusters,
            root,
        })
    }

    fn pos(&self, cluster: u32) -> u64 {
        self.data_start + u64::from(cluster.saturating_sub(2)) * self.cluster
    }

    /// The clusters of the chain starting at `first`.
    fn chain(&self, first: u32) -> io::Result<Vec<u32>> {
        let mut chain = vec![first];
        loop {
            let mut next = [0u8; 4];
            let last = chain[chain.len() - 1];
            self.disk
                .read_exact_at(&mut next, self.fat_start + 4 * u64::from(last))?;
            let next = u32::from_le_bytes(next) & 0x0fff_ffff;
            if !(2..0x0fff_fff8).contains(&next) {
                return Ok(chain);
            }
            if chain.len() as u64 > self.clusters {
                return Err(io::Error::other("a cluster chain loops"));
            }
            chain.push(next);
        }
    }

    /// fatfs 0.3.6 writes long-name entries before `.` and `..`, which must be the first two
    /// entries of a folder (fsck.vfat "repairs" them away): move them to slots 0 and 1, mark
    /// the two long-name slots deleted, and point `..` of top-level folders at cluster 0 as
    /// the FAT spec asks. Recurses through every folder below `dir`.
    fn fix_dot_entries(&self, dir: u32, depth: usize) -> io::Result<()> {
        if depth > 64 {
            return Err(io::Error::other("folders nested more than 64 deep"));
        }
        let mut content = Vec::new();
        for c in self.chain(dir)? {
            let start = content.len();
            content.resize(start + self.cluster as usize, 0);
            self.disk
                .read_exact_at(&mut content[start..], self.pos(c))?;
        }
        for e in content.chunks_exact(32) {
            match e[0] {
                0 => break,
                0xe5 | b'.' => continue,
                _ if e[11] == ATTR_LFN || e[11] & (ATTR_DIR | ATTR_VOLUME) != ATTR_DIR => continue,
                _ => {}
            }
            let child = u32::from(u16::from_le_bytes([e[20], e[21]])) << 16
                | u32::from(u16::from_le_bytes([e[26], e[27]]));
            let mut head = [0u8; 128];
            self.disk.read_exact_at(&mut head, self.pos(child))?;
            if head[11] == ATTR_LFN
                && &head[32..43] == DOT
                && head[75] == ATTR_LFN
                && &head[96..107] == DOTDOT
            {
                let mut fixed = [0u8; 128];
                fixed[..32].copy_from_slice(&head[32..64]);
                fixed[32..64].copy_from_slice(&head[96..128]);
                if dir == self.root {
                    fixed[32 + 20..32 + 22].fill(0);
                    fixed[32 + 26..32 + 28].fill(0);
                }
                (fixed[64], fixed[96]) = (0xe5, 0xe5);
                self.disk.write_all_at(&fixed, self.pos(child))?;
            }
            self.fix_dot_entries(child, depth + 1)?;
        }
        Ok(())
    }

    /// Gives the volume label entry (the root folder's first entry, which `format_volume`
    /// writes with zero times) the epoch as created, modified and accessed time.
    fn stamp_label(&self, label: &[u8; 11], when: fatfs::DateTime) -> io::Result<()> {
        let pos = self.pos(self.root);
        let mut entry = [0u8; 32];
        self.disk.read_exact_at(&mut entry, pos)?;
        if entry[..11] != label[..] || entry[11] != ATTR_VOLUME {
            return Err(io::Error::other(
                "the root folder does not start with the label entry",
            ));
        }
        let (date, time, tenths) = dos_fields(when);
        entry[13] = tenths;
        entry[14..16].copy_from_slice(&time.to_le_bytes());
        entry[16..18].copy_from_slice(&date.to_le_bytes());
        entry[18..20].copy_from_slice(&date.to_le_bytes());
        entry[22..24].copy_from_slice(&time.to_le_bytes());
        entry[24..26].copy_from_slice(&date.to_le_bytes());
        self.disk.write_all_at(&entry, pos)
    }
}

/// DOS date, time (2-second units) and creation tenths (the odd second) of `t`.
fn dos_fields(t: fatfs::DateTime) -> (u16, u16, u8) {
    let date = ((t.date.year - 1980) << 9) | (t.date.month << 5) | t.date.day;
    let time = (t.time.hour << 11) | (t.time.min << 5) | (t.time.sec / 2);
    (date, time, ((t.time.sec % 2) * 100) as u8)
}

/// The UTC civil time of a Unix epoch, clamped to FAT's 1980..=2107 range.
fn fat_time(epoch: i64) -> fatfs::DateTime {
    let (days, secs) = (epoch.div_euclid(86_400), epoch.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    let (year, month, day, secs) = if year < 1980 {
        (1980, 1, 1, 0)
    } else if year > 2107 {
        (2107, 12, 31, 86_399)
    } else {
        (year, month, day, secs)
    };
    let [year, month, day] = [year, month, day].map(|n| n as u16);
    let [hour, min, sec] = [secs / 3600, secs / 60 % 60, secs % 60].map(|n| n as u16);
    let date = fatfs::Date { year, month, day };
    let time = fatfs::Time {
        hour,
        min,
        sec,
        millis: 0,
    };
    fatfs::DateTime { date, time }
}

/// Year, month, day of the day `days` after 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097; // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11], March first
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// A clock stopped at the epoch: fatfs stamps every entry it creates or writes with it.
#[derive(Debug)]
struct FixedTime(fatfs::DateTime);

impl TimeProvider for FixedTime {
    fn get_current_date(&self) -> fatfs::Date {
        self.0.date
    }
    fn get_current_date_time(&self) -> fatfs::DateTime {
        self.0
    }
}

/// fatfs wants a `&'static` provider: one is leaked per distinct time, so the leak is
/// bounded by the number of distinct epochs a process writes (usually one).
fn time_provider(when: fatfs::DateTime) -> &'static FixedTime {
    static PROVIDERS: Mutex<Vec<&'static FixedTime>> = Mutex::new(Vec::new());
    let mut providers = PROVIDERS.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(p) = providers.iter().find(|p| p.0 == when) {
        return p;
    }
    let p: &'static FixedTime = Box::leak(Box::new(FixedTime(when)));
    providers.push(p);
    p
}

/// The region `start..start + len` of a file as a seekable stream, with positioned I/O so
/// the file's own cursor is never used.
struct Window<'f> {
    file: &'f File,
    start: u64,
    len: u64,
    pos: u64,
    writable: bool,
}

impl<'f> Window<'f> {
    fn new(file: &'f File, start: u64, len: u64, writable: bool) -> Self {
        let pos = 0;
        Window {
            file,
            start,
            len,
            pos,
            writable,
        }
    }
    fn check(&self, pos: u64, len: usize) -> io::Result<u64> {
        match pos.checked_add(len as u64) {
            Some(end) if end <= self.len => Ok(self.start + pos),
            _ => Err(io::Error::other("access past the end of the ESP")),
        }
    }
    fn read_exact_at(&self, buf: &mut [u8], pos: u64) -> io::Result<()> {
        self.file.read_exact_at(buf, self.check(pos, buf.len())?)
    }
    fn write_all_at(&self, buf: &[u8], pos: u64) -> io::Result<()> {
        if !self.writable {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                "the ESP is opened read-only",
            ));
        }
        self.file.write_all_at(buf, self.check(pos, buf.len())?)
    }
}

impl Read for Window<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = (buf.len() as u64).min(self.len.saturating_sub(self.pos)) as usize;
        let got = self.file.read_at(&mut buf[..n], self.start + self.pos)?;
        self.pos += got as u64;
        Ok(got)
    }
}

impl Write for Window<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_all_at(buf, self.pos)?;
        self.pos += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Seek for Window<'_> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let pos = match to {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        self.pos =
            pos.ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek out of range"))?;
        Ok(self.pos)
    }
}

#[cfg(test)]
mod tests;
