//! VM tests of stage 2's early boot, driven through the debug variant's root shell on the
//! serial console: the mount table row by row against the design brief, what survives a
//! reboot and what does not, noexec, STATE growing onto a larger disk, a `poweroff` that
//! leaves STATE clean, a STATE repaired by e2fsck or re-made with `berth.state=reformat`,
//! and the host name from a NoCloud seed in the SMBIOS serial number. Run by `cargo xtask
//! test` (ignored by a plain `cargo test`).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use berth_qemu::Qemu;
use berth_tests::shell::{vm_builder, Shell, BOOT};
use berth_tests::*;

/// mountinfo as target -> (per-mount options, fstype, source, root within the source).
fn mount_table(text: &str) -> BTreeMap<String, (Vec<String>, String, String, String)> {
    let mut table = BTreeMap::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let Some(dash) = fields.iter().position(|f| *f == "-") else {
            continue;
        };
        if fields.len() < dash + 3 || dash < 6 {
            continue;
        }
        let options = fields[5].split(',').map(str::to_owned).collect();
        let row = (
            options,
            fields[dash + 1].to_owned(),
            fields[dash + 2].to_owned(),
            fields[3].to_owned(),
        );
        table.insert(fields[4].to_owned(), row); // the last mount on a path wins
    }
    table
}

