//! Finding the root and verity partitions from the root hash alone.
//!
//! As systemd does, the root partition's GPT UUID is the first half of the root hash and
//! the verity partition's the second half (`berth_layout::partition`, shared with the builder),
//! so no `root=` or label is needed and a disk cannot be mistaken for another release's.
//! Disks appear asynchronously (a driver probes after its module loads), so stage 1 polls:
//! every whole disk in `/sys/block` with a size is opened at `/dev/<name>`, its GPT read
//! with `berth_layout::gpt`, and the kernel's partition devices (`/sys/block/<disk>/<part>`
//! with `partition` and `dev`) matched by partition number.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use berth_layout::cmdline::RootHash;
use berth_layout::gpt::{self, GptPartition, GptTable};
use berth_layout::partition::{self as plan, ROOT_VERITY_X86_64_TYPE, ROOT_X86_64_TYPE};
use berth_layout::Uuid;

use crate::sys::{DevNum, Syscalls};

/// How often the disks are looked at again.
pub const POLL: Duration = Duration::from_millis(100);

/// One partition as the kernel exposes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partition {
    /// Kernel name, e.g. `vda2`.
    pub name: String,
    pub dev: DevNum,
    pub number: u32,
    pub label: String,
    /// Byte offset on the whole disk.
    pub offset: u64,
    /// Bytes.
    pub size: u64,
}

impl Partition {
    pub fn path(&self) -> PathBuf {
        Path::new("/dev").join(&self.name)
    }
}

/// The root and verity partitions named by the root hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundRoot {
    /// Kernel name of the whole disk, e.g. `vda`.
    pub disk: String,
    pub root: Partition,
    pub verity: Partition,
}

impl FoundRoot {
    pub fn disk_path(&self) -> PathBuf {
        Path::new("/dev").join(&self.disk)
    }
}

/// A verity partition of another root hash, for the mismatch report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtherVerity {
    pub disk: String,
    pub partition: GptPartition,
    /// Its root partition (same slot), if the disk has one.
    pub root: Option<GptPartition>,
    pub sector_size: u64,
}

/// Why the root was not found.
#[derive(Debug, thiserror::Error)]
pub enum DiscoverError {
    #[error("cannot list the block devices in {path} (is sysfs mounted?)")]
    ListDisks {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "no disk has partitions {root_uuid} (root) and {verity_uuid} (root verity) \
         after {waited_secs} s; disks: {seen}"
    )]
    NotFound {
        root_uuid: Uuid,
        verity_uuid: Uuid,
        waited_secs: u64,
        seen: String,
        /// Verity partitions found on the way, with other UUIDs: a wrong `roothash=`.
        others: Vec<OtherVerity>,
    },
    #[error("{disk}: partition {number} ({uuid}) has type {actual}, not {expected} ({role})")]
    WrongType {
        disk: String,
        number: u32,
        uuid: Uuid,
        actual: Uuid,
        expected: Uuid,
        role: &'static str,
    },
}

/// What one look at one disk found.
#[derive(Debug, Clone, PartialEq, Eq)]
enum DiskState {
    Empty,
    Unreadable(String),
    NotGpt,
    NoMatch { verity_partitions: usize },
    NoKernelPartitions,
}

impl fmt::Display for DiskState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DiskState::Empty => f.write_str("empty"),
            DiskState::Unreadable(why) => write!(f, "unreadable: {why}"),
            DiskState::NotGpt => f.write_str("no GPT"),
            DiskState::NoMatch { verity_partitions } => write!(
                f,
                "GPT without these UUIDs ({verity_partitions} root verity partitions)"
            ),
            DiskState::NoKernelPartitions => {
                f.write_str("GPT has them, the kernel shows no partition devices yet")
            }
        }
    }
}

/// Looks every [`POLL`] until the partitions named by `root_hash` are there, for at most
/// `timeout`; once a disk with root verity partitions of other UUIDs has been seen (a
/// wrong `roothash=` rather than a slow disk), for at most `grace` more.
pub fn wait_for_root(
    sys: &dyn Syscalls,
    root_hash: &RootHash,
    timeout: Duration,
    grace: Duration,
    verbose: bool,
) -> Result<FoundRoot, DiscoverError> {
    let (root_uuid, verity_uuid) = plan::uuids_from_root_hash(&root_hash.0);
    let start = sys.now();
    let mut deadline = start + timeout;
    let mut logged: BTreeMap<String, DiskState> = BTreeMap::new();
    loop {
        let scan = scan(sys, root_uuid, verity_uuid)?;
        if verbose {
            for (disk, state) in &scan.states {
                if logged.get(disk) != Some(state) {
                    sys.log(&format!("berth: stage1 disk {disk}: {state}"));
                    logged.insert(disk.clone(), state.clone());
                }
            }
        }
        if let Some(found) = scan.found {
            return Ok(found);
        }
        let now = sys.now();
        if !scan.others.is_empty() {
            deadline = deadline.min(now + grace);
        }
        if now >= deadline {
            let seen: Vec<String> = scan
                .states
                .iter()
                .map(|(d, s)| format!("{d} ({s})"))
                .collect();
            return Err(DiscoverError::NotFound {
                root_uuid,
                verity_uuid,
                waited_secs: now.saturating_sub(start).as_secs_f64().round() as u64,
                seen: if seen.is_empty() {
                    "none".into()
                } else {
                    seen.join(", ")
                },
                others: scan.others,
            });
        }
        sys.sleep(POLL);
    }
}

