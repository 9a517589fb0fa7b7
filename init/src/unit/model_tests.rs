use std::path::Path;
use std::time::Duration;

use super::*;
use crate::unit::load::Loader;
use crate::unit::service::{KillMode, Restart, ServiceType, Stdio};

fn host() -> Host {
    Host {
        hostname: "node1".into(),
        machine_id: "m1".into(),
        ..Host::default()
    }
}

fn load(files: &[(&str, &str)], name: &str) -> Unit {
    let dir = tempfile::tempdir().expect("tempdir");
    for (path, text) in files {
        let p = dir.path().join(path.trim_start_matches('/'));
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, text).expect("write");
    }
    let files = Loader::system(dir.path()).load(name).expect("loads");
    Unit::from_files(files, &host())
}

fn messages(u: &Unit) -> Vec<String> {
    u.warnings.iter().map(|w| w.to_string()).collect()
}

const KUBELET: &str = "\
[Unit]
Description=kubelet: The Kubernetes Node Agent
Documentation=https://kubernetes.io/docs/
Wants=network-online.target
After=network-online.target

[Service]
ExecStart=/usr/bin/kubelet
Restart=always
StartLimitInterval=0
RestartSec=10

[Install]
WantedBy=multi-user.target
";

const KUBEADM_DROPIN: &str = "\
# Note: This dropin only works with kubeadm and kubelet v1.11+
[Service]
Environment=\"KUBELET_KUBECONFIG_ARGS=--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf --kubeconfig=/etc/kubernetes/kubelet.conf\"
Environment=\"KUBELET_CONFIG_ARGS=--config=/var/lib/kubelet/config.yaml\"
EnvironmentFile=-/var/lib/kubelet/kubeadm-flags.env
EnvironmentFile=-/etc/default/kubelet
ExecStart=
ExecStart=/usr/bin/kubelet $KUBELET_KUBECONFIG_ARGS $KUBELET_CONFIG_ARGS $KUBELET_KUBEADM_ARGS $KUBELET_EXTRA_ARGS
";

#[test]
fn kubeadm_kubelet_with_its_dropin() {
    let u = load(
        &[
            ("/usr/lib/systemd/system/kubelet.service", KUBELET),
            (
                "/usr/lib/systemd/system/kubelet.service.d/10-kubeadm.conf",
                KUBEADM_DROPIN,
            ),
        ],
        "kubelet.service",
    );
    assert!(u.warnings.is_empty(), "{:?}", messages(&u));
    let s = u.service.as_ref().expect("service");
    assert_eq!(s.exec_start.len(), 1, "ExecStart= reset by the drop-in");
    assert_eq!(s.exec_start[0].argv[1], "$KUBELET_KUBECONFIG_ARGS");
    assert_eq!(s.restart, Restart::Always);
    assert_eq!(s.restart_sec, Duration::from_secs(10));
    assert_eq!(u.start_limit_interval, Duration::ZERO);
    assert_eq!(
        s.environment.get("KUBELET_CONFIG_ARGS").map(String::as_str),
        Some("--config=/var/lib/kubelet/config.yaml")
    );
    assert_eq!(
        s.environment_files,
        [
            ("/var/lib/kubelet/kubeadm-flags.env".to_owned(), true),
            ("/etc/default/kubelet".to_owned(), true)
        ]
    );
    assert_eq!(u.install.wanted_by[0].as_str(), "multi-user.target");
    assert_eq!(u.deps.after[0].as_str(), "network-online.target");
    let after: Vec<_> = u.effective_after().iter().map(|n| n.to_string()).collect();
    // systemd's too: `systemctl show kubelet -p After` names the journal's socket, which
    // its output goes to.
    assert_eq!(
        after,
        [
            "network-online.target",
            "systemd-journald.socket",
            "sysinit.target",
            "basic.target"
        ]
    );
}

#[test]
fn the_runtime_unit_of_the_issue() {
    let u = load(
        &[(
            "/usr/lib/systemd/system/berth-runtime.service",
            "[Unit]\nDescription=CRI\n[Service]\nType=notify\nExecStart=/usr/bin/berth-runtime\nDelegate=yes\nKillMode=process\nOOMScoreAdjust=-999\nLimitNOFILE=infinity\nRestart=always\nTasksMax=infinity\nMemoryMax=50%\n",
        )],
        "berth-runtime.service",
    );
    assert!(u.warnings.is_empty(), "{:?}", messages(&u));
    let s = u.service.as_ref().expect("service");
    assert_eq!(s.service_type, ServiceType::Notify);
    assert!(s.resources.delegate);
    assert_eq!(s.kill_mode, KillMode::Process);
    assert_eq!(s.oom_score_adjust, Some(-999));
    assert_eq!(s.limits.get("NOFILE"), Some(&(None, None)));
    assert_eq!(
        s.resources.memory_max,
        Some(crate::unit::values::Limit::Permille(500))
    );
    assert_eq!(s.stderr(), &Stdio::Journal);
}

