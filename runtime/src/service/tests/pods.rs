//! The pod lifecycle: run, stop, remove, rollback, reconcile.

use super::{kind, pod, Harness};
use crate::container::ContainerState;
use crate::error::{ErrorKind, Kind};
use crate::service::fake::Call;
use crate::service::records::PodState;

#[test]
fn run_pod_makes_namespaces_then_network_and_records_ready() {
    let h = Harness::new();
    let id = h.run(pod("web"));
    assert_eq!(h.fake.ops(), ["create_namespaces", "network_setup"]);
    assert!(matches!(
        &h.fake.calls()[0],
        Call::CreateNamespaces { hostname, host_network: false, .. } if hostname == "node-1"
    ));
    let record = h.daemon.pod(&id).unwrap();
    assert_eq!(record.state, PodState::Ready);
    assert_eq!(record.ips, ["10.88.0.2", "fd00::2"]);
    assert!(record.cgroup_parent.ends_with(&format!("pod-{id}")));
    // A prefix finds it; the pod's /etc files are written with the primary IP.
    assert_eq!(h.daemon.pod(&id[..8]).unwrap().id, id);
    let hosts = std::fs::read_to_string(h.daemon.pod_paths(&id).hosts_file()).unwrap();
    assert!(hosts.contains("10.88.0.2"), "{hosts}");
}

#[test]
fn a_shared_pid_namespace_and_a_host_network_change_the_steps() {
    let h = Harness::new();
    let mut spec = pod("shared");
    spec.share_pid = true;
    spec.hostname = Some("shared-0".to_owned());
    h.run(spec);
    assert_eq!(
        h.fake.ops(),
        ["create_namespaces", "start_pid_namespace", "network_setup"]
    );
    assert!(
        matches!(&h.fake.calls()[0], Call::CreateNamespaces { hostname, .. } if hostname == "shared-0")
    );
    h.fake.clear();
    let mut spec = pod("host");
    spec.host_network = true;
    spec.hostname = Some("ignored".to_owned());
    let id = h.run(spec);
    assert_eq!(
        h.fake.ops(),
        ["create_namespaces"],
        "no CNI for the host network"
    );
    assert!(
        matches!(&h.fake.calls()[0], Call::CreateNamespaces { hostname, .. } if hostname == "node-1")
    );
    assert!(h.daemon.pod(&id).unwrap().ips.is_empty());
}

#[test]
fn a_failed_step_rolls_the_pod_back_and_leaves_no_record() {
    for step in ["create_namespaces", "start_pid_namespace", "network_setup"] {
        let h = Harness::new();
        h.fake.fail_next(step);
        let mut spec = pod("web");
        spec.share_pid = true;
        let err = h.daemon.run_pod(spec).unwrap_err();
        assert_eq!(err.kind(), Kind::Internal);
        assert!(err.to_string().contains("fake failure"), "{err}");
        let ops = h.fake.ops();
        let failed_at = ops.iter().position(|op| *op == step).unwrap();
        assert_eq!(
            ops[failed_at + 1..],
            ["network_teardown", "remove_namespaces"],
            "{step}: {ops:?}"
        );
        assert!(h.daemon.pods.all().is_empty(), "{step}");
        let (_, restarted) = h.reopen();
        assert!(
            restarted.pods.all().is_empty(),
            "{step}: the record written during the run is gone from disk too"
        );
        // The name is free again.
        h.run(pod("web"));
    }
}

#[test]
fn run_pod_refuses_a_taken_name_and_an_unknown_handler() {
    let h = Harness::new();
    h.run(pod("web"));
    h.fake.clear();
    assert_eq!(
        kind(h.daemon.run_pod(pod("web")).unwrap_err()),
        Kind::AlreadyExists
    );
    let mut spec = pod("other");
    spec.runtime_handler = "nope".to_owned();
    let err = h.daemon.run_pod(spec).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("runtime_handler: unknown handler"),
        "{err}"
    );
    assert!(h.fake.calls().is_empty(), "nothing made");
}

#[test]
fn stop_and_remove_pod_go_through_containers_then_the_sandbox() {
    let h = Harness::new();
    let id = h.run(pod("web"));
    let c = h.create(&id, "app");
    h.daemon.start_container(&c).unwrap();
    h.fake.clear();
    h.daemon.stop_pod(&id).unwrap();
    assert_eq!(
        h.fake.ops(),
        ["stop_container", "network_teardown", "remove_namespaces"]
    );
    assert_eq!(h.daemon.pod(&id).unwrap().state, PodState::NotReady);
    assert_eq!(h.fake.container_state(&c), Some(ContainerState::Exited));
    h.fake.clear();
    h.daemon.remove_pod(&id).unwrap();
    assert_eq!(
        h.fake.ops(),
        [
            "remove_container",
            "network_teardown",
            "remove_namespaces",
            "remove_pod_files",
            "remove_cgroup"
        ]
    );
    assert_eq!(kind(h.daemon.pod(&id).unwrap_err()), Kind::NotFound);
    assert!(h.daemon.containers.all().is_empty());
    assert!(!h.daemon.pod_paths(&id).dir().exists());
    // Both are idempotent for the kubelet's retries.
    h.daemon.stop_pod(&id).unwrap();
    h.daemon.remove_pod(&id).unwrap();
}

#[test]
fn a_kubelet_cgroup_is_not_removed() {
    let h = Harness::new();
    let mut spec = pod("web");
    spec.cgroup_parent = Some("/kubepods/pod1".to_owned());
    let id = h.run(spec);
    h.daemon.remove_pod(&id).unwrap();
    assert!(!h.fake.ops().contains(&"remove_cgroup"));
}

#[test]
fn a_restart_after_a_reboot_finds_pods_not_ready_and_skips_damaged_records() {
    let h = Harness::new();
    let id = h.run(pod("web"));
    let meta = h.dir.path().join("root/meta/pods");
    std::fs::write(meta.join("damaged.json"), b"{\"id\":").unwrap();
    let (_, daemon) = h.reopen();
    assert_eq!(daemon.pod(&id).unwrap().state, PodState::NotReady);
    assert_eq!(daemon.pods.all().len(), 1);
    assert_eq!(kind(daemon.pod("damaged").unwrap_err()), Kind::NotFound);
}
