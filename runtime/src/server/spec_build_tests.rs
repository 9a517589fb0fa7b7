//! Unit tests of the OCI spec generation: CRI config in (converted to the builder's
//! request by the gRPC layer, as CreateContainer does), the JSON crun reads out; here,
//! beside the conversion, so `container/` never sees a CRI type.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::Value;

use super::container_request;
use crate::container::spec::{build_spec_with, HostFacts};
use crate::container::*;
use crate::proto::v1::{
    security_profile::ProfileType, Capability, ContainerConfig, Int64Value, KeyValue,
    LinuxContainerConfig, LinuxContainerResources, LinuxContainerSecurityContext,
    LinuxPodSandboxConfig, LinuxSandboxSecurityContext, Mount, MountPropagation, NamespaceMode,
    NamespaceOption, PodSandboxConfig, SecurityProfile,
};
use crate::service::records::pod_config::spec_context as pod_context;
use crate::service::ServiceError;

/// A conversion error as the builder's own, so both kinds of refusal are checked alike.
fn as_container(e: ServiceError) -> ContainerError {
    match e {
        ServiceError::InvalidArgument { field, reason } => ContainerError::invalid(field, reason),
        other => panic!("the conversion fails only with InvalidArgument, not {other}"),
    }
}

/// The builder's request for a CRI config.
fn request(config: &ContainerConfig) -> Result<ContainerSpecRequest, ContainerError> {
    container_request(config).map_err(as_container)
}

/// The builder's view of a pod config.
fn pod(sandbox: &PodSandboxConfig) -> PodSpecContext {
    pod_context(sandbox).unwrap()
}

fn host() -> HostFacts {
    HostFacts {
        oom_score_adj: 0,
        capabilities: caps::names_of(&(0..41).filter(|n| *n != 24).collect::<Vec<_>>()),
        cgroup_v2: true,
        hostname: "node".into(),
    }
}

fn rootfs() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("etc")).unwrap();
    std::fs::write(
        dir.path().join("etc/passwd"),
        "root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("etc/group"),
        "root:x:0:\napp:x:1000:\nvideo:x:44:app\n",
    )
    .unwrap();
    dir
}

