//! The calls the fake host records, one variant per [`Host`](super::super::Host) step that
//! changes something, with what identifies its object, and the step's name to fail it.

use std::time::Duration;

/// One call to the host, with what identifies its object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    CreateNamespaces {
        pod: String,
        hostname: String,
        host_network: bool,
        sysctls: usize,
    },
    StartPidNamespace {
        pod: String,
    },
    NetworkSetup {
        pod: String,
        ports: usize,
    },
    NetworkTeardown {
        pod: String,
    },
    RemoveNamespaces {
        pod: String,
    },
    RemovePodFiles {
        pod: String,
    },
    RemoveCgroup {
        cgroup: String,
    },
    MountRootfs {
        container: String,
        lowers: usize,
    },
    PrepareMountTargets {
        container: String,
    },
    CreateContainer {
        container: String,
    },
    StartContainer {
        container: String,
    },
    StopContainer {
        container: String,
        timeout: Duration,
        signal: String,
    },
    RemoveContainer {
        container: String,
    },
    ExecSync {
        container: String,
        cmd: Vec<String>,
        timeout: Duration,
    },
    UpdateResources {
        container: String,
        memory_limit: Option<u64>,
    },
    ReopenLog {
        container: String,
    },
}

impl Call {
    /// The call's kind, to choose a step to fail.
    pub fn op(&self) -> &'static str {
        match self {
            Call::CreateNamespaces { .. } => "create_namespaces",
            Call::StartPidNamespace { .. } => "start_pid_namespace",
            Call::NetworkSetup { .. } => "network_setup",
            Call::NetworkTeardown { .. } => "network_teardown",
            Call::RemoveNamespaces { .. } => "remove_namespaces",
            Call::RemovePodFiles { .. } => "remove_pod_files",
            Call::RemoveCgroup { .. } => "remove_cgroup",
            Call::MountRootfs { .. } => "mount_rootfs",
            Call::PrepareMountTargets { .. } => "prepare_mount_targets",
            Call::CreateContainer { .. } => "create_container",
            Call::StartContainer { .. } => "start_container",
            Call::StopContainer { .. } => "stop_container",
            Call::RemoveContainer { .. } => "remove_container",
            Call::ExecSync { .. } => "exec_sync",
            Call::UpdateResources { .. } => "update_resources",
            Call::ReopenLog { .. } => "reopen_log",
        }
    }
}
