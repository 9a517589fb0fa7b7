//! Which of stage 1's modules to load: the storage drivers of the devices present, as
//! udev's coldplug picks them, and the rest of `STAGE1_MODULES` always.
//!
//! The initramfs keeps the disk drivers of every cloud Berth targets, but loading all of
//! them cost every boot the SCSI stack (scsi_mod, virtio_scsi, sd_mod) on a virtio-blk
//! disk: about a quarter of stage 1 under TCG. So a driver in [`DEVICE_DRIVERS`] is loaded
//! only when a device's `modalias` (`/sys/bus/*/devices/*/modalias`) matches one of its
//! `modules.alias` patterns. A bus driver brings devices for the next pass (virtio_pci
//! makes the virtio devices that virtio_blk or virtio_scsi drive), so passes repeat until
//! one loads nothing. A SCSI host scans its targets asynchronously, so the SCSI disk driver
//! [`SCSI_DISK`] is loaded as soon as the SCSI bus exists rather than when a disk shows up.
//! Without `modules.alias` in the initramfs (a kernel of one's own, an older builder)
//! every module is loaded, as before.

use std::collections::BTreeSet;
use std::path::Path;

use crate::module_loader::{Loaded, ModuleLoadError, ModuleLoader};
use crate::stage2::coldplug::modaliases;
use crate::sys::Syscalls;
use berth_layout::module_alias::ModuleAliases;
use berth_layout::module_index::normalize;

/// The modules of `STAGE1_MODULES` that drive a device, loaded only for present devices.
pub const DEVICE_DRIVERS: &[&str] = &["virtio_pci", "virtio_blk", "virtio_scsi", "sd_mod", "nvme"];

/// The SCSI disk driver: loaded once the SCSI bus (`/sys/bus/scsi`) exists.
pub const SCSI_DISK: &str = "sd_mod";

/// Passes over the devices: PCI, then virtio, then the SCSI bus, with room for one more.
const MAX_PASSES: usize = 4;

/// Loads the storage drivers the present devices need, and beside them the other
/// `wanted` modules (device-mapper: they need no device); returns how many module files
/// were inserted. The drivers are reported first, then the others.
pub fn load(
    sys: &dyn Syscalls,
    loader: &ModuleLoader,
    wanted: &[&str],
    report: &mut dyn FnMut(&str, Loaded),
) -> Result<usize, ModuleLoadError> {
    let Some(aliases) = loader.aliases(sys)? else {
        return loader.load(sys, wanted, report);
    };
    let (drivers, always): (Vec<&str>, Vec<&str>) = wanted
        .iter()
        .partition(|name| DEVICE_DRIVERS.contains(&normalize(name).as_str()));
    let beside = loader.start_load(sys, &always)?;
    // Waited for even when a driver fails: nothing is left loading behind the failure.
    let drivers = load_drivers(sys, loader, aliases, &drivers, report);
    let others = beside.finish(report);
    Ok(drivers? + others?)
}

/// The passes over the present devices' drivers.
fn load_drivers(
    sys: &dyn Syscalls,
    loader: &ModuleLoader,
    aliases: &ModuleAliases,
    drivers: &[&str],
    report: &mut dyn FnMut(&str, Loaded),
) -> Result<usize, ModuleLoadError> {
    let drivers: BTreeSet<String> = drivers.iter().map(|name| normalize(name)).collect();
    let mut inserted = 0;
    let mut tried: BTreeSet<String> = BTreeSet::new();
    for _ in 0..MAX_PASSES {
        let mut pass: BTreeSet<String> = modaliases(sys)
            .iter()
            .flat_map(|alias| aliases.lookup(alias))
            .filter(|name| drivers.contains(*name))
            .map(str::to_owned)
            .collect();
        if drivers.contains(SCSI_DISK) && sys.exists(Path::new("/sys/bus/scsi")) {
            pass.insert(SCSI_DISK.to_owned());
        }
        pass.retain(|name| !tried.contains(name));
        if pass.is_empty() {
            break;
        }
        let names: Vec<&str> = pass.iter().map(String::as_str).collect();
        inserted += loader.load(sys, &names, report)?;
        tried.extend(pass);
    }
    Ok(inserted)
}
