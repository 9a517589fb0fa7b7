//! The VM builder: what a test or `cargo xtask run` wants (disk, memory, snapshot mode, port
//! forwards, a name for its artifacts), checked before QEMU starts so that a missing disk,
//! firmware or QEMU is reported by name instead of as a QEMU error. The command line it
//! turns into is in `cmdline.rs`.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};

use crate::accel::{accel, accel_from_env, Accel};
use crate::cmdline::{DiskBus, Plan, Wiring};
use crate::error::{QemuError, Result};
use crate::firmware::Firmware;
use crate::vm::Vm;
use crate::DEFAULT_QEMU;

/// Configures and starts a VM. Defaults: 1024 MiB, 2 CPUs, snapshot mode, networking on,
/// reboots allowed, accelerator from [`crate::accel()`], OVMF from [`Firmware::find`].
#[derive(Debug, Clone)]
pub struct QemuBuilder {
    pub(crate) qemu: PathBuf,
    pub(crate) disk: Option<PathBuf>,
    pub(crate) disk_format: String,
    pub(crate) disk_bus: DiskBus,
    pub(crate) memory_mib: u32,
    pub(crate) cpus: u32,
    pub(crate) serial_log: Option<PathBuf>,
    pub(crate) snapshot: bool,
    pub(crate) no_reboot: bool,
    pub(crate) network: bool,
    pub(crate) forwards: Vec<(u16, u16)>,
    pub(crate) user_net_options: Vec<String>,
    pub(crate) hotplug_ports: Vec<String>,
    pub(crate) extra_args: Vec<OsString>,
    pub(crate) name: Option<String>,
    pub(crate) firmware: Option<Firmware>,
    pub(crate) vars_file: Option<PathBuf>,
    pub(crate) accel: Option<Accel>,
    pub(crate) artifacts_dir: Option<PathBuf>,
}

impl Default for QemuBuilder {
    fn default() -> Self {
        QemuBuilder {
            qemu: PathBuf::from(DEFAULT_QEMU),
            disk: None,
            disk_format: "raw".to_owned(),
            disk_bus: DiskBus::default(),
            memory_mib: 1024,
            cpus: 2,
            serial_log: None,
            snapshot: true,
            no_reboot: false,
            network: true,
            forwards: Vec::new(),
            user_net_options: Vec::new(),
            hotplug_ports: Vec::new(),
            extra_args: Vec::new(),
            name: None,
            firmware: None,
            vars_file: None,
            accel: None,
            artifacts_dir: None,
        }
    }
}

impl QemuBuilder {
    /// The disk image to boot (required).
    pub fn disk(mut self, path: impl Into<PathBuf>) -> Self {
        self.disk = Some(path.into());
        self
    }

    /// The disk's format as QEMU names it; `raw` unless set (`qcow2` works too).
    pub fn disk_format(mut self, format: &str) -> Self {
        self.disk_format = format.to_owned();
        self
    }

    /// The controller the disk is attached to; virtio-blk unless set.
    pub fn disk_bus(mut self, bus: DiskBus) -> Self {
        self.disk_bus = bus;
        self
    }

    pub fn memory_mib(mut self, mib: u32) -> Self {
        self.memory_mib = mib;
        self
    }

    pub fn cpus(mut self, cpus: u32) -> Self {
        self.cpus = cpus;
        self
    }

    /// Also write the serial console to this file (default: a file in the VM's temp dir).
    pub fn serial_log(mut self, path: impl Into<PathBuf>) -> Self {
        self.serial_log = Some(path.into());
        self
    }

    /// `true` (the default): guest writes go to a throw-away overlay in the VM's temp dir
    /// and the image is never modified. `false`: the guest writes the disk (reboot tests).
    pub fn snapshot(mut self, snapshot: bool) -> Self {
        self.snapshot = snapshot;
        self
    }

    /// `true`: a guest reboot (or a panic that reboots) ends QEMU instead of restarting.
    pub fn no_reboot(mut self, no_reboot: bool) -> Self {
        self.no_reboot = no_reboot;
        self
    }

    /// Whether the guest gets a NIC (user-mode networking; on by default).
    pub fn network(mut self, network: bool) -> Self {
        self.network = network;
        self
    }

    /// Forwards TCP `127.0.0.1:host_port` to `guest_port` in the guest.
    pub fn port_forward(mut self, host_port: u16, guest_port: u16) -> Self {
        self.forwards.push((host_port, guest_port));
        self
    }

    /// An option of QEMU's user network as QEMU spells it (`hostname=node-1`,
    /// `dnssearch=example.test`, `net=10.9.0.0/24`): what its DHCP server hands the guest.
    pub fn user_net_option(mut self, option: &str) -> Self {
        self.user_net_options.push(option.to_owned());
        self
    }

    /// An empty PCIe root port named `id` (`-device pcie-root-port`): q35's root bus takes
    /// no hotplugged device, so a device added through QMP after boot (`device_add` of a
    /// NIC, as a cloud attaches one to a running VM) goes on `bus=<id>`. One device each.
    pub fn hotplug_port(mut self, id: &str) -> Self {
        self.hotplug_ports.push(id.to_owned());
        self
    }

