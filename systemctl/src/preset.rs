//! `systemctl preset` and `preset-all` (systemd.preset(5)): the `enable PATTERN` /
//! `disable PATTERN` rules of the `*.preset` files decide, unit by unit, whether it is
//! enabled (as `enable` does, its `Also=` included) or disabled (its own links only), in
//! the way `--preset-mode=` allows. `list-unit-files` and `status` show the same rules'
//! verdict in their preset column.

use std::path::Path;

use berth_init::unit::enable::{Change, InstallError, Installer, PresetMode};
use berth_init::unit::name::UnitName;

use crate::files::{names, root};
use crate::{Args, Ask, Outcome};

/// The folders where preset files are looked for, highest precedence first.
const PRESET_DIRS: [&str; 3] = [
    "/etc/systemd/system-preset",
    "/run/systemd/system-preset",
    "/usr/lib/systemd/system-preset",
];

/// `preset UNIT...` and `preset-all`.
pub fn preset(args: &Args, ask: &Ask) -> Outcome {
    let mode = match args.preset_mode.as_deref().map(PresetMode::parse) {
        None => PresetMode::Full,
        Some(Some(m)) => m,
        Some(None) => {
            let m = args.preset_mode.as_deref().unwrap_or_default();
            return Outcome::fail(1, format!("Failed to parse preset mode: {m}.\n"));
        }
    };
    let root = root(args);
    let installer = Installer::new(&root);
    let presets = Presets::read(&root);
    let apply = |name: &UnitName| -> Result<Vec<Change>, InstallError> {
        let enable = presets.of(name) == "enabled";
        installer.preset(name, enable, mode, args.runtime)
    };
    let mut out = Outcome::ok(String::new());
    let mut changes = Vec::new();
    if args.verb == "preset-all" {
        // systemd 252 says a unit it cannot preset and goes on, exiting 0.
        // Aliases, static and masked units have no preset; an alias removed with its unit
        // on the way is gone, not an error.
        for (name, _) in installer.list().into_iter().filter(|(_, s)| s.has_preset()) {
            match apply(&name) {
                Ok(c) => changes.extend(c),
                Err(InstallError::NotFound(_)) => {}
                Err(e) => out
                    .stderr
                    .push_str(&format!("Failed to preset unit, {e}.\n")),
            }
        }
    } else {
        let units = match names(args) {
            Ok(n) => n,
            Err(o) => return o,
        };
        for name in &units {
            match apply(name) {
                Ok(c) => changes.extend(c),
                Err(e) => {
                    let said: String = changes.iter().map(|c| format!("{c}\n")).collect();
                    return Outcome::fail(1, format!("{said}Failed to preset unit, {e}.\n"));
                }
            }
        }
    }
    let said: String = changes.iter().map(|c| format!("{c}\n")).collect();
    out.stderr = format!("{said}{}", out.stderr);
    if args.root.is_none() && !args.no_reload && !changes.is_empty() {
        if let Err(o) = ask("daemon-reload", &[]) {
            return Outcome::fail(o.code, format!("{}{}", out.stderr, o.stderr));
        }
    }
    out
}

/// systemd.preset(5): `enable PATTERN` / `disable PATTERN` lines from `*.preset` files,
/// read in file-name order (a file in an earlier folder hides one of the same name); the
/// first line that matches decides, and no match means enabled.
pub(crate) struct Presets {
    rules: Vec<(bool, String)>,
}

impl Presets {
    pub(crate) fn read(root: &Path) -> Presets {
        let mut files = std::collections::BTreeMap::new();
        for dir in PRESET_DIRS.iter().rev() {
            let host = root.join(dir.trim_start_matches('/'));
            for e in std::fs::read_dir(host).into_iter().flatten().flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if name.ends_with(".preset") {
                    files.insert(name, e.path());
                }
            }
        }
        let rules = files
            .values()
            .filter_map(|p| std::fs::read_to_string(p).ok())
            .flat_map(|text| {
                text.lines()
                    .filter_map(|l| {
                        let mut w = l.split_whitespace();
                        let enable = match w.next()? {
                            "enable" => true,
                            "disable" => false,
                            _ => return None,
                        };
                        Some((enable, w.next()?.to_owned()))
                    })
                    .collect::<Vec<_>>()
            })
            .collect();
        Presets { rules }
    }

    pub(crate) fn of(&self, name: &UnitName) -> &'static str {
        let enabled = self
            .rules
            .iter()
            .find(|(_, p)| berth_journalctl::filter::glob(p, name.as_str()))
            .is_none_or(|(e, _)| *e);
        if enabled {
            "enabled"
        } else {
            "disabled"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_first_match_wins_and_default_is_enabled() {
        let dir = tempfile::tempdir().expect("tempdir");
        let usr = dir.path().join("usr/lib/systemd/system-preset");
        let etc = dir.path().join("etc/systemd/system-preset");
        std::fs::create_dir_all(&usr).expect("mkdir");
        std::fs::create_dir_all(&etc).expect("mkdir");
        std::fs::write(usr.join("90-default.preset"), "# c\ndisable *\n").expect("w");
        std::fs::write(usr.join("10-node.preset"), "enable berth-*.service\n").expect("w");
        std::fs::write(etc.join("90-default.preset"), "disable x.service\n").expect("w");
        let p = Presets::read(dir.path());
        let of = |n: &str| p.of(&UnitName::parse(n).expect("name"));
        assert_eq!(of("berth-runtime.service"), "enabled");
        assert_eq!(of("x.service"), "disabled");
        // /etc's 90-default.preset hides /usr's, so nothing disables y.
        assert_eq!(of("y.service"), "enabled");
    }
}
