//! The OCI runtime spec of a container, from its request ([`ContainerSpecRequest`], the
//! domain form of the CRI config), the image's defaults and the pod's namespaces, with containerd's defaults (capabilities, masked paths, seccomp
//! RuntimeDefault). Pure apart from reading the image's /etc/passwd and a few host facts,
//! so it is unit-tested without root.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{
    get_default_maskedpaths, get_default_readonly_paths, Linux, LinuxCapabilities, LinuxNamespace,
    LinuxNamespaceType, Process, Root, Spec, User,
};

use super::caps::{self, CapabilityRequest};
use super::mounts::{self, MountContext};
use super::request::{ContainerSpecRequest, PidMode, PodSpecContext, SecurityRequest};
use super::seccomp::{self, SeccompChoice};
use super::{devices, procfs, resources, user, ContainerError};

/// What the image config says about running it (so this module does not depend on the
/// image module).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageDefaults {
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    /// `KEY=value` strings.
    pub env: Vec<String>,
    pub working_dir: String,
    /// `uid`, `uid:gid`, `name` or `name:group`.
    pub user: String,
}

/// The pod's namespaces to join; `None` means the host's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SandboxNamespacePaths {
    pub net: Option<PathBuf>,
    pub ipc: Option<PathBuf>,
    pub uts: Option<PathBuf>,
    /// The PID namespace to join for [`PidMode::Pod`] (the pod's) or [`PidMode::Target`]
    /// (the target container's); unused for the others.
    pub pid: Option<PathBuf>,
}

/// The pod's files bind-mounted into the container's /etc.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SandboxFiles {
    pub resolv_conf: Option<PathBuf>,
    pub hostname: Option<PathBuf>,
    pub hosts: Option<PathBuf>,
    /// The pod's `/dev/shm` tmpfs (pods with their own IPC namespace).
    pub shm: Option<PathBuf>,
}

/// Everything the spec is built from.
pub struct SpecInput<'a> {
    pub id: &'a str,
    pub request: &'a ContainerSpecRequest,
    pub pod: &'a PodSpecContext,
    pub image: &'a ImageDefaults,
    /// The mounted overlay.
    pub rootfs: &'a Path,
    pub namespaces: &'a SandboxNamespacePaths,
    pub sandbox_files: &'a SandboxFiles,
    /// The pod's cgroupfs path, e.g. `/berth/pod-<id>`; the container's is `<parent>/<id>`.
    pub cgroup_parent: &'a str,
    /// False on hosts that refuse a negative `oom_score_adj` (no CAP_SYS_RESOURCE).
    pub oom_score_adj_allowed: bool,
}

/// Facts about the host the spec depends on, read once per spec (injected in tests).
#[derive(Debug, Clone)]
pub struct HostFacts {
    pub oom_score_adj: i32,
    /// The bounding set: what "all capabilities" means.
    pub capabilities: BTreeSet<String>,
    /// cgroup v2 only (then the container gets its own cgroup namespace).
    pub cgroup_v2: bool,
    pub hostname: String,
}

impl HostFacts {
    /// Reads the facts of this process and host.
    pub fn current() -> Self {
        HostFacts {
            oom_score_adj: procfs::current_oom_score_adj(),
            capabilities: caps::names_of(&procfs::bounding_capabilities()),
            cgroup_v2: super::cgroup::CgroupFs::detect().is_v2(),
            hostname: nix::unistd::gethostname()
                .map(|h| h.to_string_lossy().into_owned())
                .unwrap_or_default(),
        }
    }
}

const PATH_ENV: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Builds the spec. Warnings (a degraded setting) are printed to stderr.
pub fn build_spec(input: &SpecInput) -> Result<Spec, ContainerError> {
    let (spec, warnings) = build_spec_with(input, &HostFacts::current())?;
    for w in warnings {
        eprintln!("berth-runtime: warning: container {}: {w}", input.id);
    }
    Ok(spec)
}

