//! A unit's terminal when its run ends (systemd 252's `exec_context_revert_tty`, from
//! `service_enter_dead`): with `TTYVHangup=` whoever still holds it is hung up, with
//! `TTYReset=` its line settings are reset, so that a shell left behind by the run loses
//! it and the next user (the next run of a `Restart=always` getty or debug shell) finds a
//! sane line. Once per run: when it is over (dead, failed, or waiting for an automatic
//! restart), whether its commands ran on the terminal or not, as in systemd.

use std::path::Path;

use super::*;
use crate::unit::lifecycle::Phase;

impl Manager<'_> {
    /// Notes that a run of `name` started, when its terminal is to be reverted at its end.
    pub(super) fn terminal_taken(&mut self, name: &UnitName) {
        let reverts = self.slots.get(name).is_some_and(|s| {
            s.unit
                .service
                .as_ref()
                .is_some_and(|svc| svc.terminal.reset || svc.terminal.vhangup)
        });
        if reverts {
            self.terminals.insert(name.clone());
        }
    }

    /// Reverts `name`'s terminal if its run is over.
    pub(super) fn revert_terminal(&mut self, name: &UnitName) {
        if !self.terminals.contains(name) {
            return;
        }
        let Some(slot) = self.slots.get(name) else {
            return;
        };
        if !matches!(
            slot.run.phase,
            Phase::Dead | Phase::Failed | Phase::AutoRestart
        ) {
            return;
        }
        let Some(svc) = &slot.unit.service else {
            return;
        };
        let t = &svc.terminal;
        let (path, reset, vhangup) = (t.path.clone(), t.reset, t.vhangup);
        self.terminals.remove(name);
        if let Err(e) = self.sys.revert_terminal(Path::new(&path), reset, vhangup) {
            self.log(&format!("berth: {name}: cannot reset {path}: {e}"));
        }
    }
}
