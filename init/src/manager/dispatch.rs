//! Jobs: a start transaction queued from an anchor unit, each queued job run once its
//! ordering predecessors are done, a job's end failing what required it, and the stop jobs
//! of shutdown in reverse order.

use super::*;

impl Manager<'_> {
    /// Queues the start transaction of `name`, without running anything yet; returns the
    /// requirements found missing, for [`Manager::fail_unmet_and_dispatch`].
    pub(super) fn enqueue_start(&mut self, anchor: &UnitName) {
        let t = Transaction::start(
            anchor,
            &mut LoaderUnits {
                loader: &self.loader,
                host: &self.host,
                known: &self.slots,
            },
        );
        for note in &t.notes {
            match note {
                Note::Missing {
                    unit,
                    why,
                    required: true,
                } => self.log(&format!("berth: FAILED {unit}: {why}")),
                Note::Missing { .. } | Note::ConflictIgnored { .. } => {}
                Note::CycleBroken { cycle, dropped } => self.log(&format!(
                    "berth: ordering cycle {}: dropped {dropped} (only wanted)",
                    cycle.join(" -> ")
                )),
                Note::CycleUnbreakable { cycle } => self.log(&format!(
                    "berth: FAILED ordering cycle {}: every job is required, one ordering ignored",
                    cycle.join(" -> ")
                )),
            }
        }
        for (name, unit) in t.units {
            for w in &unit.warnings {
                self.log(&format!("berth: {name}: {w}"));
            }
            self.slots.entry(name).or_insert_with(|| Slot::new(unit));
        }
        for (name, job) in t.jobs {
            self.pending.insert(
                name,
                PendingJob {
                    kind: job.kind,
                    after: job.after,
                    required_by: job.required_by,
                },
            );
        }
        self.unmet.extend(t.unmet);
    }

    /// Fails the jobs whose requirements could not be loaded, then runs what can run.
    pub(super) fn fail_unmet_and_dispatch(&mut self) {
        for (requirer, missing) in std::mem::take(&mut self.unmet) {
            if let Some(job) = self.pending.remove(&requirer) {
                let why = format!("dependency {missing} failed");
                self.job_done(&requirer, Err(why), &job.required_by);
            }
        }
        self.dispatch();
    }

    /// Runs every queued job whose ordering predecessors are done, until none can run.
    pub(super) fn dispatch(&mut self) {
        loop {
            let ready: Vec<UnitName> = self
                .pending
                .iter()
                .filter(|(_, j)| {
                    j.after
                        .iter()
                        .all(|a| !self.pending.contains_key(a) && !self.running.contains_key(a))
                })
                .map(|(n, _)| n.clone())
                .collect();
            if ready.is_empty() {
                return;
            }
            for name in ready {
                if let Some(job) = self.pending.remove(&name) {
                    self.run_job(name, job);
                }
            }
        }
    }

    pub(super) fn run_job(&mut self, name: UnitName, job: PendingJob) {
        let now = self.sys.now();
        let Some(slot) = self.slots.get_mut(&name) else {
            return self.job_done(&name, Err("not loaded".into()), &job.required_by);
        };
        slot.job_done = None;
        match job.kind {
            JobKind::Verify => {
                let ok = slot.active_state() == Active::Active;
                let r = if ok {
                    Ok(())
                } else {
                    Err("Requisite= unit is not active".into())
                };
                self.job_done(&name, r, &job.required_by);
            }
            JobKind::Stop => {
                if slot.builtin && slot.unit.service.is_some() {
                    self.stop_builtin(&name, &job.required_by);
                } else if slot.unit.service.is_some() {
                    self.running
                        .insert(name.clone(), (JobKind::Stop, job.required_by));
                    self.feed(&name, Event::Stop);
                } else {
                    slot.active = false;
                    if slot.unit.socket.is_some() {
                        self.stop_socket(&name);
                    }
                    self.job_done(&name, Ok(()), &job.required_by);
                }
            }
            JobKind::Start => {
                let facts = (&self.facts, &self.host);
                let unmet = condition::evaluate(&slot.unit.conditions, &facts)
                    .err()
                    .map(|c| format!("{}={}", c.key, c.value));
                let failed = condition::evaluate(&slot.unit.asserts, &facts)
                    .err()
                    .map(|c| format!("{}={} failed", c.key, c.value));
                if let Some(c) = unmet {
                    self.sys.log(&format!("berth: skipped {name}: {c} not met"));
                    return self.job_done(&name, Ok(()), &job.required_by);
                }
                if let Some(why) = failed {
                    return self.job_done(&name, Err(why), &job.required_by);
                }
                let Some(slot) = self.slots.get_mut(&name) else {
                    return;
                };
                // A start of a unit already up (a built-in unit that sysinit.target
                // wants again) keeps the time it left inactive (`systemd-analyze blame`).
                if matches!(slot.active_state(), Active::Inactive | Active::Failed) {
                    slot.started_at = Some(now);
                }
                if slot.builtin && slot.unit.service.is_some() {
                    self.start_builtin(name, job.required_by);
                } else if slot.unit.service.is_some() {
                    self.running
                        .insert(name.clone(), (JobKind::Start, job.required_by));
                    self.feed(&name, Event::Start);
                } else {
                    let was_active = slot.active;
                    if slot.unit.socket.is_some() {
                        if let Err(why) = self.start_socket(&name) {
                            if let Some(slot) = self.slots.get_mut(&name) {
                                slot.failed = true;
                            }
                            return self.job_done(&name, Err(why), &job.required_by);
                        }
                    }
                    let Some(slot) = self.slots.get_mut(&name) else {
                        return;
                    };
                    if !was_active {
                        slot.activated_at = Some(now);
                    }
                    slot.active = true;
                    slot.failed = false;
                    self.job_done(&name, Ok(()), &job.required_by);
                }
            }
        }
    }

    /// A job ended: fail what required it, report, and go on.
    pub(super) fn job_done(
        &mut self,
        name: &UnitName,
        result: Result<(), String>,
        required_by: &BTreeSet<UnitName>,
    ) {
        self.running.remove(name);
        if let Some(slot) = self.slots.get_mut(name) {
            slot.job_done = Some(result.is_ok());
        }
        if self.restart_after_stop.remove(name) {
            self.enqueue_start(name);
        }
        if self.anchor.as_ref() == Some(name) && !self.startup_over {
            self.finish_startup();
        }
        match result {
            Ok(()) => {
                if self.anchor.as_ref() == Some(name) {
                    self.anchor_reached = true;
                    self.boot_times.finish.get_or_insert(self.sys.now());
                }
            }
            Err(why) => {
                self.log(&format!("berth: FAILED {name}: {why}"));
                self.fail_dependents(name, required_by);
            }
        }
        self.fail_unmet_and_dispatch();
    }

    /// A start job of a unit whose failure was said already ends failed without saying
    /// it again: what required it fails, and the queue goes on.
    pub(super) fn job_failed_before(&mut self, name: &UnitName, required_by: &BTreeSet<UnitName>) {
        self.running.remove(name);
        if let Some(slot) = self.slots.get_mut(name) {
            slot.job_done = Some(false);
        }
        self.fail_dependents(name, required_by);
        self.fail_unmet_and_dispatch();
    }

    fn fail_dependents(&mut self, name: &UnitName, required_by: &BTreeSet<UnitName>) {
        for dependent in required_by {
            if let Some(job) = self.pending.remove(dependent) {
                let why = format!("dependency {name} failed");
                self.job_done(dependent, Err(why), &job.required_by);
            }
        }
    }

    /// Queues stop jobs for every active unit, in the reverse of start order (a unit
    /// stops after the units ordered after it have stopped).
    pub fn stop_all(&mut self) {
        let active: BTreeSet<UnitName> = self
            .slots
            .iter()
            .filter(|(_, s)| matches!(s.active_state(), Active::Active | Active::Activating))
            .map(|(n, _)| n.clone())
            .collect();
        for name in &active {
            let mut after = BTreeSet::new();
            // Reverse ordering: whoever is ordered after me stops before me.
            for (other, slot) in &self.slots {
                if active.contains(other) && slot.unit.effective_after().contains(name) {
                    after.insert(other.clone());
                }
            }
            if let Some(slot) = self.slots.get(name) {
                for b in &slot.unit.deps.before {
                    if active.contains(b) {
                        after.insert(b.clone());
                    }
                }
            }
            self.pending.insert(
                name.clone(),
                PendingJob {
                    kind: JobKind::Stop,
                    after,
                    required_by: BTreeSet::new(),
                },
            );
        }
        self.anchor = None;
        self.stopping_all = true;
        self.dispatch();
    }
}
