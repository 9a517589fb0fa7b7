//! The CRI-to-domain conversion: what each field becomes, and the field a bad value names.

use proptest::prelude::*;

use super::*;
use crate::proto::v1::{Device, KeyValue, Mount};
use crate::service::records::stored_resources;

fn field_of(e: ServiceError) -> String {
    match e {
        ServiceError::InvalidArgument { field, .. } => field,
        other => panic!("not InvalidArgument: {other}"),
    }
}

fn with_mounts(mounts: Vec<Mount>) -> ContainerConfig {
    ContainerConfig {
        mounts,
        ..Default::default()
    }
}

fn m(c: &str, h: &str) -> Mount {
    Mount {
        container_path: c.into(),
        host_path: h.into(),
        ..Default::default()
    }
}

#[test]
fn mounts_become_requests_or_name_the_field() {
    let config = with_mounts(vec![
        Mount {
            readonly: true,
            recursive_read_only: true,
            ..m("/a", "/tmp")
        },
        Mount {
            propagation: MountPropagation::PropagationBidirectional as i32,
            ..m("/b", "/")
        },
    ]);
    let got = container_request(&config).unwrap().mounts;
    assert_eq!(got[0].access, MountAccess::RecursiveReadOnly);
    assert_eq!(got[0].container_path, Path::new("/a"));
    assert_eq!(got[1].propagation, Propagation::Bidirectional);
    assert_eq!(got[1].access, MountAccess::ReadWrite);

    let err = |mounts: Vec<Mount>| field_of(container_request(&with_mounts(mounts)).unwrap_err());
    assert_eq!(
        err(vec![m("/ok", "/tmp"), m("/ok2", "/tmp"), m("rel", "/tmp")]),
        "config.mounts[2].container_path"
    );
    assert_eq!(err(vec![m("/x", "tmp")]), "config.mounts[0].host_path");
    let rro = Mount {
        recursive_read_only: true,
        ..m("/x", "/tmp")
    };
    assert_eq!(err(vec![rro]), "config.mounts[0].recursive_read_only");
    let bad_prop = Mount {
        propagation: 7,
        ..m("/x", "/tmp")
    };
    assert_eq!(err(vec![bad_prop]), "config.mounts[0].propagation");
}

#[test]
fn devices_envs_and_working_dir_name_the_field() {
    let d = |c: &str, p: &str| ContainerConfig {
        devices: vec![Device {
            container_path: c.into(),
            host_path: "/dev/null".into(),
            permissions: p.into(),
        }],
        ..Default::default()
    };
    assert_eq!(
        container_request(&d("/dev/x", "")).unwrap().devices[0].permissions,
        "rwm"
    );
    let err = |c: ContainerConfig| container_request(&c).unwrap_err().to_string();
    assert!(err(d("/dev/x", "rwx")).starts_with("config.devices[0].permissions"));
    assert!(err(d("x", "")).starts_with("config.devices[0].container_path"));
    let env = ContainerConfig {
        envs: vec![KeyValue {
            key: "A=B".into(),
            value: String::new(),
        }],
        ..Default::default()
    };
    assert!(err(env).starts_with("config.envs[0].key"));
    let relative = ContainerConfig {
        working_dir: "app".into(),
        ..Default::default()
    };
    assert_eq!(
        err(relative),
        "config.working_dir: \"app\" must be absolute"
    );
}

#[test]
fn a_privileged_container_gets_no_seccomp_whatever_it_asks() {
    let config = |privileged: bool| ContainerConfig {
        linux: Some(cri::LinuxContainerConfig {
            security_context: Some(cri::LinuxContainerSecurityContext {
                privileged,
                seccomp: Some(cri::SecurityProfile {
                    profile_type: 9,
                    localhost_ref: String::new(),
                }),
                ..Default::default()
            }),
            resources: None,
        }),
        ..Default::default()
    };
    let got = container_request(&config(true)).unwrap();
    assert_eq!(got.security.seccomp, SeccompChoice::Unconfined);
    assert_eq!(
        field_of(container_request(&config(false)).unwrap_err()),
        "config.linux.security_context.seccomp.profile_type"
    );
}

#[test]
fn pid_modes() {
    let pid = |pid: i32, target_id: &str| {
        let config = ContainerConfig {
            linux: Some(cri::LinuxContainerConfig {
                security_context: Some(cri::LinuxContainerSecurityContext {
                    namespace_options: Some(cri::NamespaceOption {
                        pid,
                        target_id: target_id.into(),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                resources: None,
            }),
            ..Default::default()
        };
        container_request(&config).map(|r| r.security.pid)
    };
    assert_eq!(
        container_request(&ContainerConfig::default())
            .unwrap()
            .security
            .pid,
        PidMode::Container
    );
    assert_eq!(pid(NamespaceMode::Pod as i32, "").unwrap(), PidMode::Pod);
    assert_eq!(pid(NamespaceMode::Node as i32, "").unwrap(), PidMode::Node);
    assert_eq!(
        pid(NamespaceMode::Target as i32, "c2").unwrap(),
        PidMode::Target {
            target_id: "c2".into()
        }
    );
    assert_eq!(
        field_of(pid(9, "").unwrap_err()),
        "config.linux.security_context.namespace_options.pid"
    );
}

#[test]
fn bad_resources_name_the_field() {
    let res = LinuxContainerResources {
        memory_limit_in_bytes: -5,
        ..Default::default()
    };
    assert_eq!(
        resources(&res, "config.linux.resources")
            .unwrap_err()
            .to_string(),
        "config.linux.resources.memory_limit_in_bytes: -5 is negative"
    );
    let res = LinuxContainerResources {
        unified: [("../x".to_string(), "1".to_string())].into(),
        ..Default::default()
    };
    assert_eq!(
        field_of(resources(&res, "linux").unwrap_err()),
        "linux.unified"
    );
    let res = LinuxContainerResources {
        hugepage_limits: vec![cri::HugepageLimit {
            page_size: "2MB".into(),
            limit: u64::MAX,
        }],
        ..Default::default()
    };
    assert_eq!(
        field_of(resources(&res, "linux").unwrap_err()),
        "linux.hugepage_limits[0].limit"
    );
}

fn number() -> impl Strategy<Value = i64> {
    prop_oneof![Just(0i64), 1i64..1 << 40, any::<i64>()]
}

proptest! {
    /// Limits that convert come back unchanged (the record keeps what the kubelet sent);
    /// the others name a `linux.` field.
    #[test]
    fn resources_round_trip_or_name_the_field(
        period in number(), quota in number(), shares in number(), limit in number(),
        swap in number(), oom in any::<i64>(), cpus in "[0-9,-]{0,4}", page in "[0-9A-Z]{0,3}",
        huge in any::<u64>(), key in "[a-z./]{0,6}",
    ) {
        let res = LinuxContainerResources {
            cpu_period: period,
            cpu_quota: quota,
            cpu_shares: shares,
            memory_limit_in_bytes: limit,
            oom_score_adj: oom,
            cpuset_cpus: cpus,
            cpuset_mems: String::new(),
            hugepage_limits: vec![cri::HugepageLimit { page_size: page, limit: huge }],
            unified: [(key, "1".to_string())].into(),
            memory_swap_limit_in_bytes: swap,
        };
        match resources(&res, "linux") {
            Ok(checked) => prop_assert_eq!(stored_resources(&checked), res),
            Err(e) => prop_assert!(field_of(e).starts_with("linux.")),
        }
    }
}
