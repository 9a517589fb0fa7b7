//! Device-mapper through its ioctls on `/dev/mapper/control` (`linux/dm-ioctl.h`), so that
//! stage 1 needs neither `dmsetup` nor `veritysetup` in the initramfs.
//!
//! Requests are built as bytes at the offsets of the `#[repr(C)]` structs below, whose
//! layout is tested against the kernel header's sizes and offsets; the one `unsafe` block
//! hands such a buffer to `ioctl(2)`. [`create`] runs what `dmsetup create` does:
//! `DM_VERSION`, `DM_DEV_CREATE`, `DM_TABLE_LOAD` (read-only), `DM_DEV_SUSPEND` without the
//! suspend flag (resume, which makes the table live), and removes the device again if a
//! later step fails.

use std::fs::{File, OpenOptions};
use std::mem::{offset_of, size_of};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use nix::errno::Errno;

use super::DevNum;

/// The control node devtmpfs creates when dm-mod registers.
pub const CONTROL: &str = "/dev/mapper/control";

/// The interface version spoken; the kernel accepts any minor up to its own.
pub const DM_VERSION_MAJOR: u32 = 4;
const DM_VERSION_MINOR: u32 = 0;
const DM_VERSION_PATCHLEVEL: u32 = 0;

const DM_NAME_LEN: usize = 128;
const DM_UUID_LEN: usize = 129;
const DM_MAX_TYPE_NAME: usize = 16;

const DM_IOCTL: u8 = 0xfd;
const DM_VERSION_CMD: u8 = 0;
const DM_DEV_CREATE_CMD: u8 = 3;
const DM_DEV_REMOVE_CMD: u8 = 4;
const DM_DEV_SUSPEND_CMD: u8 = 6;
const DM_TABLE_LOAD_CMD: u8 = 9;

/// `DM_READONLY_FLAG`: the table is loaded read-only (dm-verity refuses anything else).
const DM_READONLY_FLAG: u32 = 1 << 0;

/// `struct dm_ioctl`: the header of every request and reply.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct DmIoctl {
    pub version: [u32; 3],
    /// Bytes of the whole buffer, header included.
    pub data_size: u32,
    /// Offset of the payload (the first target spec) from the header's start.
    pub data_start: u32,
    pub target_count: u32,
    pub open_count: i32,
    pub flags: u32,
    pub event_nr: u32,
    pub padding: u32,
    /// `huge_encode_dev` of the device.
    pub dev: u64,
    pub name: [u8; DM_NAME_LEN],
    pub uuid: [u8; DM_UUID_LEN],
    pub data: [u8; 7],
}

/// `struct dm_target_spec`, followed in the buffer by the NUL-terminated parameters.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct DmTargetSpec {
    pub sector_start: u64,
    pub length: u64,
    pub status: i32,
    /// Offset from this spec to the next one.
    pub next: u32,
    pub target_type: [u8; DM_MAX_TYPE_NAME],
}

nix::ioctl_readwrite!(dm_version, DM_IOCTL, DM_VERSION_CMD, DmIoctl);
nix::ioctl_readwrite!(dm_dev_create, DM_IOCTL, DM_DEV_CREATE_CMD, DmIoctl);
nix::ioctl_readwrite!(dm_dev_remove, DM_IOCTL, DM_DEV_REMOVE_CMD, DmIoctl);
nix::ioctl_readwrite!(dm_dev_suspend, DM_IOCTL, DM_DEV_SUSPEND_CMD, DmIoctl);
nix::ioctl_readwrite!(dm_table_load, DM_IOCTL, DM_TABLE_LOAD_CMD, DmIoctl);

const HEADER: usize = size_of::<DmIoctl>();
const SPEC: usize = size_of::<DmTargetSpec>();

/// One line of a table: `<start> <length> <type> <params>`, in 512-byte sectors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DmTarget {
    pub start: u64,
    pub length: u64,
    pub target_type: String,
    pub params: String,
}

impl std::fmt::Display for DmTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let DmTarget {
            start,
            length,
            target_type,
            params,
        } = self;
        write!(f, "{start} {length} {target_type} {params}")
    }
}

