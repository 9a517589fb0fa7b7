//! Proptest strategies for CRI request messages: mostly well-formed at the top (so a
//! request reaches the service layer), hostile anywhere below (empty, `..`, `/`, NUL,
//! 5000-byte strings, extreme numbers, large maps, enum values the proto does not have).

use std::collections::HashMap;

use proptest::prelude::*;

use crate::proto::v1::*;

/// Strings a hostile or careless client sends.
pub fn hostile() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just(".".to_owned()),
        Just("..".to_owned()),
        Just("../../../etc/passwd".to_owned()),
        Just("/".to_owned()),
        Just("a/b".to_owned()),
        Just("a\0b".to_owned()),
        Just("x".repeat(5000)),
        Just("busybox".to_owned()),
        "[a-z0-9-]{1,12}",
        "[0-9a-f]{1,64}",
        "/[a-z./]{0,20}",
        ".{0,40}",
    ]
}

/// Mostly a well-formed name (so requests get past the first checks), sometimes hostile.
fn name() -> impl Strategy<Value = String> {
    prop_oneof![6 => "[a-z][a-z0-9-]{0,11}", 1 => hostile()]
}

/// Mostly the image in the store, sometimes hostile.
fn image_name() -> impl Strategy<Value = String> {
    prop_oneof![6 => Just(crate::service::tests::IMAGE.to_owned()), 1 => hostile()]
}

fn map() -> impl Strategy<Value = HashMap<String, String>> {
    prop_oneof![
        4 => prop::collection::hash_map(hostile(), hostile(), 0..4),
        1 => prop::collection::hash_map("[a-z]{1,8}\\.[a-z]{1,8}", "[a-z0-9]{0,8}", 200..300),
    ]
}

pub fn strings() -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec(hostile(), 0..4)
}

fn mode() -> impl Strategy<Value = i32> {
    prop_oneof![0..4i32, any::<i32>()]
}

fn namespace_option() -> impl Strategy<Value = Option<NamespaceOption>> {
    prop::option::of(
        (mode(), mode(), mode(), hostile(), prop::option::of(mode())).prop_map(
            |(network, pid, ipc, target_id, userns)| NamespaceOption {
                network,
                pid,
                ipc,
                target_id,
                userns_options: userns.map(|mode| UserNamespace {
                    mode,
                    ..Default::default()
                }),
            },
        ),
    )
}

pub fn pod_config() -> impl Strategy<Value = Option<PodSandboxConfig>> {
    let metadata = prop::option::weighted(
        0.95,
        (name(), name(), name(), any::<u32>()).prop_map(|(name, uid, namespace, attempt)| {
            PodSandboxMetadata {
                name,
                uid,
                namespace,
                attempt,
            }
        }),
    );
    let dns = prop::option::of((strings(), strings(), strings()).prop_map(
        |(servers, searches, options)| DnsConfig {
            servers,
            searches,
            options,
        },
    ));
    let ports = prop::collection::vec(
        (any::<i32>(), any::<i32>(), any::<i32>(), hostile()).prop_map(
            |(protocol, container_port, host_port, host_ip)| PortMapping {
                protocol,
                container_port,
                host_port,
                host_ip,
            },
        ),
        0..3,
    );
    let linux = prop::option::of((hostile(), map(), namespace_option()).prop_map(
        |(cgroup_parent, sysctls, namespace_options)| LinuxPodSandboxConfig {
            cgroup_parent,
            sysctls,
            security_context: Some(LinuxSandboxSecurityContext {
                namespace_options,
                ..Default::default()
            }),
            ..Default::default()
        },
    ));
    prop::option::weighted(
        0.95,
        (
            metadata,
            hostile(),
            hostile(),
            dns,
            ports,
            map(),
            map(),
            linux,
        )
            .prop_map(
                |(
                    metadata,
                    hostname,
                    log_directory,
                    dns_config,
                    port_mappings,
                    labels,
                    annotations,
                    linux,
                )| {
                    PodSandboxConfig {
                        metadata,
                        hostname,
                        log_directory,
                        dns_config,
                        port_mappings,
                        labels,
                        annotations,
                        linux,
                        windows: None,
                    }
                },
            ),
    )
}

