//! UEFI firmware: OVMF's code, mapped read-only, and a private copy of its variable store.
//!
//! OVMF keeps its variables (boot entries, systemd-boot's `LoaderEntry*`) in a second flash
//! image that the guest writes. Each VM gets its own copy of the installed template, so the
//! system's file is never written and two VMs never share variables.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::error::{QemuError, Result};
use crate::opt_path;

/// Where distributions install OVMF, as (code, variable template), preferred first.
const KNOWN_LOCATIONS: &[(&str, &str)] = &[
    // Debian 12+, Ubuntu 22.04+ (package `ovmf`): 4 MiB flash.
    (
        "/usr/share/OVMF/OVMF_CODE_4M.fd",
        "/usr/share/OVMF/OVMF_VARS_4M.fd",
    ),
    // Older Debian and Ubuntu: 2 MiB flash.
    (
        "/usr/share/OVMF/OVMF_CODE.fd",
        "/usr/share/OVMF/OVMF_VARS.fd",
    ),
    // Fedora (`edk2-ovmf`).
    (
        "/usr/share/edk2/ovmf/OVMF_CODE.fd",
        "/usr/share/edk2/ovmf/OVMF_VARS.fd",
    ),
    // Arch (`edk2-ovmf`).
    (
        "/usr/share/edk2/x64/OVMF_CODE.4m.fd",
        "/usr/share/edk2/x64/OVMF_VARS.4m.fd",
    ),
];

/// An OVMF build: the code flash and the variable-store template that goes with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Firmware {
    /// Firmware code, mapped read-only.
    pub code: PathBuf,
    /// Variable store template; VMs get a copy, never this file.
    pub vars: PathBuf,
}

impl Firmware {
    /// A firmware from explicit paths (checked when a VM starts).
    pub fn new(code: impl Into<PathBuf>, vars: impl Into<PathBuf>) -> Self {
        Firmware {
            code: code.into(),
            vars: vars.into(),
        }
    }

    /// The first installed OVMF among the distributions' usual locations.
    pub fn find() -> Result<Firmware> {
        KNOWN_LOCATIONS
            .iter()
            .map(|(code, vars)| Firmware::new(code, vars))
            .find(|fw| fw.code.is_file() && fw.vars.is_file())
            .ok_or_else(|| QemuError::NoFirmware {
                searched: KNOWN_LOCATIONS
                    .iter()
                    .map(|(code, _)| *code)
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }

    /// Fails, naming the missing file, unless both files exist.
    pub fn check(&self) -> Result<()> {
        for path in [&self.code, &self.vars] {
            if !path.is_file() {
                return Err(QemuError::FirmwareMissing { path: path.clone() });
            }
        }
        Ok(())
    }

    /// Copies the variable template to `to`, writable by us whatever the template's mode.
    pub(crate) fn private_vars(&self, to: &Path) -> Result<()> {
        let copy_err = |source| QemuError::CopyVars {
            from: self.vars.clone(),
            to: to.to_owned(),
            source,
        };
        if !self.vars.is_file() {
            return Err(QemuError::FirmwareMissing {
                path: self.vars.clone(),
            });
        }
        fs::copy(&self.vars, to).map_err(copy_err)?;
        fs::set_permissions(to, fs::Permissions::from_mode(0o600)).map_err(copy_err)
    }

    /// QEMU arguments mapping the code read-only and `vars` (a private copy) writable.
    pub(crate) fn pflash_args(&self, vars: &Path) -> Vec<std::ffi::OsString> {
        let mut code = std::ffi::OsString::from("if=pflash,format=raw,unit=0,readonly=on,file=");
        code.push(opt_path(&self.code));
        let mut store = std::ffi::OsString::from("if=pflash,format=raw,unit=1,file=");
        store.push(opt_path(vars));
        vec!["-drive".into(), code, "-drive".into(), store]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_files_name_the_debian_package() {
        let dir = tempfile::tempdir().unwrap();
        let code = dir.path().join("CODE.fd");
        fs::write(&code, b"code").unwrap();
        let fw = Firmware::new(&code, dir.path().join("no-VARS.fd"));
        let err = fw.check().unwrap_err().to_string();
        assert!(err.contains("no-VARS.fd") && err.contains("ovmf"), "{err}");
        let err = fw.private_vars(&dir.path().join("copy")).unwrap_err();
        assert!(err.to_string().contains("ovmf"), "{err}");
    }

    #[test]
    fn private_vars_is_a_writable_copy() {
        let dir = tempfile::tempdir().unwrap();
        let vars = dir.path().join("VARS.fd");
        fs::write(&vars, b"template").unwrap();
        fs::set_permissions(&vars, fs::Permissions::from_mode(0o444)).unwrap();
        let fw = Firmware::new(dir.path().join("CODE.fd"), &vars);
        let copy = dir.path().join("copy.fd");
        fw.private_vars(&copy).unwrap();
        assert_eq!(fs::read(&copy).unwrap(), b"template");
        let mode = fs::metadata(&copy).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn pflash_arguments_map_code_read_only() {
        let fw = Firmware::new("/fw/CODE,1.fd", "/fw/VARS.fd");
        let args = fw.pflash_args(Path::new("/tmp/vm/vars.fd"));
        assert_eq!(
            args,
            [
                "-drive",
                "if=pflash,format=raw,unit=0,readonly=on,file=/fw/CODE,,1.fd",
                "-drive",
                "if=pflash,format=raw,unit=1,file=/tmp/vm/vars.fd",
            ]
        );
    }
}
