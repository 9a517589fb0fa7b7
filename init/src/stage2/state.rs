//! STATE: the one writable partition, mounted at [`STATE_MOUNT`] and bound into `/home`,
//! `/var` and `/var/lib/{berth,kubelet,toolbox}`.
//!
//! Every boot: find the partition labelled `STATE` (on the disk that holds the root, if
//! several disks have one); grow it to the end of the disk when the disk has grown (the
//! image is 256 MiB of STATE; a cloud disk is larger, and a disk resized later grows on
//! the next boot): rewrite the GPT (`berth_layout::gpt::grow_last_partition`, which also
//! moves the backup header), tell the kernel with `BLKPG_RESIZE_PARTITION`, mount, then
//! grow the mounted ext4 with `EXT4_IOC_RESIZE_FS`. A new STATE gets its folders.
//!
//! Repair: mounting replays the ext4 journal; a STATE that still fails to mount is checked
//! with `e2fsck` and, with `berth.state=reformat`, re-made with `mke2fs` (`repair.rs`).
//! When even that fails, as when there is no STATE at all, a tmpfs takes its place and the
//! console says loudly that nothing persists.

use std::error::Error;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::engine::{JobResult, Machine, StateBacking};
use super::mounts::{mount, NOSUID_NODEV_NOEXEC};
use super::repair::{self, Mounted, Next};
use crate::console;
use crate::sys::Syscalls;
use berth_layout::cmdline::StateMode;
use berth_layout::partition::Role;
use berth_layout::paths::STATE_MOUNT;

/// The partition label.
pub const STATE_LABEL: &str = Role::State.label();

/// Folders on STATE, parents first: the bind sources, the `/var/lib/cloud` mount point,
/// and `berth/` for what PID 1 keeps (the machine-id).
pub const STATE_FOLDERS: [&str; 9] = [
    "home",
    "var",
    "var/lib",
    "var/lib/berth",
    "var/lib/kubelet",
    "var/lib/toolbox",
    "var/lib/cloud",
    "var/log",
    "berth",
];

/// The STATE partition as sysfs shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatePartition {
    /// `vda`.
    pub disk: String,
    /// `vda6`.
    pub name: String,
    pub number: u32,
    /// In 512-byte sectors.
    pub start: u64,
    pub size: u64,
}

impl StatePartition {
    pub fn device(&self) -> PathBuf {
        Path::new("/dev").join(&self.name)
    }
}

/// The size of an ext4 from its superblock: (blocks, block size in bytes).
pub fn ext4_size(superblock: &[u8; 1024]) -> Option<(u64, u64)> {
    let u32_at = |at: usize| u32::from_le_bytes([0, 1, 2, 3].map(|i| superblock[at + i]));
    if u16::from_le_bytes([superblock[0x38], superblock[0x39]]) != 0xef53 {
        return None;
    }
    let log = u32_at(0x18);
    let block_size = 1024u64.checked_shl(log).filter(|_| log <= 6)?;
    let mut blocks = u64::from(u32_at(0x04));
    const INCOMPAT_64BIT: u32 = 0x80;
    if u32_at(0x60) & INCOMPAT_64BIT != 0 {
        blocks |= u64::from(u32_at(0x150)) << 32;
    }
    Some((blocks, block_size))
}

fn read_u64(sys: &dyn Syscalls, path: PathBuf) -> Option<u64> {
    sys.read_to_string(&path).ok()?.trim().parse().ok()
}

