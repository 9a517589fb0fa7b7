//! `RuntimeDirectory=` folders end with the run that made them, as systemd 252's
//! `unit_destroy_runtime_data`: removed when the run is over (dead, failed, or waiting
//! for an automatic restart), unless `RuntimeDirectoryPreserve=yes`, or `restart` while
//! the unit is being restarted. A restart's start makes them again, empty.

use std::path::Path;

use super::*;
use crate::unit::lifecycle::Phase;
use crate::unit::service::Preserve;

impl Manager<'_> {
    /// Notes that `name`'s run has made its `RuntimeDirectory=` folders.
    pub(super) fn runtime_dirs_made(&mut self, name: &UnitName) {
        let made = self.slots.get(name).is_some_and(|s| {
            s.unit
                .service
                .as_ref()
                .is_some_and(|svc| !svc.runtime_directory.names.is_empty())
        });
        if made {
            self.runtime_dirs.insert(name.clone());
        }
    }

    /// Removes `name`'s `RuntimeDirectory=` folders if its run is over and its
    /// `RuntimeDirectoryPreserve=` lets them go.
    pub(super) fn release_runtime_dirs(&mut self, name: &UnitName) {
        if !self.runtime_dirs.contains(name) {
            return;
        }
        let Some(slot) = self.slots.get(name) else {
            return;
        };
        let Some(svc) = &slot.unit.service else {
            return;
        };
        let restarting = match slot.run.phase {
            Phase::AutoRestart => true,
            Phase::Dead | Phase::Failed => self.restart_after_stop.contains(name),
            _ => return,
        };
        let remove = match (svc.runtime_directory_preserve, restarting) {
            (Preserve::No, _) => true,
            (Preserve::Yes, _) => false,
            // Kept for the restart; the run after it decides again.
            (Preserve::Restart, true) => return,
            (Preserve::Restart, false) => true,
        };
        self.runtime_dirs.remove(name);
        if !remove {
            return;
        }
        let names = svc.runtime_directory.names.clone();
        for n in names {
            let dir = Path::new("/run").join(&n);
            match self.sys.remove_tree(&dir) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => self.log(&format!(
                    "berth: {name}: cannot remove {}: {e}",
                    dir.display()
                )),
            }
        }
    }
}
