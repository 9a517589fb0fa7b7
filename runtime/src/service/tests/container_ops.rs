//! The container calls besides the lifecycle over the fake host: status views and
//! listings, ExecSync, UpdateContainerResources, ReopenContainerLog, stats, and the
//! checks before the streaming calls.

use std::time::Duration;

use super::{kind, pod, Harness};
use crate::container::ContainerState;
use crate::container::Resources;
use crate::error::Kind;
use crate::service::container_ops::{ContainerFilter, ProcessUser};
use crate::service::fake::Call;

#[test]
fn status_views_and_listings_carry_state_user_and_filters() {
    let h = Harness::new();
    let web = h.run(pod("web"));
    let db = h.run(pod("db"));
    let app = h.create(&web, "app");
    let sidecar = h.create(&web, "sidecar");
    let store = h.create(&db, "store");
    h.daemon.start_container(&app).unwrap();

    let view = h.daemon.container_view(&app[..12]).unwrap();
    assert_eq!(view.record.id, app);
    assert_eq!(view.state.state, ContainerState::Running);
    assert_eq!(
        view.user,
        Some(ProcessUser {
            uid: 1000,
            gid: 1000,
            groups: vec![1000, 10],
        })
    );
    assert!(view.bundle.ends_with(&app), "{}", view.bundle.display());
    assert_eq!(
        kind(h.daemon.container_view(&"0".repeat(64)).unwrap_err()),
        Kind::NotFound
    );

    let ids = |filter: ContainerFilter| {
        let mut ids: Vec<String> = h
            .daemon
            .list_containers(&filter)
            .into_iter()
            .map(|(c, _)| c.id)
            .collect();
        ids.sort();
        ids
    };
    let mut all = vec![app.clone(), sidecar.clone(), store.clone()];
    all.sort();
    assert_eq!(ids(ContainerFilter::default()), all);
    let mut in_web = vec![app.clone(), sidecar.clone()];
    in_web.sort();
    assert_eq!(
        ids(ContainerFilter {
            pod_id: web[..8].to_owned(),
            ..Default::default()
        }),
        in_web
    );
    assert_eq!(
        ids(ContainerFilter {
            state: Some(ContainerState::Running),
            ..Default::default()
        }),
        std::slice::from_ref(&app)
    );
    assert_eq!(
        ids(ContainerFilter {
            labels: [("app".to_owned(), "x".to_owned())].into(),
            ..Default::default()
        }),
        Vec::<String>::new(),
        "the containers carry no labels"
    );
    let running: Vec<String> = h
        .daemon
        .running_containers_of(&web)
        .into_iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(running, [app]);
    assert!(h.daemon.running_containers_of(&db).is_empty());
}

#[test]
fn exec_sync_runs_through_the_host_with_the_command_and_timeout() {
    let h = Harness::new();
    let web = h.run(pod("web"));
    let app = h.create(&web, "app");
    h.fake.clear();
    let cmd = vec!["echo".to_owned(), "hi".to_owned()];
    let out = h
        .daemon
        .exec_sync(&app[..10], &cmd, Duration::from_secs(3))
        .unwrap();
    assert_eq!((out.stdout.as_slice(), out.exit_code), (&b"echo hi"[..], 0));
    assert_eq!(
        h.fake.calls(),
        [Call::ExecSync {
            container: app.clone(),
            cmd: cmd.clone(),
            timeout: Duration::from_secs(3),
        }]
    );
    let empty = h.daemon.exec_sync(&app, &[], Duration::ZERO).unwrap_err();
    assert_eq!(empty.to_string(), "cmd: must not be empty");
    let unknown = h
        .daemon
        .exec_sync("ffff", &cmd, Duration::ZERO)
        .unwrap_err();
    assert_eq!(kind(unknown), Kind::NotFound);
    h.fake.fail_next("exec_sync");
    assert!(h.daemon.exec_sync(&app, &cmd, Duration::ZERO).is_err());
}