#[test]
#[ignore = "boots VMs; run by `cargo xtask test`"]
fn mount_table_matches_the_design_row_by_row() {
    if vm_tests_skipped() {
        return;
    }
    let (disk, _) = shared_debug_image();
    let mut sh = Shell::boot("early_boot_mounts", disk, true);
    let console = sh.vm.console();
    assert!(!console.contains("berth: FAILED"), "{console}");
    let table = mount_table(&sh.run("busybox cat /proc/self/mountinfo"));
    let row = |path: &str| {
        table
            .get(path)
            .unwrap_or_else(|| panic!("{path} is not mounted: {table:#?}"))
    };
    let has = |path: &str, flag: &str| row(path).0.iter().any(|o| o == flag);
    // (path, fstype, writable, exec, STATE subfolder if a bind of STATE)
    let design: [(&str, &str, bool, bool, Option<&str>); 13] = [
        ("/", "ext4", false, true, None),
        ("/mnt/stateful_partition", "ext4", true, false, Some("/")),
        ("/home", "ext4", true, false, Some("/home")),
        ("/var", "ext4", true, false, Some("/var")),
        ("/var/lib/berth", "ext4", true, true, Some("/var/lib/berth")),
        (
            "/var/lib/kubelet",
            "ext4",
            true,
            true,
            Some("/var/lib/kubelet"),
        ),
        (
            "/var/lib/toolbox",
            "ext4",
            true,
            true,
            Some("/var/lib/toolbox"),
        ),
        ("/etc", "overlay", true, true, None),
        ("/var/lib/cloud", "tmpfs", true, true, None),
        ("/mnt/disks", "tmpfs", true, true, None),
        ("/tmp", "tmpfs", true, false, None),
        ("/run", "tmpfs", true, true, None),
        // An API mount, as systemd makes it on an EFI boot (OVMF boots the VM).
        ("/sys/firmware/efi/efivars", "efivarfs", false, false, None),
    ];
    let state_source = row("/mnt/stateful_partition").2.clone();
    for (path, fstype, writable, exec, state) in design {
        let (options, fs, source, root) = row(path);
        assert_eq!(fs, fstype, "{path}: {options:?}");
        assert_eq!(has(path, "rw"), writable, "{path}: {options:?}");
        assert_eq!(has(path, "ro"), !writable, "{path}: {options:?}");
        assert_eq!(has(path, "noexec"), !exec, "{path}: {options:?}");
        if path != "/" {
            assert!(has(path, "nosuid"), "{path}: {options:?}");
        }
        if let Some(folder) = state {
            assert_eq!(source, &state_source, "{path} is not on STATE");
            assert_eq!(root, folder, "{path} binds the wrong STATE folder");
            assert!(has(path, "nodev"), "{path}: {options:?}");
        }
    }
    assert_eq!(row("/").2, "/dev/mapper/root");
    assert!(state_source.starts_with("/dev/vda"), "{state_source}");
    let etc = sh.run("busybox grep ' /etc ' /proc/self/mountinfo");
    assert!(
        etc.contains("lowerdir=/etc") && etc.contains("upperdir=/run/"),
        "{etc}"
    );
    for (path, fstype) in [
        ("/proc", "proc"),
        ("/sys", "sysfs"),
        ("/dev", "devtmpfs"),
        ("/dev/pts", "devpts"),
        ("/dev/shm", "tmpfs"),
        ("/sys/fs/cgroup", "cgroup2"),
    ] {
        assert_eq!(row(path).1, fstype, "{path}");
    }
    let controllers = sh.run("busybox cat /sys/fs/cgroup/cgroup.subtree_control");
    for c in ["cpu", "memory", "pids", "io"] {
        assert!(
            controllers.split_whitespace().any(|w| w == c),
            "{c} not delegated: {controllers}"
        );
    }
    // Early boot's steps are built-in units of the service manager: listed with their
    // state, ordered before sysinit.target, with their times in blame.
    let units = sh.run("systemctl list-units --all --no-legend --no-pager");
    let early = [
        "berth-api-mounts.service",
        "berth-etc-overlay.service",
        "berth-state.service",
        "berth-state-binds.service",
        "berth-tmpfs-mounts.service",
        "berth-machine-id.service",
        "berth-hostname.service",
        "systemd-udev-trigger.service",
        "systemd-modules-load.service",
        "systemd-sysctl.service",
        "systemd-tmpfiles-setup.service",
    ];
    for unit in early {
        let row: Vec<&str> = units
            .lines()
            .map(|l| {
                l.split_whitespace()
                    .filter(|w| *w != "\u{25cf}")
                    .collect::<Vec<_>>()
            })
            .find(|w| w.first() == Some(&unit))
            .unwrap_or_else(|| panic!("{unit} not listed:\n{units}"));
        assert_eq!(
            row.get(1..4),
            Some(&["loaded", "active", "exited"][..]),
            "{units}"
        );
    }
    let target = units
        .lines()
        .find(|l| l.contains("berth-early-boot.target"))
        .unwrap_or_else(|| panic!("no berth-early-boot.target:\n{units}"));
    let words: Vec<&str> = target.split_whitespace().collect();
    assert!(
        words
            .windows(3)
            .any(|w| w == ["loaded", "active", "active"]),
        "{target}"
    );
    let status = sh.run("systemctl status systemd-sysctl.service --no-pager");
    assert!(status.contains("Active: active (exited) since"), "{status}");
    let blame = sh.run("systemd-analyze blame --no-pager");
    assert!(blame.contains(" berth-state.service\n"), "{blame}");
    // Identity, sysctl, modules.
    let id = sh.run("busybox cat /etc/machine-id").trim().to_owned();
    assert_eq!(id.len(), 32, "{id}");
    assert_eq!(
        sh.run("busybox hostname").trim(),
        format!("berth-{}", &id[..8])
    );
    assert_eq!(
        sh.run("busybox cat /proc/sys/net/ipv4/ip_forward").trim(),
        "1"
    );
    assert_eq!(
        sh.run("busybox cat /proc/sys/net/bridge/bridge-nf-call-iptables")
            .trim(),
        "1"
    );
    assert_eq!(
        sh.run("busybox cat /proc/sys/net/bridge/bridge-nf-call-ip6tables")
            .trim(),
        "1"
    );
    let modules = sh.run("busybox cat /proc/modules");
    assert!(
        modules.contains("overlay") && modules.contains("br_netfilter"),
        "{modules}"
    );
    // The NIC's driver by its PCI modalias (coldplug), and no other cloud's.
    let console = sh.vm.console();
    let coldplug = console
        .lines()
        .find(|l| l.contains("berth: coldplug loaded:"))
        .unwrap_or_else(|| panic!("no coldplug line:\n{console}"));
    assert!(coldplug.contains("virtio_net"), "{coldplug}");
    assert!(
        modules.contains("virtio_net") && !modules.contains("gve") && !modules.contains("ena "),
        "{modules}"
    );
    // iptables (Debian's nft backend) as the CNI plugins and kube-proxy use it: a NAT
    // chain with a masquerade rule, matches by comment and conntrack state. No
    // modules-load.d file names nf_tables or an extension: the kernel asks /sbin/modprobe
    // for each as it is first used.
    let nat = sh.run(
        "iptables -t nat -N BERTH-TEST && \
         iptables -t nat -A BERTH-TEST -s 10.88.0.0/16 -m comment --comment pods -j MASQUERADE && \
         iptables -A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT && \
         iptables -t nat -S BERTH-TEST; echo rc=$?",
    );
    assert!(
        nat.contains("-A BERTH-TEST -s 10.88.0.0/16") && nat.trim_end().ends_with("rc=0"),
        "{nat}"
    );
    // A match no modules-load.d file names: the kernel asks /sbin/modprobe (PID 1's
    // binary under that name) for `ipt_length`, an alias of xt_length in modules.alias.
    let autoload = sh.run(
        "busybox cat /proc/sys/kernel/modprobe; [ -d /sys/module/xt_length ] && echo early; \
         iptables -A INPUT -m length --length 1:2 -j ACCEPT; echo rc=$?; \
         [ -d /sys/module/xt_length ] && echo autoloaded",
    );
    assert_eq!(
        autoload
            .split_whitespace()
            .filter(|w| ["/sbin/modprobe", "early", "rc=", "autoloaded"]
                .iter()
                .any(|p| w.starts_with(p)))
            .collect::<Vec<_>>(),
        ["/sbin/modprobe", "rc=0", "autoloaded"],
        "{autoload}"
    );
    // By hand, a bare `modprobe` as a user types it: in the debug shell the root's program
    // goes before busybox's applet of that name (`$ENV`, debug-shell.rc), which cannot
    // load a `.ko.zst`.
    let direct = sh.run(
        "type modprobe; modprobe -q fs-nope; echo rc=$?; modprobe xt_time; echo rc=$?; \
         [ -d /sys/module/xt_time ] && echo loaded",
    );
    // (Kernel messages share the console: only the shell's words count.)
    assert_eq!(
        direct
            .split_whitespace()
            .filter(|w| w.starts_with("rc=") || ["loaded", "function"].contains(w))
            .collect::<Vec<_>>(),
        ["function", "rc=1", "rc=0", "loaded"],
        "{direct}"
    );
    // noexec where the table says so.
    let exec = sh.run(
        // busybox runs the applet its file is named after: copies named `true`.
        "for d in /tmp /var /var/lib/berth; do busybox cp /usr/bin/busybox $d/true; done; \
         /tmp/true; echo tmp=$?; /var/true; echo var=$?; /var/lib/berth/true; echo berth=$?",
    );
    assert!(
        exec.contains("tmp=126") && exec.contains("var=126"),
        "{exec}"
    );
    assert!(exec.contains("berth=0"), "{exec}");
    assert!(exec.to_lowercase().contains("permission denied"), "{exec}");
    eprintln!(
        "PID 1 {}",
        sh.run("busybox grep VmRSS /proc/1/status").trim()
    );
    // PID 1 reaps orphans: a grandchild whose parent exited is gone after it ends.
    let zombies = sh.run(
        "(busybox sleep 1 &) ; busybox sleep 3; busybox ps -o stat,comm | busybox grep -c '^Z'",
    );
    assert_eq!(zombies.trim().lines().last(), Some("0"), "{zombies}");
    // The shell is a unit, enabled for this boot by `berth.debug`, with the serial
    // console as its controlling terminal; it comes back after it exits (Restart=always).
    let unit = sh.run(
        "systemctl is-enabled berth-debug-shell.service; \
         systemctl show -p ActiveState -p NRestarts berth-debug-shell.service; \
         busybox ps -o tty,args | busybox grep 'busybox s[h]'",
    );
    assert!(unit.contains("enabled-runtime"), "{unit}");
    assert!(
        unit.contains("ActiveState=active") && unit.contains("NRestarts=0"),
        "{unit}"
    );
    // busybox's ps names the controlling terminal by its numbers: 4,64 is ttyS0.
    assert!(
        unit.contains("4,64"),
        "the shell's controlling terminal: {unit}"
    );
    sh.vm.send("exit\n").unwrap();
    for _ in 0..30 {
        sh.vm.send("echo @@S$((5+5))\n").unwrap();
        if sh.vm.wait_for("@@S10", Duration::from_secs(5)).is_ok() {
            let again = sh.run("systemctl show -p NRestarts --value berth-debug-shell.service");
            assert_eq!(again.trim().lines().last(), Some("1"), "{again}");
            return;
        }
    }
    panic!("no shell after exit:\n{}", sh.vm.console());
}