fn sandbox(privileged: bool) -> PodSandboxConfig {
    PodSandboxConfig {
        hostname: "pod-a".into(),
        linux: Some(LinuxPodSandboxConfig {
            security_context: Some(LinuxSandboxSecurityContext {
                privileged,
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn image() -> ImageDefaults {
    ImageDefaults {
        entrypoint: vec!["/entry".into()],
        cmd: vec!["serve".into()],
        env: vec!["PATH=/app/bin".into(), "A=image".into(), "B=image".into()],
        working_dir: "/app".into(),
        user: "app".into(),
    }
}

fn with_sc(
    sc: LinuxContainerSecurityContext,
    resources: Option<LinuxContainerResources>,
) -> ContainerConfig {
    ContainerConfig {
        linux: Some(LinuxContainerConfig {
            security_context: Some(sc),
            resources,
        }),
        ..Default::default()
    }
}

/// Builds the spec and returns it as JSON with the warnings.
fn build(
    config: &ContainerConfig,
    sandbox: &PodSandboxConfig,
    image: &ImageDefaults,
    allowed: bool,
) -> Result<(Value, Vec<String>), ContainerError> {
    let root = rootfs();
    let ns = SandboxNamespacePaths {
        net: Some("/run/netns/pod".into()),
        ipc: Some("/s/pods/p/ipc".into()),
        uts: None,
        pid: None,
    };
    let files = SandboxFiles {
        resolv_conf: Some("/s/pods/p/resolv.conf".into()),
        hostname: Some("/s/pods/p/hostname".into()),
        hosts: Some("/s/pods/p/hosts".into()),
        shm: Some("/s/pods/p/ns/shm".into()),
    };
    let (request, pod) = (request(config)?, pod(sandbox));
    let input = SpecInput {
        id: "c1",
        request: &request,
        pod: &pod,
        image,
        rootfs: root.path(),
        namespaces: &ns,
        sandbox_files: &files,
        cgroup_parent: "/berth/pod-p",
        oom_score_adj_allowed: allowed,
    };
    let (spec, warnings) = build_spec_with(&input, &host())?;
    Ok((serde_json::to_value(&spec).unwrap(), warnings))
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .map(|s| s.as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn image_defaults_and_kubelet_command_rules() {
    let sb = sandbox(false);
    let img = image();
    let args = |command: &[&str], args: &[&str]| {
        let config = ContainerConfig {
            command: command.iter().map(|s| s.to_string()).collect(),
            args: args.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        };
        strings(&build(&config, &sb, &img, true).unwrap().0["process"]["args"])
    };
    assert_eq!(args(&[], &[]), ["/entry", "serve"]);
    assert_eq!(args(&[], &["x"]), ["/entry", "x"]);
    assert_eq!(
        args(&["/bin/sh"], &[]),
        ["/bin/sh"],
        "a command drops the image's cmd"
    );
    assert_eq!(
        args(&["/bin/sh"], &["-c", "true"]),
        ["/bin/sh", "-c", "true"]
    );
    let empty = ImageDefaults::default();
    let err = build(&ContainerConfig::default(), &sb, &empty, true).unwrap_err();
    assert!(err.to_string().starts_with("config.command:"), "{err}");
}

#[test]
fn process_env_user_cwd_and_defaults() {
    let config = ContainerConfig {
        envs: vec![
            KeyValue {
                key: "B".into(),
                value: "config".into(),
            },
            KeyValue {
                key: "C".into(),
                value: "x=y".into(),
            },
        ],
        ..Default::default()
    };
    let (spec, warnings) = build(&config, &sandbox(false), &image(), true).unwrap();
    assert!(warnings.is_empty());
    let p = &spec["process"];
    assert_eq!(
        strings(&p["env"]),
        [
            "PATH=/app/bin",
            "HOSTNAME=pod-a",
            "A=image",
            "B=config",
            "C=x=y"
        ]
    );
    assert_eq!(p["cwd"], "/app");
    assert_eq!(p["user"]["uid"], 1000);
    assert_eq!(p["user"]["gid"], 1000);
    assert_eq!(p["user"]["additionalGids"], serde_json::json!([44]));
    assert_eq!(p["terminal"], false);
    assert_eq!(p["noNewPrivileges"], false);
    let mut bounding = strings(&p["capabilities"]["bounding"]);
    bounding.sort();
    let mut expected: Vec<String> = caps::DEFAULT_CAPABILITIES
        .iter()
        .map(|s| s.to_string())
        .collect();
    expected.sort();
    assert_eq!(bounding, expected);
    assert!(strings(&p["capabilities"]["ambient"]).is_empty());
    assert!(p.get("oomScoreAdj").is_none());

    assert_eq!(spec["root"]["readonly"], false);
    assert_eq!(spec["linux"]["cgroupsPath"], "/berth/pod-p/c1");
    assert!(strings(&spec["linux"]["maskedPaths"]).contains(&"/proc/kcore".to_string()));
    assert!(strings(&spec["linux"]["readonlyPaths"]).contains(&"/proc/sys".to_string()));
    assert!(
        spec["linux"].get("seccomp").is_none(),
        "no profile asked: unconfined, as CRI says"
    );
    assert_eq!(
        spec["linux"]["resources"]["devices"],
        serde_json::json!([{"allow": false, "access": "rwm"}])
    );
    let ns: Vec<(String, Option<String>)> = spec["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["type"].as_str().unwrap().to_string(),
                n.get("path").and_then(|p| p.as_str()).map(String::from),
            )
        })
        .collect();
    assert_eq!(
        ns,
        vec![
            ("mount".to_string(), None),
            ("network".into(), Some("/run/netns/pod".into())),
            ("ipc".into(), Some("/s/pods/p/ipc".into())),
            ("pid".into(), None),
            ("cgroup".into(), None),
        ]
    );
    let dests: Vec<String> = spec["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["destination"].as_str().unwrap().to_string())
        .collect();
    for d in [
        "/proc",
        "/dev",
        "/dev/pts",
        "/dev/shm",
        "/dev/mqueue",
        "/sys",
        "/sys/fs/cgroup",
        "/etc/hosts",
        "/etc/hostname",
        "/etc/resolv.conf",
    ] {
        assert!(dests.contains(&d.to_string()), "{d} in {dests:?}");
    }
    let shm = spec["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["destination"] == "/dev/shm")
        .unwrap();
    assert_eq!(shm["type"], "bind", "the pod's own /dev/shm");
    assert_eq!(shm["source"], "/s/pods/p/ns/shm");
}

#[test]
fn security_context_resources_and_mounts() {
    let sc = LinuxContainerSecurityContext {
        run_as_user: Some(Int64Value { value: 0 }),
        run_as_group: Some(Int64Value { value: 5 }),
        supplemental_groups: vec![7],
        readonly_rootfs: true,
        no_new_privs: true,
        capabilities: Some(Capability {
            add_capabilities: vec!["NET_ADMIN".into()],
            drop_capabilities: vec!["KILL".into()],
            add_ambient_capabilities: vec!["NET_ADMIN".into()],
        }),
        seccomp: Some(SecurityProfile {
            profile_type: ProfileType::RuntimeDefault as i32,
            localhost_ref: String::new(),
        }),
        namespace_options: Some(NamespaceOption {
            pid: NamespaceMode::Node as i32,
            ..Default::default()
        }),
        ..Default::default()
    };
    let res = LinuxContainerResources {
        cpu_shares: 256,
        cpu_quota: 20_000,
        cpu_period: 100_000,
        memory_limit_in_bytes: 1 << 26,
        oom_score_adj: -997,
        ..Default::default()
    };
    let mut config = with_sc(sc, Some(res));
    config.mounts = vec![
        Mount {
            container_path: "/data".into(),
            host_path: "/tmp".into(),
            propagation: MountPropagation::PropagationBidirectional as i32,
            ..Default::default()
        },
        Mount {
            container_path: "/etc/hosts".into(),
            host_path: "/etc/hosts".into(),
            readonly: true,
            ..Default::default()
        },
    ];
    let (spec, warnings) = build(&config, &sandbox(false), &image(), false).unwrap();
    assert_eq!(
        spec["process"]["user"],
        serde_json::json!({"uid": 0, "gid": 5, "additionalGids": [7]})
    );
    assert_eq!(spec["process"]["noNewPrivileges"], true);
    assert_eq!(
        spec["process"]["oomScoreAdj"], 0,
        "clamped: this host refuses negative values"
    );
    assert_eq!(warnings.len(), 1);
    assert!(warnings[0].contains("CAP_SYS_RESOURCE"));
    let caps = strings(&spec["process"]["capabilities"]["effective"]);
    assert!(caps.contains(&"CAP_NET_ADMIN".to_string()) && !caps.contains(&"CAP_KILL".to_string()));
    assert_eq!(
        strings(&spec["process"]["capabilities"]["ambient"]),
        ["CAP_NET_ADMIN"]
    );
    assert_eq!(spec["root"]["readonly"], true);
    assert_eq!(spec["linux"]["seccomp"]["defaultAction"], "SCMP_ACT_ERRNO");
    assert_eq!(
        spec["linux"]["resources"]["cpu"],
        serde_json::json!({"shares": 256, "quota": 20000, "period": 100000})
    );
    assert_eq!(spec["linux"]["resources"]["memory"]["limit"], 1 << 26);
    assert_eq!(spec["linux"]["rootfsPropagation"], "rshared");
    assert!(
        !spec["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["type"] == "pid"),
        "host PID namespace"
    );
    let mounts = spec["mounts"].as_array().unwrap();
    let hosts: Vec<&Value> = mounts
        .iter()
        .filter(|m| m["destination"] == "/etc/hosts")
        .collect();
    assert_eq!(
        hosts.len(),
        1,
        "the request's /etc/hosts replaces the pod's"
    );
    assert_eq!(strings(&hosts[0]["options"]), ["rbind", "rprivate", "ro"]);
    let data = mounts.iter().find(|m| m["destination"] == "/data").unwrap();
    assert_eq!(strings(&data["options"]), ["rbind", "rshared", "rw"]);
    let resolv = mounts
        .iter()
        .find(|m| m["destination"] == "/etc/resolv.conf")
        .unwrap();
    assert_eq!(
        strings(&resolv["options"]),
        ["rbind", "rprivate", "ro"],
        "read-only root: pod files read-only"
    );

    let (spec, warnings) = build(&config, &sandbox(false), &image(), true).unwrap();
    assert_eq!(spec["process"]["oomScoreAdj"], -997);
    assert!(warnings.is_empty());
}

#[test]
fn privileged_containers() {
    let config = with_sc(
        LinuxContainerSecurityContext {
            privileged: true,
            seccomp: Some(SecurityProfile {
                profile_type: ProfileType::RuntimeDefault as i32,
                localhost_ref: String::new(),
            }),
            ..Default::default()
        },
        None,
    );
    let (spec, _) = build(&config, &sandbox(true), &image(), true).unwrap();
    let caps: BTreeSet<String> = strings(&spec["process"]["capabilities"]["bounding"])
        .into_iter()
        .collect();
    assert_eq!(caps, host().capabilities);
    assert!(spec["linux"].get("seccomp").is_none());
    assert!(spec["linux"].get("maskedPaths").is_none());
    assert_eq!(
        spec["linux"]["resources"]["devices"][0],
        serde_json::json!({"allow": true, "access": "rwm"})
    );
    assert!(spec["linux"]["devices"]
        .as_array()
        .unwrap()
        .iter()
        .any(|d| d["path"] == "/dev/null"));
    let sys = spec["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["destination"] == "/sys")
        .unwrap();
    assert!(strings(&sys["options"]).contains(&"rw".to_string()));
    let err = build(&config, &sandbox(false), &image(), true).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("config.linux.security_context.privileged"),
        "{err}"
    );
}

#[test]
fn invalid_requests_name_the_field() {
    let sb = sandbox(false);
    let img = image();
    let err = |config: ContainerConfig| build(&config, &sb, &img, true).unwrap_err().to_string();
    let m = |c: &str| Mount {
        container_path: c.into(),
        host_path: "/tmp".into(),
        ..Default::default()
    };
    assert_eq!(
        err(ContainerConfig {
            mounts: vec![m("/a"), m("/b"), m("c")],
            ..Default::default()
        }),
        "config.mounts[2].container_path: must be absolute"
    );
    assert!(err(ContainerConfig {
        working_dir: "rel".into(),
        ..Default::default()
    })
    .starts_with("config.working_dir"));
    assert!(err(ContainerConfig {
        envs: vec![KeyValue {
            key: String::new(),
            value: "v".into()
        }],
        ..Default::default()
    })
    .starts_with("config.envs[0].key"));
    let res = LinuxContainerResources {
        cpu_shares: -1,
        ..Default::default()
    };
    assert_eq!(
        err(with_sc(Default::default(), Some(res))),
        "config.linux.resources.cpu_shares: -1 is negative"
    );
    let sc = LinuxContainerSecurityContext {
        run_as_username: "ghost".into(),
        ..Default::default()
    };
    assert!(err(with_sc(sc, None)).starts_with("config.linux.security_context.run_as_username"));
    let sc = LinuxContainerSecurityContext {
        seccomp: Some(SecurityProfile {
            profile_type: ProfileType::Localhost as i32,
            localhost_ref: "/no/such.json".into(),
        }),
        ..Default::default()
    };
    assert!(err(with_sc(sc, None)).starts_with("config.linux.security_context.seccomp"));
    let sc = LinuxContainerSecurityContext {
        namespace_options: Some(NamespaceOption {
            pid: NamespaceMode::Target as i32,
            ..Default::default()
        }),
        ..Default::default()
    };
    assert!(
        err(with_sc(sc, None)).starts_with("config.linux.security_context.namespace_options.pid")
    );
}

#[test]
fn host_namespaces_share_the_host_dev_shm() {
    let root = rootfs();
    let config = ContainerConfig::default();
    let sb = sandbox(false);
    let img = image();
    let ns = SandboxNamespacePaths::default();
    let files = SandboxFiles::default();
    let (request, pod) = (request(&config).unwrap(), pod(&sb));
    let input = SpecInput {
        id: "c2",
        request: &request,
        pod: &pod,
        image: &img,
        rootfs: root.path(),
        namespaces: &ns,
        sandbox_files: &files,
        cgroup_parent: "/berth/p/",
        oom_score_adj_allowed: true,
    };
    let (spec, _) = build_spec_with(
        &input,
        &HostFacts {
            cgroup_v2: false,
            ..host()
        },
    )
    .unwrap();
    let spec = serde_json::to_value(&spec).unwrap();
    let types: Vec<&str> = spec["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["mount", "pid"]);
    assert_eq!(spec["linux"]["cgroupsPath"], "/berth/p/c2");
    assert_eq!(spec["root"]["path"], root.path().to_str().unwrap());
    let shm = spec["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["destination"] == "/dev/shm")
        .unwrap();
    assert_eq!(shm["source"], "/dev/shm");
    let bad = SpecInput {
        cgroup_parent: "relative",
        ..input
    };
    assert!(build_spec_with(&bad, &host()).is_err());
    assert!(Path::new(&spec["root"]["path"].as_str().unwrap().to_string()).is_absolute());
}

#[test]
fn pod_and_target_pid_modes_join_the_given_namespace() {
    let root = rootfs();
    let sb = sandbox(false);
    let img = image();
    let files = SandboxFiles::default();
    for mode in [NamespaceMode::Pod, NamespaceMode::Target] {
        let config = ContainerConfig {
            linux: Some(LinuxContainerConfig {
                security_context: Some(LinuxContainerSecurityContext {
                    namespace_options: Some(NamespaceOption {
                        pid: mode as i32,
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let ns = SandboxNamespacePaths {
            pid: Some("/s/pods/p/ns/pid".into()),
            ..Default::default()
        };
        let (request, pod) = (request(&config).unwrap(), pod(&sb));
        let input = SpecInput {
            id: "c3",
            request: &request,
            pod: &pod,
            image: &img,
            rootfs: root.path(),
            namespaces: &ns,
            sandbox_files: &files,
            cgroup_parent: "/berth/p",
            oom_score_adj_allowed: true,
        };
        let (spec, _) = build_spec_with(&input, &host()).unwrap();
        let spec = serde_json::to_value(&spec).unwrap();
        let pid = spec["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["type"] == "pid")
            .unwrap()
            .clone();
        assert_eq!(pid["path"], "/s/pods/p/ns/pid", "{mode:?}");
        // Without a namespace to join the request is refused, naming the field.
        let none = SandboxNamespacePaths::default();
        let input = SpecInput {
            namespaces: &none,
            ..input
        };
        let e = build_spec_with(&input, &host()).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("config.linux.security_context.namespace_options.pid"),
            "{e}"
        );
    }
}
