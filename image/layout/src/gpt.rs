//! GPT partition tables, through the `gpt` crate: writing a [`Plan`] (protective MBR,
//! primary and backup headers, 128-entry arrays), reading any GPT disk (stage 1 finding the
//! root, `inspect`), and growing the last partition (stage 2 growing STATE). Here rather
//! than in `berth-image` because both the builder and PID 1 use it.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use gpt::disk::LogicalBlockSize;
use gpt::mbr::ProtectiveMBR;
use gpt::partition::Partition;
use gpt::partition_types::{OperatingSystem, Type};
use gpt::GptConfig;
use uuid::Uuid;

use crate::partition::{Plan, ALIGN, SECTOR};

/// Errors reading or writing a partition table.
#[derive(Debug, thiserror::Error)]
pub enum GptError {
    #[error("{path}: not a GPT disk (no valid GPT header at LBA 1 or at the last LBA: {reason})")]
    NotGpt { path: PathBuf, reason: String },
    #[error("{path}: cannot read the partition table: {reason}")]
    Read { path: PathBuf, reason: String },
    #[error("{path}: cannot write the partition table: {reason}")]
    Write { path: PathBuf, reason: String },
    #[error("{path}: is {actual} bytes, the plan needs exactly {expected}")]
    WrongSize {
        path: PathBuf,
        expected: u64,
        actual: u64,
    },
}

/// One partition as found on a disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GptPartition {
    pub number: u32,
    pub label: String,
    pub type_guid: Uuid,
    pub uuid: Uuid,
    pub first_lba: u64,
    pub last_lba: u64,
    pub attributes: u64,
}

impl GptPartition {
    pub fn offset(&self, sector: u64) -> u64 {
        self.first_lba * sector
    }
    pub fn size(&self, sector: u64) -> u64 {
        (self.last_lba + 1 - self.first_lba) * sector
    }
}

/// A partition table as found on a disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GptTable {
    pub disk_guid: Uuid,
    pub sector_size: u64,
    pub partitions: Vec<GptPartition>,
    /// Problems found while reading that did not stop it (a bad backup header, say).
    pub warnings: Vec<String>,
}

impl GptTable {
    pub fn by_uuid(&self, uuid: Uuid) -> Option<&GptPartition> {
        self.partitions.iter().find(|p| p.uuid == uuid)
    }
    pub fn by_label(&self, label: &str) -> Option<&GptPartition> {
        self.partitions.iter().find(|p| p.label == label)
    }
}

/// Writes the protective MBR and both GPT headers and entry arrays of `plan` into `file`,
/// which must already be `plan.disk_size` bytes long.
pub fn write(file: &mut File, path: &Path, plan: &Plan) -> Result<(), GptError> {
    let err = |reason: String| GptError::Write {
        path: path.to_path_buf(),
        reason,
    };
    let actual = file.metadata().map_err(|e| err(e.to_string()))?.len();
    if actual != plan.disk_size {
        return Err(GptError::WrongSize {
            path: path.to_path_buf(),
            expected: plan.disk_size,
            actual,
        });
    }
    let sectors = plan.disk_size / SECTOR;
    let mbr_size = u32::try_from(sectors - 1).unwrap_or(u32::MAX);
    ProtectiveMBR::with_lb_size(mbr_size)
        .overwrite_lba0(file)
        .map_err(|e| err(format!("protective MBR: {e}")))?;

    let mut disk = GptConfig::new()
        .writable(true)
        .logical_block_size(LogicalBlockSize::Lb512)
        .create_from_device(&mut *file, Some(plan.disk_guid))
        .map_err(|e| err(e.to_string()))?;
    let mut entries = BTreeMap::new();
    for p in &plan.partitions {
        entries.insert(
            p.number,
            Partition {
                part_type_guid: Type {
                    guid: p.type_guid,
                    os: OperatingSystem::None,
                },
                part_guid: p.uuid,
                first_lba: p.first_lba(),
                last_lba: p.last_lba(),
                flags: p.attributes,
                name: p.label.to_string(),
            },
        );
    }
    disk.update_partitions(entries)
        .map_err(|e| err(e.to_string()))?;
    disk.write().map_err(|e| err(e.to_string()))?;
    Ok(())
}

