use super::*;

const MOUNTINFO: &str = "\
22 1 254:0 / / ro,relatime shared:1 - ext4 /dev/dm-0 ro
23 22 0:5 / /dev rw,nosuid shared:2 - devtmpfs devtmpfs rw
24 23 0:21 / /dev/pts rw,nosuid,noexec,relatime shared:3 - devpts devpts rw
25 22 0:22 / /proc rw,nosuid,nodev,noexec,relatime shared:4 - proc proc rw
26 22 0:23 / /sys rw,nosuid,nodev,noexec,relatime shared:5 - sysfs sysfs rw
27 22 0:24 / /run rw,nosuid,nodev shared:6 - tmpfs tmpfs rw,mode=755
28 22 0:25 / /tmp rw,nosuid,nodev shared:7 - tmpfs tmpfs rw
29 22 8:1 / /var rw,nosuid,nodev,relatime shared:8 - ext4 /dev/vda1 rw
30 29 8:1 /lib /var/lib/with\\040space rw,noexec shared:9 - ext4 /dev/vda1 rw
";

fn exists_but(missing: &'static [&'static str]) -> impl Fn(&Path) -> bool {
    move |p: &Path| !missing.iter().any(|m| Path::new(m) == p)
}

fn ops(
    svc: &Service,
    tmp: &[(PathBuf, PathBuf)],
    missing: &'static [&'static str],
) -> Vec<MountOp> {
    plan(svc, tmp, &exists_but(missing), MOUNTINFO)
        .expect("plan")
        .expect("some sandbox")
        .mounts
}

fn bind(p: &str) -> MountOp {
    MountOp::Bind {
        source: p.into(),
        target: p.into(),
        recursive: true,
    }
}

fn ro(p: &str, flags: MsFlags) -> MountOp {
    MountOp::ReadOnly {
        target: p.into(),
        flags,
    }
}

#[test]
fn mountinfo_gives_points_with_their_kept_flags_and_unescapes_them() {
    let t = mount_table(MOUNTINFO);
    assert_eq!(t[0], (PathBuf::from("/"), MsFlags::MS_RELATIME));
    assert_eq!(
        t[2],
        (
            PathBuf::from("/dev/pts"),
            MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC | MsFlags::MS_RELATIME
        )
    );
    assert_eq!(t[8].0, PathBuf::from("/var/lib/with space"));
}

#[test]
fn nothing_set_is_no_sandbox() {
    assert_eq!(
        plan(&Service::default(), &[], &|_| true, MOUNTINFO),
        Ok(None)
    );
}

#[test]
fn protect_system_yes_binds_usr_and_skips_what_is_missing() {
    let svc = Service {
        protect_system: ProtectSystem::Yes,
        ..Service::default()
    };
    assert_eq!(
        ops(&svc, &[], &["/efi"]),
        vec![
            bind("/boot"),
            bind("/usr"),
            ro("/boot", MsFlags::MS_RELATIME),
            ro("/usr", MsFlags::MS_RELATIME),
        ]
    );
    let full = Service {
        protect_system: ProtectSystem::Full,
        ..Service::default()
    };
    assert!(ops(&full, &[], &[]).contains(&ro("/etc", MsFlags::MS_RELATIME)));
}

#[test]
fn strict_makes_every_mount_read_only_but_the_api_trees_the_writable_paths_and_private_tmp() {
    let svc = Service {
        protect_system: ProtectSystem::Strict,
        read_write_paths: vec!["/var/lib/app".into(), "-/var/lib/gone".into()],
        ..Service::default()
    };
    let tmp = [(
        PathBuf::from("/tmp"),
        PathBuf::from("/tmp/systemd-private-b-x.service-Ab12Cd/tmp"),
    )];
    let got = ops(&svc, &tmp, &["/var/lib/gone"]);
    assert_eq!(
        got,
        vec![
            MountOp::Bind {
                source: "/tmp/systemd-private-b-x.service-Ab12Cd/tmp".into(),
                target: "/tmp".into(),
                recursive: false,
            },
            bind("/var/lib/app"),
            ro("/", MsFlags::MS_RELATIME),
            ro("/run", MsFlags::MS_NOSUID | MsFlags::MS_NODEV),
            ro(
                "/var",
                MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_RELATIME
            ),
            ro("/var/lib/with space", MsFlags::MS_NOEXEC),
        ],
        "/dev, /proc, /sys, /tmp and /var/lib/app stay writable"
    );
}

