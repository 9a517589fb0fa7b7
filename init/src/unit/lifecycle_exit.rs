//! A process of the service ended: a command's exit moves its set on (or fails the run),
//! the main process's exit ends the run per `Type=` and `RemainAfterExit=`, and a process
//! that failed a step before `execve` counts as one that exited with that step's status.
//! Each command's process and end is recorded for `systemctl status`; when the start is
//! done, whether the main process is still there decides running, exited or a stop.

use super::*;
use crate::unit::service::NotifyAccess;

impl ServiceRun {
    /// The command's process never ran its program: a control process is a command that
    /// exited with `status`; a main process ends the start there (its program never ran,
    /// so it was never started, as systemd's `Type=exec` and `notify` see it) with
    /// `status` as the main process's exit. (`Type=simple` and `idle` were started at the
    /// fork: the engine feeds them the spawn and the exit instead, see [`active_at_fork`].)
    pub(super) fn exited_before_exec(
        &mut self,
        svc: &Service,
        pid: u32,
        status: i32,
        out: &mut Vec<Action>,
    ) {
        let how = Exit::Code(status);
        self.record_spawn(pid);
        self.record_exit(pid, how);
        let main = matches!(self.current, Some((CommandSet::Start, _)))
            && !matches!(
                svc.service_type,
                ServiceType::Forking | ServiceType::Oneshot
            );
        if !main {
            self.control_pid = Some(pid);
            return self.process_exited(svc, pid, how, out);
        }
        self.current = None;
        self.exec_main_pid = Some(pid);
        self.last_exit = Some(how);
        self.main_exit = Some(how);
        if !is_success(svc, how) {
            self.result = Some(Failure::ExitCode);
        }
        self.begin_stop(svc, out);
    }

    pub(super) fn exited(&mut self, svc: &Service, pid: u32, how: Exit, out: &mut Vec<Action>) {
        self.record_exit(pid, how);
        self.process_exited(svc, pid, how, out);
    }