#[test]
fn bad_values_unknown_keys_and_sections_are_warnings_with_file_and_line() {
    let u = load(
        &[(
            "/etc/systemd/system/a.service",
            "[Unit]\nAfter=not-a-unit\n[Service]\nType=sometimes\nRestartSec=soon\nPrivateDevices=yes\nPrivateDevices=no\nExecStart=/bin/true %q\nNice=99\n[Frobnicate]\nX=1\n[X-Vendor]\nY=2\n",
        )],
        "a.service",
    );
    let m = messages(&u);
    assert_eq!(m.len(), 7, "{m:#?}");
    assert!(
        m[0].starts_with("/etc/systemd/system/a.service:2: After=not-a-unit"),
        "{m:?}"
    );
    assert!(m
        .iter()
        .any(|w| w.starts_with("/etc/systemd/system/a.service:4: Type=sometimes")));
    assert!(m
        .iter()
        .any(|w| w.contains(":6: [Service] PrivateDevices= is not implemented by Berth")));
    assert!(m
        .iter()
        .any(|w| w.contains(":8: ExecStart=/bin/true %q: unknown specifier")));
    assert!(m
        .iter()
        .any(|w| w.contains(":11: unknown section [Frobnicate]")));
    let s = u.service.as_ref().expect("service");
    assert_eq!(
        s.service_type,
        ServiceType::Simple,
        "a bad value keeps the default"
    );
    assert!(s.exec_start.is_empty());
}

#[test]
fn specifiers_in_an_instance() {
    let u = load(
        &[(
            "/usr/lib/systemd/system/serial-getty@.service",
            "[Unit]\nDescription=Serial Getty on %I\nBindsTo=dev-%i.device\nAfter=systemd-user-sessions.service\n[Service]\nExecStart=-/sbin/agetty -o '-p -- \\\\u' --keep-baud 115200,57600 %I $TERM\nType=idle\nUtmpIdentifier=%I\n",
        )],
        "serial-getty@ttyS0.service",
    );
    assert_eq!(u.description.as_deref(), Some("Serial Getty on ttyS0"));
    let s = u.service.as_ref().expect("service");
    assert_eq!(
        s.exec_start[0].argv,
        [
            "/sbin/agetty",
            "-o",
            "-p -- \\u",
            "--keep-baud",
            "115200,57600",
            "ttyS0",
            "$TERM"
        ]
    );
    assert!(s.exec_start[0].flags.ignore_failure);
    // BindsTo=dev-ttyS0.device: Berth has no device units; named, not dropped.
    let m = messages(&u);
    assert!(m.iter().any(|w| w.contains("dev-ttyS0.device")), "{m:?}");
    assert!(
        m.iter()
            .any(|w| w.contains("UtmpIdentifier= is not implemented")),
        "{m:?}"
    );
}

#[test]
fn conditions_and_reset_lists() {
    let u = load(
        &[
            ("/usr/lib/systemd/system/a.service", "[Unit]\nConditionPathExists=!/etc/x\nConditionFirstBoot=yes\nWants=b.service c.service\n[Service]\nExecStart=/bin/a\n"),
            ("/etc/systemd/system/a.service.d/override.conf", "[Unit]\nConditionFirstBoot=\nWants=\nWants=d.service\n"),
        ],
        "a.service",
    );
    assert_eq!(
        u.conditions.len(),
        0,
        "an empty Condition= resets every condition"
    );
    assert_eq!(
        u.deps.wants.iter().map(|w| w.as_str()).collect::<Vec<_>>(),
        ["d.service"]
    );
    assert_eq!(
        u.files.dropins,
        [Path::new("/etc/systemd/system/a.service.d/override.conf")]
    );
}