#[test]
fn protect_home_modes_and_a_path_named_twice_keeps_the_strongest() {
    let mut svc = Service {
        protect_home: ProtectHome::Yes,
        ..Service::default()
    };
    let got = ops(&svc, &[], &["/home", "/run/user"]);
    assert!(matches!(&got[0], MountOp::Tmpfs { target, options, flags }
        if target == Path::new("/root") && options == "mode=000"
            && flags.contains(MsFlags::MS_RDONLY | MsFlags::MS_NOEXEC)));
    svc.protect_home = ProtectHome::Tmpfs;
    let got = ops(&svc, &[], &["/home", "/run/user"]);
    assert!(matches!(&got[0], MountOp::Tmpfs { options, .. } if options == "mode=0755"));
    svc.protect_home = ProtectHome::ReadOnly;
    svc.read_write_paths = vec!["/root".into()];
    assert_eq!(
        ops(&svc, &[], &["/home", "/run/user"]),
        vec![bind("/root"), ro("/root", MsFlags::MS_RELATIME)],
        "read-only wins over writable on one path"
    );
}

#[test]
fn mounts_hidden_below_a_new_tmpfs_are_left_alone() {
    let svc = Service {
        protect_system: ProtectSystem::Strict,
        protect_home: ProtectHome::Tmpfs,
        ..Service::default()
    };
    let got = plan(
        &svc,
        &[],
        &|_| true,
        &format!("{MOUNTINFO}31 22 8:2 / /home/user rw - ext4 /dev/vda2 rw\n"),
    )
    .expect("plan")
    .expect("sandbox")
    .mounts;
    assert!(
        !got.iter()
            .any(|op| matches!(op, MountOp::ReadOnly { target, .. }
            if target == Path::new("/home/user"))),
        "{got:?}"
    );
    assert!(got.contains(&ro(
        "/home",
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_STRICTATIME
    )));
}

#[test]
fn a_writable_path_above_a_read_only_one_does_not_free_it() {
    let svc = Service {
        read_write_paths: vec!["/var".into()],
        read_only_paths: vec!["/var/lib".into(), "+/etc/".into()],
        ..Service::default()
    };
    assert_eq!(
        ops(&svc, &[], &[]),
        vec![
            bind("/etc"),
            bind("/var/lib"),
            ro("/etc", MsFlags::MS_RELATIME),
            ro(
                "/var/lib",
                MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_RELATIME
            ),
            ro("/var/lib/with space", MsFlags::MS_NOEXEC),
        ]
    );
}

#[test]
fn a_missing_path_without_dash_fails_and_a_relative_one_is_refused() {
    let svc = Service {
        read_only_paths: vec!["/opt/x".into()],
        ..Service::default()
    };
    assert_eq!(
        plan(&svc, &[], &exists_but(&["/opt/x"]), MOUNTINFO),
        Err("/opt/x: no such file or directory".into())
    );
    let svc = Service {
        read_write_paths: vec!["var".into()],
        ..Service::default()
    };
    assert!(plan(&svc, &[], &|_| true, MOUNTINFO).is_err());
}

#[test]
fn a_bounding_set_alone_needs_no_mounts() {
    let svc = Service {
        capability_bounding_set: Some(vec!["CAP_NET_BIND_SERVICE".into()]),
        ..Service::default()
    };
    let s = plan(&svc, &[], &|_| true, MOUNTINFO)
        .expect("plan")
        .expect("sandbox");
    assert!(s.mounts.is_empty());
    assert_eq!(s.bounding_set, Some(1 << 10));
}

#[test]
fn the_service_folders_stay_writable_under_strict_and_alone_make_no_sandbox() {
    let mut svc = Service::default();
    svc.state_directory.names = vec!["app".into()];
    svc.runtime_directory.names = vec!["app".into()];
    assert_eq!(plan(&svc, &[], &|_| true, MOUNTINFO), Ok(None));
    svc.protect_system = ProtectSystem::Strict;
    svc.read_only_paths = vec!["/run/app".into()];
    let got = ops(&svc, &[], &[]);
    assert!(got.contains(&bind("/var/lib/app")), "{got:?}");
    assert!(
        !got.contains(&ro(
            "/var/lib/app",
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_RELATIME
        )),
        "{got:?}"
    );
    assert!(
        got.contains(&ro("/run/app", MsFlags::MS_NOSUID | MsFlags::MS_NODEV)),
        "ReadOnlyPaths= wins over the implicit writable folder: {got:?}"
    );
}

#[test]
fn protect_control_groups_makes_the_cgroup_tree_read_only_and_needs_it() {
    let svc = Service {
        protect_control_groups: true,
        ..Service::default()
    };
    let cgroup_flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    assert_eq!(
        ops(&svc, &[], &[]),
        vec![
            bind("/sys/fs/cgroup"),
            ro("/sys/fs/cgroup", cgroup_flags | MsFlags::MS_RELATIME),
        ]
    );
    // Under ProtectSystem=strict /sys stays writable, the cgroup tree does not.
    let strict = Service {
        protect_system: ProtectSystem::Strict,
        ..svc.clone()
    };
    let got = ops(&strict, &[], &[]);
    let read_only: Vec<&MountOp> = got
        .iter()
        .filter(|op| matches!(op, MountOp::ReadOnly { target, .. } if target.starts_with("/sys")))
        .collect();
    assert_eq!(
        read_only,
        [&ro("/sys/fs/cgroup", cgroup_flags | MsFlags::MS_RELATIME)]
    );
    assert_eq!(
        plan(&svc, &[], &exists_but(&["/sys/fs/cgroup"]), MOUNTINFO),
        Err("/sys/fs/cgroup: no such file or directory".into())
    );
}