/// Builds the spec against the given host facts; returns it with the warnings.
pub fn build_spec_with(
    input: &SpecInput,
    host: &HostFacts,
) -> Result<(Spec, Vec<String>), ContainerError> {
    let config = input.request;
    let mut warnings = Vec::new();
    let sc = &config.security;
    let privileged = sc.privileged;
    if privileged && !input.pod.privileged {
        return Err(ContainerError::invalid(
            "config.linux.security_context.privileged",
            "the pod sandbox is not privileged",
        ));
    }
    // Process.
    let args = command_line(config, input.image)?;
    let env = environment(config, input.image, input.pod, host);
    let cwd = match &config.working_dir {
        Some(dir) => dir.clone(),
        None if !input.image.working_dir.is_empty() => PathBuf::from(&input.image.working_dir),
        None => PathBuf::from("/"),
    };
    if !cwd.is_absolute() {
        return Err(ContainerError::invalid(
            "config.working_dir",
            format!("{:?} must be absolute", cwd.display().to_string()),
        ));
    }
    let resolved = user::resolve(
        input.rootfs,
        &user::UserRequest {
            uid: sc.run_as_user,
            username: &sc.run_as_username,
            gid: sc.run_as_group,
            supplemental_groups: &sc.supplemental_groups,
            strict_groups: sc.strict_groups,
            image_user: &input.image.user,
        },
    )?;
    let cap_sets = caps::compute(
        &CapabilityRequest {
            privileged,
            add: &sc.add_capabilities,
            drop: &sc.drop_capabilities,
            ambient: &sc.add_ambient_capabilities,
        },
        &host.capabilities,
    )?;
    let mut user = User::default();
    user.set_uid(resolved.uid);
    user.set_gid(resolved.gid);
    if !resolved.additional_gids.is_empty() {
        user.set_additional_gids(Some(resolved.additional_gids.clone()));
    }
    let mut capabilities = LinuxCapabilities::default();
    let main = caps::to_oci(&cap_sets.main);
    capabilities.set_bounding(Some(main.clone()));
    capabilities.set_effective(Some(main.clone()));
    capabilities.set_permitted(Some(main));
    capabilities.set_inheritable(Some(caps::to_oci(&cap_sets.ambient)));
    capabilities.set_ambient(Some(caps::to_oci(&cap_sets.ambient)));
    let mut process = Process::default();
    // With a terminal the monitor receives the pty master over its console socket.
    process.set_terminal(Some(config.tty));
    process.set_args(Some(args));
    process.set_env(Some(env));
    process.set_cwd(cwd);
    process.set_user(user);
    process.set_capabilities(Some(capabilities));
    process.set_no_new_privileges(Some(sc.no_new_privs));
    process.set_rlimits(None);
    if let Some(res) = &config.resources {
        let (value, warning) = resources::oom_score_adj(
            res.oom_score_adj,
            input.oom_score_adj_allowed,
            host.oom_score_adj,
        );
        process.set_oom_score_adj(Some(value));
        warnings.extend(warning);
    }

    // Root and mounts.
    let mut root = Root::default();
    root.set_path(input.rootfs.to_path_buf());
    root.set_readonly(Some(sc.readonly_rootfs));
    let ns = input.namespaces;
    let (mounts, rootfs_propagation) = mounts::build(
        &config.mounts,
        &MountContext {
            privileged,
            readonly_rootfs: sc.readonly_rootfs,
            host_ipc: ns.ipc.is_none(),
            sandbox_files: input.sandbox_files,
        },
    )?;

    // Linux: namespaces, devices, cgroup, security.
    let mut linux = Linux::default();
    let mut all_namespaces = namespaces(ns, sc, host.cgroup_v2)?;
    if let Some(maps) = &input.pod.user_namespace {
        all_namespaces.push(namespace(LinuxNamespaceType::User, None));
        linux.set_uid_mappings(Some(vec![maps.uid.to_oci()?]));
        linux.set_gid_mappings(Some(vec![maps.gid.to_oci()?]));
    }
    linux.set_namespaces(Some(all_namespaces));
    let mut res = config
        .resources
        .as_ref()
        .map(resources::to_oci)
        .unwrap_or_default();
    let mut device_entries = devices::from_request(&config.devices)?;
    let mut rules = vec![if privileged {
        devices::allow_all()
    } else {
        devices::deny_all()
    }];
    if privileged {
        device_entries.extend(devices::host_devices());
    }
    rules.extend(device_entries.iter().map(|d| d.rule.clone()));
    res.set_devices(Some(rules));
    linux.set_devices(Some(device_entries.into_iter().map(|d| d.device).collect()));
    linux.set_resources(Some(res));
    let parent = input.cgroup_parent.trim_end_matches('/');
    if !parent.starts_with('/') {
        return Err(ContainerError::invalid(
            "cgroup_parent",
            format!("{parent:?} must be an absolute cgroupfs path"),
        ));
    }
    linux.set_cgroups_path(Some(PathBuf::from(format!("{parent}/{}", input.id))));
    linux.set_rootfs_propagation(rootfs_propagation);
    if privileged {
        linux.set_masked_paths(None);
        linux.set_readonly_paths(None);
    } else {
        let or_default = |given: &Vec<String>, default: Vec<String>| {
            if given.is_empty() {
                default
            } else {
                given.clone()
            }
        };
        let mut masked = or_default(&sc.masked_paths, get_default_maskedpaths());
        for extra in ["/sys/devices/virtual/powercap"] {
            if sc.masked_paths.is_empty() && !masked.iter().any(|m| m == extra) {
                masked.push(extra.to_string());
            }
        }
        linux.set_masked_paths(Some(masked));
        linux.set_readonly_paths(Some(or_default(
            &sc.readonly_paths,
            get_default_readonly_paths(),
        )));
        linux.set_seccomp(match &sc.seccomp {
            SeccompChoice::Unconfined => None,
            SeccompChoice::RuntimeDefault => {
                Some(seccomp::default_profile(&cap_sets.main).map_err(|source| {
                    ContainerError::Spec {
                        id: input.id.to_string(),
                        source,
                    }
                })?)
            }
            SeccompChoice::Localhost(path) => Some(seccomp::load_profile(path)?),
        });
    }

    let mut spec = Spec::default();
    spec.set_version("1.0.2".to_string());
    spec.set_hostname(None);
    spec.set_root(Some(root));
    spec.set_mounts(Some(mounts));
    spec.set_process(Some(process));
    spec.set_linux(Some(linux));
    spec.set_annotations(stdio_annotations(config));
    Ok((spec, warnings))
}