#[test]
#[ignore = "boots VMs; run by `cargo xtask test`"]
fn state_survives_a_reboot_and_the_rest_does_not() {
    if vm_tests_skipped() {
        return;
    }
    let (disk, _) = shared_debug_image();
    let dir = tempfile::tempdir().unwrap();
    let copy = sparse_copy(disk, dir.path());
    let files = [
        "/var/p",
        "/home/p",
        "/var/lib/berth/p",
        "/etc/p",
        "/tmp/p",
        "/var/lib/cloud/p",
        "/mnt/disks/p",
    ];
    let mut sh = Shell::boot("early_boot_persist_1", &copy, false);
    let id = sh.run("busybox cat /etc/machine-id").trim().to_owned();
    let out = sh.run(&format!(
        "for f in {}; do echo kept > $f || echo FAIL $f; done",
        files.join(" ")
    ));
    assert!(!out.contains("FAIL"), "{out}");
    let console = sh.power_off();
    for phase in ["stop", "kill", "sync", "unmount", "power off"] {
        assert!(
            console.contains(&format!("berth: shutdown {phase}")),
            "no {phase}:\n{console}"
        );
    }
    assert!(!console.contains("berth: FAILED"), "{console}");

    let mut sh = Shell::boot("early_boot_persist_2", &copy, false);
    let out = sh.run(&format!(
        "for f in {}; do [ -e $f ] && echo Y:$f || echo N:$f; done",
        files.join(" ")
    ));
    for f in &files[..3] {
        assert!(out.contains(&format!("Y:{f}")), "{f} was lost: {out}");
    }
    for f in &files[3..] {
        assert!(out.contains(&format!("N:{f}")), "{f} survived: {out}");
    }
    assert_eq!(
        sh.run("busybox cat /etc/machine-id").trim(),
        id,
        "machine-id changed"
    );
    assert!(sh.vm.console().contains("(kept on STATE)"));
    let kernel = sh.run("busybox dmesg | busybox grep -i -E 'recovery|orphan' ; true");
    assert!(
        !kernel.contains("recovery complete") && !kernel.to_lowercase().contains("orphan"),
        "{kernel}"
    );
    sh.power_off();
}

