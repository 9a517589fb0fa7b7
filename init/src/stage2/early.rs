//! Early boot as built-in units of the service manager ([`crate::manager::builtin`]):
//! the design's mount table, `/etc`, STATE, the STATE binds and the stateless tmpfs
//! mounts, machine identity, coldplug, modules, sysctl and tmpfiles, each a oneshot unit
//! ordered `Before=sysinit.target` (as systemd orders systemd-modules-load, -sysctl and
//! -tmpfiles-setup), all wanted by [`EARLY_TARGET`], the anchor of stage 2's first
//! transaction. A step that matches a systemd unit has its name; the others are
//! `berth-`. Their order is explicit: each is `After=` what it needs, and the steps PID 1
//! runs in its own turn are also a chain (each after the one before it): mounts first
//! (later steps write to `/etc`, `/var`, `/proc/sys`), then what the service manager and
//! the journal need (machine identity, tmpfiles' folders), efivarfs last. The `/etc`
//! overlay (its first step loads the `overlay` module, tens of milliseconds under
//! emulation), modules, sysctl and coldplug run in forked children ([`super::forked`])
//! out of the chain, after only what they need: the overlay beside STATE, whose mount
//! does not need it; modules-load right after the API file systems, beside both (the
//! `modules-load.d` it reads in `/etc` is the verified root's either way: the overlay's
//! upper layer is a fresh tmpfs and nothing writes `/etc` before it is mounted), so that the CRI runtime, which needs modules-load and sysctl
//! (`net.bridge.*` exists once `br_netfilter` is loaded), is not held up by them in
//! turn; sysctl after modules-load; the present devices' drivers after sysctl (only units
//! with default dependencies, the network's among them, wait for them). The mounting
//! steps are also `Before=local-fs.target`, as systemd's mount units are.
//!
//! The unit files are loaded and `default.target` started as soon as the steps of
//! [`MANAGER_NEEDS`] are done, while the rest of early boot still runs: a unit ordered
//! only after what it needs (the journal: `local-fs.target`, tmpfiles) starts then, in
//! its own process beside PID 1's remaining steps, and every unit with default
//! dependencies still starts after all of early boot (each step is
//! `Before=sysinit.target`).

use std::panic::{self, AssertUnwindSafe};
use std::time::Duration;

use super::engine::{Job, Machine};
use super::{coldplug, confd, forked, helper, identity, mounts, state, tmpfiles};
use crate::console;
use crate::manager::Manager;
use crate::sys::Ran;
use crate::unit::lifecycle::Active;
use crate::unit::name::UnitName;

/// The target that wants every early-boot unit; reached, stage 2 loads the unit files
/// and starts `default.target`.
pub const EARLY_TARGET: &str = "berth-early-boot.target";

/// One early-boot step as a unit.
pub struct EarlyUnit {
    /// The unit's name (`Job::name`) and the step it runs.
    pub job: Job,
    pub description: &'static str,
    /// What it needs done first, besides the step before it in [`EARLY_BOOT`].
    pub after: &'static [&'static str],
    /// It mounts file systems: `Before=local-fs.target`.
    pub mounts: bool,
    /// It runs in a forked child ([`super::forked`]), beside PID 1's other steps: it is
    /// out of the chain, after only what it names.
    pub forked: bool,
}

const fn unit(
    name: &'static str,
    description: &'static str,
    after: &'static [&'static str],
    run: fn(&mut Machine) -> super::engine::JobResult,
) -> EarlyUnit {
    EarlyUnit {
        job: Job { name, run },
        description,
        after,
        mounts: false,
        forked: false,
    }
}

/// An early unit that mounts file systems.
const fn mounting(u: EarlyUnit) -> EarlyUnit {
    EarlyUnit { mounts: true, ..u }
}

/// An early unit whose step runs in a forked child.
const fn forked(u: EarlyUnit) -> EarlyUnit {
    EarlyUnit { forked: true, ..u }
}

const API_MOUNTS: &str = "berth-api-mounts.service";
const ETC: &str = "berth-etc-overlay.service";
const STATE: &str = "berth-state.service";
const STATE_BINDS: &str = "berth-state-binds.service";
const TMPFS: &str = "berth-tmpfs-mounts.service";
const MACHINE_ID: &str = "berth-machine-id.service";
const HOSTNAME: &str = "berth-hostname.service";
const MODULES: &str = "systemd-modules-load.service";
const SYSCTL: &str = "systemd-sysctl.service";

/// What the service manager needs before it loads the unit files and starts
/// `default.target`: `/run` for its sockets (the API mounts), `/etc` for the unit files
/// and drop-ins there (the overlay), the machine-id and host name for specifiers (`%m`,
/// `%H`) and `ConditionFirstBoot=`.
pub const MANAGER_NEEDS: [&str; 4] = [API_MOUNTS, ETC, MACHINE_ID, HOSTNAME];

