use std::time::Duration;

use super::*;
use crate::unit::exec;
use crate::unit::service::{KillMode, Restart, Service, ServiceType};

/// A minimal engine: hands out PIDs for spawns and keeps the actions it was asked for.
/// Its cgroup holds only the processes it was told of, unless `group_populated`.
struct Drive {
    run: ServiceRun,
    svc: Service,
    now: Duration,
    next_pid: u32,
    actions: Vec<Action>,
    limit: (Duration, u32),
    group_populated: bool,
}

impl Drive {
    fn new(svc: Service) -> Drive {
        Drive {
            run: ServiceRun::default(),
            svc,
            now: Duration::ZERO,
            next_pid: 100,
            actions: Vec::new(),
            limit: (Duration::from_secs(10), 5),
            group_populated: false,
        }
    }

    /// Feeds an event, answering every Spawn with a new PID, and a wait for the group
    /// with its emptiness; returns the PIDs spawned.
    fn feed(&mut self, event: Event) -> Vec<u32> {
        let mut queue = vec![event];
        let mut spawned = Vec::new();
        while let Some(ev) = queue.pop() {
            let acts = self.run.handle(&self.svc, self.limit, ev, self.now);
            for a in acts {
                if let Action::Spawn { .. } = a {
                    self.next_pid += 1;
                    spawned.push(self.next_pid);
                    queue.insert(0, Event::Spawned(Ok(self.next_pid)));
                }
                if a == Action::AwaitGroupEmpty && !self.group_populated {
                    queue.insert(0, Event::CgroupEmpty);
                }
                self.actions.push(a);
            }
        }
        spawned
    }

    /// Feeds one event and answers nothing (a spawned command stays unanswered).
    fn step(&mut self, event: Event) -> Vec<Action> {
        self.run.handle(&self.svc, self.limit, event, self.now)
    }

    fn state(&self) -> (Active, Phase) {
        (self.run.active, self.run.phase)
    }

    fn took(&mut self) -> Vec<Action> {
        std::mem::take(&mut self.actions)
    }
}

fn service(text: &[&str]) -> Service {
    let mut s = Service::default();
    for line in text {
        let (k, v) = line.split_once('=').expect("key=value");
        match k {
            "ExecStart" => s.exec_start.extend(exec::parse(v).expect("command")),
            "ExecStartPre" => s.exec_start_pre.extend(exec::parse(v).expect("command")),
            "ExecStop" => s.exec_stop.extend(exec::parse(v).expect("command")),
            "ExecReload" => s.exec_reload.extend(exec::parse(v).expect("command")),
            _ => panic!("{k}"),
        }
    }
    s
}

#[test]
fn a_simple_service_runs_and_its_end_without_restart_leaves_it_dead() {
    let mut d = Drive::new(service(&["ExecStart=/bin/a"]));
    let pids = d.feed(Event::Start);
    assert_eq!(d.state(), (Active::Active, Phase::Running));
    assert_eq!(d.run.main_pid, Some(pids[0]));
    d.took();
    d.feed(Event::Exited {
        pid: pids[0],
        how: Exit::Code(0),
    });
    assert_eq!(d.state(), (Active::Inactive, Phase::Dead));
    assert!(
        d.took().contains(&Action::Kill {
            target: KillTarget::Group,
            signal: 15
        }),
        "the rest of the cgroup is stopped"
    );
}

#[test]
fn restart_always_waits_restart_sec_and_the_start_limit_stops_it() {
    let mut svc = service(&["ExecStart=/bin/a"]);
    svc.restart = Restart::Always;
    svc.restart_sec = Duration::from_millis(100);
    let mut d = Drive::new(svc);
    let mut pid = d.feed(Event::Start)[0];
    for round in 1..=4 {
        d.now += Duration::from_millis(150);
        d.feed(Event::Exited {
            pid,
            how: Exit::Code(1),
        });
        assert_eq!(
            d.state(),
            (Active::Activating, Phase::AutoRestart),
            "round {round}"
        );
        assert!(d.took().contains(&Action::Arm(Duration::from_millis(100))));
        d.now += Duration::from_millis(100);
        pid = d.feed(Event::Timer)[0];
        assert_eq!(d.state(), (Active::Active, Phase::Running));
    }
    assert_eq!(d.run.restarts, 4);
    // Five starts within 10 s (burst 5): the sixth is refused.
    d.feed(Event::Exited {
        pid,
        how: Exit::Code(1),
    });
    assert!(d.feed(Event::Timer).is_empty());
    assert_eq!(d.state(), (Active::Failed, Phase::Failed));
    assert_eq!(d.run.result, Some(Failure::StartLimit));
    // StartLimitIntervalSec=0 (kubelet's StartLimitInterval=0): no limit at all.
    let mut svc = service(&["ExecStart=/bin/a"]);
    svc.restart = Restart::Always;
    let mut d = Drive::new(svc);
    d.limit = (Duration::ZERO, 5);
    let mut pid = d.feed(Event::Start)[0];
    for _ in 0..20 {
        d.feed(Event::Exited {
            pid,
            how: Exit::Code(1),
        });
        pid = d.feed(Event::Timer)[0];
    }
    assert_eq!(d.state(), (Active::Active, Phase::Running));
}

