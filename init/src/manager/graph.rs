//! The dependency graph as `systemctl list-dependencies` and `systemd-analyze
//! critical-chain` walk it, one unit at a time: what a unit pulls in (`Requires=`,
//! `Requisite=`, `Wants=`, `BindsTo=`, the `.wants/`/`.requires/` folders and the implicit
//! dependencies of `DefaultDependencies=yes`), what pulls it in (`--reverse`: the same
//! read backwards over the loaded units, plus `PartOf=`), and what it is ordered after. Units PID 1 has not
//! loaded are read from their files, without being loaded.

use std::collections::BTreeSet;

use super::{LoaderUnits, Manager};
use crate::unit::lifecycle::Active;
use crate::unit::model::Unit;
use crate::unit::name::UnitName;
use crate::unit::transaction::{implicit, Units};

/// Which way to walk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// What the unit pulls in.
    Forward,
    /// What pulls the unit in.
    Reverse,
    /// What the unit is ordered after (`After=`, the implicit ones, and the loaded units
    /// that say `Before=` it).
    After,
}

impl Manager<'_> {
    /// The unit as loaded, or as its files say; `None` when it has no file.
    fn unit_for_graph(&self, name: &UnitName) -> Option<Unit> {
        LoaderUnits {
            loader: &self.loader,
            host: &self.host,
            known: &self.slots,
        }
        .unit(name)
        .ok()
    }

    fn pulls_in(unit: &Unit) -> BTreeSet<UnitName> {
        let d = &unit.deps;
        let (requires, ..) = implicit(unit);
        d.requires
            .iter()
            .chain(&d.requisite)
            .chain(&d.wants)
            .chain(&d.binds_to)
            .chain(&requires)
            .cloned()
            .collect()
    }

    /// One level of the graph from `name`, each unit with its active state.
    pub fn dependencies(&self, name: &UnitName, direction: Direction) -> Vec<(UnitName, Active)> {
        let names: BTreeSet<UnitName> = match direction {
            Direction::Forward => self
                .unit_for_graph(name)
                .map(|u| Self::pulls_in(&u))
                .unwrap_or_default(),
            Direction::After => {
                let mut after: BTreeSet<UnitName> = self
                    .unit_for_graph(name)
                    .map(|u| {
                        let mut after: BTreeSet<UnitName> =
                            u.effective_after().into_iter().collect();
                        after.extend(implicit(&u).1);
                        after
                    })
                    .unwrap_or_default();
                // `Before=` on the other unit orders this one after it too, as systemd
                // adds the inverse edge (early boot's units say Before=sysinit.target).
                after.extend(
                    self.slots
                        .values()
                        .filter(|s| {
                            s.unit.deps.before.contains(name) || implicit(&s.unit).2.contains(name)
                        })
                        .map(|s| s.unit.name.clone()),
                );
                after
            }
            Direction::Reverse => self
                .slots
                .iter()
                .filter(|(_, s)| {
                    Self::pulls_in(&s.unit).contains(name) || s.unit.deps.part_of.contains(name)
                })
                .map(|(_, s)| s.unit.name.clone())
                .collect(),
        };
        names
            .into_iter()
            .filter(|n| n != name)
            .map(|n| {
                let state = self
                    .slot_key(&n)
                    .and_then(|k| self.slots.get(&k))
                    .map(|s| s.active_state())
                    .unwrap_or(Active::Inactive);
                (n, state)
            })
            .collect()
    }
}