#[test]
#[ignore = "boots VMs; run by `cargo xtask test`"]
fn state_grows_onto_a_larger_disk() {
    if vm_tests_skipped() {
        return;
    }
    let (disk, _) = shared_debug_image();
    let dir = tempfile::tempdir().unwrap();
    let copy = sparse_copy(disk, dir.path());
    let before = table(&copy).unwrap().by_label("STATE").unwrap().size(512);
    run_ok(
        Command::new("qemu-img")
            .args(["resize", "-f", "raw"])
            .arg(&copy)
            .arg("+512M"),
    )
    .unwrap();
    let mut sh = Shell::boot("early_boot_grow", &copy, false);
    let console = sh.vm.console();
    assert!(console.contains("berth: state partition"), "{console}");
    assert!(
        console.contains("berth: state filesystem grown"),
        "{console}"
    );
    let sectors: u64 = sh
        .run("busybox cat /sys/class/block/vda6/size")
        .trim()
        .parse()
        .unwrap();
    assert_eq!(sectors * 512, before + 512 * 1024 * 1024);
    let df = sh.run("busybox df -k /mnt/stateful_partition | busybox tail -1");
    let total_kib: u64 = df.split_whitespace().nth(1).unwrap().parse().unwrap();
    assert!(total_kib > 700 * 1024, "{df}");
    sh.power_off();
    // The host's tools agree: a valid GPT, and a clean ext4 of the new size.
    let out = tool("sgdisk", &["-v", path_str(&copy).unwrap()], "gdisk").unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("No problems found"), "{text}");
    let state = table(&copy).unwrap().by_label("STATE").unwrap().clone();
    assert_eq!(state.size(512), before + 512 * 1024 * 1024);
    let part = dir.path().join("state.ext4");
    extract(&copy, state.offset(512), state.size(512), &part).unwrap();
    let out = tool("e2fsck", &["-fn", path_str(&part).unwrap()], "e2fsprogs").unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// Asserts that every one of `lines` is among PID 1's lines in the kernel log, which keeps
