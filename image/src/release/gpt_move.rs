//! Growing a GPT disk: what `sgdisk --move-second-header` does, as a list of writes.
//!
//! Compute Engine wants a raw disk of a whole number of GiB; Berth's disks are a whole
//! number of MiB. Appending zeros leaves the backup GPT header in the middle of the disk,
//! where firmware and `sgdisk -v` complain about it, so the grown disk gets: a protective
//! MBR covering the new size, a primary header pointing at the new end (with the last
//! usable LBA moved accordingly and its CRC recomputed), the old backup area zeroed, and a
//! new backup entry array and header in the last sectors. Partitions do not move; nothing
//! else changes. The writes are returned rather than applied so that the grown disk can be
//! streamed into an archive without a grown copy on disk.

use gpt::mbr::ProtectiveMBR;

/// Bytes per logical block (Berth disks have 512-byte sectors).
pub const SECTOR: u64 = 512;
const SIGNATURE: &[u8; 8] = b"EFI PART";
/// Entry arrays larger than this are not GPT as any tool writes it.
const MAX_ENTRIES_BYTES: u64 = 1 << 20;

/// One write to apply over the original bytes; later writes win where they overlap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Patch {
    pub offset: u64,
    pub bytes: Vec<u8>,
}

/// Reads the original disk: fills the buffer with the bytes at the offset.
pub type ReadAt<'a> = &'a dyn Fn(&mut [u8], u64) -> Result<(), String>;

/// The writes that turn a GPT disk of `old_size` bytes, read through `read`, into a disk
/// of `new_size` bytes whose backup GPT is at its end. `read(buf, offset)` fills `buf`
/// with the original bytes at `offset`.
pub fn relocate(read: ReadAt, old_size: u64, new_size: u64) -> Result<Vec<Patch>, String> {
    if !old_size.is_multiple_of(SECTOR) || !new_size.is_multiple_of(SECTOR) || new_size < old_size {
        return Err(format!(
            "cannot grow a {old_size}-byte disk to {new_size} bytes (whole sectors, not smaller)"
        ));
    }
    let mut mbr = [0u8; SECTOR as usize];
    read(&mut mbr, 0)?;
    let mut primary = [0u8; SECTOR as usize];
    read(&mut primary, SECTOR)?;
    let header = Header::parse(&primary)?;
    if header.my_lba != 1 {
        return Err(format!(
            "primary GPT header says it is at LBA {}",
            header.my_lba
        ));
    }
    let old_last = old_size / SECTOR - 1;
    if header.alternate_lba != old_last {
        return Err(format!(
            "backup GPT header is at LBA {}, not at the last LBA {old_last}",
            header.alternate_lba
        ));
    }
    let entries_len = u64::from(header.entries) * u64::from(header.entry_size);
    if entries_len == 0 || entries_len > MAX_ENTRIES_BYTES {
        return Err(format!("GPT entry array of {entries_len} bytes"));
    }
    let mut entries = vec![0u8; entries_len as usize];
    read(&mut entries, header.entries_lba * SECTOR)?;
    if crc32fast::hash(&entries) != header.entries_crc {
        return Err("GPT entry array CRC does not match the primary header".into());
    }
    let entry_sectors = entries_len.div_ceil(SECTOR);
    if old_last < entry_sectors + 2 {
        return Err(format!("a {old_size}-byte disk cannot hold a backup GPT"));
    }
    // The old backup area: its header and the entry array before it.
    let old_backup_start = (old_last - entry_sectors) * SECTOR;

    let new_sectors = new_size / SECTOR;
    let new_last = new_sectors - 1;
    let new_entries_lba = new_last - entry_sectors;
    let last_usable = new_entries_lba - 1;

    let mut protective =
        ProtectiveMBR::with_lb_size(u32::try_from(new_sectors - 1).unwrap_or(u32::MAX)).to_bytes();
    // Keep the boot code and disk signature; replace the records and the signature.
    protective[..446].copy_from_slice(&mbr[..446]);

    let mut new_primary = primary;
    put_u64(&mut new_primary, 32, new_last);
    put_u64(&mut new_primary, 48, last_usable);
    seal(&mut new_primary, header.size);

    let mut backup = [0u8; SECTOR as usize];
    backup[..header.size].copy_from_slice(&new_primary[..header.size]);
    put_u64(&mut backup, 24, new_last);
    put_u64(&mut backup, 32, 1);
    put_u64(&mut backup, 72, new_entries_lba);
    seal(&mut backup, header.size);

    let mut entry_area = entries;
    entry_area.resize((entry_sectors * SECTOR) as usize, 0);
    Ok(vec![
        Patch {
            offset: 0,
            bytes: protective.to_vec(),
        },
        Patch {
            offset: SECTOR,
            bytes: new_primary.to_vec(),
        },
        Patch {
            offset: old_backup_start,
            bytes: vec![0; (old_size - old_backup_start) as usize],
        },
        Patch {
            offset: new_entries_lba * SECTOR,
            bytes: entry_area,
        },
        Patch {
            offset: new_last * SECTOR,
            bytes: backup.to_vec(),
        },
    ])
}

/// The fields of a GPT header that relocation needs.
struct Header {
    size: usize,
    my_lba: u64,
    alternate_lba: u64,
    entries_lba: u64,
    entries: u32,
    entry_size: u32,
    entries_crc: u32,
}

impl Header {
    fn parse(sector: &[u8; SECTOR as usize]) -> Result<Header, String> {
        if &sector[..8] != SIGNATURE {
            return Err("no GPT header at LBA 1".into());
        }
        let size = u32_at(sector, 12) as usize;
        if !(92..=SECTOR as usize).contains(&size) {
            return Err(format!("GPT header size {size} is out of range"));
        }
        let mut copy = *sector;
        copy[16..20].fill(0);
        if crc32fast::hash(&copy[..size]) != u32_at(sector, 16) {
            return Err("primary GPT header CRC does not match".into());
        }
        Ok(Header {
            size,
            my_lba: u64_at(sector, 24),
            alternate_lba: u64_at(sector, 32),
            entries_lba: u64_at(sector, 72),
            entries: u32_at(sector, 80),
            entry_size: u32_at(sector, 84),
            entries_crc: u32_at(sector, 88),
        })
    }
}

/// Recomputes the header CRC over its first `size` bytes.
fn seal(sector: &mut [u8; SECTOR as usize], size: usize) {
    sector[16..20].fill(0);
    let crc = crc32fast::hash(&sector[..size]);
    sector[16..20].copy_from_slice(&crc.to_le_bytes());
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&bytes[at..at + 4]);
    u32::from_le_bytes(b)
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(b)
}

fn put_u64(bytes: &mut [u8], at: usize, value: u64) {
    bytes[at..at + 8].copy_from_slice(&value.to_le_bytes());
}
