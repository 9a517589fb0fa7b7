//! A service's settings as `systemctl show` prints them: systemd 252's property names
//! (`RestartUSec=`, `TimeoutStopFailureMode=`, …) and value formats, so that scripts and
//! people who read them on systemd read the same here. Timespans are written as systemd's
//! `format_timespan` with full accuracy writes them (`1min 30s`, `100ms`, `1.500000s`,
//! `infinity`), signals as numbers, booleans as `yes`/`no`, exit status sets as
//! `systemctl show` prints the bus's `(aiai)` pair (statuses, then signal names).

use std::time::Duration;

use super::exec_record::signal_name;
use super::service::Service;
use super::setting_names::Named;

/// The settings of `service`, in the order systemd lists them.
pub fn service_settings(service: &Service) -> Vec<(&'static str, String)> {
    let yes_no = |b: bool| if b { "yes" } else { "no" }.to_owned();
    vec![
        ("Restart", service.restart.name().into()),
        ("NotifyAccess", service.notify_access().name().into()),
        ("RestartUSec", timespan(Some(service.restart_sec))),
        ("TimeoutStartUSec", timespan(service.timeout_start)),
        ("TimeoutStopUSec", timespan(service.timeout_stop)),
        ("TimeoutAbortUSec", timespan(service.abort_timeout())),
        (
            "TimeoutStartFailureMode",
            service.timeout_start_failure_mode.name().into(),
        ),
        (
            "TimeoutStopFailureMode",
            service.timeout_stop_failure_mode.name().into(),
        ),
        ("RuntimeMaxUSec", timespan(service.runtime_max)),
        // No watchdog is 0 in systemd's property, not infinity.
        (
            "WatchdogUSec",
            timespan(Some(service.watchdog.unwrap_or(Duration::ZERO))),
        ),
        ("RemainAfterExit", yes_no(service.remain_after_exit)),
        // After RemainAfterExit=, as in systemd 252's bus vtable of a service.
        (
            "RestartPreventExitStatus",
            exit_status_set(&service.restart_prevent_exit_status),
        ),
        (
            "RestartForceExitStatus",
            exit_status_set(&service.restart_force_exit_status),
        ),
        (
            "SuccessExitStatus",
            exit_status_set(&service.success_exit_status),
        ),
        ("KillMode", service.kill_mode.name().into()),
        ("KillSignal", service.kill_signal.to_string()),
        ("SendSIGKILL", yes_no(service.send_sigkill)),
        ("SendSIGHUP", yes_no(service.send_sighup)),
        ("WatchdogSignal", service.watchdog_signal.to_string()),
    ]
}

/// An exit status set (`SuccessExitStatus=` and the like; signals are kept negative) as
/// systemd 252's systemctl prints the bus property: the set is two bitmaps, so each status
/// and signal once, in ascending order; the statuses as numbers, then the signals as
/// `signal_to_string` names them (`TERM`, no `SIG`), space-separated; an empty set is
/// empty.
pub fn exit_status_set(set: &[i32]) -> String {
    let mut statuses: Vec<i32> = set.iter().copied().filter(|n| *n >= 0).collect();
    let mut signals: Vec<i32> = set.iter().filter(|n| **n < 0).map(|n| -n).collect();
    for list in [&mut statuses, &mut signals] {
        list.sort_unstable();
        list.dedup();
    }
    statuses
        .iter()
        .map(i32::to_string)
        .chain(signals.into_iter().map(signal_name))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A timespan as systemd's `format_timespan(…, 0)` writes it; `None` is `infinity`.
pub fn timespan(span: Option<Duration>) -> String {
    const UNITS: [(&str, u64); 9] = [
        ("y", 31_557_600_000_000),
        ("month", 2_629_800_000_000),
        ("w", 604_800_000_000),
        ("d", 86_400_000_000),
        ("h", 3_600_000_000),
        ("min", 60_000_000),
        ("s", 1_000_000),
        ("ms", 1_000),
        ("us", 1),
    ];
    const MINUTE: u64 = 60_000_000;
    let Some(span) = span else {
        return "infinity".into();
    };
    let mut left = u64::try_from(span.as_micros()).unwrap_or(u64::MAX);
    if left == 0 {
        return "0".into();
    }
    let mut parts = Vec::new();
    for (suffix, unit) in UNITS {
        if left == 0 {
            break;
        }
        if left < unit {
            continue;
        }
        let (whole, rest) = (left / unit, left % unit);
        // Under a minute, a remainder goes after a dot, in the unit's digits.
        let digits = unit.ilog10() as usize;
        if left < MINUTE && rest > 0 && digits > 0 {
            parts.push(format!("{whole}.{rest:0digits$}{suffix}"));
            break;
        }
        parts.push(format!("{whole}{suffix}"));
        left = rest;
    }
    parts.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_status_sets_as_systemctl_show_prints_them() {
        for (set, text) in [
            (&[][..], ""),
            (&[3][..], "3"),
            // Statuses before signals, each sorted once, signals by name.
            (&[-15, 75, 3, -1, 3, -15][..], "3 75 HUP TERM"),
            (&[-9][..], "KILL"),
            // Realtime signals as systemd names them.
            (&[-34, -40][..], "RTMIN+0 RTMIN+6"),
        ] {
            assert_eq!(exit_status_set(set), text, "{set:?}");
        }
    }

    #[test]
    fn timespans_as_systemd_writes_them() {
        let ms = Duration::from_millis;
        for (span, text) in [
            (None, "infinity"),
            (Some(Duration::ZERO), "0"),
            (Some(ms(100)), "100ms"),
            (Some(ms(90_000)), "1min 30s"),
            (Some(ms(1_500)), "1.500000s"),
            (Some(ms(61_500)), "1min 1.500000s"),
            (Some(ms(3_723_000)), "1h 2min 3s"),
            (Some(Duration::from_micros(1_500)), "1.500ms"),
            (Some(Duration::from_micros(7)), "7us"),
            (Some(Duration::from_secs(86_400 * 8)), "1w 1d"),
        ] {
            assert_eq!(timespan(span), text, "{span:?}");
        }
    }
}