/// them whole (see [`Shell::berth_log`]); returns that log. A failure prints PID 1's lines
/// from both the log and the console, not the whole console, so that a CI excerpt shows
/// what PID 1 said.
fn assert_lines(sh: &mut Shell, lines: &[&str]) -> String {
    let log = sh.berth_log();
    for line in lines {
        if !log.contains(line) {
            let console = sh.vm.console();
            let on_console: Vec<&str> = console.lines().filter(|l| l.contains("berth")).collect();
            panic!(
                "no {line:?} in the kernel log; PID 1 said:\n{log}\nits lines on the console:\n{}",
                on_console.join("\n")
            );
        }
    }
    log
}

/// Asserts that STATE is the ext4 on /dev/vda6, writable, at /mnt/stateful_partition.
fn assert_state_on_disk(sh: &mut Shell) {
    let table = mount_table(&sh.run("busybox cat /proc/self/mountinfo"));
    let (options, fstype, source, _) = &table["/mnt/stateful_partition"];
    assert_eq!(
        (fstype.as_str(), source.as_str()),
        ("ext4", "/dev/vda6"),
        "{options:?}"
    );
    assert!(options.iter().any(|o| o == "rw"), "{options:?}");
    assert_eq!(table["/var"].2, "/dev/vda6");
}

/// The STATE partition of `disk` copied out into `dir`, checked clean by the host's
/// e2fsck; returns the copy.
fn state_is_clean(disk: &Path, dir: &Path) -> std::path::PathBuf {
    let state = table(disk).unwrap().by_label("STATE").unwrap().clone();
    let part = dir.join("state.ext4");
    extract(disk, state.offset(512), state.size(512), &part).unwrap();
    let out = tool("e2fsck", &["-fn", path_str(&part).unwrap()], "e2fsprogs").unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    part
}

/// A file of an ext4 image, read with the host's debugfs.
fn debugfs_cat(image: &Path, file: &str) -> String {
    let request = format!("cat {file}");
    let out = tool(
        "debugfs",
        &["-R", &request, path_str(image).unwrap()],
        "e2fsprogs",
    )
    .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
#[ignore = "boots VMs; run by `cargo xtask test`"]
fn the_host_name_comes_from_an_smbios_nocloud_seed() {
    if vm_tests_skipped() {
        return;
    }
    let (disk, _) = shared_debug_image();
    let builder = vm_builder("early_boot_nocloud_hostname", disk, true)
        .smbios_serial("ds=nocloud;h=cloudy-node");
    let mut sh = Shell::start(builder);
    let log = assert_lines(
        &mut sh,
        &["berth: hostname cloudy-node (from SMBIOS nocloud)"],
    );
    assert!(!log.contains("berth: FAILED"), "{log}");
    assert_eq!(sh.run("busybox hostname").trim(), "cloudy-node");
    assert_eq!(sh.run("busybox cat /etc/hostname").trim(), "cloudy-node");
}

#[test]
#[ignore = "boots VMs; run by `cargo xtask test`"]
fn a_state_the_kernel_refuses_is_repaired_by_e2fsck() {
    if vm_tests_skipped() {
        return;
    }
    let (disk, _) = shared_debug_image();
    let dir = tempfile::tempdir().unwrap();
    let copy = sparse_copy(disk, dir.path());
    let state = table(&copy).unwrap().by_label("STATE").unwrap().clone();
    // No primary superblock: the kernel finds no ext4 and e2fsck -p gives up (exit 8);
    // e2fsck -y finds a backup superblock and rewrites the primary from it.
    zero_range(&copy, state.offset(512) + 1024, 1024).unwrap();
    let mut sh = Shell::boot("early_boot_repair", &copy, false);
    let log = assert_lines(
        &mut sh,
        &[
            "berth: state: cannot mount /dev/vda6 (ext4)",
            "berth: state: e2fsck -p could not repair /dev/vda6 (exit 8",
            "berth: state: e2fsck -y repaired /dev/vda6 (exit 1",
            "repaired) on /mnt/stateful_partition",
            "berth: state new: made",
        ],
    );
    for line in log.lines().filter(|l| l.contains("e2fsck")) {
        eprintln!("{line}");
    }
    assert!(!log.contains("STATE is a tmpfs"), "{log}");
    assert!(!log.contains("re-made"), "{log}");
    assert_state_on_disk(&mut sh);
    assert_eq!(sh.run("echo kept > /var/repaired && echo ok").trim(), "ok");
    sh.power_off();
    let part = state_is_clean(&copy, dir.path());
    assert_eq!(debugfs_cat(&part, "/var/repaired").trim(), "kept");
}

#[test]
#[ignore = "boots VMs; run by `cargo xtask test`"]
fn a_state_beyond_repair_is_re_made_with_berth_state_reformat() {
    if vm_tests_skipped() {
        return;
    }
    let (disk, _) = shared_debug_image();
    let dir = tempfile::tempdir().unwrap();
    let copy = sparse_copy(disk, dir.path());
    let state = table(&copy).unwrap().by_label("STATE").unwrap().clone();
    // Every superblock gone: nothing for e2fsck to start from.
    zero_range(&copy, state.offset(512), state.size(512)).unwrap();
    let entry = edit_loader_entry(&copy, |e| with_kernel_args(e, "berth.state=reformat")).unwrap();
    assert!(entry.contains("berth.state=reformat"), "{entry}");

    let mut sh = Shell::boot("early_boot_reformat_1", &copy, false);
    let log = assert_lines(
        &mut sh,
        &[
            "berth: state: cannot mount /dev/vda6 (ext4)",
            "berth: FAILED state repair: e2fsck -y /dev/vda6: exit 8",
            "berth: state: re-made STATE on /dev/vda6 (berth.state=reformat",
            "berth: state new: made",
            "re-made) on /mnt/stateful_partition",
            "(new, kept on STATE)",
        ],
    );
    for line in log
        .lines()
        .filter(|l| l.contains("e2fsck") || l.contains("re-made"))
    {
        eprintln!("{line}");
    }
    assert!(!log.contains("STATE is a tmpfs"), "{log}");
    assert_state_on_disk(&mut sh);
    let id = sh.run("busybox cat /etc/machine-id").trim().to_owned();
    let out = sh.run("echo kept > /var/p && echo kept > /home/p && echo ok");
    assert_eq!(out.trim(), "ok");
    sh.power_off();

    // The next boot (berth.state=reformat still on the command line) keeps it.
    let mut sh = Shell::boot("early_boot_reformat_2", &copy, false);
    let log = sh.berth_log();
    assert!(log.contains("berth: state mounted /dev/vda6"), "{log}");
    assert!(!log.contains("re-made"), "{log}");
    assert!(!log.contains("e2fsck"), "{log}");
    assert_state_on_disk(&mut sh);
    assert_eq!(sh.run("busybox cat /var/p /home/p"), "kept\nkept\n");
    assert_eq!(sh.run("busybox cat /etc/machine-id").trim(), id);
    sh.power_off();
    let part = state_is_clean(&copy, dir.path());
    let out = tool("e2label", &[path_str(&part).unwrap()], "e2fsprogs").unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "STATE");
}

