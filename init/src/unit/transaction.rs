//! The start transaction (systemd's "transaction.c" in spirit): from one anchor unit
//! (`default.target`), every unit it pulls in through `Requires=`, `BindsTo=`, `Wants=`
//! and the `.wants/`/`.requires/` folders gets a start job, `Conflicts=` gets stop jobs,
//! the implicit dependencies of `DefaultDependencies=yes` are added, and the jobs are
//! ordered by `After=`/`Before=`.
//!
//! An ordering cycle is broken as systemd breaks it: by dropping a job in the cycle that
//! only a `Wants=` pulled in, and the transaction says which (the caller prints it on the
//! console). A cycle of required jobs cannot be broken and fails the transaction. A unit
//! that a `Requires=` needs but that cannot be loaded fails the units that require it;
//! one that only a `Wants=` names is skipped. The result is a set of jobs, each with the
//! jobs it waits for, so that the engine starts every job whose predecessors are done:
//! units start in parallel where ordering allows.

use std::collections::{BTreeMap, BTreeSet};

use super::model::Unit;
use super::name::{UnitName, UnitType};

/// A source of typed units by name (the loader with its cache, or a test table).
pub trait Units {
    /// The unit, or why it cannot be had.
    fn unit(&mut self, name: &UnitName) -> Result<Unit, String>;
}

/// How a job entered the transaction: required jobs fail their requirers when they fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Pull {
    Anchor,
    Required,
    Wanted,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobKind {
    Start,
    Stop,
    /// `Requisite=`: the unit must already be active; nothing is started.
    Verify,
}

#[derive(Debug, Clone)]
pub struct Job {
    pub unit: UnitName,
    pub kind: JobKind,
    pub pull: Pull,
    /// Jobs that must finish before this one runs (from `After=`/`Before=`).
    pub after: BTreeSet<UnitName>,
    /// Units whose start fails if this job fails (`Requires=`, `BindsTo=` in reverse).
    pub required_by: BTreeSet<UnitName>,
}

/// What a transaction said while it was built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Note {
    /// A unit that could not be loaded; `fatal` when something required it.
    Missing {
        unit: String,
        why: String,
        required: bool,
    },
    /// A job dropped to break an ordering cycle: the cycle, then the unit dropped.
    CycleBroken { cycle: Vec<String>, dropped: String },
    /// A cycle of required jobs.
    CycleUnbreakable { cycle: Vec<String> },
    /// A job that both starts and stops a unit (`Conflicts=`): the stop job was dropped.
    ConflictIgnored { unit: String },
}

#[derive(Debug, Default)]
pub struct Transaction {
    pub jobs: BTreeMap<UnitName, Job>,
    pub units: BTreeMap<UnitName, Unit>,
    pub notes: Vec<Note>,
    /// (requirer, missing unit): jobs that must fail because what they require is not
    /// there.
    pub unmet: Vec<(UnitName, UnitName)>,
}

fn name(s: &str) -> Option<UnitName> {
    UnitName::parse(s).ok()
}

/// The implicit dependencies of `DefaultDependencies=yes` (systemd.service(5),
/// systemd.target(5)): (requires, after, before, conflicts).
pub(crate) fn implicit(
    unit: &Unit,
) -> (Vec<UnitName>, Vec<UnitName>, Vec<UnitName>, Vec<UnitName>) {
    let mut requires = Vec::new();
    let mut after = Vec::new();
    let mut before = Vec::new();
    let mut conflicts = Vec::new();
    if !unit.default_dependencies {
        return (requires, after, before, conflicts);
    }
    match unit.name.unit_type() {
        UnitType::Service => {
            requires.extend(name("sysinit.target"));
            after.extend(name("sysinit.target"));
            after.extend(name("basic.target"));
            before.extend(name("shutdown.target"));
            conflicts.extend(name("shutdown.target"));
        }
        // Before the target basic.target waits for (systemd.socket(5), .timer, .path).
        UnitType::Socket | UnitType::Timer | UnitType::Path => {
            requires.extend(name("sysinit.target"));
            after.extend(name("sysinit.target"));
            before.extend(name(match unit.name.unit_type() {
                UnitType::Socket => "sockets.target",
                UnitType::Timer => "timers.target",
                _ => "paths.target",
            }));
            before.extend(name("shutdown.target"));
            conflicts.extend(name("shutdown.target"));
        }
        UnitType::Target => {
            // A target orders itself after what it pulls in.
            after.extend(unit.deps.wants.iter().cloned());
            after.extend(unit.deps.requires.iter().cloned());
            before.extend(name("shutdown.target"));
            conflicts.extend(name("shutdown.target"));
        }
        UnitType::Slice => {
            before.extend(name("slices.target"));
            before.extend(name("shutdown.target"));
            conflicts.extend(name("shutdown.target"));
        }
        UnitType::Mount => {
            before.extend(name("local-fs.target"));
            before.extend(name("umount.target"));
            conflicts.extend(name("umount.target"));
        }
        _ => {}
    }
    (requires, after, before, conflicts)
}