#[test]
fn restart_policies_follow_the_table() {
    let mut svc = service(&["ExecStart=/bin/a"]);
    let cases = [
        (Restart::OnFailure, Some(Failure::ExitCode), true),
        (Restart::OnFailure, None, false),
        (Restart::OnSuccess, None, true),
        (Restart::OnAbnormal, Some(Failure::ExitCode), false),
        (Restart::OnAbnormal, Some(Failure::Signal), true),
        // systemd restarts on-abnormal on any result but success and exit-code.
        (Restart::OnAbnormal, Some(Failure::Protocol), true),
        (Restart::OnAbnormal, Some(Failure::Resources), true),
        (Restart::OnAbnormal, None, false),
        (Restart::OnAbort, Some(Failure::Timeout), false),
        (Restart::OnWatchdog, Some(Failure::Watchdog), true),
        (Restart::No, Some(Failure::Signal), false),
    ];
    for (policy, failure, want) in cases {
        svc.restart = policy;
        assert_eq!(
            should_restart(&svc, failure, None),
            want,
            "{policy:?} {failure:?}"
        );
    }
    svc.restart = Restart::Always;
    svc.restart_prevent_exit_status = vec![3];
    assert!(!should_restart(
        &svc,
        Some(Failure::ExitCode),
        Some(Exit::Code(3))
    ));
    assert!(is_success(&svc, Exit::Signal(15)), "SIGTERM is a clean end");
    svc.success_exit_status = vec![7];
    assert!(is_success(&svc, Exit::Code(7)));
}

#[test]
fn notify_waits_for_ready_and_times_out_without_it() {
    let mut svc = service(&["ExecStart=/usr/bin/berth-runtime"]);
    svc.service_type = ServiceType::Notify;
    svc.timeout_start = Some(Duration::from_secs(5));
    let mut d = Drive::new(svc.clone());
    d.feed(Event::Start);
    assert_eq!(d.state(), (Active::Activating, Phase::Start));
    d.feed(Event::Ready);
    assert_eq!(d.state(), (Active::Active, Phase::Running));

    let mut d = Drive::new(svc.clone());
    let pid = d.feed(Event::Start)[0];
    assert!(d.took().contains(&Action::Arm(Duration::from_secs(5))));
    d.feed(Event::Timer);
    assert_eq!(d.run.result, Some(Failure::Timeout));
    assert_eq!(d.state(), (Active::Deactivating, Phase::StopSigterm));
    d.feed(Event::Exited {
        pid,
        how: Exit::Signal(15),
    });
    assert_eq!(d.state(), (Active::Failed, Phase::Failed));

    let mut d = Drive::new(svc);
    let pid = d.feed(Event::Start)[0];
    d.feed(Event::Exited {
        pid,
        how: Exit::Code(0),
    });
    assert_eq!(
        d.run.result,
        Some(Failure::Protocol),
        "exit before READY=1 fails"
    );
}

#[test]
fn a_service_that_ignores_sigterm_gets_sigkill_after_timeout_stop() {
    let mut svc = service(&["ExecStart=/bin/stubborn"]);
    svc.timeout_stop = Some(Duration::from_secs(3));
    let mut d = Drive::new(svc);
    let pid = d.feed(Event::Start)[0];
    d.took();
    d.feed(Event::Stop);
    assert_eq!(
        d.took(),
        [
            Action::Arm(Duration::from_secs(3)),
            Action::Kill {
                target: KillTarget::Group,
                signal: 15
            }
        ]
    );
    d.feed(Event::Timer);
    assert_eq!(
        d.took(),
        [
            Action::Arm(Duration::from_secs(3)),
            Action::Kill {
                target: KillTarget::Group,
                signal: 9
            }
        ]
    );
    d.feed(Event::Exited {
        pid,
        how: Exit::Signal(9),
    });
    // As systemd 252 (service_dispatch_timer: stop-sigterm timed out → SIGKILL with
    // SERVICE_FAILURE_TIMEOUT): a stop that had to kill ends failed, Result: timeout.
    assert_eq!(d.state(), (Active::Failed, Phase::Failed));
    assert_eq!(d.run.result, Some(Failure::Timeout));
}

