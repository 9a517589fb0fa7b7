//! Device nodes in the container: the request's devices, or every host device for a
//! privileged container, each with its device-cgroup rule.

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use nix::sys::stat::{major, minor};
use oci_spec::runtime::{LinuxDevice, LinuxDeviceCgroup, LinuxDeviceType};

use super::request::DeviceRequest;
use super::ContainerError;

/// A device node to create and the cgroup rule that allows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceEntry {
    pub device: LinuxDevice,
    pub rule: LinuxDeviceCgroup,
}

/// The first device-cgroup rule: deny everything not allowed after it.
pub fn deny_all() -> LinuxDeviceCgroup {
    let mut rule = LinuxDeviceCgroup::default();
    rule.set_allow(false);
    rule.set_access(Some("rwm".into()));
    rule
}

/// The device-cgroup rule of a privileged container: allow everything.
pub fn allow_all() -> LinuxDeviceCgroup {
    let mut rule = LinuxDeviceCgroup::default();
    rule.set_allow(true);
    rule.set_access(Some("rwm".into()));
    rule
}

/// The device at `host` (symlinks followed) exposed at `container_path`.
fn entry(host: &Path, container_path: &Path, access: &str) -> std::io::Result<Option<DeviceEntry>> {
    let meta = std::fs::metadata(host)?;
    let typ = if meta.file_type().is_char_device() {
        LinuxDeviceType::C
    } else if meta.file_type().is_block_device() {
        LinuxDeviceType::B
    } else {
        return Ok(None);
    };
    let (maj, min) = (major(meta.rdev()) as i64, minor(meta.rdev()) as i64);
    let mut device = LinuxDevice::default();
    device.set_path(container_path.to_path_buf());
    device.set_typ(typ);
    device.set_major(maj);
    device.set_minor(min);
    device.set_file_mode(Some(meta.mode() & 0o777));
    device.set_uid(Some(meta.uid()));
    device.set_gid(Some(meta.gid()));
    let mut rule = LinuxDeviceCgroup::default();
    rule.set_allow(true);
    rule.set_typ(Some(typ));
    rule.set_major(Some(maj));
    rule.set_minor(Some(min));
    rule.set_access(Some(access.to_string()));
    Ok(Some(DeviceEntry { device, rule }))
}

/// The devices a request names (its permissions and container paths were checked where
/// it was converted); a host path that is not a device names the field.
pub fn from_request(devices: &[DeviceRequest]) -> Result<Vec<DeviceEntry>, ContainerError> {
    let mut out = Vec::new();
    for (i, d) in devices.iter().enumerate() {
        let field = format!("config.devices[{i}].host_path");
        let host = d.host_path.as_path();
        match entry(host, &d.container_path, &d.permissions) {
            Ok(Some(e)) => out.push(e),
            Ok(None) => {
                return Err(ContainerError::invalid(
                    field,
                    format!("{} is not a device", host.display()),
                ))
            }
            Err(e) => {
                return Err(ContainerError::invalid(
                    field,
                    format!("{}: {e}", host.display()),
                ))
            }
        }
    }
    Ok(out)
}

/// Every character and block device under the host's `/dev`, for privileged containers
/// (pseudo-terminals and the container's own `/dev/pts`, `/dev/shm`, `/dev/mqueue` excluded).
pub fn host_devices() -> Vec<DeviceEntry> {
    let mut out = Vec::new();
    walk(Path::new("/dev"), &mut out);
    out
}

fn walk(dir: &Path, out: &mut Vec<DeviceEntry>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let path = e.path();
        let Ok(ft) = e.file_type() else { continue };
        if ft.is_dir() {
            if !["/dev/pts", "/dev/shm", "/dev/mqueue"]
                .iter()
                .any(|p| path == Path::new(p))
            {
                walk(&path, out);
            }
        } else if (ft.is_char_device() || ft.is_block_device())
            && path != Path::new("/dev/console")
            && path != Path::new("/dev/ptmx")
        {
            if let Ok(Some(entry)) = entry(&path, &path, "rwm") {
                out.push(entry);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(c: &str, h: &str, p: &str) -> Vec<DeviceRequest> {
        vec![DeviceRequest {
            container_path: c.into(),
            host_path: h.into(),
            permissions: p.into(),
        }]
    }

    #[test]
    fn dev_null_maps_to_1_3() {
        let out = from_request(&d("/dev/mynull", "/dev/null", "rw")).unwrap();
        assert_eq!(out[0].device.major(), 1);
        assert_eq!(out[0].device.minor(), 3);
        assert_eq!(out[0].device.path(), Path::new("/dev/mynull"));
        assert_eq!(out[0].rule.access().as_deref(), Some("rw"));
    }

    #[test]
    fn host_paths_that_are_no_devices_name_the_field() {
        let err = from_request(&d("/dev/x", "/etc/hostname", "rwm"))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("config.devices[0].host_path"), "{err}");
        let err = from_request(&d("/dev/x", "/nonexistent", "rwm"))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("config.devices[0].host_path"), "{err}");
    }
}
