//! `reboot`, `poweroff` and `halt` as command names (systemd-sysv links them to
//! `systemctl`; so does the image): each asks PID 1 for that verb, and takes the options
//! of systemd's `halt(8)` that mean something on Berth.

/// The verb for a program called `name` with `argv`; `None` when `name` is none of the
/// three.
pub fn power_command(name: &str, argv: &[String]) -> Option<Result<&'static str, String>> {
    let mut verb = match name {
        "reboot" => "reboot",
        "poweroff" => "poweroff",
        "halt" => "halt",
        _ => return None,
    };
    for arg in argv {
        match arg.as_str() {
            "--halt" => verb = "halt",
            "-p" | "--poweroff" => verb = "poweroff",
            "--reboot" => verb = "reboot",
            // There is no wall(1) and no wtmp to skip on Berth.
            "--no-wall" | "-d" | "--no-wtmp" => {}
            "-f" | "--force" | "-w" | "--wtmp-only" | "-n" | "--no-sync" => {
                return Some(Err(format!(
                    "{arg} is not supported by Berth: PID 1 always stops the units and syncs"
                )))
            }
            other if other.starts_with('-') => {
                return Some(Err(format!("unrecognized option '{other}'")))
            }
            other => return Some(Err(format!("too many arguments: '{other}'"))),
        }
    }
    Some(Ok(verb))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(name: &str, args: &[&str]) -> Option<Result<&'static str, String>> {
        let argv: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
        power_command(name, &argv)
    }

    #[test]
    fn the_three_names_and_their_options() {
        assert_eq!(call("reboot", &[]), Some(Ok("reboot")));
        assert_eq!(call("poweroff", &["--no-wall"]), Some(Ok("poweroff")));
        assert_eq!(call("halt", &[]), Some(Ok("halt")));
        assert_eq!(call("halt", &["-p"]), Some(Ok("poweroff")));
        assert_eq!(call("poweroff", &["--reboot"]), Some(Ok("reboot")));
        assert_eq!(call("systemctl", &["reboot"]), None);
    }

    #[test]
    fn what_berth_cannot_do_is_refused_with_the_option_named() {
        let forced = call("reboot", &["-f"]).expect("reboot").unwrap_err();
        assert!(
            forced.starts_with("-f is not supported by Berth"),
            "{forced}"
        );
        assert_eq!(
            call("halt", &["--now"]),
            Some(Err("unrecognized option '--now'".into()))
        );
        assert_eq!(
            call("reboot", &["firmware"]),
            Some(Err("too many arguments: 'firmware'".into()))
        );
    }
}