impl Transaction {
    /// Builds the start transaction for `anchor`.
    pub fn start(anchor: &UnitName, units: &mut dyn Units) -> Transaction {
        let mut t = Transaction::default();
        let mut queue = vec![(anchor.clone(), Pull::Anchor, None::<UnitName>)];
        let mut stops = Vec::new();
        while let Some((unit_name, pull, by)) = queue.pop() {
            if let Some(job) = t.jobs.get_mut(&unit_name) {
                job.pull = job.pull.min(pull);
                if pull == Pull::Required {
                    job.required_by.extend(by);
                }
                continue;
            }
            let unit = match units.unit(&unit_name) {
                Ok(u) => u,
                Err(why) => {
                    if let (Pull::Required, Some(by)) = (pull, &by) {
                        t.unmet.push((by.clone(), unit_name.clone()));
                    }
                    t.notes.push(Note::Missing {
                        unit: unit_name.to_string(),
                        why,
                        required: pull != Pull::Wanted,
                    });
                    continue;
                }
            };
            let (req, _, _, conflicts) = implicit(&unit);
            let d = &unit.deps;
            for n in d.requires.iter().chain(&d.binds_to).chain(&req) {
                queue.push((n.clone(), Pull::Required, Some(unit_name.clone())));
            }
            for n in d.wants.iter().chain(&d.upholds) {
                queue.push((n.clone(), Pull::Wanted, None));
            }
            stops.extend(d.conflicts.iter().chain(&conflicts).cloned());
            let mut required_by = BTreeSet::new();
            if pull == Pull::Required {
                required_by.extend(by);
            }
            t.jobs.insert(
                unit_name.clone(),
                Job {
                    unit: unit_name.clone(),
                    kind: JobKind::Start,
                    pull,
                    after: BTreeSet::new(),
                    required_by,
                },
            );
            for n in &d.requisite {
                t.jobs.entry(n.clone()).or_insert_with(|| Job {
                    unit: n.clone(),
                    kind: JobKind::Verify,
                    pull: Pull::Required,
                    after: BTreeSet::new(),
                    required_by: BTreeSet::from([unit_name.clone()]),
                });
            }
            t.units.insert(unit_name, unit);
        }
        for n in stops {
            if t.jobs.contains_key(&n) {
                // Conflicting with a unit this same transaction starts: keep the start.
                if !t.notes.contains(&Note::ConflictIgnored {
                    unit: n.to_string(),
                }) {
                    t.notes.push(Note::ConflictIgnored {
                        unit: n.to_string(),
                    });
                }
            }
        }
        t.order();
        t.break_cycles();
        t
    }

    /// Fills every job's `after` from `After=`/`Before=` (both directions), among the
    /// jobs of this transaction.
    fn order(&mut self) {
        let mut edges: Vec<(UnitName, UnitName)> = Vec::new();
        for (n, unit) in &self.units {
            let (_, after, before, _) = implicit(unit);
            for a in unit.deps.after.iter().chain(&after) {
                edges.push((n.clone(), a.clone()));
            }
            for b in unit.deps.before.iter().chain(&before) {
                edges.push((b.clone(), n.clone()));
            }
        }
        for (later, earlier) in edges {
            if later != earlier && self.jobs.contains_key(&earlier) {
                if let Some(job) = self.jobs.get_mut(&later) {
                    job.after.insert(earlier);
                }
            }
        }
    }

