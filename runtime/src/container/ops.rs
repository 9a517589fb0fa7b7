//! The CRI calls on a running container besides its lifecycle: ExecSync,
//! UpdateContainerResources, ReopenContainerLog and stats.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use oci_spec::runtime::{LinuxResources, Spec};

use super::cgroup::{CgroupFs, CgroupStats};
use super::exit::{now_nanos, ExitStatus};
use super::lifecycle::monitor_alive;
use super::oci_runtime::ExecOutput;
use super::request::Resources;
use super::{fsutil, resources, ContainerError, ContainerPaths, OciRuntime};

/// One stats sample of a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ContainerStatsSample {
    /// When it was taken, in nanoseconds since the epoch.
    pub timestamp_nanos: i64,
    pub cgroup: CgroupStats,
    /// Bytes and inodes in the container's writable layer.
    pub writable_layer_bytes: u64,
    pub writable_layer_inodes: u64,
}

fn read_spec(paths: &ContainerPaths) -> Result<Spec, ContainerError> {
    let bytes = std::fs::read(&paths.config).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => ContainerError::NotFound {
            id: paths.id.clone(),
        },
        _ => ContainerError::io("reading", &paths.config, e),
    })?;
    serde_json::from_slice(&bytes).map_err(|source| ContainerError::Json {
        path: paths.config.clone(),
        source,
    })
}

/// The identity the container's first process started with, from its spec: uid, gid
/// and the supplementary groups (the gid first, as `id -G` and containerd list them).
pub fn process_user(paths: &ContainerPaths) -> Result<(u32, u32, Vec<u32>), ContainerError> {
    let spec = read_spec(paths)?;
    let user = spec
        .process()
        .as_ref()
        .map(|p| p.user().clone())
        .unwrap_or_default();
    let mut groups = vec![user.gid()];
    for gid in user.additional_gids().iter().flatten() {
        if !groups.contains(gid) {
            groups.push(*gid);
        }
    }
    Ok((user.uid(), user.gid(), groups))
}

