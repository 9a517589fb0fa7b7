//! `[Install]` (systemd.unit(5) "[Install] Section Options"): what enabling a unit
//! creates, as a list of symbolic links. `systemctl enable` makes them under `/etc`
//! (stateless on Berth, as on COS); the image builder bakes the links of `image.toml`'s
//! enabled units under `/usr/lib`. Both take the plan from here, so they cannot differ.

use std::path::{Path, PathBuf};

use super::model::Unit;

/// One link: `link` points at `target`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Link {
    pub link: PathBuf,
    pub target: PathBuf,
}

/// The links that enable `unit`, in `dir` (`/etc/systemd/system` or
/// `/usr/lib/systemd/system`), for a unit whose file is `unit_path`. A template is
/// enabled through its `DefaultInstance=`; `Also=` units are the caller's to enable too
/// (returned separately so that each is loaded once).
pub fn plan(unit: &Unit, unit_path: &Path, dir: &Path) -> (Vec<Link>, Vec<String>) {
    let mut links = Vec::new();
    let name = match (&unit.install.default_instance, unit.name.is_template()) {
        (Some(instance), true) => match unit.name.with_instance(instance) {
            Ok(n) => n,
            Err(_) => unit.name.clone(),
        },
        _ => unit.name.clone(),
    };
    for (kind, owners) in [
        ("wants", &unit.install.wanted_by),
        ("requires", &unit.install.required_by),
    ] {
        for owner in owners {
            links.push(Link {
                link: dir.join(format!("{owner}.{kind}")).join(name.as_str()),
                target: unit_path.to_owned(),
            });
        }
    }
    for alias in &unit.install.alias {
        if alias.unit_type() == unit.name.unit_type() {
            links.push(Link {
                link: dir.join(alias.as_str()),
                target: unit_path.to_owned(),
            });
        }
    }
    links.sort();
    links.dedup();
    let also = unit.install.also.iter().map(|n| n.to_string()).collect();
    (links, also)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::unit::load::Loader;
    use crate::unit::specifier::Host;

    fn unit(name: &str, text: &str) -> Unit {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("usr/lib/systemd/system").join(name);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(&p, text).expect("write");
        let files = Loader::system(dir.path()).load(name).expect("loads");
        Unit::from_files(files, &Host::default())
    }

    #[test]
    fn wanted_by_required_by_alias_and_also() {
        let u = unit(
            "containerd.service",
            "[Service]\nExecStart=/usr/bin/containerd\n[Install]\nWantedBy=multi-user.target\nRequiredBy=kubelet.service\nAlias=cri.service\nAlso=containerd.socket\n",
        );
        let (links, also) = plan(
            &u,
            Path::new("/usr/lib/systemd/system/containerd.service"),
            Path::new("/etc/systemd/system"),
        );
        let shown: Vec<_> = links.iter().map(|l| l.link.display().to_string()).collect();
        assert_eq!(
            shown,
            [
                "/etc/systemd/system/cri.service",
                "/etc/systemd/system/kubelet.service.requires/containerd.service",
                "/etc/systemd/system/multi-user.target.wants/containerd.service",
            ]
        );
        assert!(links
            .iter()
            .all(|l| l.target == Path::new("/usr/lib/systemd/system/containerd.service")));
        assert_eq!(also, ["containerd.socket"]);
    }

    #[test]
    fn a_template_is_enabled_through_its_default_instance() {
        let u = unit(
            "serial-getty@.service",
            "[Service]\nExecStart=/sbin/agetty %I\n[Install]\nWantedBy=getty.target\nDefaultInstance=ttyS0\n",
        );
        let (links, _) = plan(
            &u,
            Path::new("/usr/lib/systemd/system/serial-getty@.service"),
            Path::new("/etc/systemd/system"),
        );
        assert_eq!(
            links[0].link,
            Path::new("/etc/systemd/system/getty.target.wants/serial-getty@ttyS0.service")
        );
    }
}
