//! The names of a service's enumerated settings (`Type=`, `Restart=`, `KillMode=`,
//! `NotifyAccess=`, `Timeout*FailureMode=`) as unit files write them and `systemctl show`
//! prints them: one table per setting, read both ways, so the parser and the printer
//! cannot drift apart.

use super::service::{KillMode, NotifyAccess, Restart, ServiceType, TimeoutFailureMode};

/// A setting whose every value has one name.
pub trait Named: Copy + PartialEq + 'static {
    /// Every value with its name.
    const NAMES: &'static [(&'static str, Self)];

    /// The value named `name`, if any.
    fn from_name(name: &str) -> Option<Self> {
        Self::NAMES
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, value)| *value)
    }

    /// The name of this value.
    fn name(self) -> &'static str {
        Self::NAMES
            .iter()
            .find(|(_, value)| *value == self)
            .map_or("", |(n, _)| n)
    }
}

impl Named for ServiceType {
    const NAMES: &'static [(&'static str, Self)] = &[
        ("simple", ServiceType::Simple),
        ("exec", ServiceType::Exec),
        ("forking", ServiceType::Forking),
        ("oneshot", ServiceType::Oneshot),
        ("notify", ServiceType::Notify),
        ("notify-reload", ServiceType::NotifyReload),
        ("idle", ServiceType::Idle),
        ("dbus", ServiceType::Dbus),
    ];
}

impl Named for Restart {
    const NAMES: &'static [(&'static str, Self)] = &[
        ("no", Restart::No),
        ("always", Restart::Always),
        ("on-success", Restart::OnSuccess),
        ("on-failure", Restart::OnFailure),
        ("on-abnormal", Restart::OnAbnormal),
        ("on-abort", Restart::OnAbort),
        ("on-watchdog", Restart::OnWatchdog),
    ];
}

impl Named for KillMode {
    const NAMES: &'static [(&'static str, Self)] = &[
        ("control-group", KillMode::ControlGroup),
        ("mixed", KillMode::Mixed),
        ("process", KillMode::Process),
        ("none", KillMode::None),
    ];
}

impl Named for TimeoutFailureMode {
    const NAMES: &'static [(&'static str, Self)] = &[
        ("terminate", TimeoutFailureMode::Terminate),
        ("abort", TimeoutFailureMode::Abort),
        ("kill", TimeoutFailureMode::Kill),
    ];
}

impl Named for NotifyAccess {
    const NAMES: &'static [(&'static str, Self)] = &[
        ("none", NotifyAccess::None),
        ("main", NotifyAccess::Main),
        ("exec", NotifyAccess::Exec),
        ("all", NotifyAccess::All),
    ];
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trips<T: Named + std::fmt::Debug>() {
        for (name, value) in T::NAMES {
            assert_eq!(T::from_name(name), Some(*value));
            assert_eq!(value.name(), *name);
        }
        assert_eq!(T::from_name("nope"), None);
    }

    #[test]
    fn every_name_reads_back_to_its_value() {
        round_trips::<ServiceType>();
        round_trips::<Restart>();
        round_trips::<KillMode>();
        round_trips::<TimeoutFailureMode>();
        round_trips::<NotifyAccess>();
    }
}
