//! Built-in units: steps PID 1 carries out itself (early boot's mounts, STATE, machine
//! identity, coldplug, modules, sysctl, tmpfiles) as units of the one engine, so that they
//! are ordered by `After=`/`Before=` like any unit, shown by `systemctl list-units` and
//! `status` with their result and by `systemd-analyze blame`, and a failure is said as
//! `berth: FAILED <unit>: <why>` like any unit's.
//!
//! A built-in unit is declared by unit-file text (parsed by the same parser) with no
//! command: the manager does not run its code. A start job of one makes it `activating`
//! and queues it; the caller (stage 2's event loop) takes the queue with
//! [`Manager::take_due_builtins`], runs each step and answers with
//! [`Manager::builtin_done`]. So the manager stays testable over the fake. Short steps
//! run between two turns of the same poll loop that answers signals; the long ones
//! (modules-load, sysctl, coldplug) in a forked child of PID 1 and STATE's e2fsck as a
//! helper program, so that the loop goes on meanwhile (`stage2::forked`, `stage2::early`).
//!
//! Each is a oneshot with `RemainAfterExit=yes` (as systemd's `systemd-sysctl.service`
//! and friends): once done it stays `active (exited)`; a failed one is `failed` with its
//! reason as the status text. It refuses manual start and stop (the steps are not meant
//! to run twice), a second start job while its step is queued or running joins the
//! first, one after the step failed ends failed at once (the step runs once per boot),
//! and a stop job (shutdown) only marks it inactive.

use super::*;
use crate::unit::lifecycle::{Failure, Phase};
use crate::unit::load::UnitFiles;
use crate::unit::syntax;

/// The folder named as a built-in unit's source (nothing is read from it).
pub const BUILTIN_SOURCE: &str = "/usr/lib/berth/builtin";

impl Manager<'_> {
    /// Declares the built-in unit `name` from its unit-file `text`; the text's problems
    /// are said as any unit file's.
    pub fn add_builtin(&mut self, name: &UnitName, text: &str) {
        let path = Path::new(BUILTIN_SOURCE).join(name.as_str());
        let (document, diagnostics) = syntax::parse(&path, text);
        let files = UnitFiles {
            name: name.clone(),
            fragment: Some(path),
            dropins: Vec::new(),
            masked: false,
            document,
            diagnostics,
            wants: Vec::new(),
            requires: Vec::new(),
        };
        let unit = Unit::from_files(files, &self.host);
        for w in &unit.warnings {
            self.log(&format!("berth: {name}: {w}"));
        }
        let mut slot = Slot::new(unit);
        slot.builtin = true;
        self.slots.insert(name.clone(), slot);
    }

    /// The built-in units whose start job runs now, in the order their jobs began; the
    /// caller runs each and answers [`Manager::builtin_done`].
    pub fn take_due_builtins(&mut self) -> Vec<UnitName> {
        std::mem::take(&mut self.due_builtins)
    }

    /// A built-in unit's step ended: `Err` holds why it failed.
    pub fn builtin_done(&mut self, name: &UnitName, result: Result<(), String>) {
        let now = self.sys.now();
        let Some(slot) = self.slots.get_mut(name) else {
            return;
        };
        match &result {
            Ok(()) => {
                slot.run.active = Active::Active;
                slot.run.phase = Phase::Exited;
                slot.run.result = None;
                slot.activated_at = Some(now);
                slot.status = None;
            }
            Err(why) => {
                slot.run.active = Active::Failed;
                slot.run.phase = Phase::Failed;
                slot.run.result = Some(Failure::Resources);
                slot.status = Some(why.clone());
            }
        }
        slot.said = Some(slot.run.active);
        slot.settled_as = slot.run.active;
        let required_by = self
            .running
            .get(name)
            .map(|(_, r)| r.clone())
            .unwrap_or_default();
        self.job_done(name, result, &required_by);
    }

    /// A start job of a built-in unit runs: activating until its step is done.
    pub(super) fn start_builtin(&mut self, name: UnitName, required_by: BTreeSet<UnitName>) {
        let Some(slot) = self.slots.get_mut(&name) else {
            return;
        };
        if slot.run.active == Active::Active {
            return self.job_done(&name, Ok(()), &required_by);
        }
        // Its step ran this boot and failed: a later transaction (default.target's) sees
        // that failure rather than running the step a second time.
        if slot.run.active == Active::Failed {
            return self.job_failed_before(&name, &required_by);
        }
        // Its step is queued or running for an earlier transaction (early boot's, when
        // default.target starts before early boot is done): this job joins that one and
        // ends with it, and the step runs once.
        if let Some((JobKind::Start, waiting)) = self.running.get_mut(&name) {
            waiting.extend(required_by);
            return;
        }
        slot.run.active = Active::Activating;
        slot.run.phase = Phase::Start;
        self.running
            .insert(name.clone(), (JobKind::Start, required_by));
        self.due_builtins.push(name);
    }

    /// A stop job of a built-in unit: nothing to undo here (the final steps of shutdown
    /// unmount), so it is inactive at once.
    pub(super) fn stop_builtin(&mut self, name: &UnitName, required_by: &BTreeSet<UnitName>) {
        if let Some(slot) = self.slots.get_mut(name) {
            if slot.run.active == Active::Active {
                slot.run.active = Active::Inactive;
                slot.run.phase = Phase::Dead;
                slot.settled_as = Active::Inactive;
            }
        }
        self.job_done(name, Ok(()), required_by);
    }
}

/// Adds to a unit loaded from disk the built-in units whose `[Install] WantedBy=` names it,
/// as the links systemd ships in `sysinit.target.wants/` do.
pub(super) fn add_wanted_builtins(unit: &mut Unit, slots: &BTreeMap<UnitName, Slot>) {
    for (name, slot) in slots.iter().filter(|(_, s)| s.builtin) {
        if slot.unit.install.wanted_by.contains(&unit.name) && !unit.deps.wants.contains(name) {
            unit.deps.wants.push(name.clone());
        }
    }
}