#[test]
fn keys_berth_parses_but_does_not_apply_are_named_with_file_and_line() {
    let u = load(
        &[(
            "/etc/systemd/system/b.service",
            "[Unit]\nStopWhenUnneeded=yes\nJobTimeoutSec=5\n[Service]\nExecStart=/bin/true\n\
             AmbientCapabilities=CAP_NET_ADMIN\nStandardInput=socket\nTTYVTDisallocate=yes\n\
             TTYPath=/dev/console\nStandardInput=null\nCapabilityBoundingSet=CAP_NOPE\n",
        )],
        "b.service",
    );
    let m = messages(&u);
    let at = |line: usize, text: &str| {
        assert!(
            m.iter().any(
                |w| w.starts_with(&format!("/etc/systemd/system/b.service:{line}: "))
                    && w.contains(text)
            ),
            "line {line}: {text}: {m:#?}"
        )
    };
    at(
        2,
        "[Unit] StopWhenUnneeded= is not implemented by Berth, ignored",
    );
    at(
        3,
        "[Unit] JobTimeoutSec= is not implemented by Berth, ignored",
    );
    at(7, "StandardInput=socket: unsupported standard input");
    at(
        8,
        "[Service] TTYVTDisallocate= is not implemented by Berth, ignored",
    );
    at(11, "'CAP_NOPE' is not a capability name");
    assert_eq!(
        m.len(),
        5,
        "AmbientCapabilities=, TTYPath= and null input are what Berth does: {m:#?}"
    );
}

#[test]
fn stop_failure_mode_abort_timeout_and_restart_force_status_parse_and_bad_values_are_named() {
    let u = load(
        &[(
            "/etc/systemd/system/a.service",
            "[Service]\nExecStart=/bin/a\nTimeoutStopFailureMode=abort\nTimeoutAbortSec=7\n\
             RestartForceExitStatus=3 SIGUSR1\nTimeoutStopFailureMode=sometimes\n\
             TimeoutAbortSec=soon\nRestartForceExitStatus=nine\nTimeoutStartFailureMode=kill\n\
             TimeoutStartFailureMode=never\n",
        )],
        "a.service",
    );
    let m = messages(&u);
    assert_eq!(
        m,
        [
            "/etc/systemd/system/a.service:6: TimeoutStopFailureMode=sometimes: unknown timeout failure mode, ignored",
            "/etc/systemd/system/a.service:7: TimeoutAbortSec=soon: 'soon' is not a time span, ignored",
            "/etc/systemd/system/a.service:8: RestartForceExitStatus=nine: 'nine' is not an exit status or signal, ignored",
            "/etc/systemd/system/a.service:10: TimeoutStartFailureMode=never: unknown timeout failure mode, ignored",
        ]
    );
    assert_eq!(
        u.service
            .as_ref()
            .expect("service")
            .timeout_start_failure_mode,
        crate::unit::service::TimeoutFailureMode::Kill
    );
    let s = u.service.as_ref().expect("service");
    assert_eq!(
        s.timeout_stop_failure_mode,
        crate::unit::service::TimeoutFailureMode::Abort
    );
    assert_eq!(s.abort_timeout(), Some(Duration::from_secs(7)));
    assert_eq!(s.restart_force_exit_status, [3, -10]);

    // Unset, TimeoutStopSec= applies; empty unsets; zero and infinity are infinity.
    let abort = |lines: &str| {
        let u = load(
            &[(
                "/etc/systemd/system/b.service",
                &format!("[Service]\nExecStart=/bin/b\nTimeoutStopSec=4\n{lines}"),
            )],
            "b.service",
        );
        assert!(messages(&u).is_empty(), "{:?}", messages(&u));
        u.service.expect("service").abort_timeout()
    };
    assert_eq!(abort(""), Some(Duration::from_secs(4)));
    assert_eq!(
        abort("TimeoutAbortSec=9\nTimeoutAbortSec=\n"),
        Some(Duration::from_secs(4))
    );
    assert_eq!(abort("TimeoutAbortSec=0\n"), None);
    assert_eq!(abort("TimeoutAbortSec=infinity\n"), None);
    let u = load(
        &[(
            "/etc/systemd/system/c.service",
            "[Service]\nExecStart=/bin/c\n",
        )],
        "c.service",
    );
    let s = u.service.expect("service");
    assert_eq!(
        s.timeout_stop_failure_mode,
        crate::unit::service::TimeoutFailureMode::Terminate
    );
}

#[test]
fn sigpipe_is_ignored_unless_ignore_sigpipe_says_no() {
    let ignored = |lines: &str| {
        let u = load(
            &[(
                "/etc/systemd/system/p.service",
                &format!("[Service]\nExecStart=/bin/p\n{lines}"),
            )],
            "p.service",
        );
        let warnings = messages(&u);
        (u.service.expect("service").ignore_sigpipe, warnings)
    };
    assert_eq!(ignored(""), (true, vec![]));
    assert_eq!(ignored("IgnoreSIGPIPE=no\n"), (false, vec![]));
    assert_eq!(
        ignored("IgnoreSIGPIPE=no\nIgnoreSIGPIPE=yes\n"),
        (true, vec![])
    );
    let (value, warnings) = ignored("IgnoreSIGPIPE=sometimes\n");
    assert!(value);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].starts_with("/etc/systemd/system/p.service:3: IgnoreSIGPIPE=sometimes: "),
        "{warnings:?}"
    );
}