static EXEC_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Runs `cmd` in the container as its main process would run (same user, env, cwd,
/// capabilities) and returns its output and exit code. A `timeout` of zero means none;
/// when it passes the process is killed and the call fails with a Timeout error.
pub fn exec_sync(
    paths: &ContainerPaths,
    runtime: &OciRuntime,
    cmd: &[String],
    timeout: Duration,
) -> Result<ExecOutput, ContainerError> {
    if cmd.is_empty() {
        return Err(ContainerError::invalid("cmd", "empty"));
    }
    let spec = read_spec(paths)?;
    let mut process = spec.process().clone().unwrap_or_default();
    process.set_args(Some(cmd.to_vec()));
    process.set_terminal(Some(false));
    process.set_oom_score_adj(None);
    let n = EXEC_COUNTER.fetch_add(1, Ordering::Relaxed);
    let stem = format!("exec-{}-{n}", std::process::id());
    let process_file = paths.bundle.join(format!("{stem}.json"));
    let pid_file = paths.bundle.join(format!("{stem}.pid"));
    let json = serde_json::to_vec(&process).map_err(|source| ContainerError::Json {
        path: process_file.clone(),
        source,
    })?;
    fsutil::atomic_write(&process_file, &json)?;
    let result = runtime.exec(
        &paths.id,
        &process_file,
        &pid_file,
        (!timeout.is_zero()).then_some(timeout),
    );
    let _ = std::fs::remove_file(&process_file);
    let _ = std::fs::remove_file(&pid_file);
    result
}

/// Applies new CPU and memory limits to the running container and records them in its
/// bundle's config.json.
pub fn update_resources(
    paths: &ContainerPaths,
    runtime: &OciRuntime,
    res: &Resources,
) -> Result<(), ContainerError> {
    let mut spec = read_spec(paths)?;
    let update = resources::to_oci(res);
    let file = paths.bundle.join("update-resources.json");
    let json = serde_json::to_vec(&update).map_err(|source| ContainerError::Json {
        path: file.clone(),
        source,
    })?;
    fsutil::atomic_write(&file, &json)?;
    let result = runtime.update(&paths.id, &file);
    let _ = std::fs::remove_file(&file);
    result?;
    if let Some(linux) = spec.linux_mut() {
        let mut merged: LinuxResources = linux.resources().clone().unwrap_or_default();
        merged.set_cpu(update.cpu().clone().or(merged.cpu().clone()));
        merged.set_memory(update.memory().or(*merged.memory()));
        merged.set_hugepage_limits(
            update
                .hugepage_limits()
                .clone()
                .or(merged.hugepage_limits().clone()),
        );
        merged.set_unified(update.unified().clone().or(merged.unified().clone()));
        linux.set_resources(Some(merged));
    }
    let json = serde_json::to_vec_pretty(&spec).map_err(|source| ContainerError::Json {
        path: paths.config.clone(),
        source,
    })?;
    fsutil::atomic_write(&paths.config, &json)
}

/// Has the monitor reopen the log file (after the kubelet rotated it); returns once the
/// new file is in use.
pub fn reopen_log(paths: &ContainerPaths) -> Result<(), ContainerError> {
    if ExitStatus::read(&paths.exit_file)?.is_some() || !monitor_alive(paths) {
        return Err(ContainerError::FailedPrecondition {
            id: paths.id.clone(),
            reason: "is not running".into(),
        });
    }
    crate::monitor_protocol::request_reopen(&paths.ctl_socket).map_err(|message| {
        ContainerError::Monitor {
            id: paths.id.clone(),
            message,
        }
    })
}

/// CPU, memory and writable-layer usage now.
pub fn stats(paths: &ContainerPaths) -> Result<ContainerStatsSample, ContainerError> {
    stats_in(paths, &CgroupFs::detect())
}

/// [`stats`] against a given cgroup filesystem.
pub fn stats_in(
    paths: &ContainerPaths,
    cgroupfs: &CgroupFs,
) -> Result<ContainerStatsSample, ContainerError> {
    let spec = read_spec(paths)?;
    let cgroup = spec
        .linux()
        .as_ref()
        .and_then(|l| l.cgroups_path().clone())
        .unwrap_or_default();
    let cgroup = cgroupfs
        .stats(&cgroup.to_string_lossy())
        .unwrap_or_default();
    let (bytes, inodes) = disk_usage(&paths.upper);
    Ok(ContainerStatsSample {
        timestamp_nanos: now_nanos(),
        cgroup,
        writable_layer_bytes: bytes,
        writable_layer_inodes: inodes,
    })
}

/// Allocated bytes and inode count under `dir` (not following symlinks, hard links
/// counted once per name).
fn disk_usage(dir: &Path) -> (u64, u64) {
    let mut bytes = 0;
    let mut inodes = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(meta) = std::fs::symlink_metadata(&d) else {
            continue;
        };
        bytes += meta.blocks() * 512;
        inodes += 1;
        if meta.is_dir() {
            if let Ok(entries) = std::fs::read_dir(&d) {
                stack.extend(entries.flatten().map(|e| e.path()));
            }
        }
    }
    (bytes, inodes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disk_usage_counts_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a"), vec![1u8; 10000]).unwrap();
        std::fs::create_dir(dir.path().join("d")).unwrap();
        let (bytes, inodes) = disk_usage(dir.path());
        assert!(bytes >= 10000);
        assert_eq!(inodes, 3);
        assert_eq!(disk_usage(&dir.path().join("missing")), (0, 0));
    }

    #[test]
    fn calls_on_a_missing_container_fail_cleanly() {
        let dir = tempfile::tempdir().unwrap();
        let paths = ContainerPaths::new(dir.path(), dir.path(), "c1").unwrap();
        let runtime = OciRuntime {
            binary: "/bin/false".into(),
            root: dir.path().join("oci"),
            exec: None,
        };
        assert!(matches!(
            stats(&paths),
            Err(ContainerError::NotFound { .. })
        ));
        assert!(matches!(
            exec_sync(&paths, &runtime, &["true".into()], Duration::ZERO),
            Err(ContainerError::NotFound { .. })
        ));
        assert!(matches!(
            exec_sync(&paths, &runtime, &[], Duration::ZERO),
            Err(ContainerError::InvalidArgument { .. })
        ));
        assert!(matches!(
            reopen_log(&paths),
            Err(ContainerError::FailedPrecondition { .. })
        ));
    }
}