/// Reads the partition table of any GPT disk (512-byte sectors first, then 4096).
pub fn read(file: &mut File, path: &Path) -> Result<GptTable, GptError> {
    let mut first_reason = None;
    for (lb, sector) in [
        (LogicalBlockSize::Lb512, 512),
        (LogicalBlockSize::Lb4096, 4096),
    ] {
        let opened = GptConfig::new()
            .writable(false)
            .logical_block_size(lb)
            .open_from_device(&mut *file);
        let disk = match opened {
            Ok(disk) => disk,
            Err(e) => {
                first_reason.get_or_insert_with(|| e.to_string());
                continue;
            }
        };
        let mut warnings = Vec::new();
        if let Err(e) = disk.primary_header() {
            warnings.push(format!(
                "primary GPT header is invalid ({e}); using the backup"
            ));
        }
        if let Err(e) = disk.backup_header() {
            warnings.push(format!("backup GPT header is invalid ({e})"));
        }
        let partitions = disk
            .partitions()
            .iter()
            .filter(|(_, p)| p.is_used())
            .map(|(number, p)| GptPartition {
                number: *number,
                label: p.name.clone(),
                type_guid: p.part_type_guid.guid,
                uuid: p.part_guid,
                first_lba: p.first_lba,
                last_lba: p.last_lba,
                attributes: p.flags,
            })
            .collect();
        return Ok(GptTable {
            disk_guid: *disk.guid(),
            sector_size: sector,
            partitions,
            warnings,
        });
    }
    Err(GptError::NotGpt {
        path: path.to_path_buf(),
        reason: first_reason.unwrap_or_default(),
    })
}

