//! The unit-file verbs: `enable`, `disable`, `reenable`, `link`, `mask`, `unmask` (with
//! `--now`, `--runtime`, `--root`), `is-enabled` and `list-unit-files`. The links are made here, in the client,
//! through [`berth_init::unit::enable`] (as systemctl does with `--root`); then PID 1 is
//! asked to `daemon-reload` so that they take effect, and with `--now` to start or stop
//! the units. Messages and exit statuses are systemd 252's.

use std::path::{Path, PathBuf};

use berth_init::unit::enable::{Change, InstallError, Installer};
use berth_init::unit::name::UnitName;

use crate::preset::Presets;
use crate::{Args, Ask, Outcome};

/// systemd's explanation for `enable` of a unit without `[Install]` rules.
const NO_INSTALL: &str = "\
The unit files have no installation config (WantedBy=, RequiredBy=, Also=,
Alias= settings in the [Install] section, and DefaultInstance= for template
units). This means they are not meant to be enabled using systemctl.
 
Possible reasons for having this kind of units are:
\u{2022} A unit may be statically enabled by being symlinked from another unit's
  .wants/ or .requires/ directory.
\u{2022} A unit's purpose may be to act as a helper for some other unit which has
  a requirement dependency on it.
\u{2022} A unit may be started when needed via activation (socket, path, timer,
  D-Bus, udev, scripted systemctl call, ...).
\u{2022} In case of template units, the unit is meant to be enabled with some
  instance name specified.
";

pub(crate) fn root(args: &Args) -> PathBuf {
    args.root.clone().unwrap_or_else(|| PathBuf::from("/"))
}

pub(crate) fn names(args: &Args) -> Result<Vec<UnitName>, Outcome> {
    if args.units.is_empty() {
        return Err(Outcome::fail(1, "Too few arguments.\n".into()));
    }
    args.units
        .iter()
        .map(|u| UnitName::parse(u).map_err(|e| Outcome::fail(1, format!("{u}: {e}\n"))))
        .collect()
}

/// `link`'s paths: absolute, or made so from the current folder (not with `--root`).
fn link_paths(args: &Args) -> Result<Vec<PathBuf>, Outcome> {
    if args.words.is_empty() {
        return Err(Outcome::fail(1, "Too few arguments.\n".into()));
    }
    args.words
        .iter()
        .map(|w| {
            let p = PathBuf::from(w);
            match (p.is_absolute(), &args.root) {
                (true, _) => Ok(p),
                (false, Some(_)) => Err(Outcome::fail(
                    1,
                    format!("Non-absolute paths are not allowed when --root is used: {w}\n"),
                )),
                (false, None) => std::env::current_dir()
                    .map(|d| d.join(&p))
                    .map_err(|e| Outcome::fail(1, format!("{w}: {e}\n"))),
            }
        })
        .collect()
}

/// `enable`, `disable`, `reenable`, `link`, `mask`, `unmask`.
pub fn change(args: &Args, ask: &Ask) -> Outcome {
    let verb = args.verb.as_str();
    let listed = if verb == "link" {
        link_paths(args).map(|p| (Vec::new(), p))
    } else {
        names(args).map(|n| (n, Vec::new()))
    };
    let (units, paths) = match listed {
        Ok(l) => l,
        Err(o) => return o,
    };
    let installer = Installer::new(&root(args));
    let mut said = String::new();
    let result: Result<Vec<Change>, InstallError> = match verb {
        "enable" => installer.enable(&units, args.runtime).map(|done| {
            if !done.without_install.is_empty() && done.changes.is_empty() {
                said.push_str(NO_INSTALL);
            }
            done.changes
        }),
        "disable" => installer.disable(&units, args.runtime).map(|done| {
            for path in &done.masked {
                said.push_str(&format!("Unit {} is masked, ignoring.\n", path.display()));
            }
            done.changes
        }),
        "reenable" => installer.reenable(&units, args.runtime).map(|(off, on)| {
            if !on.without_install.is_empty() && on.changes.is_empty() {
                said.push_str(NO_INSTALL);
            }
            off.changes.into_iter().chain(on.changes).collect()
        }),
        "link" => installer.link(&paths, args.runtime),
        "mask" => installer.mask(&units, args.runtime),
        _ => installer.unmask(&units, args.runtime),
    };
    let changes = match result {
        Ok(c) => c,
        // systemd 252 says so but exits 0 for a unit that is not there to disable.
        Err(e @ InstallError::NotFound(_)) if verb == "disable" => {
            return Outcome {
                stdout: String::new(),
                stderr: format!("Failed to {verb} unit, {e}.\n"),
                code: 0,
            }
        }
        // systemd 252 tries the disable, then the enable, and says the failure of each.
        Err(e @ InstallError::NotFound(_)) if verb == "reenable" => {
            let line = format!("Failed to {verb} unit, {e}.\n");
            return Outcome::fail(1, line.repeat(2));
        }
        Err(e) => return Outcome::fail(1, format!("Failed to {verb} unit, {e}.\n")),
    };
    let mut stderr: String = changes.iter().map(|c| format!("{c}\n")).collect();
    stderr.push_str(&said);
    // Links under --root are for another tree: no manager to tell.
    if args.root.is_none() && !args.no_reload && !changes.is_empty() {
        if let Err(o) = ask("daemon-reload", &[]) {
            return Outcome::fail(o.code, format!("{stderr}{}", o.stderr));
        }
    }
    if args.now && args.root.is_none() {
        let job = if verb == "enable" { "start" } else { "stop" };
        if verb == "enable" || verb == "disable" || verb == "mask" {
            let jobs = ask(job, &args.units).and_then(|_| {
                if args.no_block {
                    Ok(Outcome::ok(String::new()))
                } else {
                    crate::wait_for_jobs(ask, job, &args.units)
                }
            });
            if let Err(o) = jobs {
                return Outcome::fail(o.code, format!("{stderr}{}", o.stderr));
            }
        }
    }
    Outcome {
        stdout: String::new(),
        stderr,
        code: 0,
    }
}

