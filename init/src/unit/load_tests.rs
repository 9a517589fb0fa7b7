use std::os::unix::fs::symlink;

use super::*;

struct Tree(tempfile::TempDir);

impl Tree {
    fn new() -> Tree {
        Tree(tempfile::tempdir().expect("tempdir"))
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.0.path().join(rel.trim_start_matches('/'))
    }

    fn file(&self, rel: &str, text: &str) {
        let p = self.path(rel);
        fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        fs::write(p, text).expect("write");
    }

    fn link(&self, target: &str, rel: &str) {
        let p = self.path(rel);
        fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        symlink(target, p).expect("symlink");
    }

    fn loader(&self) -> Loader {
        Loader::system(self.0.path())
    }
}

fn values(u: &UnitFiles, section: &str, key: &str) -> Vec<String> {
    u.document
        .section(section)
        .filter(|a| a.key == key)
        .map(|a| a.value.clone())
        .collect()
}

#[test]
fn etc_wins_over_usr_lib_and_dropins_merge_across_folders_by_name() {
    let t = Tree::new();
    t.file(
        "/usr/lib/systemd/system/a.service",
        "[Service]\nExecStart=/usr/bin/a\n",
    );
    t.file(
        "/etc/systemd/system/a.service",
        "[Service]\nExecStart=/etc/a\n",
    );
    t.file(
        "/usr/lib/systemd/system/a.service.d/20-x.conf",
        "[Service]\nEnvironment=X=usr\n",
    );
    t.file(
        "/etc/systemd/system/a.service.d/20-x.conf",
        "[Service]\nEnvironment=X=etc\n",
    );
    t.file(
        "/run/systemd/system/a.service.d/10-y.conf",
        "[Service]\nEnvironment=Y=run\n",
    );
    t.file(
        "/usr/lib/systemd/system/service.d/05-all.conf",
        "[Service]\nEnvironment=ALL=1\n",
    );
    let u = t.loader().load("a.service").expect("loads");
    assert_eq!(
        u.fragment.as_deref(),
        Some(Path::new("/etc/systemd/system/a.service"))
    );
    assert_eq!(values(&u, "Service", "ExecStart"), ["/etc/a"]);
    assert_eq!(
        values(&u, "Service", "Environment"),
        ["ALL=1", "Y=run", "X=etc"]
    );
    let names: Vec<_> = u.dropins.iter().map(|p| p.display().to_string()).collect();
    assert_eq!(
        names,
        [
            "/usr/lib/systemd/system/service.d/05-all.conf",
            "/run/systemd/system/a.service.d/10-y.conf",
            "/etc/systemd/system/a.service.d/20-x.conf"
        ]
    );
}

#[test]
fn a_link_to_dev_null_masks_the_unit_and_a_dropin() {
    let t = Tree::new();
    t.file(
        "/usr/lib/systemd/system/a.service",
        "[Service]\nExecStart=/a\n",
    );
    t.link("/dev/null", "/etc/systemd/system/a.service");
    let u = t.loader().load("a.service").expect("loads");
    assert!(u.masked);
    assert!(u.fragment.is_none());

    t.file(
        "/usr/lib/systemd/system/b.service",
        "[Service]\nExecStart=/b\n",
    );
    t.file(
        "/usr/lib/systemd/system/b.service.d/x.conf",
        "[Service]\nUser=nobody\n",
    );
    t.link("/dev/null", "/etc/systemd/system/b.service.d/x.conf");
    let u = t.loader().load("b.service").expect("loads");
    assert!(u.dropins.is_empty());
    assert!(values(&u, "Service", "User").is_empty());
}