#[test]
fn protect_kernel_modules_and_logs_hide_their_paths_and_drop_their_capabilities() {
    let svc = Service {
        protect_kernel_modules: true,
        protect_kernel_logs: true,
        ..Service::default()
    };
    let sandbox = plan(&svc, &[], &exists_but(&["/lib/modules"]), MOUNTINFO)
        .expect("plan")
        .expect("a sandbox");
    let cover = |p: &str| MountOp::Bind {
        source: INACCESSIBLE_FILE.into(),
        target: p.into(),
        recursive: false,
    };
    let hidden = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    assert_eq!(
        sandbox.mounts,
        vec![
            cover("/dev/kmsg"),
            cover("/proc/kmsg"),
            MountOp::Tmpfs {
                target: "/usr/lib/modules".into(),
                flags: MsFlags::MS_RDONLY | hidden,
                options: "mode=000".into(),
            },
            ro("/dev/kmsg", hidden),
            ro("/proc/kmsg", hidden),
        ]
    );
    let dropped = !sandbox.bounding_set.expect("a bounding set");
    assert_eq!(
        dropped,
        (1 << 16) | (1 << 34),
        "CAP_SYS_MODULE and CAP_SYSLOG"
    );
    // With an explicit set, only those two go from it.
    let explicit = Service {
        capability_bounding_set: Some(vec!["CAP_SYS_MODULE".into(), "CAP_NET_ADMIN".into()]),
        ..svc
    };
    let kept = plan(&explicit, &[], &exists_but(&[]), MOUNTINFO)
        .expect("plan")
        .expect("a sandbox")
        .bounding_set;
    assert_eq!(kept, Some(1 << 12), "CAP_NET_ADMIN alone");
}

#[test]
fn protect_kernel_tunables_makes_sys_and_proc_sys_read_only_but_not_the_cgroups() {
    let svc = Service {
        protect_kernel_tunables: true,
        ..Service::default()
    };
    let missing: &'static [&'static str] = &[
        "/proc/acpi",
        "/proc/apm",
        "/proc/asound",
        "/proc/bus",
        "/proc/fs",
        "/proc/irq",
        "/proc/latency_stats",
        "/proc/mtrr",
        "/proc/scsi",
        "/proc/timer_list",
        "/proc/kcore",
        "/sys/fs/bpf",
        "/sys/kernel/debug",
        "/sys/kernel/tracing",
        "/sys/fs/selinux",
    ];
    let got = ops(&svc, &[], missing);
    let sys = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC | MsFlags::MS_RELATIME;
    for want in [
        MountOp::Bind {
            source: INACCESSIBLE_FILE.into(),
            target: "/proc/kallsyms".into(),
            recursive: false,
        },
        bind("/proc/sys"),
        bind("/proc/sysrq-trigger"),
        bind("/sys/fs/cgroup"),
        ro("/proc/sys", sys),
        ro("/proc/sysrq-trigger", sys),
        ro("/sys", sys),
    ] {
        assert!(got.contains(&want), "{want:?} not in {got:?}");
    }
    assert!(
        !got.contains(&ro("/sys/fs/cgroup", sys)),
        "the cgroup tree stays writable without ProtectControlGroups=: {got:?}"
    );
    assert_eq!(
        plan(&svc, &[], &exists_but(&["/sys"]), MOUNTINFO),
        Err("/sys: no such file or directory".into())
    );
}

#[test]
fn protect_hostname_alone_is_a_uts_namespace() {
    let svc = Service {
        protect_hostname: true,
        ..Service::default()
    };
    let s = plan(&svc, &[], &exists_but(&[]), MOUNTINFO)
        .expect("plan")
        .expect("a sandbox");
    assert!(s.new_uts && s.mounts.is_empty() && s.bounding_set.is_none());
}

#[test]
fn private_network_is_a_namespace_and_protect_clock_drops_the_clock_capabilities() {
    let net = Service {
        private_network: true,
        ..Service::default()
    };
    let s = plan(&net, &[], &exists_but(&[]), MOUNTINFO)
        .expect("plan")
        .expect("a sandbox");
    assert!(s.new_net && !s.new_uts && s.mounts.is_empty() && s.bounding_set.is_none());
    let clock = Service {
        protect_clock: true,
        ..Service::default()
    };
    let s = plan(&clock, &[], &exists_but(&[]), MOUNTINFO)
        .expect("plan")
        .expect("a sandbox");
    let dropped = !s.bounding_set.expect("a bounding set");
    assert_eq!(
        dropped,
        (1 << 25) | (1 << 35),
        "CAP_SYS_TIME and CAP_WAKE_ALARM"
    );
}