/// Finds the partition labelled STATE through sysfs.
pub fn find(sys: &dyn Syscalls) -> Option<StatePartition> {
    let block = Path::new("/sys/block");
    let disks = sys.read_dir(block).unwrap_or_default();
    let root_parts: Vec<String> = disks
        .iter()
        .filter(|d| d.starts_with("dm-"))
        .flat_map(|d| {
            sys.read_dir(&block.join(d).join("slaves"))
                .unwrap_or_default()
        })
        .collect();
    let mut found = Vec::new();
    for disk in disks
        .iter()
        .filter(|d| !["dm-", "loop", "ram"].iter().any(|p| d.starts_with(p)))
    {
        let parts = sys.read_dir(&block.join(disk)).unwrap_or_default();
        let holds_root = parts.iter().any(|p| root_parts.contains(p));
        for part in parts.iter().filter(|p| p.starts_with(disk.as_str())) {
            let dir = block.join(disk).join(part);
            let uevent = sys.read_to_string(&dir.join("uevent")).unwrap_or_default();
            if !uevent
                .lines()
                .any(|l| l == format!("PARTNAME={STATE_LABEL}"))
            {
                continue;
            }
            let (Some(number), Some(start), Some(size)) = (
                read_u64(sys, dir.join("partition")),
                read_u64(sys, dir.join("start")),
                read_u64(sys, dir.join("size")),
            ) else {
                continue;
            };
            let partition = StatePartition {
                disk: disk.clone(),
                name: part.clone(),
                number: u32::try_from(number).ok()?,
                start,
                size,
            };
            found.push((holds_root, partition));
        }
    }
    found.sort_by_key(|(holds_root, _)| !holds_root);
    found.into_iter().next().map(|(_, p)| p)
}

/// Grows the partition to the disk's end if the disk is larger; returns the new size in
/// sectors when it grew.
fn grow_partition(
    sys: &dyn Syscalls,
    part: &StatePartition,
) -> Result<Option<u64>, Box<dyn Error>> {
    let disk = Path::new("/dev").join(&part.disk);
    let mut file = sys
        .open_rw(&disk)
        .map_err(|e| format!("cannot open {}: {e}", disk.display()))?;
    let Some(grown) = berth_layout::gpt::grow_last_partition(&mut file, &disk, STATE_LABEL)? else {
        return Ok(None);
    };
    drop(file);
    if grown.first_lba != part.start {
        return Err(format!(
            "the GPT says {} starts at sector {}, the kernel {}",
            part.name, grown.first_lba, part.start
        )
        .into());
    }
    let (start, length) = (grown.offset(512), grown.size(512));
    sys.resize_partition(&disk, part.number, start, length)
        .map_err(|e| format!("BLKPG_RESIZE_PARTITION {}: {e}", part.name))?;
    Ok(Some(length / 512))
}

/// Grows the mounted ext4 to fill `sectors`; returns (old, new) sizes in MiB if it grew.
fn grow_filesystem(
    sys: &dyn Syscalls,
    device: &Path,
    sectors: u64,
) -> Result<Option<(u64, u64)>, Box<dyn Error>> {
    let mut superblock = [0u8; 1024];
    sys.open(device)?.read_exact_at(&mut superblock, 1024)?;
    let (blocks, block_size) = ext4_size(&superblock).ok_or("no ext4 superblock")?;
    let fits = sectors * 512 / block_size;
    if fits <= blocks {
        return Ok(None);
    }
    sys.resize_ext4(Path::new(STATE_MOUNT), fits)
        .map_err(|e| format!("EXT4_IOC_RESIZE_FS to {fits} blocks: {e}"))?;
    let mib = |b: u64| (b * block_size) >> 20;
    Ok(Some((mib(blocks), mib(fits))))
}

/// A tmpfs in STATE's place, said loudly.
fn fall_back(m: &mut Machine, why: &str) -> JobResult {
    m.log(&format!(
        "berth: FAILED state: {why}; STATE is a tmpfs, nothing written will persist"
    ));
    mount(m, "tmpfs", STATE_MOUNT, NOSUID_NODEV_NOEXEC, "mode=0755")?;
    m.state = StateBacking::Tmpfs;
    make_folders(m)
}

fn make_folders(m: &mut Machine) -> JobResult {
    let first = !m.sys.exists(&Path::new(STATE_MOUNT).join("berth"));
    for folder in STATE_FOLDERS {
        let path = Path::new(STATE_MOUNT).join(folder);
        m.sys
            .mkdir(&path)
            .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    }
    if first {
        m.log(&format!(
            "berth: state new: made {}",
            STATE_FOLDERS.join(" ")
        ));
    }
    Ok(())
}

