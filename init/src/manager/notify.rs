//! What reaches the manager from outside a job: `sd_notify` datagrams (READY=1,
//! MAINPID=, WATCHDOG=1, ..., checked against the sender's unit and `NotifyAccess=`) and
//! the timers that fall due (start, stop and run limits, restarts, watchdogs).

use super::*;

impl Manager<'_> {
    /// An `sd_notify` datagram from `pid`.
    pub fn notify(&mut self, pid: u32, message: &str) {
        let Some(name) = self.unit_of_pid(pid) else {
            return self.log(&format!("berth: notify from PID {pid} of no unit ignored"));
        };
        if !self.notify_allowed(&name, pid) {
            return self.log(&format!(
                "berth: {name}: notify from PID {pid} refused by NotifyAccess="
            ));
        }
        for line in message.lines() {
            match line.split_once('=') {
                Some(("READY", "1")) => self.feed(&name, Event::Ready),
                Some(("RELOADING", "1")) => self.feed(&name, Event::Reloading),
                Some(("MAINPID", v)) => {
                    if let Ok(main) = v.parse::<u32>() {
                        self.pids.insert(main, name.clone());
                        self.feed(&name, Event::MainPid(main));
                    }
                }
                Some(("WATCHDOG", "1")) => self.feed(&name, Event::WatchdogPing),
                // sd_notify(3): "WATCHDOG=trigger" tells the manager the watchdog expired.
                Some(("WATCHDOG", "trigger")) => self.feed(&name, Event::WatchdogExpired),
                Some(("WATCHDOG_USEC", v)) => match v.parse::<u64>() {
                    Ok(usec) => {
                        self.feed(&name, Event::WatchdogPeriod(Duration::from_micros(usec)))
                    }
                    Err(_) => {
                        self.log(&format!("berth: {name}: WATCHDOG_USEC={v} is not a number"))
                    }
                },
                Some(("STATUS", v)) => {
                    if let Some(slot) = self.slots.get_mut(&name) {
                        slot.status = Some(v.to_owned());
                    }
                }
                _ => {}
            }
        }
    }

    /// NotifyAccess= (systemd.service(5)): none, the main process, it and the control
    /// process (exec), or any process of the unit (all).
    fn notify_allowed(&self, name: &UnitName, pid: u32) -> bool {
        let Some(slot) = self.slots.get(name) else {
            return false;
        };
        let Some(svc) = slot.unit.service.as_ref() else {
            return false;
        };
        match svc.notify_access() {
            NotifyAccess::None => false,
            NotifyAccess::Main => slot.run.main_pid == Some(pid),
            NotifyAccess::Exec => {
                slot.run.main_pid == Some(pid) || slot.run.control_pid == Some(pid)
            }
            NotifyAccess::All => true,
        }
    }

    /// The unit of a PID: one it started, or by its cgroup (`/proc/PID/cgroup`).
    fn unit_of_pid(&self, pid: u32) -> Option<UnitName> {
        if let Some(n) = self.pids.get(&pid) {
            return Some(n.clone());
        }
        let text = self
            .sys
            .read_to_string(Path::new(&format!("/proc/{pid}/cgroup")))
            .ok()?;
        let path = text.lines().find_map(|l| l.strip_prefix("0::"))?;
        path.split('/')
            .rev()
            .find_map(|part| UnitName::parse(part).ok())
            .filter(|n| self.slots.contains_key(n))
    }

    /// The earliest armed timer.
    pub fn next_deadline(&self) -> Option<Duration> {
        // A restart waits for its unit's drain to end.
        self.timers
            .iter()
            .filter(|(n, _)| !self.is_draining(n))
            .map(|(_, at)| at)
            .chain(self.watchdogs.values())
            .copied()
            .chain(self.next_drain_deadline())
            .min()
    }

    /// Fires every timer that is due.
    pub fn fire_timers(&mut self) {
        let now = self.sys.now();
        let due: Vec<UnitName> = self
            .timers
            .iter()
            .filter(|(n, at)| **at <= now && !self.is_draining(n))
            .map(|(n, _)| n.clone())
            .collect();
        for name in due {
            self.timers.remove(&name);
            let said = self.slots.get(&name).and_then(|slot| {
                let svc = slot.unit.service.as_ref()?;
                slot.run.timeout_message(svc)
            });
            if let Some(message) = said {
                self.log(&format!("berth: {name}: {message}"));
            }
            self.feed(&name, Event::Timer);
        }
        let now = self.sys.now();
        let expired: Vec<UnitName> = self
            .watchdogs
            .iter()
            .filter(|(_, at)| **at <= now)
            .map(|(n, _)| n.clone())
            .collect();
        for name in expired {
            self.watchdogs.remove(&name);
            self.log(&format!("berth: {name}: watchdog timeout"));
            self.feed(&name, Event::WatchdogExpired);
        }
        self.fire_drain_timers();
    }
}