/// Grows the last partition (by position on the disk), which must be labelled `label`, to
/// the end of a disk that has become larger, and moves the backup GPT header and entry
/// array to the disk's new end; the protective MBR is rewritten to cover the whole disk.
/// The new end keeps the partition's size a whole number of MiB.
///
/// Returns the partition as it is now when it grew, `None` when there is less than 1 MiB
/// to gain (nothing is written then). Used by PID 1 on first boot and after the disk of a
/// VM or cloud instance is resized.
pub fn grow_last_partition(
    file: &mut File,
    path: &Path,
    label: &str,
) -> Result<Option<GptPartition>, GptError> {
    let err = |reason: String| GptError::Write {
        path: path.to_path_buf(),
        reason,
    };
    let table = read(file, path)?;
    if table.sector_size != SECTOR {
        return Err(err(format!("sector size {} is not 512", table.sector_size)));
    }
    let last = table
        .partitions
        .iter()
        .max_by_key(|p| p.last_lba)
        .filter(|p| p.label == label)
        .ok_or_else(|| err(format!("the last partition is not {label}")))?
        .clone();
    let disk_size =
        std::io::Seek::seek(file, std::io::SeekFrom::End(0)).map_err(|e| err(e.to_string()))?;
    let sectors = disk_size / SECTOR;
    // The backup entry array (32 sectors of 128 entries) and header end the disk.
    let last_usable = sectors.saturating_sub(34);
    let per_mib = ALIGN / SECTOR;
    let whole_mibs = (last_usable + 1).saturating_sub(last.first_lba) / per_mib;
    let new_last = last.first_lba + whole_mibs * per_mib - 1;
    if whole_mibs == 0 || new_last < last.last_lba + per_mib {
        return Ok(None);
    }
    let mbr_size = u32::try_from(sectors - 1).unwrap_or(u32::MAX);
    ProtectiveMBR::with_lb_size(mbr_size)
        .overwrite_lba0(&mut *file)
        .map_err(|e| err(format!("protective MBR: {e}")))?;
    let mut disk = GptConfig::new()
        .writable(true)
        .logical_block_size(LogicalBlockSize::Lb512)
        .open_from_device(&mut *file)
        .map_err(|e| err(e.to_string()))?;
    let mut entries = disk.partitions().clone();
    let entry = entries
        .get_mut(&last.number)
        .ok_or_else(|| err(format!("partition {} vanished", last.number)))?;
    entry.last_lba = new_last;
    disk.update_partitions(entries)
        .map_err(|e| err(e.to_string()))?;
    disk.write().map_err(|e| err(e.to_string()))?;
    file.sync_all().map_err(|e| err(e.to_string()))?;
    Ok(Some(GptPartition {
        last_lba: new_last,
        ..last
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::partition::{Role, Sizes, MIB};
    use std::process::Command;

    fn small_plan() -> Plan {
        let sizes = Sizes {
            esp: 34 * MIB,
            root: 16 * MIB,
            verity: MIB,
            state: 16 * MIB,
        };
        let mut hash = [0u8; 32];
        for (i, b) in hash.iter_mut().enumerate() {
            *b = (i * 7) as u8;
        }
        Plan::new(&sizes, "berth", &hash)
    }

    fn rw(path: &Path) -> File {
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
            .unwrap()
    }

    fn write_plan(dir: &Path) -> (PathBuf, Plan) {
        let plan = small_plan();
        let path = dir.join("disk.raw");
        let mut file = rw(&path);
        file.set_len(plan.disk_size).unwrap();
        write(&mut file, &path, &plan).unwrap();
        (path, plan)
    }

    fn tool(name: &str, args: &[&str], package: &str) -> std::process::Output {
        Command::new(name)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("{name}: {e} (install the Debian package {package})"))
    }

    #[test]
    fn sgdisk_verifies_clean() {
        let dir = tempfile::tempdir().unwrap();
        let (path, _) = write_plan(dir.path());
        let out = tool("sgdisk", &["-v", path.to_str().unwrap()], "gdisk");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{text}");
        assert!(text.contains("No problems found"), "{text}");
    }

    #[test]
    fn sfdisk_json_shows_the_plan() {
        let dir = tempfile::tempdir().unwrap();
        let (path, plan) = write_plan(dir.path());
        let out = tool("sfdisk", &["--json", path.to_str().unwrap()], "fdisk");
        assert!(out.status.success());
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let table = &json["partitiontable"];
        assert_eq!(table["label"], "gpt");
        assert_eq!(table["unit"], "sectors");
        assert_eq!(table["firstlba"], 34);
        assert_eq!(
            table["id"].as_str().unwrap().to_lowercase(),
            plan.disk_guid.to_string()
        );
        let parts = table["partitions"].as_array().unwrap();
        assert_eq!(parts.len(), 6);
        for (got, want) in parts.iter().zip(&plan.partitions) {
            assert_eq!(got["start"], want.first_lba());
            assert_eq!(got["size"], want.size / SECTOR);
            assert_eq!(got["name"], want.label);
            assert_eq!(
                got["type"].as_str().unwrap().to_lowercase(),
                want.type_guid.to_string()
            );
            assert_eq!(
                got["uuid"].as_str().unwrap().to_lowercase(),
                want.uuid.to_string()
            );
        }
        assert_eq!(parts[1]["attrs"], "GUID:60");
    }

    #[test]
    fn read_round_trips_and_rejects_non_gpt() {
        let dir = tempfile::tempdir().unwrap();
        let (path, plan) = write_plan(dir.path());
        let table = read(&mut File::open(&path).unwrap(), &path).unwrap();
        assert!(table.warnings.is_empty(), "{:?}", table.warnings);
        assert_eq!(table.disk_guid, plan.disk_guid);
        let root = table.by_label("ROOT-A").unwrap();
        assert_eq!(root.uuid, plan.get(Role::RootA).uuid);
        assert_eq!(root.offset(512), plan.get(Role::RootA).offset);

        let junk = dir.path().join("junk");
        std::fs::write(&junk, vec![0x5a; 1 << 20]).unwrap();
        let err = read(&mut File::open(&junk).unwrap(), &junk)
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a GPT disk"), "{err}");
        assert!(!err.contains('\n'), "{err}");
    }

    #[test]
    fn damaged_primary_falls_back_to_backup() {
        let dir = tempfile::tempdir().unwrap();
        let (path, plan) = write_plan(dir.path());
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[512 + 60] ^= 0xff; // inside the disk GUID: the header CRC no longer matches
        std::fs::write(&path, &bytes).unwrap();
        let table = read(&mut File::open(&path).unwrap(), &path).unwrap();
        assert_eq!(table.partitions.len(), plan.partitions.len());
        assert!(!table.warnings.is_empty());
    }

    #[test]
    fn wrong_size_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("short.raw");
        let mut file = rw(&path);
        file.set_len(MIB).unwrap();
        let err = write(&mut file, &path, &small_plan()).unwrap_err();
        assert!(matches!(err, GptError::WrongSize { .. }));
    }

    #[test]
    fn last_partition_grows_to_a_larger_disk() {
        let dir = tempfile::tempdir().unwrap();
        let (path, plan) = write_plan(dir.path());
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .unwrap();
        assert_eq!(
            grow_last_partition(&mut file, &path, "STATE").unwrap(),
            None
        );
        file.set_len(plan.disk_size + 8 * MIB + 4096).unwrap();
        let grown = grow_last_partition(&mut file, &path, "STATE")
            .unwrap()
            .unwrap();
        let state = plan.get(Role::State);
        assert_eq!(grown.size(512), state.size + 8 * MIB);
        assert!(grown.last_lba < (plan.disk_size + 8 * MIB + 4096) / 512 - 33);
        drop(file);
        let out = tool("sgdisk", &["-v", path.to_str().unwrap()], "gdisk");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{text}");
        assert!(text.contains("No problems found"), "{text}");
        let table = read(&mut File::open(&path).unwrap(), &path).unwrap();
        assert!(table.warnings.is_empty(), "{:?}", table.warnings);
        assert_eq!(table.by_label("STATE").unwrap(), &grown);
        let mut file = File::open(&path).unwrap();
        let err = grow_last_partition(&mut file, &path, "ROOT-A").unwrap_err();
        assert!(err.to_string().contains("not ROOT-A"), "{err}");
    }
}
