//! A pod's network, IPC and UTS namespaces, held without a pause container.
//!
//! Each namespace is kept alive by a bind mount of its `/proc/thread-self/ns/<kind>` file
//! onto `state/pods/<id>/ns/<kind>`, as `ip netns add` does; containers join them by path
//! and the namespaces die when the mounts are removed. Like `ip netns`, the `ns` folder is
//! first bind-mounted onto itself and made shared: our later unmounts then propagate into
//! mount namespaces that copied the mounts meanwhile (an OCI runtime's, a service's), so
//! no copy keeps a dead pod's network alive.
//!
//! Why a short-lived thread and not a helper process: net, IPC and UTS namespaces belong to
//! a single task, so `unshare` in a fresh `std::thread` moves only that thread; the tokio
//! workers never change namespace, and Rust threads never migrate work between OS threads
//! the way Go's goroutines do. The thread sets the hostname inside the new UTS namespace,
//! bind-mounts its own namespace files (it still shares the daemon's mount namespace, so
//! the mounts are the daemon's), and exits. Forking a multi-threaded process would instead
//! restrict the child to async-signal-safe calls until it execs.

use std::path::{Path, PathBuf};

use super::sys::{self, NsSet};
use super::sysctls::{self, Sysctl};
use super::{PodError, PodPaths};

/// The namespace files a pod's containers join; `None` means the host's namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodNamespaces {
    /// Network namespace; `None` for host-network pods.
    pub net: Option<PathBuf>,
    /// IPC namespace; `None` for host-IPC pods.
    pub ipc: Option<PathBuf>,
    /// UTS namespace; `None` for host-network pods, which keep the host's hostname as the
    /// kubelet expects.
    pub uts: Option<PathBuf>,
}

/// Longest hostname the kernel accepts (`HOST_NAME_MAX`).
const HOST_NAME_MAX: usize = 64;

/// Creates the pod's namespaces, sets `hostname` in its UTS namespace (an empty hostname
/// keeps the host's) and writes the pod's `sysctls` (checked by [`sysctls::check`] against
/// the same `host_network`/`host_ipc`) in them. A partial failure removes what was made.
pub fn create_namespaces(
    paths: &PodPaths,
    hostname: &str,
    host_network: bool,
    host_ipc: bool,
    sysctls: &[Sysctl],
) -> Result<PodNamespaces, PodError> {
    let set = NsSet {
        net: !host_network,
        ipc: !host_ipc,
        uts: !host_network,
    };
    if set.uts {
        validate_hostname(hostname)?;
    }
    let namespaces = PodNamespaces {
        net: set.net.then(|| paths.netns()),
        ipc: set.ipc.then(|| paths.ipcns()),
        uts: set.uts.then(|| paths.utsns()),
    };
    if set == NsSet::default() {
        return Ok(namespaces);
    }
    let ns_dir = paths.ns_dir();
    let made_pod_dir = !paths.dir().exists();
    std::fs::create_dir_all(paths.dir()).map_err(|e| PodError::io("create", paths.dir(), e))?;
    match std::fs::create_dir(&ns_dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(PodError::AlreadyExists { path: ns_dir });
        }
        Err(e) => return Err(PodError::io("create", &ns_dir, e)),
    }
    let made = hold(paths, &ns_dir, set, &namespaces, hostname, sysctls);
    if let Err(e) = made {
        // The first error is the one to report; cleanup is best effort.
        let _ = remove_namespaces(paths);
        if made_pod_dir {
            let _ = std::fs::remove_dir(paths.dir());
        }
        return Err(e);
    }
    Ok(namespaces)
}

/// Unmounts and removes the pod's namespace files. Idempotent: missing or unmounted files
/// are fine.
pub fn remove_namespaces(paths: &PodPaths) -> Result<(), PodError> {
    super::pidns::stop(paths)?;
    let shm = paths.shm();
    sys::detach(&shm)?;
    remove_if_exists(&shm, |p| std::fs::remove_dir(p))?;
    for file in [paths.netns(), paths.ipcns(), paths.utsns()] {
        sys::detach(&file)?;
        remove_if_exists(&file, |p| std::fs::remove_file(p))?;
    }
    let ns_dir = paths.ns_dir();
    // A crash between two self-binds could have stacked them; unmount until none is left.
    while sys::detach(&ns_dir)? {}
    remove_if_exists(&ns_dir, |p| std::fs::remove_dir(p))
}