/// The console timestamp of the first line holding `pattern`.
fn stamp(console: &str, pattern: &str) -> Option<f64> {
    let line = console.lines().find(|l| l.contains(pattern))?;
    let inside = line.trim_start().strip_prefix('[')?.split(']').next()?;
    inside.trim().parse().ok()
}

#[test]
#[ignore = "boots VMs; a benchmark, run by hand"]
fn switch_root_to_early_boot_done_median_of_5() {
    if vm_tests_skipped() {
        return;
    }
    let (disk, _) = shared_debug_image();
    let mut times = Vec::new();
    for i in 0..5 {
        let mut vm = Qemu::builder()
            .name(&format!("early_boot_timing_{i}"))
            .disk(disk)
            .snapshot(true)
            .spawn()
            .unwrap();
        vm.wait_for("berth: early-boot done", BOOT).unwrap();
        let console = vm.console();
        let took = stamp(&console, "berth: early-boot done").unwrap()
            - stamp(&console, "berth: switch-root").unwrap();
        eprintln!("boot {i}: {took:.3}s");
        times.push(took);
        vm.quit().unwrap();
    }
    times.sort_by(f64::total_cmp);
    eprintln!(
        "switch-root to early-boot done, median of 5: {:.3}s",
        times[2]
    );
}