    /// Arguments appended to QEMU's command line as they are.
    pub fn extra_args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.extra_args.extend(args.into_iter().map(Into::into));
        self
    }

    /// The SMBIOS system serial number (type 1) the guest sees, e.g. in Linux's
    /// `/sys/class/dmi/id/product_serial`: where cloud-init's NoCloud seed
    /// (`ds=nocloud;h=NAME`) goes when there is no network yet. Commas are escaped for
    /// QEMU's option syntax.
    pub fn smbios_serial(self, serial: &str) -> Self {
        let value = format!("type=1,serial={}", serial.replace(',', ",,"));
        self.extra_args(["-smbios".to_owned(), value])
    }

    /// Names the VM (normally after the test): when it is dropped, its serial log, QEMU's
    /// stderr and command line are kept under `target/test-artifacts/<name>/`.
    pub fn name(mut self, name: &str) -> Self {
        self.name = Some(name.to_owned());
        self
    }

    /// Where to keep the artifacts of a named VM, instead of `target/test-artifacts/<name>`.
    pub fn artifacts_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.artifacts_dir = Some(dir.into());
        self
    }

    /// The UEFI firmware to use instead of the installed OVMF.
    pub fn firmware(mut self, firmware: Firmware) -> Self {
        self.firmware = Some(firmware);
        self
    }

    /// Keep UEFI variables in this file across VMs (created from the template if missing)
    /// instead of a fresh private copy per VM.
    pub fn vars_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.vars_file = Some(path.into());
        self
    }

    /// Use this accelerator instead of the probed one.
    pub fn accel(mut self, accel: Accel) -> Self {
        self.accel = Some(accel);
        self
    }

    /// The QEMU binary (default `qemu-system-x86_64` from `PATH`).
    pub fn qemu_binary(mut self, path: impl Into<PathBuf>) -> Self {
        self.qemu = path.into();
        self
    }

    /// Starts the VM with its console captured; see [`Vm`].
    pub fn spawn(self) -> Result<Vm> {
        Vm::start(self)
    }

    /// Runs the VM on this terminal (serial console and monitor on stdio, Ctrl-A X quits)
    /// and returns QEMU's exit status when it ends.
    pub fn interactive(self) -> Result<ExitStatus> {
        let (disk, firmware) = self.checked_inputs()?;
        let accel = self.chosen_accel()?;
        let dir = temp_dir()?;
        let vars = self.vars_path(&firmware, dir.path())?;
        let plan = Plan {
            accel,
            firmware: &firmware,
            vars: &vars,
            disk: &disk,
            wiring: Wiring::Interactive,
        };
        let mut cmd = Command::new(&self.qemu);
        cmd.args(self.args(&plan)).env("TMPDIR", dir.path());
        cmd.stdin(Stdio::inherit())
            .stdout(Stdio::inherit())
            .stderr(Stdio::inherit());
        let mut child = cmd.spawn().map_err(|err| self.spawn_error(err))?;
        child.wait().map_err(QemuError::Wait)
    }

    /// The disk and firmware, checked to exist.
    pub(crate) fn checked_inputs(&self) -> Result<(PathBuf, Firmware)> {
        let disk = self.disk.clone().ok_or(QemuError::NoDisk)?;
        if !disk.is_file() {
            return Err(QemuError::DiskMissing { path: disk });
        }
        let firmware = match &self.firmware {
            Some(firmware) => firmware.clone(),
            None => Firmware::find()?,
        };
        firmware.check()?;
        Ok((disk, firmware))
    }

    pub(crate) fn chosen_accel(&self) -> Result<Accel> {
        match self.accel {
            Some(accel) => Ok(accel),
            None => {
                // An invalid BERTH_QEMU_ACCEL is an error here rather than silently probed.
                accel_from_env()?;
                Ok(accel())
            }
        }
    }

    /// The variable store this VM writes: the `vars_file`, or a private copy in `dir`.
    pub(crate) fn vars_path(&self, firmware: &Firmware, dir: &Path) -> Result<PathBuf> {
        match &self.vars_file {
            Some(path) if path.is_file() => Ok(path.clone()),
            Some(path) => firmware.private_vars(path).map(|()| path.clone()),
            None => {
                let path = dir.join("OVMF_VARS.fd");
                firmware.private_vars(&path).map(|()| path)
            }
        }
    }

    pub(crate) fn spawn_error(&self, err: std::io::Error) -> QemuError {
        if err.kind() == std::io::ErrorKind::NotFound {
            QemuError::QemuNotFound {
                binary: self.qemu.clone(),
            }
        } else {
            QemuError::Spawn {
                binary: self.qemu.clone(),
                source: err,
            }
        }
    }
}

pub(crate) fn temp_dir() -> Result<tempfile::TempDir> {
    tempfile::Builder::new()
        .prefix("berth-qemu-")
        .tempdir()
        .map_err(QemuError::TempDir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_errors_name_what_is_missing() {
        let err = QemuBuilder::default().checked_inputs().unwrap_err();
        assert!(matches!(err, QemuError::NoDisk));
        let err = QemuBuilder::default()
            .disk("/nonexistent/berth.raw")
            .checked_inputs()
            .unwrap_err();
        assert!(err.to_string().contains("/nonexistent/berth.raw"), "{err}");
        let err = QemuBuilder::default()
            .qemu_binary("/nonexistent/qemu")
            .spawn_error(std::io::ErrorKind::NotFound.into());
        assert!(err.to_string().contains("qemu-system-x86"), "{err}");
    }
}