/// Device-mapper failures; `op` is the ioctl (`DM_TABLE_LOAD`, ...).
#[derive(Debug, thiserror::Error)]
pub enum DmError {
    #[error("cannot open {path} (is dm-mod loaded?)")]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{op} for device {name:?} failed (the kernel log may say why)")]
    Ioctl {
        op: &'static str,
        name: String,
        #[source]
        source: Errno,
    },
    #[error("the kernel speaks device-mapper interface {major}.{minor}.{patch}, not {DM_VERSION_MAJOR}.x")]
    Version { major: u32, minor: u32, patch: u32 },
    #[error("{field} {value:?} is empty, too long or contains NUL or '/'")]
    BadString { field: &'static str, value: String },
}

/// An open `/dev/mapper/control`.
pub struct Control {
    file: File,
}

impl Control {
    pub fn open() -> Result<Control, DmError> {
        Self::open_at(Path::new(CONTROL))
    }

    pub fn open_at(path: &Path) -> Result<Control, DmError> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(|source| DmError::Open {
                path: path.to_path_buf(),
                source,
            })?;
        Ok(Control { file })
    }

    /// `DM_VERSION`: the kernel's interface version, checked to be 4.x.
    pub fn version(&self) -> Result<[u32; 3], DmError> {
        let mut buf = request("", "", 0, 0, HEADER)?;
        self.call("DM_VERSION", "", dm_version, &mut buf)?;
        let version = [0, 1, 2].map(|i| read_u32(&buf, offset_of!(DmIoctl, version) + 4 * i));
        if version[0] != DM_VERSION_MAJOR {
            let [major, minor, patch] = version;
            return Err(DmError::Version {
                major,
                minor,
                patch,
            });
        }
        Ok(version)
    }

    /// `DM_DEV_CREATE`: a new device without a table; returns its device number.
    pub fn create_device(&self, name: &str, uuid: &str) -> Result<DevNum, DmError> {
        let mut buf = request(name, uuid, 0, 0, HEADER)?;
        self.call("DM_DEV_CREATE", name, dm_dev_create, &mut buf)?;
        Ok(decode_dev(read_u64(&buf, offset_of!(DmIoctl, dev))))
    }

    /// `DM_TABLE_LOAD` of one target into the inactive table, read-only.
    pub fn load_table(&self, name: &str, target: &DmTarget) -> Result<(), DmError> {
        let mut buf = table_request(name, target)?;
        self.call("DM_TABLE_LOAD", name, dm_table_load, &mut buf)
    }

    /// `DM_DEV_SUSPEND` without `DM_SUSPEND_FLAG`: resume, making the loaded table live.
    pub fn resume(&self, name: &str) -> Result<(), DmError> {
        let mut buf = request(name, "", 0, 0, HEADER)?;
        self.call("DM_DEV_SUSPEND (resume)", name, dm_dev_suspend, &mut buf)
    }

    /// `DM_DEV_REMOVE`.
    pub fn remove(&self, name: &str) -> Result<(), DmError> {
        let mut buf = request(name, "", 0, 0, HEADER)?;
        self.call("DM_DEV_REMOVE", name, dm_dev_remove, &mut buf)
    }

    fn call(
        &self,
        op: &'static str,
        name: &str,
        ioctl: unsafe fn(i32, *mut DmIoctl) -> nix::Result<i32>,
        buf: &mut [u8],
    ) -> Result<(), DmError> {
        // The kernel reads the request size from the header, which must describe `buf`.
        if buf.len() < HEADER || read_u32(buf, offset_of!(DmIoctl, data_size)) as usize != buf.len()
        {
            return Err(DmError::Ioctl {
                op,
                name: name.to_owned(),
                source: Errno::EINVAL,
            });
        }
        // SAFETY: `ioctl` is one of the `_IOWR(0xfd, cmd, struct dm_ioctl)` requests above,
        // the descriptor is an open device-mapper control node, and `buf` is a live,
        // exclusively borrowed buffer at least `size_of::<DmIoctl>()` bytes long whose
        // header says `data_size == buf.len()`, checked just above: the kernel copies in
        // and out at most `data_size` bytes with copy_{from,to}_user, which need no
        // alignment. The pointer is never dereferenced on the Rust side.
        let result = unsafe { ioctl(self.file.as_raw_fd(), buf.as_mut_ptr().cast::<DmIoctl>()) };
        result.map(drop).map_err(|source| DmError::Ioctl {
            op,
            name: name.to_owned(),
            source,
        })
    }
}

/// What `dmsetup create --readonly NAME --uuid UUID --table TABLE` does.
pub fn create(name: &str, uuid: &str, target: &DmTarget) -> Result<DevNum, DmError> {
    let control = Control::open()?;
    control.version()?;
    let dev = control.create_device(name, uuid)?;
    let live = control
        .load_table(name, target)
        .and_then(|()| control.resume(name));
    if let Err(e) = live {
        // Best effort: the first error is the one worth reporting.
        let _ = control.remove(name);
        return Err(e);
    }
    Ok(dev)
}