fn remove_if_exists(path: &Path, remove: fn(&Path) -> std::io::Result<()>) -> Result<(), PodError> {
    match remove(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(PodError::io("remove", path, e)),
    }
}

/// Makes the shared `ns` folder and the namespace mounts inside it.
fn hold(
    paths: &PodPaths,
    ns_dir: &Path,
    set: NsSet,
    namespaces: &PodNamespaces,
    hostname: &str,
    sysctls: &[Sysctl],
) -> Result<(), PodError> {
    sys::bind(ns_dir, ns_dir)?;
    sys::make_shared(ns_dir)?;
    let targets: Vec<(&'static str, PathBuf)> = [
        ("net", namespaces.net.clone()),
        ("ipc", namespaces.ipc.clone()),
        ("uts", namespaces.uts.clone()),
    ]
    .into_iter()
    .filter_map(|(kind, path)| path.map(|p| (kind, p)))
    .collect();
    for (_, target) in &targets {
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(target)
            .map_err(|e| PodError::io("create", target, e))?;
    }
    let hostname = hostname.to_owned();
    let sysctls = sysctls.to_vec();
    let dir = paths.dir().to_path_buf();
    let thread = std::thread::Builder::new()
        .name("berth-pod-ns".into())
        .spawn(move || enter_and_bind(&dir, set, &hostname, &sysctls, &targets))
        .map_err(|e| PodError::NamespaceThread {
            path: paths.dir().to_path_buf(),
            reason: format!("spawn: {e}"),
        })?;
    thread.join().map_err(|_| PodError::NamespaceThread {
        path: paths.dir().to_path_buf(),
        reason: "panicked".into(),
    })??;
    if set.ipc {
        // POSIX shared memory is files in /dev/shm: one tmpfs for the pod, as its IPC
        // namespace is one (containerd's sandbox /dev/shm, 64 MiB).
        let shm = paths.shm();
        std::fs::create_dir(&shm).map_err(|e| PodError::io("create", &shm, e))?;
        sys::mount_tmpfs(&shm, "mode=1777,size=65536k")?;
    }
    Ok(())
}

/// Runs on the throwaway thread: new namespaces, hostname, sysctls, bind mounts of its
/// own ns files.
fn enter_and_bind(
    dir: &Path,
    set: NsSet,
    hostname: &str,
    sysctls: &[Sysctl],
    targets: &[(&'static str, PathBuf)],
) -> Result<(), PodError> {
    sys::unshare_thread(set, dir)?;
    if set.uts && !hostname.is_empty() {
        sys::set_hostname(hostname, dir)?;
    }
    // /proc/sys shows the namespaces of this thread, which are the pod's now.
    sysctls::apply(sysctls)?;
    for (kind, target) in targets {
        sys::bind(&Path::new("/proc/thread-self/ns").join(kind), target)?;
    }
    Ok(())
}

/// A hostname the kernel takes and that reads back the same (RFC 1123 label characters,
/// as the kubelet sends).
fn validate_hostname(hostname: &str) -> Result<(), PodError> {
    const FIELD: &str = "config.hostname";
    if hostname.len() > HOST_NAME_MAX {
        return Err(PodError::field(
            FIELD,
            format!("{} bytes, longer than {HOST_NAME_MAX}", hostname.len()),
        ));
    }
    if let Some(c) = hostname
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '.'))
    {
        return Err(PodError::field(
            FIELD,
            format!("{c:?} is not allowed in a hostname"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostname_checks() {
        validate_hostname("").unwrap();
        validate_hostname("web-0.example").unwrap();
        let e = validate_hostname(&"a".repeat(65)).unwrap_err();
        assert_eq!(e.to_string(), "config.hostname: 65 bytes, longer than 64");
        let e = validate_hostname("a b").unwrap_err();
        assert_eq!(
            e.to_string(),
            "config.hostname: ' ' is not allowed in a hostname"
        );
        assert!(validate_hostname("a\0").is_err());
    }

    #[test]
    fn host_namespaces_make_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let paths = PodPaths::new(dir.path(), "p");
        let ns = create_namespaces(&paths, "whatever", true, true, &[]).unwrap();
        assert_eq!(
            ns,
            PodNamespaces {
                net: None,
                ipc: None,
                uts: None
            }
        );
        assert!(!paths.dir().exists());
        remove_namespaces(&paths).unwrap();
    }

    #[test]
    fn bad_hostname_makes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let paths = PodPaths::new(dir.path(), "p");
        assert!(create_namespaces(&paths, "no_underscores", false, false, &[]).is_err());
        assert!(!paths.dir().exists());
    }
}