/// The monitor keeps the container's stdin open for Attach when the config asks for it;
/// it reads these from the bundle (the OCI spec has no field for them).
fn stdio_annotations(
    config: &ContainerSpecRequest,
) -> Option<std::collections::HashMap<String, String>> {
    let mut a = std::collections::HashMap::new();
    if config.stdin {
        a.insert(
            crate::monitor_protocol::ANNOTATION_STDIN.to_string(),
            "true".to_string(),
        );
    }
    if config.stdin_once {
        a.insert(
            crate::monitor_protocol::ANNOTATION_STDIN_ONCE.to_string(),
            "true".to_string(),
        );
    }
    (!a.is_empty()).then_some(a)
}

/// kubelet's rules: the request's command replaces the image's entrypoint and then the
/// image's cmd is dropped; the request's args replace the image's cmd.
fn command_line(
    config: &ContainerSpecRequest,
    image: &ImageDefaults,
) -> Result<Vec<String>, ContainerError> {
    let (command, args) = if !config.command.is_empty() {
        (config.command.clone(), config.args.clone())
    } else {
        let entrypoint = if image.entrypoint.len() == 1 && image.entrypoint[0].is_empty() {
            Vec::new()
        } else {
            image.entrypoint.clone()
        };
        let args = if config.args.is_empty() {
            image.cmd.clone()
        } else {
            config.args.clone()
        };
        (entrypoint, args)
    };
    let all: Vec<String> = command.into_iter().chain(args).collect();
    if all.is_empty() {
        return Err(ContainerError::invalid(
            "config.command",
            "no command: neither the request nor the image gives one",
        ));
    }
    Ok(all)
}

/// PATH default, HOSTNAME, the image's env, then the request's; a later key replaces an
/// earlier one in place.
fn environment(
    config: &ContainerSpecRequest,
    image: &ImageDefaults,
    pod: &PodSpecContext,
    host: &HostFacts,
) -> Vec<String> {
    let hostname = pod.hostname.as_deref().unwrap_or(&host.hostname);
    let mut env: Vec<String> = vec![PATH_ENV.to_string(), format!("HOSTNAME={hostname}")];
    let mut set = |entry: String| {
        let key = entry.split('=').next().unwrap_or_default().to_string();
        match env
            .iter_mut()
            .find(|e| e.split('=').next() == Some(key.as_str()))
        {
            Some(slot) => *slot = entry,
            None => env.push(entry),
        }
    };
    for e in &image.env {
        if !e.is_empty() && !e.starts_with('=') {
            set(e.clone());
        }
    }
    for (key, value) in &config.envs {
        set(format!("{key}={value}"));
    }
    env
}

fn namespace(typ: LinuxNamespaceType, path: Option<&Path>) -> LinuxNamespace {
    let mut ns = LinuxNamespace::default();
    ns.set_typ(typ);
    ns.set_path(path.map(Path::to_path_buf));
    ns
}

/// New mount (and cgroup, on v2) namespaces; the pod's network, IPC and UTS namespaces
/// (the host's where the pod has none); a PID namespace of its own (CONTAINER), the
/// pod's (POD) or another container's (TARGET), or the host's (NODE).
fn namespaces(
    paths: &SandboxNamespacePaths,
    sc: &SecurityRequest,
    cgroup_v2: bool,
) -> Result<Vec<LinuxNamespace>, ContainerError> {
    let mut out = vec![namespace(LinuxNamespaceType::Mount, None)];
    for (typ, path) in [
        (LinuxNamespaceType::Network, &paths.net),
        (LinuxNamespaceType::Ipc, &paths.ipc),
        (LinuxNamespaceType::Uts, &paths.uts),
    ] {
        if let Some(path) = path {
            out.push(namespace(typ, Some(path)));
        }
    }
    match &sc.pid {
        PidMode::Node => {}
        PidMode::Container => out.push(namespace(LinuxNamespaceType::Pid, None)),
        mode @ (PidMode::Pod | PidMode::Target { .. }) => {
            let path = paths.pid.as_deref().ok_or_else(|| {
                ContainerError::invalid(
                    "config.linux.security_context.namespace_options.pid",
                    format!("{} has no PID namespace to join", mode.name()),
                )
            })?;
            out.push(namespace(LinuxNamespaceType::Pid, Some(path)))
        }
    }
    if cgroup_v2 {
        out.push(namespace(LinuxNamespaceType::Cgroup, None));
    }
    Ok(out)
}