#[test]
fn kill_mode_process_signals_only_the_main_process() {
    let mut svc = service(&["ExecStart=/usr/bin/berth-runtime"]);
    svc.kill_mode = KillMode::Process;
    svc.restart = Restart::Always;
    let mut d = Drive::new(svc);
    let pid = d.feed(Event::Start)[0];
    d.took();
    d.feed(Event::Stop);
    assert!(d.took().contains(&Action::Kill {
        target: KillTarget::Main(pid),
        signal: 15
    }));
    d.feed(Event::Exited {
        pid,
        how: Exit::Signal(15),
    });
    assert_eq!(
        d.state(),
        (Active::Inactive, Phase::Dead),
        "no restart after a requested stop"
    );
}

#[test]
fn start_pre_commands_run_in_order_and_dash_ignores_failure() {
    let mut d = Drive::new(service(&[
        "ExecStartPre=-/bin/pre1",
        "ExecStartPre=/bin/pre2",
        "ExecStart=/bin/main",
    ]));
    let pre1 = d.feed(Event::Start)[0];
    assert_eq!(d.state(), (Active::Activating, Phase::StartPre));
    let pre2 = d.feed(Event::Exited {
        pid: pre1,
        how: Exit::Code(1),
    })[0];
    let main = d.feed(Event::Exited {
        pid: pre2,
        how: Exit::Code(0),
    })[0];
    assert_eq!(d.run.main_pid, Some(main));
    assert_eq!(d.state(), (Active::Active, Phase::Running));

    let mut d = Drive::new(service(&["ExecStartPre=/bin/pre", "ExecStart=/bin/main"]));
    let pre = d.feed(Event::Start)[0];
    d.feed(Event::Exited {
        pid: pre,
        how: Exit::Code(2),
    });
    assert_eq!(d.state(), (Active::Failed, Phase::Failed));
    assert_eq!(d.run.last_exit, Some(Exit::Code(2)));
}

#[test]
fn oneshot_runs_every_start_command_and_remains_after_exit() {
    let mut svc = service(&["ExecStart=/bin/one", "ExecStart=/bin/two"]);
    svc.service_type = ServiceType::Oneshot;
    svc.remain_after_exit = true;
    let mut d = Drive::new(svc.clone());
    let one = d.feed(Event::Start)[0];
    assert_eq!(d.state(), (Active::Activating, Phase::Start));
    let two = d.feed(Event::Exited {
        pid: one,
        how: Exit::Code(0),
    })[0];
    d.feed(Event::Exited {
        pid: two,
        how: Exit::Code(0),
    });
    assert_eq!(d.state(), (Active::Active, Phase::Exited));

    svc.remain_after_exit = false;
    let mut d = Drive::new(svc);
    let one = d.feed(Event::Start)[0];
    let two = d.feed(Event::Exited {
        pid: one,
        how: Exit::Code(0),
    })[0];
    d.feed(Event::Exited {
        pid: two,
        how: Exit::Code(0),
    });
    assert_eq!(d.state(), (Active::Inactive, Phase::Dead));
}

#[test]
fn forking_reads_its_pid_file() {
    let mut svc = service(&["ExecStart=/usr/sbin/daemon"]);
    svc.service_type = ServiceType::Forking;
    svc.pid_file = Some("/run/daemon.pid".into());
    let mut d = Drive::new(svc);
    let starter = d.feed(Event::Start)[0];
    d.took();
    d.feed(Event::Exited {
        pid: starter,
        how: Exit::Code(0),
    });
    assert_eq!(d.took(), [Action::ReadPidFile]);
    d.feed(Event::MainPid(4242));
    assert_eq!(d.state(), (Active::Active, Phase::Running));
    d.feed(Event::Exited {
        pid: 4242,
        how: Exit::Signal(9),
    });
    assert_eq!(d.state(), (Active::Failed, Phase::Failed));
    assert_eq!(d.run.result, Some(Failure::Signal));
}

