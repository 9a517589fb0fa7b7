//! The container lifecycle, the image calls and the lifecycle events.

use std::sync::Arc;

use super::{container, kind, pod, Harness, IMAGE};
use crate::container::ContainerState;
use crate::error::{ErrorKind, Kind};
use crate::proto::v1::{
    LinuxContainerConfig, LinuxContainerSecurityContext, NamespaceMode, NamespaceOption,
};
use crate::server::spec_request;
use crate::service::fake::Call;
use crate::service::Daemon;

#[test]
fn container_lifecycle_create_start_stop_remove() {
    let h = Harness::new();
    let pod = h.run(pod("web"));
    h.fake.clear();
    let id = h.create(&pod, "app");
    assert_eq!(h.fake.ops(), ["mount_rootfs", "create_container"]);
    let record = h.daemon.container(&id).unwrap();
    assert_eq!(
        (record.pod_id.as_str(), record.name.as_str()),
        (pod.as_str(), "app")
    );
    assert_eq!(record.image_id, format!("sha256:{}", "ab".repeat(32)));
    assert_eq!(
        h.daemon.runtime_state(&record).state,
        ContainerState::Created
    );
    h.daemon.start_container(&id[..10]).unwrap();
    assert_eq!(
        h.daemon.runtime_state(&record).state,
        ContainerState::Running
    );
    h.daemon.stop_container(&id, 7).unwrap();
    assert_eq!(
        h.fake.calls().last(),
        Some(&Call::StopContainer {
            container: id.clone(),
            timeout: std::time::Duration::from_secs(7),
            signal: "SIGQUIT".to_owned(),
        }),
        "the image's stop signal and the timeout"
    );
    assert_eq!(
        h.daemon.runtime_state(&record).state,
        ContainerState::Exited
    );
    h.daemon.remove_container(&id).unwrap();
    assert_eq!(h.fake.ops().last(), Some(&"remove_container"));
    assert_eq!(kind(h.daemon.container(&id).unwrap_err()), Kind::NotFound);
    assert_eq!(
        h.daemon.runtime_state(&record).state,
        ContainerState::Unknown
    );
    // Unknown containers: start says NotFound, stop and remove are fine.
    assert_eq!(
        kind(h.daemon.start_container(&id).unwrap_err()),
        Kind::NotFound
    );
    h.daemon.stop_container(&id, 0).unwrap();
    h.daemon.remove_container(&id).unwrap();
}

#[test]
fn create_container_checks_pod_image_and_name_before_making_anything() {
    let h = Harness::new();
    let pod_id = h.run(pod("web"));
    h.create(&pod_id, "app");
    h.fake.clear();
    let err = h
        .daemon
        .create_container(container(&pod_id, "app"))
        .unwrap_err();
    assert_eq!(err.kind(), Kind::AlreadyExists);
    let mut spec = container(&pod_id, "other");
    spec.image = "missing:1".to_owned();
    let err = h.daemon.create_container(spec).unwrap_err();
    assert_eq!(err.kind(), Kind::NotFound);
    assert!(err.to_string().contains("pull it first"), "{err}");
    let err = h
        .daemon
        .create_container(container("0000", "x"))
        .unwrap_err();
    assert_eq!(err.to_string(), "pod sandbox 0000 not found");
    let mut spec = container(&pod_id, "pid");
    spec.config.linux = Some(LinuxContainerConfig {
        security_context: Some(LinuxContainerSecurityContext {
            namespace_options: Some(NamespaceOption {
                pid: NamespaceMode::Pod as i32,
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    });
    spec.request = spec_request::container_request(&spec.config).unwrap();
    let err = h.daemon.create_container(spec).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("config.linux.security_context.namespace_options.pid: POD"),
        "{err}"
    );
    assert!(h.fake.calls().is_empty(), "{:?}", h.fake.calls());
    h.daemon.stop_pod(&pod_id).unwrap();
    let err = h
        .daemon
        .create_container(container(&pod_id, "late"))
        .unwrap_err();
    assert_eq!(err.kind(), Kind::FailedPrecondition);
}

#[test]
fn a_failed_create_removes_what_it_made_and_leaves_no_record() {
    for step in ["mount_rootfs", "create_container"] {
        let h = Harness::new();
        let pod_id = h.run(pod("web"));
        h.fake.clear();
        h.fake.fail_next(step);
        let err = h
            .daemon
            .create_container(container(&pod_id, "app"))
            .unwrap_err();
        assert_eq!(err.kind(), Kind::Internal, "{err}");
        assert_eq!(h.fake.ops().last(), Some(&"remove_container"), "{step}");
        assert!(h.daemon.containers.all().is_empty());
        let (_, restarted) = h.reopen();
        assert!(
            restarted.containers.all().is_empty(),
            "{step}: the record written during the create is gone from disk too"
        );
        h.create(&pod_id, "app");
    }
}

#[test]
fn a_created_container_is_listed_and_survives_a_restart() {
    let h = Harness::new();
    let pod_id = h.run(pod("web"));
    let id = h.create(&pod_id, "app");
    assert_eq!(h.daemon.containers.all().len(), 1);
    let (_, restarted) = h.reopen();
    assert_eq!(restarted.container(&id).unwrap().name, "app");
}

#[test]
fn images_are_found_listed_and_removed_idempotently() {
    let h = Harness::new();
    let id = format!("sha256:{}", "ab".repeat(32));
    assert_eq!(h.daemon.image(IMAGE).unwrap().unwrap().id, id);
    assert_eq!(
        h.daemon.image(&id[7..19]).unwrap().unwrap().id,
        id,
        "an id prefix"
    );
    assert_eq!(h.daemon.images().unwrap().len(), 1);
    assert_eq!(
        h.daemon.sandbox_image_id(),
        None,
        "the pause image is not pulled"
    );
    let err = h.daemon.pull_image("Not A Name", None).unwrap_err();
    assert_eq!(err.kind(), Kind::InvalidArgument, "{err}");
    h.daemon.remove_image(IMAGE).unwrap();
    assert!(h.daemon.image(IMAGE).unwrap().is_none());
    h.daemon.remove_image(IMAGE).unwrap();
}

/// Records the lifecycle events the service sends.
#[derive(Default)]
struct Events(std::sync::Mutex<Vec<(String, crate::service::ContainerEvent)>>);

impl crate::service::ContainerEvents for Events {
    fn container_event(
        &self,
        _: &Daemon,
        record: &crate::service::records::ContainerRecord,
        kind: crate::service::ContainerEvent,
    ) {
        self.0.lock().unwrap().push((record.id.clone(), kind));
    }
}

#[test]
fn each_lifecycle_step_sends_its_event() {
    use crate::service::ContainerEvent::*;
    let mut h = Harness::new();
    let events = Arc::new(Events::default());
    h.daemon.events = Some(events.clone());
    let pod_id = h.run(pod("web"));
    let id = h.create(&pod_id, "app");
    h.daemon.start_container(&id).unwrap();
    h.daemon.stop_container(&id, 0).unwrap();
    h.daemon.remove_container(&id).unwrap();
    // A failed create sends nothing.
    h.fake.fail_next("create_container");
    h.daemon
        .create_container(container(&pod_id, "bad"))
        .unwrap_err();
    let got = events.0.lock().unwrap().clone();
    let kinds: Vec<_> = got.iter().map(|(_, k)| *k).collect();
    assert_eq!(kinds, [Created, Started, Stopped, Deleted]);
    assert!(got.iter().all(|(c, _)| *c == id));
}
