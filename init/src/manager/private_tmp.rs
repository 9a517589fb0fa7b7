//! `PrivateTmp=` (systemd.exec(5)): PID 1 makes a unit's own /tmp and /var/tmp on the
//! host when its run starts, the sandbox binds them over /tmp and /var/tmp in the unit's
//! mount namespace, and PID 1 removes them when the run is over.

use std::path::{Path, PathBuf};

use super::Manager;
use crate::unit::lifecycle::Phase;
use crate::unit::name::UnitName;

/// One run's private folders.
pub(super) struct PrivateTmp {
    /// The folders made, removed when the run ends.
    pub made: Vec<PathBuf>,
    /// (target, private folder) pairs for the sandbox plan.
    pub binds: Vec<(PathBuf, PathBuf)>,
}

impl Manager<'_> {
    /// `PrivateTmp=`: the unit's own /tmp and /var/tmp for this run, made once for all its
    /// commands as systemd makes them, `/tmp/systemd-private-<boot id>-<unit>-XXXXXX/tmp`
    /// (the outer folder 0700, `tmp` 1777). A base that does not exist is skipped.
    pub(super) fn make_private_tmp(&mut self, name: &UnitName) -> Result<(), String> {
        let wanted = self
            .slots
            .get(name)
            .and_then(|s| s.unit.service.as_ref())
            .is_some_and(|s| s.private_tmp);
        if !wanted || self.private_tmp.contains_key(name) {
            return Ok(());
        }
        let boot_id = self
            .sys
            .read_to_string(Path::new("/proc/sys/kernel/random/boot_id"))
            .map_err(|e| format!("/proc/sys/kernel/random/boot_id: {e}"))?
            .trim()
            .replace('-', "");
        let mut made = Vec::new();
        let mut pairs = Vec::new();
        for base in ["/tmp", "/var/tmp"] {
            if !self.sys.exists(Path::new(base)) {
                continue;
            }
            let prefix = PathBuf::from(format!("{base}/systemd-private-{boot_id}-{name}-"));
            let made_one = self.sys.make_temp_dir(&prefix).and_then(|outer| {
                made.push(outer.clone());
                let inner = outer.join("tmp");
                self.sys.mkdir_mode(&inner, 0o1777)?;
                self.sys.chmod(&inner, 0o1777)?;
                Ok(inner)
            });
            match made_one {
                Ok(inner) => pairs.push((PathBuf::from(base), inner)),
                Err(e) => {
                    // Kept, so that the end of this run removes what was made.
                    self.private_tmp.insert(
                        name.clone(),
                        PrivateTmp {
                            made,
                            binds: Vec::new(),
                        },
                    );
                    return Err(format!("PrivateTmp= in {base}: {e}"));
                }
            }
        }
        self.private_tmp
            .insert(name.clone(), PrivateTmp { made, binds: pairs });
        Ok(())
    }

    /// Removes the unit's private /tmp once its run is over (dead, failed, or waiting to
    /// restart: a restart gets fresh ones, as in systemd).
    pub(super) fn release_private_tmp(&mut self, name: &UnitName) {
        let over = self.slots.get(name).is_some_and(|s| {
            matches!(
                s.run.phase,
                Phase::Dead | Phase::Failed | Phase::AutoRestart
            )
        });
        if !over {
            return;
        }
        if let Some(p) = self.private_tmp.remove(name) {
            for dir in p.made {
                if let Err(e) = self.sys.remove_tree(&dir) {
                    self.log(&format!(
                        "berth: {name}: cannot remove {}: {e}",
                        dir.display()
                    ));
                }
            }
        }
    }
}