/// `systemctl reload`: ExecReload= runs as the control process while the main process
/// keeps running; a failing one is the reload's result, the service stays active.
#[test]
fn exec_reload_runs_as_the_control_process_and_keeps_the_service_active() {
    let mut d = Drive::new(service(&[
        "ExecStart=/usr/bin/d",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "ExecReload=-/bin/false",
    ]));
    let main = d.feed(Event::Start)[0];
    assert_eq!(d.state(), (Active::Active, Phase::Running));
    assert_eq!(d.run.can_reload(&d.svc), Ok(()));
    let first = d.feed(Event::Reload)[0];
    assert_eq!(d.state(), (Active::Active, Phase::Reload));
    assert_eq!(d.run.control_pid, Some(first));
    let second = d.feed(Event::Exited {
        pid: first,
        how: Exit::Code(0),
    })[0];
    // `-` ignores the second command's failure.
    d.feed(Event::Exited {
        pid: second,
        how: Exit::Code(1),
    });
    assert_eq!(d.state(), (Active::Active, Phase::Running));
    assert_eq!((d.run.main_pid, d.run.reload_result), (Some(main), None));
    d.svc.exec_reload.truncate(1);
    let third = d.feed(Event::Reload)[0];
    d.feed(Event::Exited {
        pid: third,
        how: Exit::Code(2),
    });
    assert_eq!(d.state(), (Active::Active, Phase::Running));
    assert_eq!(d.run.reload_result, Some(Failure::ExitCode));
    assert_eq!(d.run.result, None);
}

/// notify-reload without ExecReload=: ReloadSignal= to the main process, done at READY=1.
#[test]
fn notify_reload_signals_the_main_process_and_waits_for_ready() {
    let mut svc = service(&["ExecStart=/usr/bin/d"]);
    svc.service_type = ServiceType::NotifyReload;
    svc.reload_signal = 10;
    let mut d = Drive::new(svc);
    let main = d.feed(Event::Start)[0];
    d.feed(Event::Ready);
    assert_eq!(d.state(), (Active::Active, Phase::Running));
    d.took();
    d.feed(Event::Reload);
    assert!(d.took().contains(&Action::Signal {
        target: KillTarget::Main(main),
        signal: 10
    }));
    assert_eq!(d.run.phase, Phase::Reload);
    d.feed(Event::Ready);
    assert_eq!(d.state(), (Active::Active, Phase::Running));
}

#[test]
fn reload_is_refused_without_exec_reload_or_when_not_running() {
    let mut d = Drive::new(service(&["ExecStart=/usr/bin/d"]));
    d.feed(Event::Start);
    assert_eq!(
        d.run.can_reload(&d.svc),
        Err(control::NotReloadable::NoReload)
    );
    let mut d = Drive::new(service(&["ExecStart=/usr/bin/d", "ExecReload=/bin/true"]));
    assert_eq!(
        d.run.can_reload(&d.svc),
        Err(control::NotReloadable::NotActive)
    );
    d.feed(Event::Reload);
    assert_eq!(d.state(), (Active::Inactive, Phase::Dead));
}

#[test]
fn reset_failed_makes_a_failed_service_inactive_and_clears_the_start_limit() {
    let mut d = Drive::new(service(&["ExecStart=/usr/bin/d"]));
    d.limit = (Duration::from_secs(10), 1);
    let pid = d.feed(Event::Start)[0];
    d.feed(Event::Exited {
        pid,
        how: Exit::Code(3),
    });
    assert_eq!(d.state(), (Active::Failed, Phase::Failed));
    d.feed(Event::Start);
    assert_eq!(d.run.result, Some(Failure::StartLimit));
    d.run.reset_failed();
    assert_eq!(
        (d.state(), d.run.result),
        ((Active::Inactive, Phase::Dead), None)
    );
    assert_eq!(d.feed(Event::Start).len(), 1, "the start limit starts over");
}

/// The command sets that `actions` spawn, in order (for the submodules' tests).
fn spawns(actions: &[Action]) -> Vec<CommandSet> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Spawn { set, .. } => Some(*set),
            _ => None,
        })
        .collect()
}

#[path = "lifecycle_timer_tests.rs"]
mod timers;

#[path = "lifecycle_stop_tests.rs"]
mod stop;

#[path = "lifecycle_stop_order_tests.rs"]
mod stop_order;

#[path = "lifecycle_timeout_mode_tests.rs"]
mod timeout_mode;

#[path = "lifecycle_reload_tests.rs"]
mod reload;

#[path = "lifecycle_final_tests.rs"]
mod final_signals;
