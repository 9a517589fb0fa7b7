use super::*;
use proptest::prelude::*;

const DEP: &str = "\
kernel/drivers/md/dm-verity.ko: kernel/drivers/md/dm-bufio.ko kernel/drivers/md/dm-mod.ko
kernel/drivers/md/dm-bufio.ko:
kernel/drivers/md/dm-mod.ko:
kernel/drivers/block/virtio_blk.ko.xz:
kernel/drivers/scsi/sd_mod.ko: kernel/drivers/scsi/scsi_common.ko kernel/drivers/scsi/scsi_mod.ko
kernel/drivers/scsi/scsi_mod.ko: kernel/drivers/scsi/scsi_common.ko
kernel/drivers/scsi/scsi_common.ko:
";

fn names(plan: &LoadPlan) -> Vec<&str> {
    plan.load.iter().map(|e| e.name.as_str()).collect()
}

/// An index as the builder fills it from `.modinfo`: direct dependencies by name.
fn from_modinfo() -> ModuleIndex {
    let mut index = ModuleIndex::default();
    index.insert(
        "dm_verity",
        "kernel/drivers/md/dm-verity.ko",
        vec!["dm_bufio".into(), "dm-mod".into(), "sha256_x".into()],
    );
    index.insert(
        "dm_bufio",
        "kernel/drivers/md/dm-bufio.ko",
        vec!["dm_mod".into()],
    );
    index.insert("dm_mod", "kernel/drivers/md/dm-mod.ko", vec![]);
    index.insert_builtin("sha256_x");
    index.insert_builtin("virtio-blk");
    index
}

#[test]
fn names_follow_the_kernel() {
    assert_eq!(name_of("kernel/drivers/md/dm-mod.ko").unwrap(), "dm_mod");
    assert_eq!(name_of("a/virtio_blk.ko.zst").unwrap(), "virtio_blk");
    assert_eq!(name_of("a/readme.txt"), None);
    assert_eq!(name_of(".ko"), None);
}

#[test]
fn stage1_modules_are_unique_after_normalizing() {
    let names: BTreeSet<String> = STAGE1_MODULES.iter().map(|m| normalize(m)).collect();
    assert_eq!(names.len(), STAGE1_MODULES.len());
}

#[test]
fn dependencies_come_first_once() {
    let dep = ModuleIndex::parse(DEP, Some("kernel/drivers/virtio/virtio_pci.ko\n")).unwrap();
    let plan = dep
        .resolve(
            &["virtio_pci", "sd_mod", "dm-mod", "dm_verity", "scsi-mod"],
            &|_| false,
        )
        .unwrap();
    assert_eq!(
        names(&plan),
        [
            "scsi_common",
            "scsi_mod",
            "sd_mod",
            "dm_mod",
            "dm_bufio",
            "dm_verity"
        ]
    );
    assert_eq!(plan.builtin, ["virtio_pci"]);
    assert_eq!(plan.load[5].path, "kernel/drivers/md/dm-verity.ko");
}

#[test]
fn builtin_dependencies_need_nothing() {
    let plan = from_modinfo()
        .resolve(&["virtio_blk", "dm-verity", "dm-mod"], &|_| false)
        .unwrap();
    assert_eq!(names(&plan), ["dm_mod", "dm_bufio", "dm_verity"]);
    assert_eq!(plan.builtin, ["virtio_blk"]);
}

#[test]
fn missing_modules_and_dependencies_are_named() {
    let dep = ModuleIndex::parse(DEP, None).unwrap();
    assert_eq!(
        dep.resolve(&["nvme"], &|_| false),
        Err(ModuleIndexError::NotFound {
            module: "nvme".into()
        })
    );
    let plan = dep.resolve(&["nvme"], &|n| n == "nvme").unwrap();
    assert_eq!(plan.builtin, ["nvme"]);
    let broken = ModuleIndex::parse("a.ko: b.ko\n", None).unwrap();
    let missing = Err(ModuleIndexError::MissingDependency {
        module: "a".into(),
        dependency: "b".into(),
    });
    assert_eq!(broken.resolve(&["a"], &|_| false), missing);
    assert_eq!(broken.check(), missing.map(|_| ()));
    assert!(broken.render_modules_dep(None).is_err());
    // The builder's side refuses it the same way.
    let mut index = from_modinfo();
    index.insert("x", "x.ko", vec!["gone".into()]);
    assert_eq!(
        index.check().unwrap_err().to_string(),
        "module x depends on gone, which is neither a module nor built in"
    );
}

