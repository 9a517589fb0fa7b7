//! One control request against the manager: the verbs `systemctl` sends and what each
//! does. Exit codes are systemctl's (systemctl(1) "EXIT STATUS" and LSB): 1 failure,
//! 3 not active, 4 no such unit.

use super::{Reply, Request};
use crate::manager::Manager;
use crate::sys::PowerAction;
use crate::unit::lifecycle::Active;
use crate::unit::name::UnitName;

/// What the event loop must do after a reply: nothing, or begin a shutdown.
pub type Power = Option<PowerAction>;

/// Handles `request` from a peer with user ID `uid`.
pub fn handle(manager: &mut Manager, request: &Request, uid: u32) -> (Reply, Power) {
    let changes = matches!(
        request.verb.as_str(),
        "start"
            | "stop"
            | "restart"
            | "try-restart"
            | "reload"
            | "reload-or-restart"
            | "kill"
            | "reset-failed"
            | "poweroff"
            | "reboot"
            | "halt"
            | "daemon-reload"
    );
    if changes && uid != 0 {
        return (
            Reply::error(4, "Access denied: only root may change units or power"),
            None,
        );
    }
    let names = || -> Result<Vec<UnitName>, Reply> {
        if request.args.is_empty() {
            return Err(Reply::error(
                1,
                format!("{} needs a unit name", request.verb),
            ));
        }
        request
            .args
            .iter()
            .map(|a| UnitName::parse(a).map_err(|e| Reply::error(1, format!("{a}: {e}"))))
            .collect()
    };
    let reply = match request.verb.as_str() {
        "start" | "stop" | "restart" | "try-restart" => match names() {
            Ok(names) => jobs(manager, &request.verb, &names),
            Err(reply) => reply,
        },
        "reload" | "reload-or-restart" => match names() {
            Ok(names) => reload(manager, &request.verb, &names),
            Err(reply) => reply,
        },
        "kill" => kill(manager, &request.args),
        "reset-failed" => match request.args.is_empty() {
            true => reset_failed(manager, &[]),
            false => match names() {
                Ok(names) => reset_failed(manager, &names),
                Err(reply) => reply,
            },
        },
        "list-dependencies" => dependencies(manager, &request.args),
        // Without a unit: the manager's own properties, as `systemctl show` gives them.
        "show" if request.args.is_empty() => Reply::Ok(
            manager
                .boot_times
                .properties()
                .into_iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect(),
        ),
        "show" => match names() {
            Ok(names) => {
                for name in &names {
                    manager.load_on_demand(name);
                }
                show(manager, &names)
            }
            Err(reply) => reply,
        },
        "list-units" => Reply::Ok(
            manager
                .unit_list()
                .into_iter()
                .map(|row| row.join("\t"))
                .collect(),
        ),
        "daemon-reload" => {
            manager.reload_units();
            Reply::Ok(vec![])
        }
        "is-system-running" => Reply::Ok(vec![system_state(manager).into()]),
        "poweroff" => return (Reply::Ok(vec![]), Some(PowerAction::PowerOff)),
        "reboot" => return (Reply::Ok(vec![]), Some(PowerAction::Reboot)),
        "halt" => return (Reply::Ok(vec![]), Some(PowerAction::Halt)),
        other => Reply::error(1, format!("Unknown command verb '{other}'.")),
    };
    (reply, None)
}

fn jobs(manager: &mut Manager, verb: &str, names: &[UnitName]) -> Reply {
    for name in names {
        let result = match verb {
            "start" => manager.start_unit(name),
            "stop" => manager.stop_unit(name),
            "restart" => manager.restart_unit(name),
            _ => {
                let active = manager
                    .slots
                    .get(name)
                    .is_some_and(|s| s.active_state() == Active::Active);
                if active {
                    manager.restart_unit(name)
                } else {
                    Ok(())
                }
            }
        };
        if let Err(e) = result {
            let code = match e {
                crate::manager::jobs::JobRefused::NotLoaded(_) => 5,
                crate::manager::jobs::JobRefused::Manual(_)
                | crate::manager::jobs::JobRefused::Masked(_) => 1,
            };
            return Reply::error(code, format!("Failed to {verb} {name}: {e}"));
        }
    }
    Reply::Ok(vec![])
}

