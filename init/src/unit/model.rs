//! The typed unit: what the service manager acts on, built once from a unit's merged files
//! ([`super::load::UnitFiles`]). Keys are applied in file order, so a drop-in's value
//! replaces the fragment's and an empty assignment resets a list, as in systemd.
//!
//! Every assignment ends in one of three places: applied; refused with a warning naming
//! file:line, key and why (a bad value: the key keeps its previous value); or, for a key
//! Berth does not implement, one warning per unit and key naming file:line. Nothing is
//! dropped silently, and no key ever fails the whole unit.

use std::time::Duration;

use super::condition::{self, Check, Condition};
use super::load::UnitFiles;
use super::name::{UnitName, UnitType};
use super::service::{Service, Stdio};
use super::socket::Socket;
use super::specifier::{self, Host};
use super::syntax::{Assignment, Diagnostic};
use super::values;
use super::words::{self, Mode};

/// Dependencies of the `[Unit]` section (systemd.unit(5)).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dependencies {
    pub requires: Vec<UnitName>,
    pub requisite: Vec<UnitName>,
    pub wants: Vec<UnitName>,
    pub binds_to: Vec<UnitName>,
    pub part_of: Vec<UnitName>,
    pub upholds: Vec<UnitName>,
    pub conflicts: Vec<UnitName>,
    pub before: Vec<UnitName>,
    pub after: Vec<UnitName>,
    pub on_failure: Vec<UnitName>,
    pub on_success: Vec<UnitName>,
}

/// The `[Install]` section, used by `systemctl enable` and the image builder.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Install {
    pub wanted_by: Vec<UnitName>,
    pub required_by: Vec<UnitName>,
    pub also: Vec<UnitName>,
    pub alias: Vec<UnitName>,
    pub default_instance: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Unit {
    pub name: UnitName,
    pub files: UnitFiles,
    pub description: Option<String>,
    pub documentation: Vec<String>,
    pub deps: Dependencies,
    pub default_dependencies: bool,
    pub conditions: Vec<Condition>,
    pub asserts: Vec<Condition>,
    pub refuse_manual_start: bool,
    pub refuse_manual_stop: bool,
    pub allow_isolate: bool,
    pub ignore_on_isolate: bool,
    /// `StartLimitIntervalSec=`: 10 s by default; zero disables the limit.
    pub start_limit_interval: Duration,
    pub start_limit_burst: u32,
    pub install: Install,
    /// `[Service]` for services; `None` for every other type.
    pub service: Option<Service>,
    /// `[Socket]` for sockets; `None` for every other type.
    pub socket: Option<Socket>,
    /// Warnings: ignored lines, refused values, keys Berth does not implement.
    pub warnings: Vec<Diagnostic>,
}

/// The journal's socket unit (systemd's SPECIAL_JOURNALD_SOCKET), which units that log
/// start after.
pub const JOURNAL_SOCKET: &str = "systemd-journald.socket";

/// systemd's defaults (system.conf): DefaultStartLimitIntervalSec=10s, Burst=5.
pub const DEFAULT_START_LIMIT_INTERVAL: Duration = Duration::from_secs(10);
pub const DEFAULT_START_LIMIT_BURST: u32 = 5;

/// What one assignment did.
pub(crate) enum Applied {
    Done,
    /// The key is not one this section has in Berth.
    Unknown,
}

/// What key handlers share: the unit's name for specifiers, the host, and the warnings.
pub(crate) struct Ctx<'a> {
    pub unit: &'a UnitName,
    pub host: &'a Host,
    pub warnings: &'a mut Vec<Diagnostic>,
}

impl Ctx<'_> {
    pub fn warn(&mut self, a: &Assignment, why: impl std::fmt::Display) {
        self.warnings.push(Diagnostic {
            at: a.at.clone(),
            message: format!("{}={}: {why}, ignored", a.key, a.value),
        });
    }

    /// The value with specifiers resolved, or a warning.
    pub fn expand(&mut self, a: &Assignment) -> Option<String> {
        match specifier::expand(&a.value, self.unit, self.host) {
            Ok(v) => Some(v),
            Err(e) => {
                self.warn(a, e);
                None
            }
        }
    }

    /// A list of unit names; `None` for an empty value (reset).
    pub fn names(&mut self, a: &Assignment) -> Option<Vec<UnitName>> {
        let value = self.expand(a)?;
        let words = match words::split(&value, Mode::NAMES) {
            Ok(w) => w,
            Err(e) => {
                self.warn(a, e);
                return Some(Vec::new());
            }
        };
        let mut names = Vec::new();
        for w in words {
            match UnitName::parse(&w) {
                Ok(n) => names.push(n),
                Err(e) => self.warn(a, e),
            }
        }
        Some(names)
    }

    pub fn bool(&mut self, a: &Assignment, slot: &mut bool) {
        match values::boolean(&a.value) {
            Ok(b) => *slot = b,
            Err(e) => self.warn(a, e),
        }
    }

    /// A time span; `None` in `slot` is infinity.
    pub fn span(&mut self, a: &Assignment, slot: &mut Option<Duration>) {
        match values::timespan(&a.value) {
            Ok(d) => *slot = d.filter(|d| !d.is_zero()),
            Err(e) => self.warn(a, e),
        }
    }
}