#[test]
#[ignore = "boots VMs; run by `cargo xtask test`"]
fn the_service_manager_runs_the_cri_runtime_from_its_unit() {
    if vm_tests_skipped() {
        return;
    }
    let (disk, _) = shared_debug_image();
    let mut sh = Shell::boot("units_runtime", disk, true);
    let console = sh.vm.console();
    // `berth: ready` waits for multi-user.target, which waits for berth-runtime's READY=1.
    let started = console.find("berth: started berth-runtime.service");
    let ready = console.find("berth: ready");
    assert!(
        matches!((started, ready), (Some(s), Some(r)) if s < r),
        "{console}"
    );
    assert!(!console.contains("berth: FAILED"), "{console}");
    // The daemon lives in its unit's cgroup and serves the CRI socket.
    let procs =
        sh.run("busybox cat /sys/fs/cgroup/system.slice/berth-runtime.service/cgroup.procs");
    let pid: u32 = procs
        .trim()
        .lines()
        .next()
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or_else(|| panic!("no process in the unit's cgroup: {procs:?}"));
    let socket = sh.run("busybox stat -c %F /run/berth/cri.sock");
    assert_eq!(socket.trim(), "socket", "{socket}");
    // image.toml's [cni]: its four plugins and nothing else, and the default network in
    // the writable /etc, where a cluster's add-on puts its own.
    let plugins = sh.run("busybox ls /usr/lib/cni");
    let plugins: Vec<&str> = plugins.split_whitespace().collect();
    assert_eq!(plugins, ["bridge", "host-local", "loopback", "portmap"]);
    let net = sh.run("busybox cat /etc/cni/net.d/90-berth.conflist");
    assert!(net.contains("\"subnet\": \"10.88.0.0/16\""), "{net}");
    let writable = sh.run("busybox touch /etc/cni/net.d/10-addon.conflist; echo rc=$?");
    assert_eq!(writable.trim(), "rc=0", "{writable}");
    let limits = sh.run(&format!(
        "busybox cat /proc/{pid}/oom_score_adj /proc/sys/fs/nr_open; busybox grep 'open files' /proc/{pid}/limits"
    ));
    let mut lines = limits.trim().lines();
    assert_eq!(lines.next().map(str::trim), Some("-999"), "{limits}");
    // LimitNOFILE=infinity is fs.nr_open, the most the kernel allows (as systemd does).
    let nr_open = lines.next().unwrap_or_default().trim().to_owned();
    let open_files: Vec<&str> = lines
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(
        open_files.get(3..5),
        Some(&[nr_open.as_str(), nr_open.as_str()][..]),
        "{limits}"
    );
    // systemctl talks to PID 1 over /run/berth/init.sock, with systemctl's exit codes.
    let state = sh.run("systemctl is-active berth-runtime; echo rc=$?");
    assert_eq!(state.trim(), "active\nrc=0", "{state}");
    let main = sh.run("systemctl show -p MainPID --value berth-runtime");
    assert_eq!(main.trim(), pid.to_string(), "{main}");
    let status = sh.run("systemctl status berth-runtime.service");
    assert!(
        status.contains("Active: active (running) since")
            && status.contains(&format!("Main PID: {pid} (berth-runtime)"))
            && status.contains("CGroup: /system.slice/berth-runtime.service"),
        "{status}"
    );
    let missing = sh.run("systemctl status nope; echo rc=$?");
    assert!(missing.contains("rc=4"), "{missing}");
    let failed = sh.run("systemctl list-units --failed --no-legend; echo rc=$?");
    assert_eq!(failed.trim(), "rc=0", "{failed}");
    // restart waits for the new READY=1: a new main PID, active when it returns.
    let restart = sh.run("systemctl restart berth-runtime; echo rc=$?");
    assert!(restart.trim().ends_with("rc=0"), "{restart}");
    let pid: u32 = sh
        .run("systemctl show -p MainPID --value berth-runtime")
        .trim()
        .parse()
        .expect("a main PID after restart");
    let state = sh.run("systemctl is-active berth-runtime");
    assert_eq!(state.trim(), "active", "{state}");
    // Restart=always: killed, it comes back after RestartSec=5 and says READY again.
    sh.run(&format!("busybox kill -9 {pid}"));
    sh.vm
        .wait_for("berth: started berth-runtime.service", BOOT)
        .unwrap();
    let again =
        sh.run("busybox cat /sys/fs/cgroup/system.slice/berth-runtime.service/cgroup.procs");
    assert!(
        !again.trim().is_empty() && !again.contains(&pid.to_string()),
        "{again}"
    );
    let console = sh.power_off();
    let stopping = console
        .find("berth: stopping units")
        .expect("units stopped at shutdown");
    let final_steps = console
        .find("berth: shutdown started")
        .expect("then the final steps");
    assert!(stopping < final_steps, "{console}");
}