#[test]
fn cycles_and_garbage_are_errors() {
    let cyclic = ModuleIndex::parse("a.ko: b.ko\nb.ko: a.ko\n", None).unwrap();
    let e = cyclic.resolve(&["a"], &|_| false).unwrap_err();
    assert_eq!(
        e.to_string(),
        "module a depends on itself through a -> b -> a"
    );
    assert!(matches!(
        cyclic.check(),
        Err(ModuleIndexError::Cycle { .. })
    ));
    assert_eq!(
        ModuleIndex::parse("\n# comment\nnot a module line\n", None),
        Err(ModuleIndexError::Parse {
            line: 3,
            text: "not a module line".into()
        })
    );
}

#[test]
fn modules_dep_lists_transitive_deps_in_reverse_load_order() {
    let text = from_modinfo().render_modules_dep(None).unwrap();
    assert_eq!(
        text,
        "kernel/drivers/md/dm-bufio.ko: kernel/drivers/md/dm-mod.ko\n\
         kernel/drivers/md/dm-mod.ko:\n\
         kernel/drivers/md/dm-verity.ko: kernel/drivers/md/dm-bufio.ko kernel/drivers/md/dm-mod.ko\n"
    );
    let only: BTreeSet<String> = ["dm_mod".to_string()].into();
    assert_eq!(
        from_modinfo().render_modules_dep(Some(&only)).unwrap(),
        "kernel/drivers/md/dm-mod.ko:\n"
    );
    // What the builder writes, PID 1 reads back to the same load order.
    let shipped = ModuleIndex::parse(&text, Some("kernel/x/sha256_x.ko\n")).unwrap();
    assert_eq!(
        names(&shipped.resolve(&["dm_verity"], &|_| false).unwrap()),
        ["dm_mod", "dm_bufio", "dm_verity"]
    );
}

/// A random DAG: module `i` may depend only on modules with a larger index.
fn dag() -> impl Strategy<Value = Vec<Vec<usize>>> {
    (1usize..12).prop_flat_map(|n| {
        (0..n)
            .map(|i| proptest::collection::vec(i + 1..n + 1, 0..4))
            .collect::<Vec<_>>()
            .prop_map(move |deps| {
                deps.into_iter()
                    .map(|d| d.into_iter().filter(|&j| j < n).collect())
                    .collect()
            })
    })
}

proptest! {
    #[test]
    fn every_module_loads_after_its_dependencies(graph in dag(), wanted in proptest::collection::vec(0usize..12, 1..5)) {
        let text: String = graph
            .iter()
            .enumerate()
            .map(|(i, deps)| {
                let deps: Vec<String> = deps.iter().map(|d| format!("k/m-{d}.ko")).collect();
                format!("k/m-{i}.ko: {}\n", deps.join(" "))
            })
            .collect();
        let dep = ModuleIndex::parse(&text, None).unwrap();
        let wanted: Vec<String> = wanted.iter().map(|w| format!("m_{}", w % graph.len())).collect();
        let wanted: Vec<&str> = wanted.iter().map(String::as_str).collect();
        let plan = dep.resolve(&wanted, &|_| false).unwrap();
        let order = names(&plan);
        let unique: BTreeSet<_> = order.iter().collect();
        prop_assert_eq!(unique.len(), order.len());
        for w in &wanted {
            prop_assert!(order.contains(w));
        }
        for (at, entry) in plan.load.iter().enumerate() {
            for d in &entry.depends {
                let pos = order.iter().position(|n| n == d);
                prop_assert!(matches!(pos, Some(p) if p < at));
            }
        }
        // Rendering and parsing again gives the same order.
        let again = ModuleIndex::parse(&dep.render_modules_dep(None).unwrap(), None).unwrap();
        let plan2 = again.resolve(&wanted, &|_| false).unwrap();
        prop_assert_eq!(names(&plan2), order);
    }

    #[test]
    fn parsing_never_panics(text in "\\PC{0,300}") {
        if let Ok(dep) = ModuleIndex::parse(&text, Some(&text)) {
            let _ = dep.resolve(&["a", "b"], &|_| false);
            let _ = dep.check();
        }
    }
}
