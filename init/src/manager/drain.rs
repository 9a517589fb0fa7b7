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
//!   `TimeoutStopSec=` (when `SendSIGKILL=yes`); with `TimeoutStopFailureMode=abort`,
//!   `WatchdogSignal=` between them, with `TimeoutAbortSec=`; after `ExecStopPost=` ran
//!   out of time, the drain begins with the step that mode names (kill: SIGKILL);
//! - mixed: the remaining processes get SIGKILL at once (systemd sends the group only
//!   the SIGKILL under mixed; without `SendSIGKILL=` they are left running, as there);
//! - process and none: nothing is waited for; the rest is left running (a runtime's
//!   containers), as before. (An `ExecStopPost=` out of time is no leftover: under
//!   process and mixed the service's own final states signal it, as systemd's
//!   `unit_kill_context` signals the control process by itself; under none no one does.)
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
use crate::unit::lifecycle::{state_timed_out, DrainEnd, FINAL_SIGKILL_LEFT};
use crate::unit::service::{KillMode, Service, TimeoutFailureMode};

/// Where a drain is: systemd's final-sigterm, final-watchdog and final-sigkill.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sent {
    Term,
    Abort,
    Kill,
}

impl Sent {
    fn signal(self, svc: &Service) -> i32 {
        match self {
            Sent::Term => svc.kill_signal,
            Sent::Abort => svc.watchdog_signal,
            Sent::Kill => nix::libc::SIGKILL,
        }
    }

    /// How long this step has: `TimeoutAbortSec=` for the abort, else `TimeoutStopSec=`.
    fn timeout(self, svc: &Service) -> Option<Duration> {
        match self {
            Sent::Abort => svc.abort_timeout(),
            _ => svc.timeout_stop,
        }
    }

    /// The step that reaches what is left in the group under `KillMode=` (systemd 252's
    /// `unit_kill_context`): under `mixed` only SIGKILL goes to the group, so a stop or
    /// abort signal, which reaches no one once the main and control processes are gone,
    /// moves on to SIGKILL; SIGKILL goes only with `SendSIGKILL=`; `process` and `none`
    /// reach no one.
    fn reaching(self, svc: &Service) -> Option<Sent> {
        match (svc.kill_mode, self) {
            (KillMode::Process | KillMode::None, _) => None,
            (KillMode::ControlGroup, Sent::Kill) => svc.send_sigkill.then_some(Sent::Kill),
            (KillMode::ControlGroup, step) => Some(step),
            (KillMode::Mixed, _) => svc.send_sigkill.then_some(Sent::Kill),
        }
    }
}

/// The first step of a drain: final-sigterm, or, after `ExecStopPost=` ran out of time,
/// the step `TimeoutStopFailureMode=` names.
fn first_step(svc: &Service, stop_post_timed_out: bool) -> Option<Sent> {
    let step = match svc.timeout_stop_failure_mode {
        _ if !stop_post_timed_out => Sent::Term,
        TimeoutFailureMode::Terminate => Sent::Term,
        TimeoutFailureMode::Abort => Sent::Abort,
        TimeoutFailureMode::Kill => Sent::Kill,
    };
    step.reaching(svc)
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
        let first = first_step(&svc, slot.run.stop_post_timed_out);
        let Some(sent) = first.filter(|_| self.cgroup_populated(name)) else {
            return;
        };
        let signal = sent.signal(&svc);
        let left = self.kill_group(name, signal);
        self.log(&format!(
            "berth: {name}: {left} processes left in its cgroup, sent signal {signal}"
        ));
        let deadline = sent.timeout(&svc).map(|t| self.sys.now() + t);
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
            let Some(svc) = self.slots.get(&name).and_then(|s| s.unit.service.clone()) else {
                continue;
            };
            let Some(sent) = self.drains.get(&name).map(|d| d.sent) else {
                continue;
            };
            // systemd 252's `service_dispatch_timer` in final-sigterm and final-watchdog.
            let next = match sent {
                Sent::Term if svc.timeout_stop_failure_mode == TimeoutFailureMode::Abort => {
                    Sent::Abort.reaching(&svc)
                }
                Sent::Term | Sent::Abort => svc.send_sigkill.then_some(Sent::Kill),
                Sent::Kill => None,
            };
            let state = match sent {
                Sent::Term => "final-sigterm",
                Sent::Abort => "final-watchdog",
                Sent::Kill => "final-sigkill",
            };
            if let Some(next) = next {
                let how = if next == Sent::Abort {
                    "Aborting"
                } else {
                    "Killing"
                };
                let said = state_timed_out(state, how, false);
                self.log(&format!("berth: {name}: {said}"));
                self.kill_group(&name, next.signal(&svc));
                let timeout = next.timeout(&svc);
                if let Some(d) = self.drains.get_mut(&name) {
                    d.sent = next;
                    d.deadline = timeout.map(|t| now + t);
                    d.end = DrainEnd::TimedOut { may_restart: true };
                }
            } else {
                let (why, may_restart) = match sent {
                    Sent::Kill => (FINAL_SIGKILL_LEFT.to_owned(), true),
                    _ => (state_timed_out(state, "Skipping SIGKILL", true), false),
                };
                self.log(&format!("berth: {name}: {why}"));
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
