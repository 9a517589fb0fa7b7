//! Where a pod's runtime state lives: `state/pods/<id>/`, one place for every path so the
//! namespace, file and CNI code cannot disagree about it.

use std::path::{Path, PathBuf};

/// The paths of one pod under the runtime state folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodPaths {
    dir: PathBuf,
}

impl PodPaths {
    /// Paths of pod `pod_id` under `state` (`state/pods/<pod_id>`). The id is the runtime's
    /// own hex id, never a request field, so it is not checked here.
    pub fn new(state: &Path, pod_id: &str) -> Self {
        PodPaths {
            dir: state.join("pods").join(pod_id),
        }
    }

    /// The pod's folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The folder holding the namespace bind mounts (itself a bind mount, see
    /// [`namespaces`](super::namespaces)).
    pub fn ns_dir(&self) -> PathBuf {
        self.dir.join("ns")
    }

    /// The network namespace file.
    pub fn netns(&self) -> PathBuf {
        self.ns_dir().join("net")
    }

    /// The IPC namespace file.
    pub fn ipcns(&self) -> PathBuf {
        self.ns_dir().join("ipc")
    }

    /// The UTS namespace file.
    pub fn utsns(&self) -> PathBuf {
        self.ns_dir().join("uts")
    }

    /// The pod's `/dev/shm`: one tmpfs shared by the containers of a pod with its own IPC
    /// namespace (inside the shared `ns` folder, so its unmount reaches every copy).
    pub fn shm(&self) -> PathBuf {
        self.ns_dir().join("shm")
    }

    /// The PID namespace file (pods that share one PID namespace, see
    /// [`pidns`](super::pidns)).
    pub fn pidns(&self) -> PathBuf {
        self.ns_dir().join("pid")
    }

    /// The pid and start time of the PID namespace's init.
    pub fn pid_init_file(&self) -> PathBuf {
        self.dir.join("pid-init")
    }

    /// The pod's `/etc/resolv.conf`.
    pub fn resolv_conf(&self) -> PathBuf {
        self.dir.join("resolv.conf")
    }

    /// The pod's `/etc/hostname`.
    pub fn hostname_file(&self) -> PathBuf {
        self.dir.join("hostname")
    }

    /// The pod's `/etc/hosts`.
    pub fn hosts_file(&self) -> PathBuf {
        self.dir.join("hosts")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout() {
        let p = PodPaths::new(Path::new("/run/berth/runtime"), "abc");
        assert_eq!(p.dir(), Path::new("/run/berth/runtime/pods/abc"));
        assert_eq!(p.netns(), Path::new("/run/berth/runtime/pods/abc/ns/net"));
        assert_eq!(p.ipcns(), Path::new("/run/berth/runtime/pods/abc/ns/ipc"));
        assert_eq!(p.utsns(), Path::new("/run/berth/runtime/pods/abc/ns/uts"));
        assert_eq!(
            p.resolv_conf(),
            Path::new("/run/berth/runtime/pods/abc/resolv.conf")
        );
        assert_eq!(
            p.hostname_file(),
            Path::new("/run/berth/runtime/pods/abc/hostname")
        );
        assert_eq!(
            p.hosts_file(),
            Path::new("/run/berth/runtime/pods/abc/hosts")
        );
    }
}
