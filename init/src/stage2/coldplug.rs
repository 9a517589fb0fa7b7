//! Drivers for the devices present at boot, as udev's coldplug loads them: every device
//! under `/sys/bus/*/devices/*` has a `modalias` (`pci:v00001AF4d00001041…`,
//! `vmbus:…`), and the modules whose `modules.alias` patterns match it are loaded. So a
//! node loads gVNIC on GCE, ENA on AWS and virtio-net under QEMU, and nothing for hardware
//! it does not have. A bus driver loaded in one pass (hv_vmbus on Azure) adds devices for
//! the next (netvsc, storvsc), so passes repeat until one loads nothing, at most
//! [`MAX_PASSES`]. There is no hotplug: a device added later waits for `modprobe`.

use std::collections::BTreeSet;
use std::path::Path;

use super::engine::{JobResult, Machine};
use crate::console;
use crate::sys::Syscalls;

/// Bus drivers that bring further buses are one level deep on the clouds Berth targets.
pub const MAX_PASSES: usize = 3;

/// Loads the modules the present devices ask for.
pub fn coldplug(m: &mut Machine) -> JobResult {
    let loader = m.modules()?;
    let mut tried: BTreeSet<String> = BTreeSet::new();
    let mut loaded: Vec<String> = Vec::new();
    for _ in 0..MAX_PASSES {
        let mut wanted: BTreeSet<String> = BTreeSet::new();
        for alias in modaliases(m.sys) {
            wanted.extend(loader.names_for(m.sys, &alias)?);
        }
        wanted.retain(|name| {
            !tried.contains(name) && !m.sys.exists(&Path::new("/sys/module").join(name))
        });
        if wanted.is_empty() {
            break;
        }
        for name in wanted {
            if tried.contains(&name) {
                continue; // a dependency of one loaded before it in this pass
            }
            // A driver that refuses its hardware is not a failed boot: said, and boot goes on.
            let mut done = Vec::new();
            let result = loader.load(m.sys, &[&name], &mut |module, _| {
                done.push(module.to_owned())
            });
            match result {
                Ok(_) => loaded.push(name.clone()),
                Err(e) => m.log(&format!(
                    "berth: coldplug: {name} not loaded: {}",
                    console::chain(&e)
                )),
            }
            tried.extend(done);
            tried.insert(name);
        }
    }
    m.log(&format!("berth: coldplug loaded: {}", loaded.join(" ")));
    Ok(())
}

/// The `modalias` of every device on every bus, each once.
pub(crate) fn modaliases(sys: &dyn Syscalls) -> BTreeSet<String> {
    let mut aliases = BTreeSet::new();
    let buses = sys.read_dir(Path::new("/sys/bus")).unwrap_or_default();
    for bus in buses {
        let devices = Path::new("/sys/bus").join(&bus).join("devices");
        for device in sys.read_dir(&devices).unwrap_or_default() {
            if let Ok(alias) = sys.read_to_string(&devices.join(&device).join("modalias")) {
                let alias = alias.trim();
                if !alias.is_empty() {
                    aliases.insert(alias.to_owned());
                }
            }
        }
    }
    aliases
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::fake::Fake;
    use berth_layout::cmdline::BootOptions;

    const BASE: &str = "/usr/lib/modules/6.1.0-test";

    fn node() -> Fake {
        let sys = Fake::new();
        sys.write("/proc/sys/kernel/osrelease", "6.1.0-test\n");
        sys.write(
            format!("{BASE}/modules.dep"),
            "kernel/drivers/net/virtio_net.ko.zst: kernel/drivers/net/net_failover.ko.zst\n\
             kernel/drivers/net/net_failover.ko.zst:\n\
             kernel/drivers/net/gve.ko.zst:\n\
             kernel/drivers/hv/hv_vmbus.ko.zst:\n\
             kernel/drivers/net/hyperv/hv_netvsc.ko.zst: kernel/drivers/hv/hv_vmbus.ko.zst\n",
        );
        sys.write(
            format!("{BASE}/modules.alias"),
            "alias pci:v00001AF4d00001041sv*sd*bc*sc*i* virtio_net\n\
             alias pci:v00001AE0d00000042sv*sd*bc*sc*i* gve\n\
             alias acpi*:VMBUS:* hv_vmbus\n\
             alias vmbus:635161f83edfc546913ff2d2f965ed0e hv_netvsc\n",
        );
        for path in [
            "kernel/drivers/net/virtio_net.ko.zst",
            "kernel/drivers/net/net_failover.ko.zst",
            "kernel/drivers/net/gve.ko.zst",
            "kernel/drivers/hv/hv_vmbus.ko.zst",
            "kernel/drivers/net/hyperv/hv_netvsc.ko.zst",
        ] {
            sys.write(format!("{BASE}/{path}"), "m");
        }
        sys
    }

    #[test]
    fn the_present_nic_gets_its_driver_and_absent_hardware_gets_none() {
        let sys = node();
        sys.write(
            "/sys/bus/pci/devices/0000:00:03.0/modalias",
            "pci:v00001AF4d00001041sv00001AF4sd00001100bc02sc00i00\n",
        );
        sys.write(
            "/sys/bus/pci/devices/0000:00:00.0/modalias",
            "pci:v00008086d000029C0sv00001AF4sd00001100bc06sc00i00\n",
        );
        sys.write("/sys/bus/cpu/devices/cpu0/modalias", "cpu:type:x86\n");
        let mut m = Machine::new(&sys, BootOptions::default());
        coldplug(&mut m).unwrap();
        assert_eq!(
            sys.loaded_modules(),
            ["net_failover.ko.zst", "virtio_net.ko.zst"]
        );
        assert!(sys
            .logs()
            .contains(&"berth: coldplug loaded: virtio_net".to_owned()));
    }

    #[test]
    fn a_bus_driver_and_the_device_on_its_bus_load_once_each() {
        let sys = node();
        sys.write("/sys/bus/acpi/devices/VMBUS:00/modalias", "acpi:VMBUS:\n");
        sys.write(
            "/sys/bus/vmbus/devices/f8615163-df3e-46c5-913f-f2d2f965ed0e/modalias",
            "vmbus:635161f83edfc546913ff2d2f965ed0e\n",
        );
        let mut m = Machine::new(&sys, BootOptions::default());
        coldplug(&mut m).unwrap();
        assert_eq!(
            sys.loaded_modules(),
            ["hv_vmbus.ko.zst", "hv_netvsc.ko.zst"]
        );
        assert!(sys
            .logs()
            .contains(&"berth: coldplug loaded: hv_netvsc".to_owned()));
    }

    #[test]
    fn a_driver_that_fails_is_said_and_boot_goes_on() {
        let sys = node();
        sys.write(
            "/sys/bus/pci/devices/0000:00:04.0/modalias",
            "pci:v00001AE0d00000042sv00001AE0sd00000058bc02sc00i00\n",
        );
        std::fs::remove_file(sys.host(format!("{BASE}/kernel/drivers/net/gve.ko.zst"))).unwrap();
        let mut m = Machine::new(&sys, BootOptions::default());
        coldplug(&mut m).unwrap();
        let logs = sys.logs();
        assert!(
            logs.iter()
                .any(|l| l.starts_with("berth: coldplug: gve not loaded:")),
            "{logs:?}"
        );
        assert!(
            logs.contains(&"berth: coldplug loaded: ".to_owned()),
            "{logs:?}"
        );
        assert!(!logs.iter().any(|l| l.contains("FAILED")), "{logs:?}");
    }
}
