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
        "show" => match names() {
            Ok(names) => show(manager, &names),
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