/// What `status` shows after the unit file's path: `; enabled; preset: enabled`, or
/// `; static` for a state without a preset; nothing for a unit with no file state.
pub(crate) fn file_state_note(unit: &str) -> String {
    let Ok(name) = UnitName::parse(unit) else {
        return String::new();
    };
    let root = Path::new("/");
    match Installer::new(root).state(&name) {
        Ok(state) if state.has_preset() => format!(
            "; {}; preset: {}",
            state.as_str(),
            Presets::read(root).of(&name)
        ),
        Ok(state) => format!("; {}", state.as_str()),
        Err(_) => String::new(),
    }
}

/// `is-enabled UNIT...`: one state a line; 0 when any is enabled in systemctl's sense.
pub fn is_enabled(args: &Args) -> Outcome {
    let units = match names(args) {
        Ok(n) => n,
        Err(o) => return o,
    };
    let installer = Installer::new(&root(args));
    let mut out = Outcome::ok(String::new());
    let mut any = false;
    for unit in &units {
        match installer.state(unit) {
            Ok(state) => {
                any |= state.counts_as_enabled();
                if !args.quiet {
                    out.stdout.push_str(&format!("{}\n", state.as_str()));
                }
            }
            Err(InstallError::NotFound(_)) => {
                out.stderr.push_str(&format!(
                    "Failed to get unit file state for {unit}: No such file or directory\n"
                ));
                out.code = 1;
                return out;
            }
            Err(e) => {
                out.stderr
                    .push_str(&format!("Failed to get unit file state for {unit}: {e}\n"));
                out.code = 1;
                return out;
            }
        }
    }
    out.code = u8::from(!any);
    out
}

/// `list-unit-files [PATTERN...]`: UNIT FILE, STATE, PRESET.
pub fn list(args: &Args, patterns: &[String]) -> Outcome {
    let root = root(args);
    let presets = Presets::read(&root);
    let rows: Vec<[String; 3]> = Installer::new(&root)
        .list()
        .into_iter()
        .filter(|(n, _)| {
            patterns.is_empty()
                || patterns
                    .iter()
                    .any(|p| berth_journalctl::filter::glob(p, n.as_str()))
        })
        .filter(|(n, _)| {
            args.types.is_empty()
                || args
                    .types
                    .iter()
                    .any(|t| t.as_str() == n.unit_type().suffix())
        })
        .filter(|(_, s)| args.states.is_empty() || args.states.iter().any(|w| w == s.as_str()))
        .map(|(n, s)| {
            let preset = if s.has_preset() {
                presets.of(&n).to_owned()
            } else {
                "-".to_owned()
            };
            [n.to_string(), s.as_str().to_owned(), preset]
        })
        .collect();
    Outcome::ok(table(&rows, args.no_legend))
}

