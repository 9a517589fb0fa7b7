//! The QEMU command line for a [`QemuBuilder`]: one function, so that the machine every VM
//! test boots is visible in one place and checked by a golden test.
//!
//! The machine is fixed on purpose: q35, UEFI (OVMF), the disk as the first boot device
//! (virtio-blk unless a test picks the virtio-scsi or NVMe controller of a cloud, see
//! [`DiskBus`]), user-mode networking on virtio-net with loopback-only port forwards, and a
//! virtio RNG so the guest never waits for entropy. iPXE's option ROM is left out: Berth
//! boots from disk, and network boot attempts would cost a VM test minutes.

use std::ffi::OsString;
use std::path::Path;

use crate::accel::Accel;
use crate::builder::QemuBuilder;
use crate::firmware::Firmware;
use crate::opt_path;

/// The controller the disk hangs off, as the clouds Berth targets attach it: virtio-blk
/// (QEMU's usual), virtio-scsi (GCE's default), NVMe (AWS Nitro, GCE's newer machines).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum DiskBus {
    #[default]
    VirtioBlk,
    VirtioScsi,
    Nvme,
}

impl DiskBus {
    /// The `-device` arguments that attach the drive `disk0` as the first boot device.
    fn devices(self) -> &'static [&'static str] {
        match self {
            DiskBus::VirtioBlk => &["-device", "virtio-blk-pci,drive=disk0,bootindex=0"],
            DiskBus::VirtioScsi => &[
                "-device",
                "virtio-scsi-pci,id=scsi0",
                "-device",
                "scsi-hd,drive=disk0,bus=scsi0.0,bootindex=0",
            ],
            DiskBus::Nvme => &["-device", "nvme,drive=disk0,serial=berth-disk0,bootindex=0"],
        }
    }
}

/// How the serial console is wired.
pub(crate) enum Wiring<'a> {
    /// Serial on QEMU's stdin/stdout pipes (captured by the harness) and QMP on a socket.
    Captured { qmp: &'a Path },
    /// Serial and QEMU's monitor multiplexed on the terminal (Ctrl-A X quits, Ctrl-A C monitor).
    Interactive,
}

/// The parts of a command line the builder does not know by itself.
pub(crate) struct Plan<'a> {
    pub accel: Accel,
    pub firmware: &'a Firmware,
    pub vars: &'a Path,
    pub disk: &'a Path,
    pub wiring: Wiring<'a>,
}