#[derive(Default)]
struct Scan {
    found: Option<FoundRoot>,
    states: Vec<(String, DiskState)>,
    others: Vec<OtherVerity>,
}

fn scan(sys: &dyn Syscalls, root_uuid: Uuid, verity_uuid: Uuid) -> Result<Scan, DiscoverError> {
    let sys_block = Path::new("/sys/block");
    let disks = sys
        .read_dir(sys_block)
        .map_err(|source| DiscoverError::ListDisks {
            path: sys_block.to_path_buf(),
            source,
        })?;
    let mut scan = Scan::default();
    for disk in disks {
        let state = match read_table(sys, &disk) {
            Err(state) => state,
            Ok(table) => match (table.by_uuid(root_uuid), table.by_uuid(verity_uuid)) {
                (Some(root), Some(verity)) => {
                    check_type(&disk, root, ROOT_X86_64_TYPE, "root x86-64")?;
                    check_type(&disk, verity, ROOT_VERITY_X86_64_TYPE, "root x86-64 verity")?;
                    match kernel_partitions(sys, &disk, &table, root, verity) {
                        Some(found) => {
                            scan.found = Some(found);
                            return Ok(scan);
                        }
                        None => DiskState::NoKernelPartitions,
                    }
                }
                _ => {
                    let before = scan.others.len();
                    scan.others.extend(other_verities(&disk, &table));
                    DiskState::NoMatch {
                        verity_partitions: scan.others.len() - before,
                    }
                }
            },
        };
        scan.states.push((disk, state));
    }
    Ok(scan)
}

fn read_table(sys: &dyn Syscalls, disk: &str) -> Result<GptTable, DiskState> {
    let size = Path::new("/sys/block").join(disk).join("size");
    match sys.read_to_string(&size).map(|s| s.trim().parse::<u64>()) {
        Ok(Ok(0)) => return Err(DiskState::Empty),
        Ok(Ok(_)) => {}
        Ok(Err(e)) => return Err(DiskState::Unreadable(format!("{}: {e}", size.display()))),
        Err(e) => return Err(DiskState::Unreadable(format!("{}: {e}", size.display()))),
    }
    let path = Path::new("/dev").join(disk);
    let mut file = sys
        .open(&path)
        .map_err(|e| DiskState::Unreadable(format!("{}: {e}", path.display())))?;
    match gpt::read(&mut file, &path) {
        Ok(table) => Ok(table),
        Err(gpt::GptError::NotGpt { .. }) => Err(DiskState::NotGpt),
        Err(e) => Err(DiskState::Unreadable(e.to_string())),
    }
}

fn check_type(
    disk: &str,
    partition: &GptPartition,
    expected: Uuid,
    role: &'static str,
) -> Result<(), DiscoverError> {
    if partition.type_guid == expected {
        return Ok(());
    }
    Err(DiscoverError::WrongType {
        disk: disk.to_owned(),
        number: partition.number,
        uuid: partition.uuid,
        actual: partition.type_guid,
        expected,
        role,
    })
}

/// The kernel's devices for the two GPT partitions, once it shows both.
fn kernel_partitions(
    sys: &dyn Syscalls,
    disk: &str,
    table: &GptTable,
    root: &GptPartition,
    verity: &GptPartition,
) -> Option<FoundRoot> {
    let dir = Path::new("/sys/block").join(disk);
    let mut by_number = BTreeMap::new();
    for entry in sys.read_dir(&dir).ok()? {
        if !entry.starts_with(disk) {
            continue;
        }
        let number = sys.read_to_string(&dir.join(&entry).join("partition"));
        let dev = sys.read_to_string(&dir.join(&entry).join("dev"));
        if let (Ok(number), Ok(dev)) = (number, dev) {
            if let (Ok(number), Ok(dev)) = (number.trim().parse::<u32>(), dev.parse::<DevNum>()) {
                by_number.insert(number, (entry, dev));
            }
        }
    }
    let partition = |p: &GptPartition| {
        let (name, dev) = by_number.get(&p.number)?;
        Some(Partition {
            name: name.clone(),
            dev: *dev,
            number: p.number,
            label: p.label.clone(),
            offset: p.offset(table.sector_size),
            size: p.size(table.sector_size),
        })
    };
    Some(FoundRoot {
        disk: disk.to_owned(),
        root: partition(root)?,
        verity: partition(verity)?,
    })
}

/// Root verity partitions of `table`, each with the root partition of its slot.
fn other_verities(disk: &str, table: &GptTable) -> Vec<OtherVerity> {
    use berth_layout::partition::Role;
    let slot_root = |label: &str| {
        let root_label = match label {
            l if l == Role::VerityA.label() => Role::RootA.label(),
            l if l == Role::VerityB.label() => Role::RootB.label(),
            _ => return None,
        };
        table.by_label(root_label).cloned()
    };
    table
        .partitions
        .iter()
        .filter(|p| p.type_guid == ROOT_VERITY_X86_64_TYPE)
        .map(|p| OtherVerity {
            disk: disk.to_owned(),
            partition: p.clone(),
            root: slot_root(&p.label),
            sector_size: table.sector_size,
        })
        .collect()
}