/// `reload` and `reload-or-restart` (which restarts what cannot be reloaded, and starts
/// what is not running).
fn reload(manager: &mut Manager, verb: &str, names: &[UnitName]) -> Reply {
    use crate::manager::unit_ops::OpRefused;
    for name in names {
        match manager.reload_unit(name) {
            Ok(()) => {}
            Err(OpRefused::NoReload(_) | OpRefused::Inactive(_)) if verb != "reload" => {
                if let Reply::Error { code, message } =
                    jobs(manager, "restart", std::slice::from_ref(name))
                {
                    return Reply::Error { code, message };
                }
            }
            Err(e) => return Reply::error(1, format!("Failed to reload {name}: {e}")),
        }
    }
    Reply::Ok(vec![])
}

/// `kill`: the arguments are `--kill-whom=`'s value, the signal number, then the units.
fn kill(manager: &mut Manager, args: &[String]) -> Reply {
    use crate::manager::unit_ops::Whom;
    let (Some(whom), Some(signal)) = (args.first(), args.get(1)) else {
        return Reply::error(1, "kill needs whom, a signal and a unit name");
    };
    let Some(whom) = Whom::parse(whom) else {
        return Reply::error(1, format!("Invalid kill-whom: {whom}"));
    };
    let Ok(signal) = signal.parse::<i32>() else {
        return Reply::error(1, format!("Invalid signal: {signal}"));
    };
    if args.len() < 3 {
        return Reply::error(1, "kill needs a unit name");
    }
    for unit in &args[2..] {
        let name = match UnitName::parse(unit) {
            Ok(n) => n,
            Err(e) => return Reply::error(1, format!("{unit}: {e}")),
        };
        if let Err(e) = manager.kill_unit(&name, whom, signal) {
            return Reply::error(1, format!("Failed to kill unit {name}: {e}"));
        }
    }
    Reply::Ok(vec![])
}

fn reset_failed(manager: &mut Manager, names: &[UnitName]) -> Reply {
    let result = if names.is_empty() {
        manager.reset_failed(None).map_err(|e| ("".to_owned(), e))
    } else {
        names.iter().try_for_each(|n| {
            manager
                .reset_failed(Some(n))
                .map_err(|e| (n.to_string(), e))
        })
    };
    match result {
        Ok(()) => Reply::Ok(vec![]),
        Err((name, e)) => Reply::error(
            1,
            format!("Failed to reset failed state of unit {name}: {e}"),
        ),
    }
}

/// `list-dependencies`: the arguments are the direction (`forward`, `reverse`, `after`)
/// and one unit; the body is one level, `NAME\tACTIVESTATE` a line.
fn dependencies(manager: &Manager, args: &[String]) -> Reply {
    use crate::manager::graph::Direction;
    let direction = match args.first().map(String::as_str) {
        Some("forward") => Direction::Forward,
        Some("reverse") => Direction::Reverse,
        Some("after") => Direction::After,
        _ => return Reply::error(1, "list-dependencies needs forward, reverse or after"),
    };
    let Some(unit) = args.get(1) else {
        return Reply::error(1, "list-dependencies needs a unit name");
    };
    let name = match UnitName::parse(unit) {
        Ok(n) => n,
        Err(e) => return Reply::error(1, format!("{unit}: {e}")),
    };
    Reply::Ok(
        manager
            .dependencies(&name, direction)
            .into_iter()
            .map(|(n, state)| format!("{n}\t{}", state.as_str()))
            .collect(),
    )
}

fn show(manager: &Manager, names: &[UnitName]) -> Reply {
    let mut body = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let Some(props) = manager.properties(name) else {
            return Reply::error(4, format!("Unit {name} could not be found."));
        };
        if i > 0 {
            body.push(String::new());
        }
        body.extend(props.into_iter().map(|(k, v)| format!("{k}={v}")));
    }
    Reply::Ok(body)
}

/// systemd's `is-system-running` states.
fn system_state(manager: &Manager) -> &'static str {
    let failed = manager
        .slots
        .values()
        .any(|s| s.active_state() == Active::Failed);
    if !manager.anchor_reached() && manager.busy() {
        "starting"
    } else if failed {
        "degraded"
    } else {
        "running"
    }
}