#[test]
fn updated_resources_reach_the_host_and_the_record_only_on_success() {
    let h = Harness::new();
    let web = h.run(pod("web"));
    let app = h.create(&web, "app");
    h.fake.clear();
    let limits = |memory_limit_in_bytes| Resources {
        memory_limit_in_bytes: Some(memory_limit_in_bytes),
        ..Default::default()
    };
    let recorded = || {
        h.daemon
            .container(&app)
            .unwrap()
            .config
            .linux
            .and_then(|l| l.resources)
            .map(|r| r.memory_limit_in_bytes)
    };
    h.fake.fail_next("update_resources");
    assert!(h
        .daemon
        .update_container_resources(&app, &limits(1 << 20))
        .is_err());
    assert_eq!(recorded(), None, "a failed update leaves the record alone");
    h.daemon
        .update_container_resources(&app, &limits(2 << 20))
        .unwrap();
    assert_eq!(recorded(), Some(2 << 20));
    assert_eq!(
        h.fake.calls().last(),
        Some(&Call::UpdateResources {
            container: app.clone(),
            memory_limit: Some(2 << 20),
        })
    );
}

#[test]
fn log_reopen_and_stats_go_to_the_host() {
    let h = Harness::new();
    let web = h.run(pod("web"));
    let app = h.create(&web, "app");
    h.fake.clear();
    h.daemon.reopen_container_log(&app).unwrap();
    assert_eq!(
        h.fake.calls(),
        [Call::ReopenLog {
            container: app.clone()
        }]
    );
    let record = h.daemon.container(&app).unwrap();
    assert_eq!(
        h.daemon.container_stats(&record).unwrap().timestamp_nanos,
        1
    );
    h.daemon.remove_container(&app).unwrap();
    assert_eq!(
        kind(h.daemon.reopen_container_log(&app).unwrap_err()),
        Kind::NotFound
    );
    assert_eq!(
        kind(h.daemon.container_stats(&record).unwrap_err()),
        Kind::NotFound
    );
}

#[test]
fn streaming_targets_need_a_running_container_or_a_ready_pod() {
    let h = Harness::new();
    let web = h.run(pod("web"));
    let app = h.create(&web, "app");
    let sh = || vec!["sh".to_owned()];
    for err in [
        h.daemon.exec_target(&app, sh(), true).unwrap_err(),
        h.daemon.attach_target(&app).unwrap_err(),
    ] {
        assert_eq!(kind(err), Kind::FailedPrecondition, "a created container");
    }
    h.daemon.start_container(&app).unwrap();
    let exec = h.daemon.exec_target(&app[..6], sh(), true).unwrap();
    assert_eq!(
        (exec.paths.id.as_str(), exec.cmd, exec.tty),
        (app.as_str(), sh(), true)
    );
    assert_eq!(
        h.daemon
            .exec_target(&app, Vec::new(), false)
            .unwrap_err()
            .to_string(),
        "cmd: must not be empty"
    );
    let attach = h.daemon.attach_target(&app).unwrap();
    assert_eq!(attach.id, app);
    assert!(
        attach.socket.starts_with(h.dir.path()),
        "{}",
        attach.socket.display()
    );

    let forward = h.daemon.port_forward_target(&web).unwrap();
    assert_eq!(forward.netns, Some(h.daemon.pod_paths(&web).netns()));
    assert_eq!(
        kind(h.daemon.port_forward_target(&"e".repeat(64)).unwrap_err()),
        Kind::NotFound
    );
    h.daemon.stop_pod(&web).unwrap();
    assert_eq!(
        kind(h.daemon.port_forward_target(&web).unwrap_err()),
        Kind::FailedPrecondition
    );
    assert_eq!(
        kind(h.daemon.exec_target(&app, sh(), false).unwrap_err()),
        Kind::FailedPrecondition,
        "stopping the pod stopped its containers"
    );
}