/// Adds names to a list, or clears it on an empty assignment.
pub(crate) fn extend_names(ctx: &mut Ctx, a: &Assignment, list: &mut Vec<UnitName>) {
    if a.value.is_empty() {
        list.clear();
        return;
    }
    if let Some(names) = ctx.names(a) {
        for n in names {
            if !n.unit_type().is_supported() {
                let why = format!(
                    "Berth has no .{} units, {n} ignored",
                    n.unit_type().suffix()
                );
                ctx.warn(a, why);
                continue;
            }
            if !list.contains(&n) {
                list.push(n);
            }
        }
    }
}

impl Unit {
    /// Builds the typed unit from its files.
    pub fn from_files(files: UnitFiles, host: &Host) -> Unit {
        let name = files.name.clone();
        let mut warnings = files.diagnostics.clone();
        let mut unit = Unit {
            name: name.clone(),
            description: None,
            documentation: Vec::new(),
            deps: Dependencies::default(),
            default_dependencies: true,
            conditions: Vec::new(),
            asserts: Vec::new(),
            refuse_manual_start: false,
            refuse_manual_stop: false,
            allow_isolate: false,
            ignore_on_isolate: false,
            start_limit_interval: DEFAULT_START_LIMIT_INTERVAL,
            start_limit_burst: DEFAULT_START_LIMIT_BURST,
            install: Install::default(),
            service: (name.unit_type() == UnitType::Service).then(Service::default),
            socket: (name.unit_type() == UnitType::Socket).then(Socket::default),
            warnings: Vec::new(),
            files,
        };
        unit.deps.wants.extend(unit.files.wants.iter().cloned());
        unit.deps
            .requires
            .extend(unit.files.requires.iter().cloned());
        let mut unknown: Vec<String> = Vec::new();
        let type_section = name.unit_type().section();
        let sections = unit.files.document.sections.clone();
        for section in &sections {
            let known = section.name == "Unit"
                || section.name == "Install"
                || Some(section.name.as_str()) == type_section;
            if !known {
                if !section.name.starts_with("X-") {
                    if let Some(first) = section.assignments.first() {
                        warnings.push(Diagnostic {
                            at: first.at.clone(),
                            message: format!("unknown section [{}], ignored", section.name),
                        });
                    }
                }
                continue;
            }
            for a in &section.assignments {
                let mut ctx = Ctx {
                    unit: &name,
                    host,
                    warnings: &mut warnings,
                };
                let applied = match section.name.as_str() {
                    "Unit" => unit.apply_unit(&mut ctx, a),
                    "Install" => unit.apply_install(&mut ctx, a),
                    // systemd still reads the old spelling of the start limit here.
                    "Service" if a.key.starts_with("StartLimit") => unit.apply_unit(&mut ctx, a),
                    "Service" => match unit.service.as_mut() {
                        Some(s) => s.apply(&mut ctx, a),
                        None => Applied::Unknown,
                    },
                    "Socket" => match unit.socket.as_mut() {
                        Some(s) => s.apply(&mut ctx, a),
                        None => Applied::Unknown,
                    },
                    _ => Applied::Unknown,
                };
                if let Applied::Unknown = applied {
                    let key = format!("[{}] {}", section.name, a.key);
                    if !a.key.starts_with("X-") && !unknown.contains(&key) {
                        warnings.push(Diagnostic {
                            at: a.at.clone(),
                            message: format!("{key}= is not implemented by Berth, ignored"),
                        });
                        unknown.push(key);
                    }
                }
            }
        }
        unit.warnings = warnings;
        unit.add_implicit_dependencies();
        unit
    }

    /// The dependencies systemd adds whatever `DefaultDependencies=` says: a socket is
    /// ordered before the service it activates (socket_add_extras); a service wants and
    /// starts after its `Sockets=`; a command whose output goes to the journal or the kernel
    /// log starts after the journal's sockets (unit_add_exec_dependencies), which are
    /// listening before the journal runs, so that nothing waits for the journal itself.
    fn add_implicit_dependencies(&mut self) {
        let me = self.name.clone();
        let push = |list: &mut Vec<UnitName>, n: &UnitName| {
            if !list.contains(n) && *n != me {
                list.push(n.clone());
            }
        };
        if let Some(service) = self.socket.as_ref().and_then(|s| s.service_of(&self.name)) {
            push(&mut self.deps.before, &service);
        }
        if let Some(s) = &self.service {
            for socket in &s.sockets {
                push(&mut self.deps.wants, socket);
                push(&mut self.deps.after, socket);
            }
            let logs = |o: &Stdio| {
                matches!(
                    o,
                    Stdio::Journal | Stdio::Kmsg | Stdio::JournalConsole | Stdio::KmsgConsole
                )
            };
            if logs(s.stdout()) || logs(s.stderr()) {
                if let Ok(journal) = UnitName::parse(JOURNAL_SOCKET) {
                    push(&mut self.deps.after, &journal);
                }
            }
        }
    }