impl QemuBuilder {
    /// The full QEMU argument list.
    pub(crate) fn args(&self, plan: &Plan<'_>) -> Vec<OsString> {
        let mut args: Vec<OsString> = Vec::new();
        let mut push = |items: &[&str]| args.extend(items.iter().map(OsString::from));
        push(&["-name", self.name.as_deref().unwrap_or("berth")]);
        push(&["-machine", "q35"]);
        push(&plan.accel.args());
        push(&[
            "-m",
            &self.memory_mib.to_string(),
            "-smp",
            &self.cpus.to_string(),
        ]);
        push(&["-nodefaults", "-display", "none"]);
        args.extend(plan.firmware.pflash_args(plan.vars));

        let mut drive = OsString::from(format!(
            "if=none,id=disk0,format={},file=",
            self.disk_format
        ));
        drive.push(opt_path(plan.disk));
        if self.snapshot {
            drive.push(",snapshot=on");
        }
        args.extend(["-drive".into(), drive]);
        args.extend(self.disk_bus.devices().iter().map(OsString::from));

        if self.network {
            let mut netdev = String::from("user,id=net0");
            for (host, guest) in &self.forwards {
                netdev.push_str(&format!(",hostfwd=tcp:127.0.0.1:{host}-:{guest}"));
            }
            for option in &self.user_net_options {
                netdev.push(',');
                // QEMU's option syntax doubles a comma inside a value.
                netdev.push_str(&option.replace(',', ",,"));
            }
            args.extend(["-netdev".into(), netdev.into()]);
            args.extend([
                "-device".into(),
                "virtio-net-pci,netdev=net0,romfile=".into(),
            ]);
        }
        args.extend([
            "-object".into(),
            "rng-random,id=rng0,filename=/dev/urandom".into(),
        ]);
        args.extend(["-device".into(), "virtio-rng-pci,rng=rng0".into()]);
        // After every other device, so that those keep their PCI addresses.
        for (i, id) in self.hotplug_ports.iter().enumerate() {
            args.extend([
                "-device".into(),
                format!("pcie-root-port,id={id},chassis={}", i + 1).into(),
            ]);
        }

        match plan.wiring {
            Wiring::Captured { qmp } => {
                args.extend(["-chardev".into(), "stdio,id=serial0,signal=off".into()]);
                args.extend(["-serial".into(), "chardev:serial0".into()]);
                let mut socket = OsString::from("unix:");
                socket.push(opt_path(qmp));
                socket.push(",server=on,wait=off");
                args.extend(["-qmp".into(), socket]);
            }
            Wiring::Interactive => {
                args.extend([
                    "-chardev".into(),
                    "stdio,id=serial0,mux=on,signal=off".into(),
                ]);
                args.extend(["-serial".into(), "chardev:serial0".into()]);
                args.extend(["-mon".into(), "chardev=serial0,mode=readline".into()]);
            }
        }
        if self.no_reboot {
            args.push("-no-reboot".into());
        }
        args.extend(self.extra_args.iter().cloned());
        args
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn joined(builder: &QemuBuilder, wiring: Wiring<'_>) -> String {
        let firmware = Firmware::new("/fw/CODE.fd", "/fw/VARS.fd");
        let plan = Plan {
            accel: Accel::Tcg,
            firmware: &firmware,
            vars: Path::new("/vm/VARS.fd"),
            disk: Path::new("/img/berth.raw"),
            wiring,
        };
        let args = builder.args(&plan);
        args.iter()
            .map(|a| a.to_string_lossy())
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn default_command_line() {
        let qmp = Path::new("/vm/qmp.sock");
        let line = joined(&QemuBuilder::default(), Wiring::Captured { qmp });
        assert_eq!(
            line,
            "-name berth -machine q35 -accel tcg -cpu max -m 1024 -smp 2 -nodefaults -display none \
             -drive if=pflash,format=raw,unit=0,readonly=on,file=/fw/CODE.fd \
             -drive if=pflash,format=raw,unit=1,file=/vm/VARS.fd \
             -drive if=none,id=disk0,format=raw,file=/img/berth.raw,snapshot=on \
             -device virtio-blk-pci,drive=disk0,bootindex=0 \
             -netdev user,id=net0 -device virtio-net-pci,netdev=net0,romfile= \
             -object rng-random,id=rng0,filename=/dev/urandom -device virtio-rng-pci,rng=rng0 \
             -chardev stdio,id=serial0,signal=off -serial chardev:serial0 \
             -qmp unix:/vm/qmp.sock,server=on,wait=off"
        );
    }

    #[test]
    fn options_change_the_command_line() {
        let builder = QemuBuilder::default()
            .name("reboot_test")
            .memory_mib(512)
            .cpus(1)
            .snapshot(false)
            .no_reboot(true)
            .port_forward(2222, 22)
            .port_forward(10250, 10250)
            .user_net_option("hostname=node-1")
            .extra_args(["-s"]);
        let line = joined(&builder, Wiring::Interactive);
        assert!(line.starts_with("-name reboot_test "), "{line}");
        assert!(line.contains("-m 512 -smp 1 "), "{line}");
        assert!(line.contains("file=/img/berth.raw -device"), "{line}");
        assert!(!line.contains("snapshot=on"), "{line}");
        assert!(line.contains(
            "user,id=net0,hostfwd=tcp:127.0.0.1:2222-:22,hostfwd=tcp:127.0.0.1:10250-:10250,hostname=node-1 "
        ));
        assert!(
            line.contains("stdio,id=serial0,mux=on,signal=off"),
            "{line}"
        );
        assert!(line.ends_with("-no-reboot -s"), "{line}");
        assert!(!line.contains("-qmp"), "{line}");

        let line = joined(&QemuBuilder::default().network(false), Wiring::Interactive);
        assert!(!line.contains("netdev"), "{line}");

        let builder = QemuBuilder::default()
            .hotplug_port("rp1")
            .hotplug_port("rp2");
        let line = joined(&builder, Wiring::Interactive);
        assert!(
            line.contains(
                "-device virtio-rng-pci,rng=rng0 -device pcie-root-port,id=rp1,chassis=1 \
                 -device pcie-root-port,id=rp2,chassis=2 -chardev "
            ),
            "{line}"
        );

        let line = joined(
            &QemuBuilder::default().disk_bus(DiskBus::VirtioScsi),
            Wiring::Interactive,
        );
        assert!(
            line.contains(
                "snapshot=on -device virtio-scsi-pci,id=scsi0 \
                 -device scsi-hd,drive=disk0,bus=scsi0.0,bootindex=0 -netdev"
            ),
            "{line}"
        );
        let line = joined(
            &QemuBuilder::default().disk_bus(DiskBus::Nvme),
            Wiring::Interactive,
        );
        assert!(
            line.contains(
                "snapshot=on -device nvme,drive=disk0,serial=berth-disk0,bootindex=0 -netdev"
            ),
            "{line}"
        );

        let builder = QemuBuilder::default().smbios_serial("ds=nocloud;h=node-1;s=a,b");
        let line = joined(&builder, Wiring::Interactive);
        assert!(
            line.ends_with(" -smbios type=1,serial=ds=nocloud;h=node-1;s=a,,b"),
            "{line}"
        );
    }
}