fn table(rows: &[[String; 3]], no_legend: bool) -> String {
    let head = ["UNIT FILE", "STATE", "PRESET"];
    let width = |i: usize| {
        rows.iter()
            .map(|r| r[i].chars().count())
            .chain((!no_legend).then(|| head[i].len()))
            .max()
            .unwrap_or(0)
    };
    let (w0, w1) = (width(0), width(1));
    let mut out = String::new();
    let mut line = |r: [&str; 3]| out.push_str(&format!("{:w0$} {:w1$} {}\n", r[0], r[1], r[2]));
    if !no_legend {
        line(head);
    }
    for r in rows {
        line([&r[0], &r[1], &r[2]]);
    }
    if !no_legend {
        out.push_str(&format!("\n{} unit files listed.\n", rows.len()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    const UNITS: &[(&str, &str)] = &[
        (
            "foo.service",
            "[Service]\nExecStart=/bin/true\n[Install]\nWantedBy=multi-user.target\nAlias=foo2.service\nAlso=bar.service\n",
        ),
        (
            "bar.service",
            "[Service]\nExecStart=/bin/true\n[Install]\nRequiredBy=foo.service\n",
        ),
        ("st.service", "[Service]\nExecStart=/bin/true\n"),
        ("multi-user.target", "[Unit]\nDescription=Multi-User\n"),
    ];

    const EXT: &str = "[Service]\nExecStart=/bin/true\n[Install]\nWantedBy=multi-user.target\n";

    fn tree() -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        let units = dir.path().join("usr/lib/systemd/system");
        std::fs::create_dir_all(&units).expect("mkdir");
        std::fs::create_dir_all(dir.path().join("etc/systemd/system")).expect("mkdir");
        for (name, text) in UNITS {
            std::fs::write(units.join(name), text).expect("write");
        }
        // Outside the search path, for `link`; and presets for `preset`.
        std::fs::create_dir_all(dir.path().join("opt")).expect("mkdir");
        std::fs::write(dir.path().join("opt/ext.service"), EXT).expect("write");
        std::fs::write(dir.path().join("opt/bad.conf"), EXT).expect("write");
        let presets = dir.path().join("usr/lib/systemd/system-preset");
        std::fs::create_dir_all(&presets).expect("mkdir");
        std::fs::write(
            presets.join("90-default.preset"),
            "enable bar.service\nenable ext.service\ndisable *\n",
        )
        .expect("write");
        dir
    }

    /// Berth's systemctl and Debian's, each on its own copy of one tree (`--root`, no
    /// PID 1): the same stdout, stderr (the root's path made neutral, lines sorted where
    /// systemd's order is a hash's) and exit status, verb after verb.
    #[test]
    fn the_unit_file_verbs_print_and_exit_as_debians_systemctl() {
        let ours = tree();
        let theirs = tree();
        let probe = Command::new("systemctl").arg("--version").output();
        if !probe.as_ref().is_ok_and(|o| o.status.success()) {
            return berth_testkit::skip(&format!(
                "Debian's systemctl (package systemd) is the reference and cannot run here: {probe:?}"
            ));
        }
        let script = [
            "list-unit-files",
            "enable foo",
            "is-enabled foo foo2.service bar st",
            "list-unit-files",
            "list-unit-files --no-legend f*",
            "disable foo",
            "mask st",
            "is-enabled st",
            "enable st",
            "mask st",
            "disable st",
            "unmask st",
            "enable st",
            "enable nope",
            "disable nope",
            "is-enabled nope",
            "link /opt/ext.service",
            "link /opt/ext.service",
            "is-enabled ext",
            "list-unit-files",
            "enable ext",
            "is-enabled ext",
            "reenable ext",
            "disable ext",
            "is-enabled ext",
            "link ext.service",
            "link /opt/nope.service",
            "link /opt",
            "link /opt/bad.conf",
            "reenable foo",
            "reenable foo",
            "reenable nope",
            "reenable st",
            "preset foo",
            "preset bar",
            "disable bar",
            "preset-all",
            "list-unit-files",
            "enable foo",
            "preset --preset-mode=enable-only foo",
            "preset-all --preset-mode=disable-only",
            "preset nope",
            "preset st",
            "link /opt/ext.service",
            "is-enabled ext",
            "preset ext",
            "is-enabled ext",
            "disable ext",
            "link /opt/ext.service",
            "preset-all --preset-mode=enable-only",
            "list-unit-files",
            "preset --preset-mode=sideways foo",
        ];
        let neutral = |text: &str, root: &std::path::Path| {
            let mut lines: Vec<String> = text
                .replace(&root.display().to_string(), "ROOT")
                .lines()
                .map(str::to_owned)
                .collect();
            lines.sort();
            lines
        };
        for step in script {
            let mut argv = vec![format!("--root={}", ours.path().display())];
            argv.extend(step.split(' ').map(str::to_owned));
            let args = crate::parse(&argv).expect("parse");
            let o = crate::run(std::path::Path::new("/nonexistent/init.sock"), &args);
            let r = Command::new("systemctl")
                .arg(format!("--root={}", theirs.path().display()))
                .args(step.split(' '))
                .output()
                .expect("systemctl runs");
            assert_eq!(
                (
                    o.stdout.as_str(),
                    neutral(&o.stderr, ours.path()),
                    i32::from(o.code)
                ),
                (
                    String::from_utf8_lossy(&r.stdout).as_ref(),
                    neutral(&String::from_utf8_lossy(&r.stderr), theirs.path()),
                    r.status.code().unwrap_or(-1)
                ),
                "systemctl {step}"
            );
        }
    }

    #[test]
    fn the_table_is_systemds() {
        let rows = [
            ["bar.service".into(), "enabled".into(), "enabled".into()],
            ["multi-user.target".into(), "static".into(), "-".into()],
        ];
        assert_eq!(
            table(&rows, false),
            "UNIT FILE         STATE   PRESET\nbar.service       enabled enabled\nmulti-user.target static  -\n\n2 unit files listed.\n"
        );
    }
}
