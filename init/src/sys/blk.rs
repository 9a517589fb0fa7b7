//! Block-device and ext4 ioctls for growing STATE while it is in use: `BLKPG` with
//! `BLKPG_RESIZE_PARTITION` tells the kernel a partition's new size (the GPT on disk was
//! already rewritten), and `EXT4_IOC_RESIZE_FS` grows a mounted ext4 to a block count.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::path::Path;

/// `BLKPG_RESIZE_PARTITION` from `<linux/blkpg.h>`.
const BLKPG_RESIZE_PARTITION: nix::libc::c_int = 3;

/// `struct blkpg_partition` from `<linux/blkpg.h>`: offsets and lengths in bytes.
#[repr(C)]
pub struct BlkpgPartition {
    pub start: i64,
    pub length: i64,
    pub pno: nix::libc::c_int,
    pub devname: [u8; 64],
    pub volname: [u8; 64],
}

/// `struct blkpg_ioctl_arg` from `<linux/blkpg.h>`.
#[repr(C)]
pub struct BlkpgIoctlArg {
    pub op: nix::libc::c_int,
    pub flags: nix::libc::c_int,
    pub datalen: nix::libc::c_int,
    pub data: *mut nix::libc::c_void,
}

// BLKPG = _IO(0x12, 105), which the kernel declares without a size although it takes a
// pointer; EXT4_IOC_RESIZE_FS = _IOW('f', 16, __u64).
nix::ioctl_write_ptr_bad!(
    blkpg_ioctl,
    nix::request_code_none!(0x12, 105),
    BlkpgIoctlArg
);
nix::ioctl_write_ptr!(ext4_resize_fs, b'f', 16, u64);

/// Tells the kernel that partition `number` of the whole disk `disk` now spans `length`
/// bytes from `start` (its start cannot change).
pub fn resize_partition(disk: &Path, number: u32, start: u64, length: u64) -> io::Result<()> {
    let invalid = |what| io::Error::new(io::ErrorKind::InvalidInput, what);
    let pno = nix::libc::c_int::try_from(number).map_err(|_| invalid("partition number"))?;
    let start = i64::try_from(start).map_err(|_| invalid("partition start"))?;
    let length = i64::try_from(length).map_err(|_| invalid("partition length"))?;
    let file = File::open(disk)?;
    let mut part = BlkpgPartition {
        start,
        length,
        pno,
        devname: [0; 64],
        volname: [0; 64],
    };
    let arg = BlkpgIoctlArg {
        op: BLKPG_RESIZE_PARTITION,
        flags: 0,
        datalen: std::mem::size_of::<BlkpgPartition>() as nix::libc::c_int,
        data: (&mut part as *mut BlkpgPartition).cast(),
    };
    // SAFETY: `file` is an open descriptor; `arg` and the `part` it points to are valid,
    // correctly laid out (repr(C), checked by the layout test) and outlive the call; the
    // kernel only reads them.
    unsafe { blkpg_ioctl(file.as_raw_fd(), &arg) }?;
    Ok(())
}

/// Grows the ext4 mounted at `mount_point` to `blocks` filesystem blocks, online.
pub fn resize_ext4(mount_point: &Path, blocks: u64) -> io::Result<()> {
    let dir = File::open(mount_point)?;
    // SAFETY: `dir` is an open descriptor on the mounted filesystem and `blocks` a valid
    // u64 that outlives the call; the kernel only reads it.
    unsafe { ext4_resize_fs(dir.as_raw_fd(), &blocks) }?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_match_the_kernel() {
        // struct blkpg_partition: 8 + 8 + 4 + 64 + 64 = 148, padded to 152.
        assert_eq!(std::mem::size_of::<BlkpgPartition>(), 152);
        assert_eq!(std::mem::size_of::<BlkpgIoctlArg>(), 24);
        assert_eq!(nix::request_code_none!(0x12, 105), 0x1269);
        assert_eq!(nix::request_code_write!(b'f', 16, 8), 0x4008_6610);
    }
}
