use super::*;
use crate::unit::load::Loader;
use crate::unit::specifier::Host;

struct Tree {
    dir: tempfile::TempDir,
}

impl Tree {
    fn new(files: &[(&str, &str)]) -> Tree {
        let dir = tempfile::tempdir().expect("tempdir");
        for (name, text) in files {
            let p = dir.path().join("usr/lib/systemd/system").join(name);
            std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
            std::fs::write(p, text).expect("write");
        }
        Tree { dir }
    }
}

impl Units for Tree {
    fn unit(&mut self, name: &UnitName) -> Result<Unit, String> {
        let files = Loader::system(self.dir.path())
            .load(name.as_str())
            .map_err(|e| e.to_string())?;
        Ok(Unit::from_files(files, &Host::default()))
    }
}

fn n(s: &str) -> UnitName {
    UnitName::parse(s).expect("valid")
}

fn waves(t: &Transaction) -> Vec<Vec<String>> {
    t.waves()
        .into_iter()
        .map(|w| w.into_iter().map(|u| u.to_string()).collect())
        .collect()
}

/// A small systemd-like tree: targets with their usual ordering.
fn standard() -> Vec<(&'static str, &'static str)> {
    vec![
        ("sysinit.target", "[Unit]\nDescription=System Initialization\nDefaultDependencies=no\nWants=local-fs.target\nAfter=local-fs.target\n"),
        ("local-fs.target", "[Unit]\nDefaultDependencies=no\n"),
        ("basic.target", "[Unit]\nRequires=sysinit.target\nAfter=sysinit.target\n"),
        ("network.target", "[Unit]\n"),
        ("network-online.target", "[Unit]\nRequires=network.target\nAfter=network.target\n"),
        ("multi-user.target", "[Unit]\nRequires=basic.target\nAfter=basic.target\n"),
        ("shutdown.target", "[Unit]\nDefaultDependencies=no\n"),
    ]
}

#[test]
fn services_wait_for_basic_and_start_in_parallel() {
    let mut files = standard();
    files.push(("a.service", "[Service]\nExecStart=/bin/a\n"));
    files.push(("b.service", "[Service]\nExecStart=/bin/b\n"));
    files.push((
        "c.service",
        "[Unit]\nAfter=a.service\n[Service]\nExecStart=/bin/c\n",
    ));
    files.push((
        "multi-user.target.wants/a.service",
        "[Service]\nExecStart=/bin/a\n",
    ));
    let mut tree = Tree::new(&files);
    // .wants entries are normally links; a file of the unit's name works the same here.
    let mut t = Transaction::start(&n("multi-user.target"), &mut tree);
    assert!(t.notes.is_empty(), "{:?}", t.notes);
    assert!(t.jobs.contains_key(&n("a.service")));
    assert!(!t.jobs.contains_key(&n("c.service")), "nothing pulls c in");
    assert!(
        !t.jobs.contains_key(&n("shutdown.target")),
        "Conflicts= is not a pull"
    );

    let mut files = standard();
    files.push((
        "multi-user.target",
        "[Unit]\nRequires=basic.target\nAfter=basic.target\nWants=a.service b.service c.service\n",
    ));
    files.push(("a.service", "[Service]\nExecStart=/bin/a\n"));
    files.push(("b.service", "[Service]\nExecStart=/bin/b\n"));
    files.push((
        "c.service",
        "[Unit]\nAfter=a.service\n[Service]\nExecStart=/bin/c\n",
    ));
    tree = Tree::new(&files);
    t = Transaction::start(&n("multi-user.target"), &mut tree);
    assert!(t.notes.is_empty(), "{:?}", t.notes);
    assert_eq!(
        waves(&t),
        [
            vec!["local-fs.target"],
            vec!["sysinit.target"],
            vec!["basic.target"],
            vec!["a.service", "b.service"],
            vec!["c.service"],
            vec!["multi-user.target"],
        ]
    );
    assert_eq!(t.jobs[&n("basic.target")].pull, Pull::Required);
    assert_eq!(t.jobs[&n("a.service")].pull, Pull::Wanted);
    assert!(t.jobs[&n("sysinit.target")]
        .required_by
        .contains(&n("a.service")));
}

#[test]
fn a_cycle_through_a_wanted_job_drops_that_job() {
    let mut files = standard();
    files.push((
        "multi-user.target",
        "[Unit]\nRequires=basic.target x.service\nAfter=basic.target\nWants=y.service\n",
    ));
    files.push((
        "x.service",
        "[Unit]\nAfter=y.service\n[Service]\nExecStart=/bin/x\n",
    ));
    files.push((
        "y.service",
        "[Unit]\nAfter=x.service\n[Service]\nExecStart=/bin/y\n",
    ));
    let mut tree = Tree::new(&files);
    let t = Transaction::start(&n("multi-user.target"), &mut tree);
    assert!(t.jobs.contains_key(&n("x.service")));
    assert!(!t.jobs.contains_key(&n("y.service")));
    match &t.notes[..] {
        [Note::CycleBroken { cycle, dropped }] => {
            assert_eq!(dropped, "y.service");
            assert!(cycle.contains(&"x.service".to_owned()), "{cycle:?}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_cycle_of_required_jobs_is_reported_and_does_not_hang() {
    let mut files = standard();
    files.push((
        "multi-user.target",
        "[Unit]\nRequires=basic.target x.service y.service\nAfter=basic.target\n",
    ));
    files.push((
        "x.service",
        "[Unit]\nAfter=y.service\n[Service]\nExecStart=/bin/x\n",
    ));
    files.push((
        "y.service",
        "[Unit]\nAfter=x.service\n[Service]\nExecStart=/bin/y\n",
    ));
    let mut tree = Tree::new(&files);
    let t = Transaction::start(&n("multi-user.target"), &mut tree);
    assert!(
        matches!(&t.notes[..], [Note::CycleUnbreakable { .. }]),
        "{:?}",
        t.notes
    );
    let all: usize = t.waves().iter().map(Vec::len).sum();
    assert_eq!(all, t.jobs.len(), "every job is still scheduled");
}

#[test]
fn missing_units_are_noted_required_or_not() {
    let mut files = standard();
    files.push((
        "multi-user.target",
        "[Unit]\nRequires=basic.target gone.service\nWants=maybe.service\n",
    ));
    let mut tree = Tree::new(&files);
    let t = Transaction::start(&n("multi-user.target"), &mut tree);
    let missing: Vec<_> = t
        .notes
        .iter()
        .filter_map(|n| match n {
            Note::Missing { unit, required, .. } => Some((unit.as_str(), *required)),
            _ => None,
        })
        .collect();
    assert_eq!(missing.len(), 2);
    assert!(missing.contains(&("gone.service", true)));
    assert!(missing.contains(&("maybe.service", false)));
}

#[test]
fn requisite_is_a_verify_job_and_before_orders_the_other_way() {
    let mut files = standard();
    files.push((
        "multi-user.target",
        "[Unit]\nRequires=basic.target a.service\nAfter=basic.target\n",
    ));
    files.push((
        "a.service",
        "[Unit]\nRequisite=network.target\nBefore=multi-user.target\n[Service]\nExecStart=/bin/a\n",
    ));
    let mut tree = Tree::new(&files);
    let t = Transaction::start(&n("multi-user.target"), &mut tree);
    assert_eq!(t.jobs[&n("network.target")].kind, JobKind::Verify);
    assert!(t.jobs[&n("multi-user.target")]
        .after
        .contains(&n("a.service")));
}
