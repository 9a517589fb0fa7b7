//! Property test of the OCI spec generation against hostile CRI requests: whatever the
//! kubelet (or anyone on the socket) sends in a ContainerConfig, converting it at the
//! gRPC edge and building the spec never panics, and a refusal is InvalidArgument
//! naming a `config.` field.

use proptest::prelude::*;

use crate::container::spec::{build_spec_with, HostFacts};
use crate::container::*;
use crate::error::{ErrorKind, Kind};
use crate::proto::v1::{
    Capability, ContainerConfig, Device, KeyValue, LinuxContainerConfig, LinuxContainerResources,
    LinuxContainerSecurityContext, Mount, PodSandboxConfig, SecurityProfile,
};

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[ -~]{0,12}",
        "/[a-z./]{0,12}",
        Just("..".to_owned()),
        Just("/../../etc".to_owned()),
        Just("a\0b".to_owned()),
        Just(String::new()),
        "[0-9]{1,6}(:[0-9]{1,6})?",
        "\\PC{0,8}",
    ]
}

fn mount() -> impl Strategy<Value = Mount> {
    (text(), text(), any::<bool>(), 0i32..5).prop_map(
        |(container_path, host_path, readonly, propagation)| Mount {
            container_path,
            host_path,
            readonly,
            propagation,
            ..Default::default()
        },
    )
}

fn security() -> impl Strategy<Value = LinuxContainerSecurityContext> {
    (
        proptest::collection::vec(text(), 0..3),
        proptest::collection::vec(text(), 0..3),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        proptest::option::of(any::<i64>()),
        (0i32..4, text()),
    )
        .prop_map(
            |(add, drop, privileged, readonly, nnp, uid, (profile, name))| {
                LinuxContainerSecurityContext {
                    capabilities: Some(Capability {
                        add_capabilities: add,
                        drop_capabilities: drop,
                        ..Default::default()
                    }),
                    privileged,
                    readonly_rootfs: readonly,
                    no_new_privs: nnp,
                    run_as_user: uid.map(|value| crate::proto::v1::Int64Value { value }),
                    seccomp: Some(SecurityProfile {
                        profile_type: profile,
                        localhost_ref: name,
                    }),
                    ..Default::default()
                }
            },
        )
}

fn resources() -> impl Strategy<Value = LinuxContainerResources> {
    (
        any::<i64>(),
        any::<i64>(),
        any::<i64>(),
        any::<i64>(),
        any::<i64>(),
        text(),
    )
        .prop_map(
            |(
                cpu_period,
                cpu_quota,
                cpu_shares,
                memory_limit_in_bytes,
                oom_score_adj,
                cpuset_cpus,
            )| {
                LinuxContainerResources {
                    cpu_period,
                    cpu_quota,
                    cpu_shares,
                    memory_limit_in_bytes,
                    oom_score_adj,
                    cpuset_cpus,
                    ..Default::default()
                }
            },
        )
}

fn config() -> impl Strategy<Value = ContainerConfig> {
    (
        proptest::collection::vec(text(), 0..3),
        proptest::collection::vec(text(), 0..3),
        text(),
        proptest::collection::vec((text(), text()), 0..3),
        proptest::collection::vec(mount(), 0..3),
        proptest::collection::vec((text(), text(), text()), 0..2),
        proptest::option::of(security()),
        proptest::option::of(resources()),
    )
        .prop_map(
            |(command, args, working_dir, envs, mounts, devices, sc, res)| ContainerConfig {
                command,
                args,
                working_dir,
                envs: envs
                    .into_iter()
                    .map(|(key, value)| KeyValue { key, value })
                    .collect(),
                mounts,
                devices: devices
                    .into_iter()
                    .map(|(container_path, host_path, permissions)| Device {
                        container_path,
                        host_path,
                        permissions,
                    })
                    .collect(),
                linux: Some(LinuxContainerConfig {
                    security_context: sc,
                    resources: res,
                }),
                ..Default::default()
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_container_config_builds_or_names_a_field(config in config(), user in text()) {
        let root = tempfile::tempdir().unwrap();
        let image = ImageDefaults { user, ..Default::default() };
        let request = match super::container_request(&config) {
            Ok(request) => request,
            Err(e) => {
                let message = e.to_string();
                prop_assert!(matches!(e.kind(), Kind::InvalidArgument), "{}", message);
                prop_assert!(message.starts_with("config."), "{}", message);
                return Ok(());
            }
        };
        let pod = crate::service::records::pod_config::spec_context(&PodSandboxConfig::default()).unwrap();
        let input = SpecInput {
            id: "c1",
            request: &request,
            pod: &pod,
            image: &image,
            rootfs: root.path(),
            namespaces: &SandboxNamespacePaths::default(),
            sandbox_files: &SandboxFiles::default(),
            cgroup_parent: "/berth/pod-p",
            oom_score_adj_allowed: false,
        };
        let host = HostFacts {
            oom_score_adj: 0,
            capabilities: caps::names_of(&(0..41).collect::<Vec<_>>()),
            cgroup_v2: true,
            hostname: "node".into(),
        };
        if let Err(e) = build_spec_with(&input, &host) {
            let message = e.to_string();
            prop_assert!(
                matches!(e.kind(), Kind::InvalidArgument | Kind::NotFound | Kind::FailedPrecondition),
                "{:?}: {}", e.kind(), message
            );
            // The field named is the request's, or the image config's (`image.config.User`).
            prop_assert!(
                message.starts_with("config.") || message.starts_with("image.config.") || message.contains("user"),
                "{}", message
            );
        }
    }
}
