//! The poll loop's watches on the `cgroup.events` files of the cgroups an ended run waits on
//! ([`crate::manager::Manager::drain_watches`]). The kernel wakes a poll for `POLLPRI`
//! on such a file when the group's `populated` value changes (cgroup-v2.rst); the file
//! then keeps signalling until it is read through that same descriptor, so a watch that
//! fired is closed, and the next turn of the loop opens it again and has the manager read
//! the file. A watch is also checked right after it is opened, since a change before the
//! open wakes nobody. So the loop sleeps in `poll` until the group changes: no busy wait.

use std::collections::BTreeMap;
use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd};

use crate::manager::Manager;
use crate::sys::Syscalls;
use crate::unit::name::UnitName;

#[derive(Default)]
pub struct CgroupWatches {
    open: BTreeMap<UnitName, File>,
}

impl CgroupWatches {
    /// Opens a watch for each cgroup the manager waits on and closes the others; a new
    /// watch's group is checked at once.
    pub fn update(&mut self, sys: &dyn Syscalls, manager: &mut Manager) {
        let wanted = manager.drain_watches();
        self.open
            .retain(|name, _| wanted.iter().any(|(w, _)| w == name));
        for (name, events) in wanted {
            if self.open.contains_key(&name) {
                continue;
            }
            if let Ok(file) = sys.open(&events) {
                self.open.insert(name.clone(), file);
            }
            // Unreadable: the group is gone, which the manager reads as empty.
            manager.cgroup_changed(&name);
        }
        // A check may have completed a drain.
        let wanted = manager.drain_watches();
        self.open
            .retain(|name, _| wanted.iter().any(|(w, _)| w == name));
    }

    /// The descriptors to poll for `POLLPRI`, with their units.
    pub fn fds(&self) -> Vec<(UnitName, BorrowedFd<'_>)> {
        self.open
            .iter()
            .map(|(name, file)| (name.clone(), file.as_fd()))
            .collect()
    }

    /// Closes the watches that fired (the next [`CgroupWatches::update`] reopens them and
    /// has their groups read).
    pub fn fired(&mut self, names: &[UnitName]) {
        for name in names {
            self.open.remove(name);
        }
    }
}
