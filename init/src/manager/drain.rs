//! A stop ends when the unit's cgroup is empty, as on systemd (systemd.kill(5)): with
//! `KillMode=control-group` or `mixed`, processes left in the cgroup once the main
//! process is gone (a fork bomb's children, a daemon's helpers) are signalled as systemd's
//! final-sigterm and final-sigkill states do, and the stop job completes only when the
//! cgroup's `cgroup.events` says `populated 0`. Meanwhile the unit is `deactivating`.
//!
//! - control-group: `KillSignal=` to every process left, then SIGKILL after
//!   `TimeoutStopSec=` (when `SendSIGKILL=yes`);
//! - mixed: the remaining processes get SIGKILL at once (systemd sends the group only
//!   the SIGKILL under mixed; without `SendSIGKILL=` they get `KillSignal=`);
//! - process and none: nothing is waited for; the rest is left running (a runtime's
//!   containers), as before.
//!
//! If even SIGKILL does not empty the group within another `TimeoutStopSec=`, that is
//! said and the stop completes. PID 1 is told of changes by its poll loop watching each
//! draining cgroup's `cgroup.events` ([`Manager::drain_watches`], then
//! [`Manager::cgroup_changed`]); nothing here waits or polls.

use super::*;
use crate::unit::service::KillMode;

/// Where a drain is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sent {
    Term,
    Kill,
}

pub(super) struct Drain {
    sent: Sent,
    /// When the next signal goes (or the drain gives up); `None`: no time limit.
    deadline: Option<Duration>,
    required_by: BTreeSet<UnitName>,
}

/// `populated 1` in a `cgroup.events` text.
pub fn populated(events: &str) -> bool {
    events
        .lines()
        .any(|l| l.split_whitespace().eq(["populated", "1"]))
}

impl Manager<'_> {
    /// Whether the cgroup of `name` still holds processes; a cgroup that cannot be read
    /// (never made, already removed) holds none.
    fn cgroup_populated(&self, name: &UnitName) -> bool {
        let events = self.cgroup_of(name).join("cgroup.events");
        self.sys
            .read_to_string(&events)
            .is_ok_and(|text| populated(&text))
    }

    /// A stop job's service has no main process left: whether its job must wait for the
    /// cgroup to empty (then the drain has begun, and its signal gone out).
    pub(super) fn drain_holds(&mut self, name: &UnitName) -> bool {
        if self.drains.contains_key(name) {
            return true;
        }
        let Some(svc) = self.slots.get(name).and_then(|s| s.unit.service.clone()) else {
            return false;
        };
        if matches!(svc.kill_mode, KillMode::Process | KillMode::None) {
            return false;
        }
        if !self.cgroup_populated(name) {
            return false;
        }
        let required_by = self
            .running
            .get(name)
            .map(|(_, r)| r.clone())
            .unwrap_or_default();
        let (sent, signal) = match (svc.kill_mode, svc.send_sigkill) {
            (KillMode::Mixed, true) => (Sent::Kill, nix::libc::SIGKILL),
            _ => (Sent::Term, svc.kill_signal),
        };
        let dir = self.cgroup_of(name);
        let left = self.sys.cgroup_signal(&dir, signal).unwrap_or(0);
        self.log(&format!(
            "berth: {name}: {left} processes left in its cgroup, sent signal {signal}"
        ));
        let deadline = svc.timeout_stop.map(|t| self.sys.now() + t);
        self.drains.insert(
            name.clone(),
            Drain {
                sent,
                deadline,
                required_by,
            },
        );
        if let Some(slot) = self.slots.get_mut(name) {
            slot.draining = true;
        }
        true
    }

    /// The `cgroup.events` files of the cgroups a stop waits on, for the poll loop.
    pub fn drain_watches(&self) -> Vec<(UnitName, PathBuf)> {
        self.drains
            .keys()
            .map(|n| (n.clone(), self.cgroup_of(n).join("cgroup.events")))
            .collect()
    }

    /// The cgroup of `name` may have changed: a drain whose group is empty completes its
    /// stop job.
    pub fn cgroup_changed(&mut self, name: &UnitName) {
        if self.drains.contains_key(name) && !self.cgroup_populated(name) {
            self.drain_done(name);
        }
    }

    fn drain_done(&mut self, name: &UnitName) {
        let Some(drain) = self.drains.remove(name) else {
            return;
        };
        if let Some(slot) = self.slots.get_mut(name) {
            slot.draining = false;
        }
        self.job_done(name, Ok(()), &drain.required_by);
    }

    /// The earliest drain deadline.
    pub(super) fn next_drain_deadline(&self) -> Option<Duration> {
        self.drains.values().filter_map(|d| d.deadline).min()
    }

    /// Drains past their deadline: SIGKILL after the stop signal, or give up after it.
    pub(super) fn fire_drain_timers(&mut self) {
        let now = self.sys.now();
        let due: Vec<UnitName> = self
            .drains
            .iter()
            .filter(|(_, d)| d.deadline.is_some_and(|at| at <= now))
            .map(|(n, _)| n.clone())
            .collect();
        for name in due {
            let svc = self.slots.get(&name).and_then(|s| s.unit.service.clone());
            let send_kill = svc.as_ref().is_some_and(|s| s.send_sigkill);
            let sent = self.drains.get(&name).map(|d| d.sent);
            if sent == Some(Sent::Term) && send_kill {
                let _ = self
                    .sys
                    .cgroup_signal(&self.cgroup_of(&name), nix::libc::SIGKILL);
                let timeout = svc.and_then(|s| s.timeout_stop);
                if let Some(d) = self.drains.get_mut(&name) {
                    d.sent = Sent::Kill;
                    d.deadline = timeout.map(|t| now + t);
                }
            } else {
                self.log(&format!(
                    "berth: {name}: processes still in its cgroup after the stop's time, going on"
                ));
                self.drain_done(&name);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::populated;

    #[test]
    fn populated_reads_cgroup_events() {
        assert!(populated("populated 1\nfrozen 0\n"));
        assert!(!populated("populated 0\nfrozen 0\n"));
        assert!(!populated(""));
    }
}