/// Early boot, in the order of the chain.
pub const EARLY_BOOT: [EarlyUnit; 12] = [
    mounting(unit(
        API_MOUNTS,
        "API file systems and cgroup2",
        &[],
        mounts::api,
    )),
    forked(mounting(unit(
        ETC,
        "The /etc overlay",
        &[API_MOUNTS],
        mounts::etc,
    ))),
    mounting(unit(
        STATE,
        "The STATE partition: grow, check, mount",
        &[API_MOUNTS],
        state::state,
    )),
    mounting(unit(
        STATE_BINDS,
        "STATE bound into /home and /var",
        &[STATE],
        mounts::state_binds,
    )),
    mounting(unit(
        TMPFS,
        "Stateless tmpfs mounts",
        &[STATE_BINDS],
        mounts::stateless,
    )),
    unit(
        MACHINE_ID,
        "The machine-id, kept on STATE",
        &[ETC, STATE_BINDS],
        identity::machine_id,
    ),
    unit(
        HOSTNAME,
        "The host name",
        &[ETC, MACHINE_ID],
        identity::hostname,
    ),
    unit(
        "systemd-tmpfiles-setup.service",
        "Create Volatile Files and Directories",
        &[ETC, STATE_BINDS, TMPFS],
        tmpfiles::tmpfiles,
    ),
    forked(unit(
        MODULES,
        "Load Kernel Modules",
        &[API_MOUNTS],
        confd::modules_load,
    )),
    forked(unit(
        SYSCTL,
        "Apply Kernel Variables",
        &[ETC, MODULES],
        confd::sysctl,
    )),
    forked(unit(
        "systemd-udev-trigger.service",
        "Coldplug: modules for the devices present",
        &[API_MOUNTS, SYSCTL],
        coldplug::coldplug,
    )),
    unit(
        "berth-efivarfs.service",
        "EFI variables at /sys/firmware/efi/efivars",
        &[API_MOUNTS],
        mounts::efivarfs,
    ),
];

/// The unit file of early-boot unit `index`.
pub fn unit_text(index: usize) -> String {
    let u = &EARLY_BOOT[index];
    let mut after: Vec<&str> = u.after.to_vec();
    // The chain: after the step before it that runs in PID 1's turn.
    let previous = EARLY_BOOT[..index].iter().rev().find(|p| !p.forked);
    if let Some(previous) = previous.filter(|_| !u.forked).map(|p| p.job.name) {
        if !after.contains(&previous) {
            after.push(previous);
        }
    }
    let after = match after.is_empty() {
        true => String::new(),
        false => format!("After={}\n", after.join(" ")),
    };
    let local_fs = match u.mounts {
        true => " local-fs.target",
        false => "",
    };
    format!(
        "[Unit]\nDescription={}\nDefaultDependencies=no\n{after}\
         Before=sysinit.target {EARLY_TARGET}{local_fs}\n\
         RefuseManualStart=yes\nRefuseManualStop=yes\n\
         [Service]\nType=oneshot\nRemainAfterExit=yes\n\
         [Install]\nWantedBy=sysinit.target\n",
        u.description
    )
}

/// The unit file of [`EARLY_TARGET`].
pub fn target_text() -> String {
    let names: Vec<&str> = EARLY_BOOT.iter().map(|u| u.job.name).collect();
    format!(
        "[Unit]\nDescription=Berth early boot\nDefaultDependencies=no\nWants={}\n\
         Before=sysinit.target\nRefuseManualStart=yes\nRefuseManualStop=yes\n\
         [Install]\nWantedBy=sysinit.target\n",
        names.join(" ")
    )
}

fn name(text: &str) -> Option<UnitName> {
    UnitName::parse(text).ok()
}

/// Declares the early-boot units and their target, and starts the target.
pub fn start(manager: &mut Manager) {
    for (i, u) in EARLY_BOOT.iter().enumerate() {
        if let Some(n) = name(u.job.name) {
            manager.add_builtin(&n, &unit_text(i));
        }
    }
    if let Some(target) = name(EARLY_TARGET) {
        manager.add_builtin(&target, &target_text());
        manager.start(&target);
    }
}

/// Runs the step of early-boot unit `unit`; `Err` says why it failed (its whole error
/// chain, or that it panicked: a bug, and PID 1 goes on); `None`: it waits for a helper
/// ([`Machine::waiting`]) or runs in a forked child (with `fork`, for the steps marked
/// so: [`Machine::forked`]), and [`child_exited`] finishes it.
pub fn run_step(machine: &mut Machine, unit: &UnitName, fork: bool) -> Option<Result<(), String>> {
    let Some(u) = EARLY_BOOT.iter().find(|u| u.job.name == unit.as_str()) else {
        return Some(Err("no such early-boot step".into()));
    };
    if fork && u.forked {
        return match forked::start(machine, u.job.name, u.job.run) {
            forked::Started::Child(_) => None,
            forked::Started::RanHere(result) => Some(result),
        };
    }
    let result = guard(|| (u.job.run)(machine));
    match result {
        Ok(()) if machine.waiting.is_some() => None,
        result => Some(result),
    }
}

