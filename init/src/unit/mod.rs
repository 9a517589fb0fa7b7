//! systemd unit files, read as systemd 252 reads them: the syntax ([`syntax`]), word
//! splitting and quoting ([`words`]), names, templates and instances ([`name`]),
//! specifiers ([`specifier`]), the search path with drop-ins, masks, aliases and
//! `.wants/` folders ([`load`]), the typed unit ([`model`], [`service`], [`condition`],
//! [`exec`], [`values`], [`capability`], the names of exit statuses [`exit_status`], what
//! each command of a run did [`exec_record`]), what enabling it links ([`install`]) and the
//! unit-file verbs of `systemctl` that make those links and masks ([`enable`]), the start
//! transaction ([`transaction`]) and a service's life as a state machine ([`lifecycle`]).
//!
//! The engine that runs these in PID 1 is [`crate::manager`].
//!
//! Reading is separate from running so that the builder (which bakes `[Install]` links
//! into the image), PID 1 and `systemctl` share one reading of a unit, and so that every
//! rule here is tested on plain folders, without root.

pub mod capability;
pub mod condition;
pub mod enable;
pub mod exec;
pub mod exec_record;
pub mod exit_status;
pub mod install;
pub mod lifecycle;
pub mod load;
pub mod model;
pub mod name;
pub mod seccomp;
mod seccomp_names;
#[cfg(test)]
mod seccomp_tests;
pub mod service;
pub mod setting_names;
pub mod show_settings;
pub mod socket;
pub mod specifier;
pub mod syntax;
pub mod terminal;
pub mod transaction;
pub mod values;
pub mod words;
