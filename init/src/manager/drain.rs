//! A service's run ends when its cgroup is empty, as on systemd (systemd.kill(5)): with
//! `KillMode=control-group` or `mixed`, processes left in the cgroup once the run is over
//! (a fork bomb's children, a daemon's helpers) are signalled as systemd's final-sigterm
//! and final-sigkill states do, and the unit becomes inactive or failed only when the
//! cgroup's `cgroup.events` says `populated 0`. Meanwhile the unit is `deactivating`.
//! That holds however the run ended: a stop job, a failed start, or the main process
//! exiting on its own with helpers left behind (then a restart waits for the drain too).
//! It is the drain of what is left after `ExecStopPost=`: a stop whose signal reached the
//! group alone already waited for it to empty before `ExecStopPost=` (stop-sigterm and
//! stop-sigkill, [`ServiceRun::waits_for_group`]), watched the same way.
//!
//! - control-group: `KillSignal=` to every process left, then SIGKILL after
//!   `TimeoutStopSec=` (when `SendSIGKILL=yes`);
//! - mixed: the remaining processes get SIGKILL at once (systemd sends the group only
//!   the SIGKILL under mixed; without `SendSIGKILL=` they are left running, as there);
//! - process and none: nothing is waited for; the rest is left running (a runtime's
//!   containers), as before.
//!
//! A drain that runs out of time fails the unit with result `timeout`, as systemd's
//! final-sigterm timeout does (even when the SIGKILL that follows empties the group), and
//! its final-sigkill timeout (the group never empties: processes stuck in the kernel).
//! As systemd decides `Restart=` only after these states, the run's end and restart are
//! decided again when the drain ends ([`ServiceRun::drain_ended`]), with that result;
//! the restart's `RestartSec=` counts from then.
//! PID 1 is told of changes by its poll loop watching each draining cgroup's
//! `cgroup.events` ([`Manager::drain_watches`], then [`Manager::cgroup_changed`]);
//! nothing here waits or polls.

use super::*;
use crate::unit::lifecycle::DrainEnd;
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
    /// How it ended, once its time ran out (else: [`DrainEnd::Empty`]).
    end: DrainEnd,
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
    pub(super) fn cgroup_populated(&self, name: &UnitName) -> bool {
        let events = self.cgroup_of(name).join("cgroup.events");
        self.sys
            .read_to_string(&events)
            .is_ok_and(|text| populated(&text))
    }

    /// Before a service's state is settled: when its run has just ended with processes
    /// left in its cgroup, the drain begins (its signal goes out) and the unit is
    /// `deactivating` until the drain is done. Each ended run is looked at once.
    pub(super) fn drain_if_left(&mut self, name: &UnitName) {
        let Some(slot) = self.slots.get_mut(name) else {
            return;
        };
        let Some(svc) = slot.unit.service.clone() else {
            return;
        };
        if !slot.run.ended() {
            slot.drain_checked = false;
            return;
        }
        if slot.drain_checked || slot.builtin {
            return;
        }
        slot.drain_checked = true;
        // mixed without SendSIGKILL=: systemd's final-sigterm signals only the main and
        // control processes, gone by now, so the rest is left running.
        let signalled = match svc.kill_mode {
            KillMode::ControlGroup => true,
            KillMode::Mixed => svc.send_sigkill,
            KillMode::Process | KillMode::None => false,
        };
        if !signalled || !self.cgroup_populated(name) {
            return;
        }
        let (sent, signal) = match svc.kill_mode {
            KillMode::Mixed => (Sent::Kill, nix::libc::SIGKILL),
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
                end: DrainEnd::Empty,
            },
        );
        if let Some(slot) = self.slots.get_mut(name) {
            slot.draining = true;
        }
    }

    /// The `cgroup.events` files of the cgroups a stop waits on, for the poll loop: the
    /// drains of ended runs, and the stops whose signal went to the group alone (which
    /// wait for it to empty before `ExecStopPost=`, [`ServiceRun::waits_for_group`]).
    pub fn drain_watches(&self) -> Vec<(UnitName, PathBuf)> {
        let stopping = self
            .slots
            .iter()
            .filter(|(_, s)| s.run.waits_for_group())
            .map(|(n, _)| n);
        let mut names: Vec<&UnitName> = self.drains.keys().chain(stopping).collect();
        names.sort();
        names.dedup();
        names
            .into_iter()
            .map(|n| (n.clone(), self.cgroup_of(n).join("cgroup.events")))
            .collect()
    }

    /// The cgroup of `name` may have changed: when it is empty, a stop waiting for that
    /// goes on, and a drain ends and the unit's state is settled.
    pub fn cgroup_changed(&mut self, name: &UnitName) {
        if self.cgroup_populated(name) {
            return;
        }
        if self
            .slots
            .get(name)
            .is_some_and(|s| s.run.waits_for_group())
        {
            self.feed(name, Event::CgroupEmpty);
        }
        if self.drains.contains_key(name) {
            self.drain_done(name);
        }
    }

    fn drain_done(&mut self, name: &UnitName) {
        let Some(drain) = self.drains.remove(name) else {
            return;
        };
        let Some(slot) = self.slots.get_mut(name) else {
            return;
        };
        slot.draining = false;
        if let Some(svc) = slot.unit.service.clone() {
            for action in slot.run.drain_ended(&svc, drain.end) {
                self.act(name, action);
            }
        }
        self.settle(name);
    }

    /// Whether `name` waits for its cgroup to empty (its restart timer waits too).
    pub(super) fn is_draining(&self, name: &UnitName) -> bool {
        self.drains.contains_key(name)
    }

    /// The earliest drain deadline.
    pub(super) fn next_drain_deadline(&self) -> Option<Duration> {
        self.drains.values().filter_map(|d| d.deadline).min()
    }

    /// Drains past their deadline: SIGKILL after the stop signal, or give up after it;
    /// either way the unit will be failed with result `timeout`.
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
                self.log(&format!(
                    "berth: {name}: State 'final-sigterm' timed out. Killing."
                ));
                let _ = self
                    .sys
                    .cgroup_signal(&self.cgroup_of(&name), nix::libc::SIGKILL);
                let timeout = svc.and_then(|s| s.timeout_stop);
                if let Some(d) = self.drains.get_mut(&name) {
                    d.sent = Sent::Kill;
                    d.deadline = timeout.map(|t| now + t);
                    d.end = DrainEnd::TimedOut { may_restart: true };
                }
            } else {
                let (why, may_restart) = match sent {
                    Some(Sent::Kill) => ("Processes still around after final SIGKILL", true),
                    _ => ("State 'final-sigterm' timed out. Skipping SIGKILL", false),
                };
                self.log(&format!("berth: {name}: {why}. Entering failed mode."));
                if let Some(d) = self.drains.get_mut(&name) {
                    d.end = DrainEnd::TimedOut { may_restart };
                }
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