/// Runs a step; its error chain, or that it panicked (a bug: PID 1 goes on).
pub(super) fn guard(f: impl FnOnce() -> super::engine::JobResult) -> Result<(), String> {
    match panic::catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(console::chain(&*e)),
        Err(_) => Err("internal error (panic)".into()),
    }
}

/// STATE's step goes on after its helper ended as `ran`; done unless it started another.
fn resume(m: &mut Machine, manager: &mut Manager, waiting: state::Waiting, ran: Ran) {
    let result = guard(|| state::resume(m, waiting, Ok(ran)));
    if m.waiting.is_none() {
        if let Some(unit) = name(STATE) {
            manager.builtin_done(&unit, result);
        }
    }
}

/// A child exited (`how` as [`crate::sys::Reaped`] says): true if it was the helper a
/// step waits for, which then goes on (and may be done).
pub fn child_exited(m: &mut Machine, manager: &mut Manager, pid: u32, how: &str) -> bool {
    if let Some(at) = m.forked.iter().position(|step| step.pid == pid) {
        let unit = m.forked.remove(at).unit;
        let result = forked::result(m.sys, unit, how);
        if let Some(unit) = name(unit) {
            manager.builtin_done(&unit, result);
        }
        return true;
    }
    let Some(waiting) = m.waiting.take_if(|w| w.repair.helper.pid == pid) else {
        return false;
    };
    let ran = waiting.repair.helper.ended(m.sys, how);
    resume(m, manager, waiting, ran);
    true
}

/// When the next timer fires: the waited-for helper's, or a forked step's.
pub fn deadline(m: &Machine) -> Option<Duration> {
    let helper = m.waiting.as_ref().map(|w| w.repair.helper.deadline);
    let forked = m.forked.iter().map(|step| step.deadline);
    helper.into_iter().chain(forked).min()
}

/// The timers: a forked step past its limit has its process group killed and its unit
/// failed; the waited-for helper is killed past its limit and given up on after that.
pub fn expire(m: &mut Machine, manager: &mut Manager) {
    let now = m.sys.now();
    let (late, running) = m.forked.drain(..).partition(|step| step.deadline <= now);
    m.forked = running;
    for step in late {
        let group = -i32::try_from(step.pid).unwrap_or(i32::MAX);
        let _ = m.sys.kill(group, nix::libc::SIGKILL);
        if let Some(unit) = name(step.unit) {
            manager.builtin_done(&unit, Err(step.timed_out()));
        }
    }
    let Some(mut waiting) = m.waiting.take() else {
        return;
    };
    if waiting.repair.helper.expire(m.sys) {
        let ran = waiting.repair.helper.given_up(m.sys);
        resume(m, manager, waiting, ran);
    } else {
        m.waiting = Some(waiting);
    }
}

/// Shutdown during the helper or forked steps: each is stopped (`SIGTERM` to its
/// group: e2fsck stops cleanly) and its step fails as cancelled.
pub fn cancel(m: &mut Machine, manager: &mut Manager) {
    let helper = m.waiting.take().map(|w| (w.repair.helper.pid, STATE));
    let forked = m.forked.drain(..).map(|step| (step.pid, step.unit));
    for (pid, unit) in helper.into_iter().chain(forked) {
        let group = -i32::try_from(pid).unwrap_or(i32::MAX);
        let _ = m.sys.kill(group, nix::libc::SIGTERM);
        if let Some(unit) = name(unit) {
            let why = "cancelled: the system is shutting down".to_owned();
            manager.builtin_done(&unit, Err(why));
        }
    }
}

/// Runs the built-in steps the manager has due, one after another, until none is due;
/// a step's helper is waited for here ([`helper::wait`]: no event loop).
pub fn run_due(machine: &mut Machine, manager: &mut Manager) {
    loop {
        let due = manager.take_due_builtins();
        if due.is_empty() {
            return;
        }
        for unit in due {
            if let Some(result) = run_step(machine, &unit, false) {
                manager.builtin_done(&unit, result);
            }
            while let Some(mut waiting) = machine.waiting.take() {
                let ran = helper::wait(machine.sys, &mut waiting.repair.helper);
                resume(machine, manager, waiting, ran);
            }
        }
    }
}

/// Whether every unit of `names` has run (done or failed).
fn settled(manager: &Manager, names: &[&str]) -> bool {
    names.iter().all(|n| {
        name(n)
            .and_then(|n| manager.slots.get(&n))
            .is_some_and(|s| matches!(s.active_state(), Active::Active | Active::Failed))
    })
}

/// The steps of [`MANAGER_NEEDS`] have run: the unit files may be loaded.
pub fn manager_may_start(manager: &Manager) -> bool {
    settled(manager, &MANAGER_NEEDS)
}

/// Every early-boot unit has run, and [`EARLY_TARGET`] is reached.
pub fn reached(manager: &Manager) -> bool {
    settled(manager, &[EARLY_TARGET])
}

/// How many early-boot units failed.
pub fn failed(manager: &Manager) -> usize {
    EARLY_BOOT
        .iter()
        .filter_map(|u| manager.slots.get(&name(u.job.name)?))
        .filter(|s| s.active_state() == Active::Failed)
        .count()
}