/// The `state` job.
pub fn state(m: &mut Machine) -> JobResult {
    if m.options.state == StateMode::Tmpfs {
        return fall_back(m, "berth.state=tmpfs on the command line");
    }
    let Some(part) = find(m.sys) else {
        return fall_back(m, "no partition labelled STATE");
    };
    let mut sectors = part.size;
    match grow_partition(m.sys, &part) {
        Ok(Some(grown)) => {
            m.log(&format!(
                "berth: state partition {} grown from {} MiB to {} MiB",
                part.name,
                part.size >> 11,
                grown >> 11
            ));
            sectors = grown;
        }
        Ok(None) => {}
        Err(e) => m.fail("state grow", &*e),
    }
    let device = part.device();
    let source = device.to_string_lossy().into_owned();
    let _ = m.sys.mkdir(Path::new(STATE_MOUNT));
    let next = repair::mount_or_repair(m, &source);
    went(m, next, &source, sectors)
}

/// STATE's step waiting for a repair's helper ([`super::helper`]): the event loop hands
/// its end to [`resume`].
#[derive(Debug)]
pub struct Waiting {
    pub repair: repair::Repair,
    /// The partition's size in sectors.
    sectors: u64,
}

/// The helper STATE's step waits for ended as `ran`: the step goes on.
pub fn resume(
    m: &mut Machine,
    waiting: Waiting,
    ran: std::io::Result<crate::sys::Ran>,
) -> JobResult {
    let source = waiting.repair.device.clone();
    let next = repair::resume(m, waiting.repair, ran);
    went(m, next, &source, waiting.sectors)
}

/// Where mounting STATE went: waiting for a helper (the step returns, [`Machine::waiting`]
/// set), mounted (the step finishes), or failed (a tmpfs instead).
fn went(m: &mut Machine, next: Next, source: &str, sectors: u64) -> JobResult {
    match next {
        Next::Waiting(repair) => {
            m.waiting = Some(Waiting { repair, sectors });
            Ok(())
        }
        Next::Failed(why) => fall_back(m, &why),
        Next::Mounted(how) => mounted(m, how, source, sectors),
    }
}

/// STATE is mounted: grown to its partition, its folders made, said.
fn mounted(m: &mut Machine, how: Mounted, source: &str, sectors: u64) -> JobResult {
    let device = PathBuf::from(source);
    m.state = StateBacking::Partition(device.clone());
    match grow_filesystem(m.sys, &device, sectors) {
        Ok(Some((old, new))) => m.log(&format!(
            "berth: state filesystem grown from {old} MiB to {new} MiB"
        )),
        Ok(None) => {}
        Err(e) => m.log(&format!(
            "berth: FAILED state grow: {}",
            console::chain(&*e)
        )),
    }
    make_folders(m)?;
    let how = match how {
        Mounted::AsItWas => "",
        Mounted::Repaired => ", repaired",
        Mounted::Remade => ", re-made",
    };
    m.log(&format!(
        "berth: state mounted {source} ({} MiB{how}) on {STATE_MOUNT}",
        sectors >> 11
    ));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn superblock_sizes() {
        let mut sb = [0u8; 1024];
        assert_eq!(ext4_size(&sb), None);
        sb[0x38..0x3a].copy_from_slice(&0xef53u16.to_le_bytes());
        sb[0x04..0x08].copy_from_slice(&65536u32.to_le_bytes());
        sb[0x18..0x1c].copy_from_slice(&2u32.to_le_bytes());
        assert_eq!(ext4_size(&sb), Some((65536, 4096)));
        sb[0x150..0x154].copy_from_slice(&1u32.to_le_bytes());
        assert_eq!(
            ext4_size(&sb),
            Some((65536, 4096)),
            "hi word ignored without 64bit"
        );
        sb[0x60] = 0x80;
        assert_eq!(ext4_size(&sb), Some(((1 << 32) + 65536, 4096)));
        sb[0x18] = 40;
        assert_eq!(ext4_size(&sb), None);
    }
}