    /// Finds ordering cycles and drops a Wants-only job from each; a cycle of required
    /// jobs is reported and its ordering edge removed so the rest can still run.
    fn break_cycles(&mut self) {
        while let Some(cycle) = self.find_cycle() {
            let names: Vec<String> = cycle.iter().map(|n| n.to_string()).collect();
            let droppable = cycle
                .iter()
                .find(|n| self.jobs.get(*n).is_some_and(|j| j.pull == Pull::Wanted));
            match droppable.cloned() {
                Some(drop) => {
                    self.jobs.remove(&drop);
                    self.units.remove(&drop);
                    for job in self.jobs.values_mut() {
                        job.after.remove(&drop);
                    }
                    self.notes.push(Note::CycleBroken {
                        cycle: names,
                        dropped: drop.to_string(),
                    });
                }
                None => {
                    // Remove one edge (the last of the cycle) so the loop terminates.
                    if let (Some(a), Some(b)) = (cycle.first(), cycle.last()) {
                        if let Some(job) = self.jobs.get_mut(b) {
                            job.after.remove(a);
                        }
                    }
                    self.notes.push(Note::CycleUnbreakable { cycle: names });
                }
            }
        }
    }

    /// One ordering cycle (each unit waits for the next, the last for the first).
    fn find_cycle(&self) -> Option<Vec<UnitName>> {
        #[derive(Clone, Copy, PartialEq)]
        enum Mark {
            New,
            Active,
            Done,
        }
        let mut marks: BTreeMap<&UnitName, Mark> =
            self.jobs.keys().map(|k| (k, Mark::New)).collect();
        for start in self.jobs.keys() {
            if marks.get(start) != Some(&Mark::New) {
                continue;
            }
            // Iterative DFS with an explicit path.
            let mut path: Vec<(&UnitName, Vec<&UnitName>)> = Vec::new();
            marks.insert(start, Mark::Active);
            path.push((start, self.jobs[start].after.iter().collect()));
            while let Some((node, next)) = path.last_mut() {
                let node = *node;
                match next.pop() {
                    Some(succ) => match marks.get(succ).copied() {
                        Some(Mark::New) => {
                            marks.insert(succ, Mark::Active);
                            path.push((succ, self.jobs[succ].after.iter().collect()));
                        }
                        Some(Mark::Active) => {
                            let from = path.iter().position(|(n, _)| *n == succ).unwrap_or(0);
                            return Some(path[from..].iter().map(|(n, _)| (*n).clone()).collect());
                        }
                        _ => {}
                    },
                    None => {
                        marks.insert(node, Mark::Done);
                        path.pop();
                    }
                }
            }
        }
        None
    }

    /// The jobs in waves: every job of a wave waits only for jobs of earlier waves, so a
    /// wave's jobs may run in parallel. (For tests and `systemd-analyze`-style output; the
    /// engine starts each job as soon as its own predecessors are done.)
    pub fn waves(&self) -> Vec<Vec<UnitName>> {
        let mut done: BTreeSet<&UnitName> = BTreeSet::new();
        let mut waves = Vec::new();
        while done.len() < self.jobs.len() {
            let wave: Vec<UnitName> = self
                .jobs
                .values()
                .filter(|j| !done.contains(&j.unit) && j.after.iter().all(|a| done.contains(a)))
                .map(|j| j.unit.clone())
                .collect();
            if wave.is_empty() {
                break; // only after an unbreakable cycle, already noted
            }
            for n in &wave {
                if let Some((k, _)) = self.jobs.get_key_value(n) {
                    done.insert(k);
                }
            }
            waves.push(wave);
        }
        waves
    }
}

#[cfg(test)]
#[path = "transaction_tests.rs"]
mod tests;