pub fn container_config() -> impl Strategy<Value = Option<ContainerConfig>> {
    let metadata = prop::option::weighted(
        0.95,
        (name(), any::<u32>()).prop_map(|(name, attempt)| ContainerMetadata { name, attempt }),
    );
    let image = prop::option::weighted(
        0.95,
        image_name().prop_map(|image| ImageSpec {
            image,
            ..Default::default()
        }),
    );
    let mounts = prop::collection::vec(
        (
            hostile(),
            hostile(),
            any::<bool>(),
            any::<i32>(),
            any::<bool>(),
        )
            .prop_map(
                |(container_path, host_path, readonly, propagation, recursive_read_only)| Mount {
                    container_path,
                    host_path,
                    readonly,
                    propagation,
                    recursive_read_only,
                    ..Default::default()
                },
            ),
        0..3,
    );
    let devices = prop::collection::vec(
        (hostile(), hostile(), hostile()).prop_map(|(container_path, host_path, permissions)| {
            Device {
                container_path,
                host_path,
                permissions,
            }
        }),
        0..2,
    );
    let envs = prop::collection::vec(
        (hostile(), hostile()).prop_map(|(key, value)| KeyValue { key, value }),
        0..3,
    );
    let resources = prop::option::of(
        (
            any::<i64>(),
            any::<i64>(),
            any::<i64>(),
            any::<i64>(),
            any::<i64>(),
            hostile(),
            map(),
        )
            .prop_map(
                |(cpu_period, cpu_quota, cpu_shares, memory, oom, cpuset_cpus, unified)| {
                    LinuxContainerResources {
                        cpu_period,
                        cpu_quota,
                        cpu_shares,
                        memory_limit_in_bytes: memory,
                        oom_score_adj: oom,
                        cpuset_cpus,
                        unified,
                        ..Default::default()
                    }
                },
            ),
    );
    let security = prop::option::of(
        (
            namespace_option(),
            prop::option::of(any::<i64>()),
            hostile(),
            prop::collection::vec(any::<i64>(), 0..3),
            strings(),
            strings(),
            prop::option::of((0..4i32, hostile())),
        )
            .prop_map(
                |(namespace_options, uid, run_as_username, groups, caps, paths, seccomp)| {
                    LinuxContainerSecurityContext {
                        namespace_options,
                        run_as_user: uid.map(|value| Int64Value { value }),
                        run_as_username,
                        supplemental_groups: groups,
                        capabilities: Some(Capability {
                            add_capabilities: caps.clone(),
                            drop_capabilities: caps,
                            ..Default::default()
                        }),
                        masked_paths: paths.clone(),
                        readonly_paths: paths,
                        seccomp: seccomp.map(|(profile_type, localhost_ref)| SecurityProfile {
                            profile_type,
                            localhost_ref,
                        }),
                        ..Default::default()
                    }
                },
            ),
    );
    let linux = prop::option::of((resources, security).prop_map(
        |(resources, security_context)| LinuxContainerConfig {
            resources,
            security_context,
        },
    ));
    let process = (strings(), strings(), hostile(), envs, hostile());
    prop::option::weighted(
        0.95,
        (
            metadata,
            image,
            process,
            mounts,
            devices,
            map(),
            map(),
            linux,
        )
            .prop_map(
                |(
                    metadata,
                    image,
                    (command, args, working_dir, envs, log_path),
                    mounts,
                    devices,
                    labels,
                    annotations,
                    linux,
                )| {
                    ContainerConfig {
                        metadata,
                        image,
                        command,
                        args,
                        working_dir,
                        envs,
                        mounts,
                        devices,
                        labels,
                        annotations,
                        log_path,
                        linux,
                        ..Default::default()
                    }
                },
            ),
    )
}

/// Which object an id field names: the live pod, the live container, a prefix of
/// either, or a hostile string.
#[derive(Debug, Clone)]
pub enum Id {
    Pod,
    Container,
    Prefix(usize),
    Hostile(String),
}

pub fn id() -> impl Strategy<Value = Id> {
    prop_oneof![
        3 => Just(Id::Pod),
        3 => Just(Id::Container),
        1 => (1usize..64).prop_map(Id::Prefix),
        2 => hostile().prop_map(Id::Hostile),
    ]
}