#[test]
fn aliases_resolve_to_their_target_and_read_the_aliases_dropins() {
    let t = Tree::new();
    t.file(
        "/usr/lib/systemd/system/multi-user.target",
        "[Unit]\nDescription=MU\n",
    );
    t.link(
        "multi-user.target",
        "/usr/lib/systemd/system/default.target",
    );
    t.file(
        "/etc/systemd/system/default.target.d/x.conf",
        "[Unit]\nDocumentation=man:x\n",
    );
    let u = t.loader().load("default.target").expect("loads");
    assert_eq!(u.name.as_str(), "multi-user.target");
    assert_eq!(values(&u, "Unit", "Documentation"), ["man:x"]);
}

#[test]
fn instances_use_their_template_and_its_dropins_and_wants() {
    let t = Tree::new();
    t.file(
        "/usr/lib/systemd/system/getty@.service",
        "[Service]\nExecStart=/sbin/agetty %I\n",
    );
    t.file(
        "/usr/lib/systemd/system/getty@.service.d/10-t.conf",
        "[Service]\nNice=1\n",
    );
    t.file(
        "/etc/systemd/system/getty@ttyS0.service.d/20-i.conf",
        "[Service]\nNice=2\n",
    );
    t.link(
        "/usr/lib/systemd/system/x.service",
        "/etc/systemd/system/getty@.service.wants/x.service",
    );
    let u = t.loader().load("getty@ttyS0.service").expect("loads");
    assert_eq!(u.name.as_str(), "getty@ttyS0.service");
    assert_eq!(
        u.fragment.as_deref(),
        Some(Path::new("/usr/lib/systemd/system/getty@.service"))
    );
    assert_eq!(values(&u, "Service", "Nice"), ["1", "2"]);
    assert_eq!(
        u.wants.iter().map(|w| w.as_str()).collect::<Vec<_>>(),
        ["x.service"]
    );
}

#[test]
fn wants_and_requires_folders_from_every_search_folder() {
    let t = Tree::new();
    t.file("/usr/lib/systemd/system/multi-user.target", "[Unit]\n");
    t.link(
        "../a.service",
        "/usr/lib/systemd/system/multi-user.target.wants/a.service",
    );
    t.link(
        "/usr/lib/systemd/system/b.service",
        "/etc/systemd/system/multi-user.target.wants/b.service",
    );
    t.link(
        "/x/c.service",
        "/etc/systemd/system/multi-user.target.requires/c.service",
    );
    t.file(
        "/etc/systemd/system/multi-user.target.wants/README",
        "not a unit",
    );
    let u = t.loader().load("multi-user.target").expect("loads");
    let wants: Vec<_> = u.wants.iter().map(|w| w.as_str().to_owned()).collect();
    assert_eq!(wants, ["b.service", "a.service"]);
    assert_eq!(
        u.requires.iter().map(|w| w.as_str()).collect::<Vec<_>>(),
        ["c.service"]
    );
    assert_eq!(u.diagnostics.len(), 1, "{:?}", u.diagnostics);
}

#[test]
fn missing_units_and_bad_aliases_are_named() {
    let t = Tree::new();
    let err = t.loader().load("nope.service").expect_err("missing");
    assert!(
        err.to_string()
            .contains("nope.service not found in /etc/systemd/system"),
        "{err}"
    );
    t.link("x.target", "/etc/systemd/system/y.service");
    let err = t.loader().load("y.service").expect_err("bad alias");
    assert!(
        err.to_string().contains("/etc/systemd/system/y.service"),
        "{err}"
    );
    t.link("z.service", "/etc/systemd/system/z2.service");
    t.link("z2.service", "/etc/systemd/system/z.service");
    assert!(matches!(
        t.loader().load("z.service"),
        Err(LoadError::AliasLoop(_))
    ));
}

#[test]
fn names_lists_every_unit_once() {
    let t = Tree::new();
    t.file("/usr/lib/systemd/system/a.service", "");
    t.file("/etc/systemd/system/a.service", "");
    t.file("/run/systemd/system/b.socket", "");
    t.file("/run/systemd/system/notes.txt", "");
    let names: Vec<_> = t.loader().names().iter().map(|n| n.to_string()).collect();
    assert_eq!(names, ["a.service", "b.socket"]);
}
