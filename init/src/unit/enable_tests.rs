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
    (
        "ind.service",
        "[Service]\nExecStart=/bin/true\n[Install]\nAlso=foo.service\n",
    ),
    ("multi-user.target", "[Unit]\nDescription=Multi-User\n"),
    (
        "tp@.service",
        "[Service]\nExecStart=/bin/echo %i\n[Install]\nWantedBy=multi-user.target\nDefaultInstance=x\n",
    ),
];

fn tree() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let units = dir.path().join("usr/lib/systemd/system");
    fs::create_dir_all(&units).expect("mkdir");
    fs::create_dir_all(dir.path().join("etc/systemd/system")).expect("mkdir");
    for (name, text) in UNITS {
        fs::write(units.join(name), text).expect("write");
    }
    dir
}

fn names(list: &[&str]) -> Vec<UnitName> {
    list.iter()
        .map(|n| UnitName::parse(n).expect("name"))
        .collect()
}

fn states(i: &Installer, list: &[&str]) -> Vec<&'static str> {
    names(list)
        .iter()
        .map(|n| i.state(n).map(FileState::as_str).unwrap_or("not-found"))
        .collect()
}

/// Every link below `root/etc` and `root/run`, as `link -> target` lines.
fn links(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![root.join("etc"), root.join("run")];
    while let Some(dir) = stack.pop() {
        for e in fs::read_dir(&dir).into_iter().flatten().flatten() {
            let p = e.path();
            if let Ok(t) = fs::read_link(&p) {
                let rel = p.strip_prefix(root).expect("below root");
                out.push(format!("{} -> {}", rel.display(), t.display()));
            } else if p.is_dir() {
                stack.push(p);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn enable_links_install_rules_and_also_then_disable_removes_them() {
    let dir = tree();
    let i = Installer::new(dir.path());
    assert_eq!(
        states(
            &i,
            &["foo.service", "st.service", "ind.service", "nope.service"]
        ),
        ["disabled", "static", "indirect", "not-found"]
    );
    let done = i.enable(&names(&["foo.service"]), false).expect("enable");
    let root = dir.path().display().to_string();
    let mut said: Vec<String> = done.changes.iter().map(|c| c.to_string()).collect();
    said.sort();
    assert_eq!(
        said,
        [
            format!("Created symlink {root}/etc/systemd/system/foo.service.requires/bar.service \u{2192} /usr/lib/systemd/system/bar.service."),
            format!("Created symlink {root}/etc/systemd/system/foo2.service \u{2192} /usr/lib/systemd/system/foo.service."),
            format!("Created symlink {root}/etc/systemd/system/multi-user.target.wants/foo.service \u{2192} /usr/lib/systemd/system/foo.service."),
        ]
    );
    assert_eq!(
        states(&i, &["foo.service", "foo2.service", "bar.service"]),
        ["enabled", "alias", "enabled"]
    );
    // Enabling again changes nothing.
    assert!(i
        .enable(&names(&["foo.service"]), false)
        .expect("again")
        .changes
        .is_empty());
    let off = i.disable(&names(&["foo.service"]), false).expect("disable");
    assert_eq!(off.changes.len(), 3, "{:?}", off.changes);
    assert!(off.changes[0].to_string().starts_with("Removed \""));
    assert!(links(dir.path()).is_empty(), "{:?}", links(dir.path()));
}

#[test]
fn templates_static_units_and_runtime() {
    let dir = tree();
    let i = Installer::new(dir.path());
    let done = i.enable(&names(&["st.service"]), false).expect("static");
    assert!(done.changes.is_empty());
    assert_eq!(done.without_install, names(&["st.service"]));
    i.enable(&names(&["tp@.service"]), false).expect("template");
    i.enable(&names(&["tp@z.service"]), true).expect("instance");
    assert_eq!(
        states(
            &i,
            &[
                "tp@.service",
                "tp@x.service",
                "tp@y.service",
                "tp@z.service"
            ]
        ),
        ["enabled", "enabled", "disabled", "enabled-runtime"]
    );
    assert_eq!(
        links(dir.path()),
        [
            "etc/systemd/system/multi-user.target.wants/tp@x.service -> /usr/lib/systemd/system/tp@.service",
            "run/systemd/system/multi-user.target.wants/tp@z.service -> /usr/lib/systemd/system/tp@.service",
        ]
    );
}

#[test]
fn masks_are_links_to_dev_null() {
    let dir = tree();
    let i = Installer::new(dir.path());
    let masked = i.mask(&names(&["st.service"]), false).expect("mask");
    assert_eq!(masked.len(), 1);
    assert!(masked[0]
        .to_string()
        .ends_with("st.service \u{2192} /dev/null."));
    assert!(i
        .mask(&names(&["st.service"]), false)
        .expect("again")
        .is_empty());
    assert_eq!(states(&i, &["st.service"]), ["masked"]);
    let err = i
        .enable(&names(&["st.service"]), false)
        .expect_err("masked");
    assert!(err.to_string().ends_with("st.service is masked"), "{err}");
    let off = i.disable(&names(&["st.service"]), false).expect("disable");
    assert_eq!(off.masked.len(), 1);
    // A unit file of the same name in /etc is not overwritten by a mask.
    fs::write(dir.path().join("etc/systemd/system/x.service"), "").expect("write");
    assert!(matches!(
        i.mask(&names(&["x.service"]), false),
        Err(InstallError::Exists(_))
    ));
    let un = i.unmask(&names(&["st.service"]), false).expect("unmask");
    assert_eq!(
        un[0].to_string(),
        format!(
            "Removed \"{}/etc/systemd/system/st.service\".",
            dir.path().display()
        )
    );
    assert_eq!(states(&i, &["st.service"]), ["static"]);
}

#[test]
fn list_sorts_by_type_then_name() {
    let dir = tree();
    let i = Installer::new(dir.path());
    i.enable(&names(&["foo.service"]), false).expect("enable");
    let rows: Vec<String> = i
        .list()
        .iter()
        .map(|(n, s)| format!("{n} {}", s.as_str()))
        .collect();
    assert_eq!(
        rows,
        [
            "bar.service enabled",
            "foo.service enabled",
            "foo2.service alias",
            "ind.service indirect",
            "st.service static",
            "tp@.service disabled",
            "multi-user.target static",
        ]
    );
}

/// The same tree enabled by Debian's systemctl (`--root`, no PID 1 needed) and by Berth
/// must end with the same links and the same states.
#[test]
fn the_links_and_states_are_debian_systemctls() {
    let ours = tree();
    let theirs = tree();
    let ran = Command::new("systemctl")
        .arg(format!("--root={}", theirs.path().display()))
        .args(["enable", "foo.service", "tp@.service"])
        .output();
    let ran = match ran {
        Ok(o) if o.status.success() => o,
        other => {
            return berth_testkit::skip(&format!(
                "Debian's systemctl (package systemd) is the reference and cannot run here: {other:?}"
            ));
        }
    };
    let i = Installer::new(ours.path());
    i.enable(&names(&["foo.service", "tp@.service"]), false)
        .expect("enable");
    assert_eq!(
        links(ours.path()),
        links(theirs.path()),
        "{}",
        String::from_utf8_lossy(&ran.stderr)
    );
    let all = [
        "foo.service",
        "foo2.service",
        "bar.service",
        "st.service",
        "ind.service",
        "tp@.service",
        "tp@x.service",
        "tp@y.service",
    ];
    let out = Command::new("systemctl")
        .arg(format!("--root={}", theirs.path().display()))
        .arg("is-enabled")
        .args(all)
        .output()
        .expect("systemctl runs");
    let reference: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(states(&i, &all), reference);
}

/// The builder's links: in /usr/lib, the same for the same inputs, and what the loader
/// then reads as the target's wants.
#[test]
fn baked_links_are_a_pure_function_of_the_units() {
    let bake = || {
        let dir = tree();
        let i = Installer::new(dir.path());
        i.bake(&names(&["foo.service", "tp@.service"]))
            .expect("bake");
        let mut all = Vec::new();
        let mut stack = vec![dir.path().join("usr")];
        while let Some(d) = stack.pop() {
            for e in fs::read_dir(&d).expect("dir").flatten() {
                let p = e.path();
                if let Ok(t) = fs::read_link(&p) {
                    let rel = p.strip_prefix(dir.path()).expect("below");
                    all.push(format!("{} -> {}", rel.display(), t.display()));
                } else if p.is_dir() {
                    stack.push(p);
                }
            }
        }
        all.sort();
        let wants = Loader::system(dir.path())
            .load("multi-user.target")
            .expect("loads")
            .wants;
        (all, wants)
    };
    let (first, wants) = bake();
    assert_eq!(first, bake().0);
    assert_eq!(
        first,
        [
            "usr/lib/systemd/system/foo.service.requires/bar.service -> /usr/lib/systemd/system/bar.service",
            "usr/lib/systemd/system/foo2.service -> /usr/lib/systemd/system/foo.service",
            "usr/lib/systemd/system/multi-user.target.wants/foo.service -> /usr/lib/systemd/system/foo.service",
            "usr/lib/systemd/system/multi-user.target.wants/tp@x.service -> /usr/lib/systemd/system/tp@.service",
        ]
    );
    assert_eq!(wants, names(&["foo.service", "tp@x.service"]));
}
