//! Conditions that read the machine's `/proc` (`ConditionCapability=`,
//! `ConditionPathIsMountPoint=`), through [`super::MachineFacts`] on the fake's root.

use super::tests::{machine, manager, n, spawned};

#[test]
fn capability_and_mount_point_conditions_read_proc_self() {
    let fake = machine(&[
        (
            "time.service",
            "[Unit]\nConditionCapability=CAP_SYS_TIME\n[Service]\nExecStart=/usr/bin/time\n",
        ),
        (
            "net.service",
            "[Unit]\nConditionCapability=CAP_NET_ADMIN\n\
             ConditionPathIsMountPoint=/sys/fs/cgroup/\n[Service]\nExecStart=/usr/bin/net\n",
        ),
        (
            "binfmt.service",
            "[Unit]\nConditionPathIsMountPoint=/proc/sys/fs/binfmt_misc\n\
             [Service]\nExecStart=/usr/bin/binfmt\n",
        ),
        ("multi-user.target.wants/time.service", ""),
        ("multi-user.target.wants/net.service", ""),
        ("multi-user.target.wants/binfmt.service", ""),
    ]);
    // A bounding set without CAP_SYS_TIME (25); cgroup2 mounted, binfmt_misc not.
    fake.write(
        "/proc/self/status",
        "Name:\tinit\nCapBnd:\t000001fffdffffff\n",
    );
    fake.write(
        "/proc/self/mountinfo",
        "22 1 254:0 / / ro - ext4 /dev/mapper/root ro\n\
         30 22 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n",
    );
    for dir in ["/sys/fs/cgroup", "/proc/sys/fs/binfmt_misc"] {
        std::fs::create_dir_all(fake.host(dir)).expect("mkdir");
    }
    let mut m = manager(&fake);
    m.start(&n("multi-user.target"));
    let started: Vec<String> = spawned(&fake).into_iter().map(|(unit, _)| unit).collect();
    assert_eq!(started, ["net.service"]);
    let logs = fake.logs();
    for skipped in [
        "berth: skipped time.service: ConditionCapability=CAP_SYS_TIME not met",
        "berth: skipped binfmt.service: ConditionPathIsMountPoint=/proc/sys/fs/binfmt_misc not met",
    ] {
        assert!(logs.iter().any(|l| l == skipped), "{skipped}: {logs:?}");
    }
}