/// A zeroed request of `size` bytes with the header filled in.
fn request(
    name: &str,
    uuid: &str,
    target_count: u32,
    flags: u32,
    size: usize,
) -> Result<Vec<u8>, DmError> {
    if !name.is_empty() {
        check_string("device name", name, DM_NAME_LEN)?;
        if name.contains('/') || name == "." || name == ".." {
            return Err(DmError::BadString {
                field: "device name",
                value: name.to_owned(),
            });
        }
    }
    if !uuid.is_empty() {
        check_string("device uuid", uuid, DM_UUID_LEN)?;
    }
    let data_size = u32::try_from(size).map_err(|_| DmError::BadString {
        field: "request",
        value: format!("{size} bytes"),
    })?;
    let mut buf = vec![0u8; size];
    let version = [DM_VERSION_MAJOR, DM_VERSION_MINOR, DM_VERSION_PATCHLEVEL];
    for (i, v) in version.into_iter().enumerate() {
        write_u32(&mut buf, offset_of!(DmIoctl, version) + 4 * i, v);
    }
    write_u32(&mut buf, offset_of!(DmIoctl, data_size), data_size);
    write_u32(&mut buf, offset_of!(DmIoctl, data_start), HEADER as u32);
    write_u32(&mut buf, offset_of!(DmIoctl, target_count), target_count);
    write_u32(&mut buf, offset_of!(DmIoctl, flags), flags);
    buf[offset_of!(DmIoctl, name)..][..name.len()].copy_from_slice(name.as_bytes());
    buf[offset_of!(DmIoctl, uuid)..][..uuid.len()].copy_from_slice(uuid.as_bytes());
    Ok(buf)
}

/// A read-only `DM_TABLE_LOAD` request: header, one target spec, its parameters.
fn table_request(name: &str, target: &DmTarget) -> Result<Vec<u8>, DmError> {
    check_string("target type", &target.target_type, DM_MAX_TYPE_NAME)?;
    check_string("target parameters", &target.params, usize::MAX)?;
    // Parameters, their NUL, then padding so that a next spec would be 8-byte aligned.
    let params_len = (target.params.len() + 1).next_multiple_of(8);
    let next = u32::try_from(SPEC + params_len).map_err(|_| DmError::BadString {
        field: "target parameters",
        value: target.params.clone(),
    })?;
    let mut buf = request(name, "", 1, DM_READONLY_FLAG, HEADER + SPEC + params_len)?;
    let spec = HEADER;
    write_u64(
        &mut buf,
        spec + offset_of!(DmTargetSpec, sector_start),
        target.start,
    );
    write_u64(
        &mut buf,
        spec + offset_of!(DmTargetSpec, length),
        target.length,
    );
    write_u32(&mut buf, spec + offset_of!(DmTargetSpec, next), next);
    let type_at = spec + offset_of!(DmTargetSpec, target_type);
    buf[type_at..][..target.target_type.len()].copy_from_slice(target.target_type.as_bytes());
    buf[spec + SPEC..][..target.params.len()].copy_from_slice(target.params.as_bytes());
    Ok(buf)
}

/// Room for `value` and its NUL in a field of `capacity` bytes, and no NUL inside.
fn check_string(field: &'static str, value: &str, capacity: usize) -> Result<(), DmError> {
    if value.is_empty() || value.len() >= capacity || value.contains('\0') {
        return Err(DmError::BadString {
            field,
            value: value.to_owned(),
        });
    }
    Ok(())
}

/// The kernel's `huge_encode_dev` back into major and minor.
pub fn decode_dev(dev: u64) -> DevNum {
    DevNum {
        major: ((dev >> 8) & 0xfff) as u32,
        minor: ((dev & 0xff) | ((dev >> 12) & 0xfff00)) as u32,
    }
}

fn write_u32(buf: &mut [u8], at: usize, value: u32) {
    buf[at..at + 4].copy_from_slice(&value.to_ne_bytes());
}

fn write_u64(buf: &mut [u8], at: usize, value: u64) {
    buf[at..at + 8].copy_from_slice(&value.to_ne_bytes());
}

fn read_u32(buf: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes(std::array::from_fn(|i| buf[at + i]))
}

fn read_u64(buf: &[u8], at: usize) -> u64 {
    u64::from_ne_bytes(std::array::from_fn(|i| buf[at + i]))
}

#[cfg(test)]
mod tests;