    fn apply_unit(&mut self, ctx: &mut Ctx, a: &Assignment) -> Applied {
        let d = &mut self.deps;
        match a.key.as_str() {
            "Description" => self.description = ctx.expand(a),
            "Documentation" => {
                if a.value.is_empty() {
                    self.documentation.clear();
                } else if let Some(v) = ctx.expand(a) {
                    self.documentation
                        .extend(v.split_whitespace().map(str::to_owned));
                }
            }
            "Requires" => extend_names(ctx, a, &mut d.requires),
            "Requisite" => extend_names(ctx, a, &mut d.requisite),
            "Wants" => extend_names(ctx, a, &mut d.wants),
            "BindsTo" => extend_names(ctx, a, &mut d.binds_to),
            "PartOf" => extend_names(ctx, a, &mut d.part_of),
            "Upholds" => extend_names(ctx, a, &mut d.upholds),
            "Conflicts" => extend_names(ctx, a, &mut d.conflicts),
            "Before" => extend_names(ctx, a, &mut d.before),
            "After" => extend_names(ctx, a, &mut d.after),
            "OnFailure" => extend_names(ctx, a, &mut d.on_failure),
            "OnSuccess" => extend_names(ctx, a, &mut d.on_success),
            "DefaultDependencies" => ctx.bool(a, &mut self.default_dependencies),
            "RefuseManualStart" => ctx.bool(a, &mut self.refuse_manual_start),
            "RefuseManualStop" => ctx.bool(a, &mut self.refuse_manual_stop),
            "AllowIsolate" => ctx.bool(a, &mut self.allow_isolate),
            "IgnoreOnIsolate" => ctx.bool(a, &mut self.ignore_on_isolate),
            "StartLimitIntervalSec" | "StartLimitInterval" => self.start_limit_interval(ctx, a),
            "StartLimitBurst" => match a.value.parse() {
                Ok(n) => self.start_limit_burst = n,
                Err(_) => ctx.warn(a, "not a number"),
            },
            key => {
                let (list, rest) = if let Some(r) = key.strip_prefix("Condition") {
                    (&mut self.conditions, r)
                } else if let Some(r) = key.strip_prefix("Assert") {
                    (&mut self.asserts, r)
                } else {
                    return Applied::Unknown;
                };
                let Some(check) = Check::from_key(rest) else {
                    return Applied::Unknown;
                };
                if a.value.is_empty() {
                    list.clear();
                } else if let Some(v) = ctx.expand(a) {
                    match condition::parse(key, check, &v) {
                        Ok(c) => list.push(c),
                        Err(e) => ctx.warn(a, e),
                    }
                }
            }
        }
        Applied::Done
    }

    pub(crate) fn start_limit_interval(&mut self, ctx: &mut Ctx, a: &Assignment) {
        match values::timespan(&a.value) {
            Ok(d) => self.start_limit_interval = d.unwrap_or(Duration::ZERO),
            Err(e) => ctx.warn(a, e),
        }
    }

    fn apply_install(&mut self, ctx: &mut Ctx, a: &Assignment) -> Applied {
        let i = &mut self.install;
        match a.key.as_str() {
            "WantedBy" => extend_names(ctx, a, &mut i.wanted_by),
            "RequiredBy" => extend_names(ctx, a, &mut i.required_by),
            "Also" => extend_names(ctx, a, &mut i.also),
            "Alias" => extend_names(ctx, a, &mut i.alias),
            "DefaultInstance" => i.default_instance = ctx.expand(a).filter(|v| !v.is_empty()),
            _ => return Applied::Unknown,
        }
        Applied::Done
    }

    /// Unit names this unit orders itself after, including the implicit ones of
    /// `DefaultDependencies=yes` for services (systemd.service(5) "Default Dependencies").
    pub fn effective_after(&self) -> Vec<UnitName> {
        let mut after = self.deps.after.clone();
        if self.default_dependencies && self.name.unit_type() == UnitType::Service {
            for n in ["sysinit.target", "basic.target"] {
                if let Ok(n) = UnitName::parse(n) {
                    if !after.contains(&n) {
                        after.push(n);
                    }
                }
            }
        }
        after
    }
}

#[cfg(test)]
#[path = "model_tests.rs"]
mod tests;