    fn process_exited(&mut self, svc: &Service, pid: u32, how: Exit, out: &mut Vec<Action>) {
        if self.control_pid == Some(pid) {
            self.control_pid = None;
            let Some((set, index)) = self.current else {
                // A control process signalled by a stop: on once the main one is gone too.
                if matches!(
                    self.phase,
                    Phase::StopSigterm | Phase::StopWatchdog | Phase::StopSigkill
                ) && self.main_pid.is_none()
                {
                    self.begin_stop_post(svc, out);
                }
                // A stuck ExecStopPost= that a final signal ended: the run is over
                // (systemd's `service_enter_dead` once no main process is left).
                if matches!(
                    self.phase,
                    Phase::FinalSigterm | Phase::FinalWatchdog | Phase::FinalSigkill
                ) && self.main_pid.is_none()
                {
                    self.finish(svc, out);
                }
                return;
            };
            if set == CommandSet::Start && svc.service_type == ServiceType::Oneshot {
                self.main_exit = Some(how);
            }
            let ok = is_success(svc, how) || ignores_failure(svc, set, index);
            if set == CommandSet::Reload && !ok {
                let failure = match how {
                    Exit::Code(_) => Failure::ExitCode,
                    Exit::Signal(_) => Failure::Signal,
                };
                return self.reload_done(svc, Some(failure), out);
            }
            if !ok {
                self.last_exit = Some(how);
                self.result.get_or_insert(match how {
                    Exit::Code(_) => Failure::ExitCode,
                    Exit::Signal(_) => Failure::Signal,
                });
                match set {
                    CommandSet::Stop => self.signal_remaining(svc, out),
                    CommandSet::StopPost => self.finish(svc, out),
                    _ => self.begin_stop(svc, out),
                }
                return;
            }
            if set == CommandSet::Start && svc.service_type == ServiceType::Forking {
                if svc.pid_file.is_some() {
                    out.push(Action::ReadPidFile);
                } else {
                    // Without PIDFile=, the main process is unknown: the cgroup is the service.
                    self.next_after_start(svc, out);
                }
                return;
            }
            self.run_from(svc, set, index + 1, out);
            return;
        }
        if self.main_pid != Some(pid) {
            return;
        }
        self.main_pid = None;
        self.last_exit = Some(how);
        self.main_exit = Some(how);
        let failure = (!is_success(svc, how)).then_some(match how {
            Exit::Code(_) => Failure::ExitCode,
            Exit::Signal(_) => Failure::Signal,
        });
        match self.phase {
            Phase::Start
                if svc.service_type == ServiceType::Notify
                    || svc.service_type == ServiceType::NotifyReload =>
            {
                // Exited before READY=1: a failure even with exit 0, unless with
                // RemainAfterExit= another process of the unit may still say READY=1
                // (systemd 252: NotifyAccess= other than main).
                let others_may_notify = matches!(
                    svc.notify_access,
                    Some(NotifyAccess::Exec | NotifyAccess::All)
                );
                if failure.is_none() && svc.remain_after_exit && others_may_notify {
                    return;
                }
                self.result = Some(failure.unwrap_or(Failure::Protocol));
                self.begin_stop(svc, out);
            }
            // As systemd: the start's ExecStartPost= finishes first, then the service
            // runs, is exited, or stops ([`Self::enter_running`]).
            Phase::StartPost => {
                if let Some(f) = failure {
                    self.result.get_or_insert(f);
                }
            }
            // During ExecReload=: systemd 252 waits for the reload to finish (its result
            // is the reload's), then acts on this end ([`Self::reload_done`]).
            Phase::Reload if self.control_pid.is_some() => {
                if let Some(f) = failure {
                    self.result.get_or_insert(f);
                }
                self.main_ended_in_reload = true;
            }
            // A reload with no control process (notify-reload's ReloadSignal=, or
            // RELOADING=1 from the service) can never end without its main process:
            // systemd stops the service at once (`service_enter_stop(s, f)` in
            // `service_sigchld_event`, since 249's fix of its issue #19300; 253's
            // reload-signal and reload-notify states take the same branch): the run's
            // result is this end's, and ExecStop= runs first, whether the end was clean
            // or not and whatever RemainAfterExit= says.
            Phase::Reload => {
                if let Some(f) = failure {
                    self.result.get_or_insert(f);
                }
                self.enter_stop(svc, out);
            }
            // A main process that fails is signalled what is left; one that ends cleanly
            // leaves the unit exited (RemainAfterExit=) or stopping through ExecStop=.
            Phase::Running => match failure {
                Some(f) => {
                    self.result = Some(f);
                    self.enter_stop_signal(svc, out);
                }
                None if svc.remain_after_exit => self.set(Active::Active, Phase::Exited),
                None => self.enter_stop(svc, out),
            },
            // The main process ended while stopping: on, unless ExecStop= still runs.
            Phase::StopSigterm | Phase::StopWatchdog | Phase::StopSigkill | Phase::Stop
                if self.control_pid.is_none() && self.current.is_none() =>
            {
                self.begin_stop_post(svc, out);
            }
            _ => {}
        }
    }

    /// Command `index` of `set` runs as `pid` (replacing what it did before in this run).
    pub(super) fn record_spawn(&mut self, pid: u32) {
        let Some((set, index)) = self.current else {
            return;
        };
        self.exec_records
            .retain(|r| (r.set, r.index) != (set, index));
        self.exec_records.push(ExecRecord {
            set,
            index,
            pid,
            exit: None,
        });
    }

    /// `pid`, a command's process, ended.
    pub(super) fn record_exit(&mut self, pid: u32, how: Exit) {
        if let Some(r) = self
            .exec_records
            .iter_mut()
            .rev()
            .find(|r| r.pid == pid && r.exit.is_none())
        {
            r.exit = Some(how);
        }
    }

    /// The start is done (systemd's `service_enter_running`): a run that failed meanwhile
    /// (its main process exited unclean during `ExecStartPost=`) is signalled; a main
    /// process still there (or never known: forking without `PIDFile=`) is running; one
    /// gone is `exited` with `RemainAfterExit=`, else the service stops, `ExecStop=`
    /// included (a oneshot's run ends that way too).
    pub(super) fn enter_running(&mut self, svc: &Service, out: &mut Vec<Action>) {
        out.push(Action::Disarm);
        if self.result.is_some() {
            return self.enter_stop_signal(svc, out);
        }
        let main_gone = self.main_pid.is_none()
            && (self.exec_main_pid.is_some() || svc.service_type == ServiceType::Oneshot);
        if !main_gone {
            self.set(Active::Active, Phase::Running);
            // RuntimeMaxSec= counts from here; the start timeout is done.
            if let Some(t) = svc.runtime_max {
                self.runtime_deadline = Some(self.clock + t);
                out.push(Action::Arm(t));
            }
        } else if svc.remain_after_exit {
            self.set(Active::Active, Phase::Exited);
        } else {
            self.enter_stop(svc, out);
        }
    }
}
